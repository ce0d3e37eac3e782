"""Who may do what: one rule set, used by the nodes (before they write) and the hub (before it
accepts), so a node never accepts a write the hub would refuse as not permitted (DESIGN 8).

Two tables:

- ROLE_PERMISSIONS: what each staff role may do on a node, and ROLES_BY_KIND: which roles a
  node of each kind has (a pharmacy has no doctors). The hub never sees roles: these are the
  node's part.
- RIGHTS: which kind of node may emit each event type and, where the event belongs to a
  facility, how that facility is found (a payload field, or the facility of a record the event
  refers to, such as an appointment). That facility must be the node's own. Types missing here
  are refused: a new event type needs a rule before any hub accepts it.

`check_right` applies RIGHTS to one event; node and hub call it with their own view of which
facility ids are the node's and which facility a record belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .certificates import NodeKind
from .errors import EventRejected
from .event_names import (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
    CHRONIC_CONDITION_SET,
    CONFLICT_RAISED,
    CONFLICT_STATE_CHANGED,
    FACILITY_DETAILS_CHANGED,
    FACILITY_REGISTERED,
    LAB_RESULT_RECORDED,
    MEDICATION_DISPENSED,
    ORDER_RECORDED,
    PAPER_DISPENSE_RECORDED,
    PAPER_PAD_ALLOCATED,
    PATIENT_FIELD_CHANGED,
    PATIENT_PHONE_CONFIRMED,
    PATIENT_REGISTERED,
    PRACTITIONER_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_CLAIMED,
    PRESCRIPTION_ISSUED,
    REMOTE_PRESCRIPTION_DECIDED,
    REMOTE_PRESCRIPTION_REQUESTED,
    SLOTS_PUBLISHED,
    VISIT_RECORDED,
)
from .event_types import event_types

log = logging.getLogger(__name__)

NOT_PERMITTED = "not_permitted"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"manage_facility", "manage_staff", "manage_schedule", "view_patient",
                        "view_schedule", "export_log"}),
    "registrar": frozenset({"register_patient", "edit_patient", "view_patient", "book",
                            "check_in", "view_schedule"}),
    "doctor": frozenset({"register_patient", "edit_patient", "view_patient", "book",
                         "check_in", "complete_visit", "view_schedule", "read_card",
                         "write_clinical", "prescribe"}),
    "pharmacist": frozenset({"find_patient_for_dispensing", "verify_prescription", "dispense"}),
    # A patient at the kiosk acts on their own record only; the services check whose.
    "patient": frozenset({"book_own", "read_own_card", "view_schedule"}),
}
STAFF_ROLES = ("registrar", "doctor", "pharmacist", "admin")

# The staff roles a node of each kind has when it syncs with a hub. A clinic's registry,
# doctors and kiosk; a pharmacy's counter. (A stand-alone clinic may also run a counter: with
# no hub there is nobody to refuse its dispenses; see edge_node.store.)
ROLES_BY_KIND: dict[NodeKind, frozenset[str]] = {
    NodeKind.CLINIC: frozenset({"admin", "registrar", "doctor", "patient"}),
    NodeKind.PHARMACY: frozenset({"admin", "pharmacist"}),
}

CLINIC = frozenset({NodeKind.CLINIC})
PHARMACY = frozenset({NodeKind.PHARMACY})
ANY_NODE = frozenset(NodeKind)
HUB_ONLY: frozenset[NodeKind] = frozenset()  # the hub appends these itself (hub_events)


class NotPermitted(EventRejected):
    code = NOT_PERMITTED


class Emitter(Protocol):
    """What the rules need to know of a node (a NodeIdentity has it)."""

    @property
    def kind(self) -> NodeKind: ...

    @property
    def facility_code(self) -> str: ...

    @property
    def region_code(self) -> str: ...


@dataclass(frozen=True)
class Rule:
    kinds: frozenset[NodeKind]
    facility_field: str | None = None  # payload field naming the node's own facility
    subject_field: str | None = None  # payload id of a record whose facility must be own
    registers_self: bool = False  # FacilityRegistered: the payload describes the node itself


RIGHTS: dict[str, Rule] = {
    # Each facility's own node registers it, its doctors and their schedules.
    FACILITY_REGISTERED: Rule(ANY_NODE, registers_self=True),
    PRACTITIONER_REGISTERED: Rule(CLINIC, facility_field="facility_id"),
    SLOTS_PUBLISHED: Rule(CLINIC, facility_field="facility_id"),
    # Patients are registered and edited at any clinic's registry desk.
    PATIENT_REGISTERED: Rule(CLINIC),
    PATIENT_FIELD_CHANGED: Rule(CLINIC),
    PATIENT_PHONE_CONFIRMED: Rule(CLINIC),
    # A slot has one owner: the clinic of its facility books and manages it.
    APPOINTMENT_BOOKED: Rule(CLINIC, facility_field="facility_id"),
    APPOINTMENT_CANCELLED: Rule(CLINIC, subject_field="appointment_id"),
    APPOINTMENT_RESCHEDULED: Rule(CLINIC, subject_field="appointment_id"),
    APPOINTMENT_CHECKED_IN: Rule(CLINIC, subject_field="appointment_id"),
    APPOINTMENT_COMPLETED: Rule(CLINIC, subject_field="appointment_id"),
    APPOINTMENT_NO_SHOW: Rule(CLINIC, subject_field="appointment_id"),
    VISIT_RECORDED: Rule(CLINIC, facility_field="facility_id"),
    ORDER_RECORDED: Rule(CLINIC),
    LAB_RESULT_RECORDED: Rule(CLINIC),
    # Doctors prescribe at their own clinic; any clinic may cancel (the family doctor too).
    PRESCRIPTION_ISSUED: Rule(CLINIC, facility_field="facility_id"),
    PRESCRIPTION_CANCELLED: Rule(CLINIC),
    CHRONIC_CONDITION_SET: Rule(CLINIC),
    # Allergies are recorded (and retracted) on the medical card at any clinic.
    ALLERGY_RECORDED: Rule(CLINIC),
    ALLERGY_RETRACTED: Rule(CLINIC),
    # Only a pharmacy hands out drugs (from an e-prescription or its paper log), as itself.
    MEDICATION_DISPENSED: Rule(PHARMACY, facility_field="facility_id"),
    PAPER_DISPENSE_RECORDED: Rule(PHARMACY, facility_field="facility_id"),
    # A family doctor decides a remote request (1003 call centre) made for their facility.
    REMOTE_PRESCRIPTION_DECIDED: Rule(CLINIC, subject_field="request_id"),
    # Made by the hub (pads, conflicts and their review, call-centre requests), never pushed.
    PAPER_PAD_ALLOCATED: Rule(HUB_ONLY),
    CONFLICT_RAISED: Rule(HUB_ONLY),
    CONFLICT_STATE_CHANGED: Rule(HUB_ONLY),
    REMOTE_PRESCRIPTION_REQUESTED: Rule(HUB_ONLY),
    # A region's signed change of a facility's details, imported at the hub (never pushed).
    FACILITY_DETAILS_CHANGED: Rule(HUB_ONLY),
    PRESCRIPTION_CLAIMED: Rule(HUB_ONLY),  # central_hub.claims
}


def missing_rules() -> list[str]:
    """Event types with a schema but no rule (a test keeps this empty)."""
    return [name for name in event_types() if name not in RIGHTS]


def role_allowed(role: str, kind: NodeKind | str) -> bool:
    """Whether a node of `kind` that syncs with a hub has staff of `role`."""
    return role in ROLES_BY_KIND.get(NodeKind(kind), frozenset())


def check_right(event_type: str, payload: Mapping[str, Any], node: Emitter,
                own_facilities: Collection[str],
                facility_of_subject: Callable[[str], str | None]) -> None:
    """Raise NotPermitted unless `node` may emit an event of `event_type` with `payload`.

    `own_facilities` are the facility ids registered under the node's facility code;
    `facility_of_subject(id)` is the facility of a known record, or None if unknown.
    """
    rule = RIGHTS.get(event_type)
    if rule is None:
        raise NotPermitted("No node may emit %(type)s yet: the hub has no rule for it",
                           field="type", type=event_type)
    if not rule.kinds:
        raise NotPermitted("Only the hub emits %(type)s", field="type", type=event_type)
    if node.kind not in rule.kinds:
        raise NotPermitted("A %(kind)s node may not emit %(type)s", field="type",
                           kind=str(node.kind), type=event_type)
    if rule.registers_self:
        _check_self(payload, node)
    if rule.facility_field is not None:
        facility = payload.get(rule.facility_field)
        if facility not in own_facilities:
            raise NotPermitted("%(type)s names facility %(facility)s, which is not this node's "
                               "facility %(facility_code)s", field=rule.facility_field,
                               type=event_type, facility=facility,
                               facility_code=node.facility_code)
    if rule.subject_field is not None:
        subject = payload.get(rule.subject_field)
        facility = facility_of_subject(subject) if isinstance(subject, str) else None
        if facility is not None and facility not in own_facilities:
            raise NotPermitted("%(type)s refers to %(subject)s of another facility",
                               field=rule.subject_field, type=event_type, subject=subject)


def _check_self(payload: Mapping[str, Any], node: Emitter) -> None:
    expected = {"code": node.facility_code, "kind": str(node.kind), "region": node.region_code}
    for name, value in expected.items():
        if payload.get(name) != value:
            raise NotPermitted("FacilityRegistered gives %(name)s %(value)s but this node's "
                               "certificate says %(expected)s", field=name, name=name,
                               value=payload.get(name), expected=value)
