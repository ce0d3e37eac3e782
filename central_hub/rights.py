"""Which node may emit which event: one table, checked by the hub for every pushed event.

A node's certificate says its kind (clinic or pharmacy), facility code and region. A rule
names the kinds that may emit a type and, where the event belongs to a facility, how the
hub finds that facility: a payload field, or the facility of a record the event refers to
(an appointment). That facility must be the node's own. Types missing here are refused:
a new event type needs a rule before any hub accepts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sync_protocol.errors import EventRejected
from sync_protocol.event_types import event_types
from sync_protocol.events import Event
from sync_protocol.trust import NodeIdentity, NodeKind

log = logging.getLogger(__name__)

CLINIC = frozenset({NodeKind.CLINIC})
PHARMACY = frozenset({NodeKind.PHARMACY})
ANY_NODE = frozenset(NodeKind)
HUB_ONLY: frozenset[NodeKind] = frozenset()  # the hub appends these itself (hub_events)
# The origin of the hub's own events. It holds a character node ids cannot have
# (trust.NODE_ID_RE), so no node certificate can ever claim it.
HUB_ORIGIN = "hub:central"


class NotPermitted(EventRejected):
    code = "not_permitted"


@dataclass(frozen=True)
class Rule:
    kinds: frozenset[NodeKind]
    facility_field: str | None = None  # payload field naming the node's own facility
    subject_field: str | None = None  # payload id of a record whose facility must be own
    registers_self: bool = False  # FacilityRegistered: the payload describes the node itself


RIGHTS: dict[str, Rule] = {
    # Each facility's own node registers it, its doctors and their schedules.
    "FacilityRegistered": Rule(ANY_NODE, registers_self=True),
    "PractitionerRegistered": Rule(CLINIC, facility_field="facility_id"),
    "SlotsPublished": Rule(CLINIC, facility_field="facility_id"),
    # Patients are registered and edited at any clinic's registry desk.
    "PatientRegistered": Rule(CLINIC),
    "PatientFieldChanged": Rule(CLINIC),
    "PatientPhoneConfirmed": Rule(CLINIC),
    # A slot has one owner: the clinic of its facility books and manages it.
    "AppointmentBooked": Rule(CLINIC, facility_field="facility_id"),
    "AppointmentCancelled": Rule(CLINIC, subject_field="appointment_id"),
    "AppointmentRescheduled": Rule(CLINIC, subject_field="appointment_id"),
    "AppointmentCheckedIn": Rule(CLINIC, subject_field="appointment_id"),
    "AppointmentCompleted": Rule(CLINIC, subject_field="appointment_id"),
    "AppointmentNoShow": Rule(CLINIC, subject_field="appointment_id"),
    "VisitRecorded": Rule(CLINIC, facility_field="facility_id"),
    "OrderRecorded": Rule(CLINIC),
    "LabResultRecorded": Rule(CLINIC),
    # Doctors prescribe at their own clinic; any clinic may cancel (the family doctor too).
    "PrescriptionIssued": Rule(CLINIC, facility_field="facility_id"),
    "PrescriptionCancelled": Rule(CLINIC),
    "ChronicConditionSet": Rule(CLINIC),
    # Allergies are recorded (and retracted) on the medical card at any clinic.
    "AllergyRecorded": Rule(CLINIC),
    "AllergyRetracted": Rule(CLINIC),
    # Only a pharmacy hands out drugs (from an e-prescription or its paper log), as itself.
    "MedicationDispensed": Rule(PHARMACY, facility_field="facility_id"),
    "PaperDispenseRecorded": Rule(PHARMACY, facility_field="facility_id"),
    # A family doctor decides a remote request (1003 call centre) made for their facility.
    "RemotePrescriptionDecided": Rule(CLINIC, subject_field="request_id"),
    # Made by the hub (pads, conflicts and their review, call-centre requests), never pushed.
    "PaperPadAllocated": Rule(HUB_ONLY),
    "ConflictRaised": Rule(HUB_ONLY),
    "ConflictStateChanged": Rule(HUB_ONLY),
    "RemotePrescriptionRequested": Rule(HUB_ONLY),
}


def missing_rules() -> list[str]:
    """Event types with a schema but no rule (a test keeps this empty)."""
    return [name for name in event_types() if name not in RIGHTS]


def check_right(event: Event, node: NodeIdentity, own_facilities: Collection[str],
                facility_of_subject: Callable[[str], str | None]) -> None:
    """Raise NotPermitted unless `node` may emit `event`.

    `own_facilities` are the facility ids registered under the node's facility code;
    `facility_of_subject(id)` is the facility of a known record, or None if unknown.
    """
    rule = RIGHTS.get(event.type)
    if rule is None:
        raise NotPermitted("No node may emit %(type)s yet: the hub has no rule for it",
                           field="type", type=event.type)
    if not rule.kinds:
        raise NotPermitted("Only the hub emits %(type)s", field="type", type=event.type)
    if node.kind not in rule.kinds:
        raise NotPermitted("A %(kind)s node may not emit %(type)s", field="type",
                           kind=str(node.kind), type=event.type)
    payload: dict[str, Any] = event.payload
    if rule.registers_self:
        _check_self(payload, node)
    if rule.facility_field is not None:
        facility = payload.get(rule.facility_field)
        if facility not in own_facilities:
            raise NotPermitted("%(type)s names facility %(facility)s, which is not this node's "
                               "facility %(facility_code)s", field=rule.facility_field,
                               type=event.type, facility=facility,
                               facility_code=node.facility_code)
    if rule.subject_field is not None:
        subject = payload.get(rule.subject_field)
        facility = facility_of_subject(subject) if isinstance(subject, str) else None
        if facility is not None and facility not in own_facilities:
            raise NotPermitted("%(type)s refers to %(subject)s of another facility",
                               field=rule.subject_field, type=event.type, subject=subject)


def _check_self(payload: dict[str, Any], node: NodeIdentity) -> None:
    expected = {"code": node.facility_code, "kind": str(node.kind), "region": node.region_code}
    for name, value in expected.items():
        if payload.get(name) != value:
            raise NotPermitted("FacilityRegistered gives %(name)s %(value)s but this node's "
                               "certificate says %(expected)s", field=name, name=name,
                               value=payload.get(name), expected=value)
