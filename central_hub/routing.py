"""Routing at ingest: which audiences each accepted event goes to (least knowledge).

An audience is a facility (every node of it), a region (every node of it) or the pharmacies
of a region. Each accepted event gets its scope columns (facility, region, patient, subject)
and one `deliveries` row per audience; pulls walk those rows (central_hub.scope).

    FacilityRegistered, PractitionerRegistered,  region (everyone) and the facility
    FacilityDetailsChanged
    SlotsPublished                               the facility
    Patient* (profile)                           the facility the patient is attached to, and
                                                 every facility that booked, saw or prescribed
    Appointment*, Visit*, Order*, LabResult*     the event's facility and the patient's facility
    Prescription*, MedicationDispensed           the issuing clinic, the patient's facility,
                                                 the pharmacies of the prescription's region
                                                 (until the prescription expires)

Audiences learnt later get the old events as new rows (backfill): a patient transferred to
another facility brings their history along; a prescription that reaches the hub after its
dispense or cancellation (the pharmacy synced first) routes them to the clinic afterwards.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sync_protocol.certificates import NodeIdentity, NodeKind
from sync_protocol.event_names import (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    APPOINTMENT_BOOKED,
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
from sync_protocol.events import Event

from .storage import Tx

log = logging.getLogger(__name__)

FACILITY = "facility"
REGION = "region"
PHARMACIES = "pharmacies"

REGISTRY_TYPES = frozenset({FACILITY_REGISTERED, PRACTITIONER_REGISTERED,
                            FACILITY_DETAILS_CHANGED})
PROFILE_TYPES = frozenset({PATIENT_REGISTERED, PATIENT_FIELD_CHANGED, PATIENT_PHONE_CONFIRMED})
# PrescriptionClaimed's expires_at is the claim's: other pharmacies need it only until then.
PRESCRIPTION_TYPES = frozenset({PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED,
                                MEDICATION_DISPENSED, PAPER_DISPENSE_RECORDED,
                                PRESCRIPTION_CLAIMED})
# The payload id that groups an event with the others about the same record.
SUBJECT_FIELD = {
    FACILITY_REGISTERED: "facility_id", PRACTITIONER_REGISTERED: "practitioner_id",
    FACILITY_DETAILS_CHANGED: "facility_id",
    SLOTS_PUBLISHED: "schedule_id", PATIENT_REGISTERED: "patient_id",
    PATIENT_FIELD_CHANGED: "patient_id", PATIENT_PHONE_CONFIRMED: "patient_id",
    VISIT_RECORDED: "visit_id", ORDER_RECORDED: "visit_id", LAB_RESULT_RECORDED: "order_id",
    PRESCRIPTION_ISSUED: "prescription_id", PRESCRIPTION_CANCELLED: "prescription_id",
    MEDICATION_DISPENSED: "prescription_id", PRESCRIPTION_CLAIMED: "prescription_id",
    CHRONIC_CONDITION_SET: "patient_id",
    ALLERGY_RECORDED: "patient_id", ALLERGY_RETRACTED: "patient_id",
    PAPER_PAD_ALLOCATED: "pad_id", CONFLICT_RAISED: "conflict_id",
    CONFLICT_STATE_CHANGED: "conflict_id", REMOTE_PRESCRIPTION_REQUESTED: "request_id",
    REMOTE_PRESCRIPTION_DECIDED: "request_id",
}
# Records other events refer to: created by one type (id field "<kind>_id"), looked up by
# the rest for their patient, facility and region.
SUBJECT_KIND = {APPOINTMENT_BOOKED: "appointment", VISIT_RECORDED: "visit",
                PRESCRIPTION_ISSUED: "prescription", REMOTE_PRESCRIPTION_REQUESTED: "request"}
SUBJECT_REFS = ("appointment_id", "visit_id", "prescription_id", "request_id")


@dataclass(frozen=True)
class Derived:
    """The scope columns of a stored event."""

    facility_id: str | None
    region: str | None
    patient_id: str | None
    subject_id: str | None


@dataclass(frozen=True)
class Target:
    kind: str
    target: str
    until: str | None = None  # pharmacies only: the prescription's expiry


def subject_of(event: Event) -> str | None:
    field = SUBJECT_FIELD.get(event.type)
    if field is None and event.type.startswith("Appointment"):
        field = "appointment_id"
    value = event.payload.get(field) if field else None
    if value is None and event.type == LAB_RESULT_RECORDED:
        value = event.payload.get("result_id")
    if event.type == PAPER_DISPENSE_RECORDED:
        value = event.payload.get("prescription_id") or event.payload.get("dispense_id")
    return value


@functools.cache
def _ref_fields(event_type: str) -> tuple[str, ...]:
    """The payload fields naming a record an event refers to; the record it is about first
    (a decision names its request first)."""
    return tuple(f for f in (SUBJECT_FIELD.get(event_type), *SUBJECT_REFS) if f in SUBJECT_REFS)


class ScopeIndex:
    """The routing index for one ingest transaction.

    `load` reads what a batch refers to, `route` updates the index in memory event by event
    (so an event sees the ones before it), `write` stores the changes and `backfill` the
    deliveries that audiences learnt during the batch need. The caller holds the writer lock.
    """

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.facilities: dict[str, dict[str, Any]] = {}
        self.codes: dict[tuple[str, str], set[str]] = {}  # (code, region) -> facility ids
        self.subjects: dict[str, dict[str, Any] | None] = {}
        self.attachments: dict[str, dict[str, Any] | None] = {}
        self.links: dict[str, set[str]] = {}
        self._new_facilities: list[tuple] = []
        self._new_subjects: dict[str, dict[str, Any]] = {}
        self._attached: set[str] = set()
        self._stored_attachments: set[str] = set()  # patients with a row in the database
        self._new_links: list[tuple[str, str]] = []
        self._full: set[tuple[str, str]] = set()  # (patient, facility): whole history
        self._profile: set[tuple[str, str]] = set()  # (patient, facility): profile only

    # -- loading ----------------------------------------------------------------------------
    def load(self, nodes: list[NodeIdentity], payloads: list[dict[str, Any]]) -> None:
        for node in nodes:
            self.facility_ids(node)
        subject_ids = {p[k] for p in payloads for k in SUBJECT_REFS if isinstance(p.get(k), str)}
        for row in self.tx.query_in("SELECT * FROM scope_subjects WHERE subject_id IN ({ids})",
                                    subject_ids - set(self.subjects)):
            self.subjects[row["subject_id"]] = row
        for sid in subject_ids:
            self.subjects.setdefault(sid, None)
        patients = {p["patient_id"] for p in payloads if isinstance(p.get("patient_id"), str)}
        patients |= {s["patient_id"] for s in self.subjects.values() if s and s["patient_id"]}
        self._load_patients(patients)
        facilities = {p["facility_id"] for p in payloads if isinstance(p.get("facility_id"), str)}
        facilities |= {a["facility_id"] for a in self.attachments.values() if a}
        facilities |= {s["facility_id"] for s in self.subjects.values() if s and s["facility_id"]}
        for row in self.tx.query_in("SELECT * FROM scope_facilities WHERE facility_id IN ({ids})",
                                    facilities - set(self.facilities)):
            self.facilities[row["facility_id"]] = row

    def _load_patients(self, patients: set[str]) -> None:
        patients -= set(self.attachments)
        for row in self.tx.query_in("SELECT * FROM scope_attachments WHERE patient_id IN ({ids})",
                                    patients):
            self.attachments[row["patient_id"]] = row
            self._stored_attachments.add(row["patient_id"])
        for row in self.tx.query_in("SELECT * FROM scope_links WHERE patient_id IN ({ids})",
                                    patients):
            self.links.setdefault(row["patient_id"], set()).add(row["facility_id"])
        for patient in patients:
            self.attachments.setdefault(patient, None)
            self.links.setdefault(patient, set())

    def facility_ids(self, node: NodeIdentity) -> set[str]:
        """The facility ids registered under a node's facility code in its region."""
        return self._facilities_coded(node.facility_code, node.region_code)

    def _facilities_coded(self, code: str, region: str) -> set[str]:
        key = (code, region)
        if key not in self.codes:
            rows = self.tx.query("SELECT * FROM scope_facilities WHERE code = ? AND region = ?",
                                 key)
            self.codes[key] = {row["facility_id"] for row in rows}
            self.facilities.update((row["facility_id"], row) for row in rows)
        return self.codes[key]

    def facility_of_subject(self, subject_id: str) -> str | None:
        if subject_id not in self.subjects:
            self.subjects[subject_id] = self.tx.one(
                "SELECT * FROM scope_subjects WHERE subject_id = ?", (subject_id,))
        subject = self.subjects[subject_id]
        return subject["facility_id"] if subject else None

    # -- routing ----------------------------------------------------------------------------
    def route(self, event: Event,
              node: NodeIdentity | None) -> tuple[Derived, list[Target]]:
        """Update the index with an accepted event (node None: the hub's own event);
        return its scope and audiences."""
        derived = self.derive(event, node)
        self._learn(event, derived)
        return derived, self.targets(event, derived)

    def derive(self, event: Event, node: NodeIdentity | None) -> Derived:
        payload = event.payload
        subject_id = subject_of(event)
        ref = next((payload[k] for k in _ref_fields(event.type)
                    if isinstance(payload.get(k), str)), None)
        known = self._subject(ref) if ref else None
        patient = payload.get("patient_id") or (known or {}).get("patient_id")
        facility = payload.get("facility_id") or (known or {}).get("facility_id")
        if facility is None and node is not None:
            facility = min(self.facility_ids(node), default=None)
        region = payload.get("region") if event.type == FACILITY_REGISTERED else None
        if region is None and event.type in PRESCRIPTION_TYPES and known:
            region = known.get("region")
        if region is None and facility in self.facilities:
            region = self.facilities[facility]["region"]
        if region is None and node is not None:
            region = node.region_code
        return Derived(facility, region, patient, subject_id)

    def targets(self, event: Event, derived: Derived) -> list[Target]:
        out: dict[tuple[str, str], Target] = {}

        def add(kind: str, target: str | None, until: str | None = None) -> None:
            if target:
                out.setdefault((kind, target), Target(kind, target, until))

        if event.type in REGISTRY_TYPES:
            add(REGION, derived.region)
        add(FACILITY, derived.facility_id)
        patient = derived.patient_id
        if patient:
            if patient not in self.attachments:
                self._load_patients({patient})
            attachment = self.attachments.get(patient)
            add(FACILITY, attachment["facility_id"] if attachment else None)
            if event.type in PROFILE_TYPES:
                for facility in sorted(self.links.get(patient, ())):
                    add(FACILITY, facility)
        payload = event.payload
        if event.type in PRESCRIPTION_TYPES:
            prescription = self._subject(payload.get("prescription_id"))
            until = payload.get("expires_at") or (prescription or {}).get("until")
            add(FACILITY, (prescription or {}).get("facility_id"))
            # A paper dispense matters to other pharmacies only if it names an e-prescription.
            if event.type != PAPER_DISPENSE_RECORDED or payload.get("prescription_id"):
                add(PHARMACIES, derived.region, until)
        if event.type == CONFLICT_RAISED:
            for facility in payload["facility_ids"]:
                add(FACILITY, facility)
        if event.type == CONFLICT_STATE_CHANGED:
            for row in self.tx.query(
                    "SELECT DISTINCT d.target_kind, d.target FROM deliveries d JOIN events e "  # noqa: S608
                    "ON e.position = d.position WHERE e.subject_id = ? AND "
                    f"e.type = '{CONFLICT_RAISED}'", (payload["conflict_id"],)):
                add(row["target_kind"], row["target"])
        return list(out.values())

    def _subject(self, subject_id: str | None) -> dict[str, Any] | None:
        if not subject_id:
            return None
        if subject_id not in self.subjects:
            self.facility_of_subject(subject_id)
        return self.subjects.get(subject_id)

    def _learn(self, event: Event, derived: Derived) -> None:
        payload = event.payload
        if event.type == FACILITY_REGISTERED and payload["facility_id"] not in self.facilities:
            row = {"facility_id": payload["facility_id"], "code": payload["code"],
                   "kind": payload["kind"], "region": payload["region"], "origin": event.origin}
            self._facilities_coded(row["code"], row["region"]).add(row["facility_id"])
            self.facilities[row["facility_id"]] = row
            self._new_facilities.append(tuple(row.values()))
        kind = SUBJECT_KIND.get(event.type)
        sid = payload.get(f"{kind}_id") if kind else None
        if sid and self._subject(sid) is None:
            row = {"subject_id": sid, "kind": kind, "patient_id": derived.patient_id,
                   "facility_id": derived.facility_id, "region": derived.region,
                   "until": payload.get("expires_at")}
            self.subjects[sid] = self._new_subjects[sid] = row
        patient = derived.patient_id
        if not patient:
            return
        if patient not in self.attachments:
            self._load_patients({patient})
        if event.type == PATIENT_REGISTERED:
            self._attach(patient, payload["facility_id"], event)
        elif event.type == PATIENT_FIELD_CHANGED and payload["field"] == "facility_id":
            if payload["value"]:
                self._attach(patient, payload["value"], event)
        if event.type in (PATIENT_REGISTERED, APPOINTMENT_BOOKED, VISIT_RECORDED,
                          PRESCRIPTION_ISSUED) and derived.facility_id:
            self._link(patient, derived.facility_id)

    def _attach(self, patient: str, facility: str, event: Event) -> None:
        """Attachment is last-writer-wins by clock, so arrival order does not matter."""
        current = self.attachments.get(patient)
        if current and (current["hlc"], current["origin"]) >= (event.hlc, event.origin):
            self._link(patient, facility)
            return
        self.attachments[patient] = {"patient_id": patient, "facility_id": facility,
                                     "hlc": event.hlc, "origin": event.origin}
        self._attached.add(patient)
        self._link(patient, facility)
        if current is None or current["facility_id"] != facility:
            self._full.add((patient, facility))

    def _link(self, patient: str, facility: str) -> None:
        links = self.links.setdefault(patient, set())
        if facility not in links:
            links.add(facility)
            self._new_links.append((patient, facility))
            self._profile.add((patient, facility))

    # -- writing ----------------------------------------------------------------------------
    def write(self) -> None:
        """Store the index changes. Rows this index did not load are new (the writer lock is
        held), so they are appended in bulk; only re-attachments are upserts."""
        tx = self.tx
        tx.append_rows("scope_facilities", ("facility_id", "code", "kind", "region", "origin"),
                       self._new_facilities)
        tx.append_rows("scope_subjects", ("subject_id", "kind", "patient_id", "facility_id",
                                          "region", "until"),
                       [tuple(r.values()) for r in self._new_subjects.values()])
        tx.append_rows("scope_links", ("patient_id", "facility_id"), self._new_links)
        columns = ("patient_id", "facility_id", "hlc", "origin")
        rows = [tuple(self.attachments[p].values()) for p in sorted(self._attached)]
        tx.append_rows("scope_attachments", columns,
                       [r for r in rows if r[0] not in self._stored_attachments])
        tx.insert_many("scope_attachments", columns,
                       [r for r in rows if r[0] in self._stored_attachments],
                       "ON CONFLICT (patient_id) DO UPDATE SET facility_id = "
                       "excluded.facility_id, hlc = excluded.hlc, origin = excluded.origin")

    def backfill(self, before: int, batch: Iterable[tuple[int, str, str | None, str]] = ()
                 ) -> list[tuple[int, Target, str]]:
        """(position, audience, origin) for older events that audiences learnt now need.

        `before`: the first position of this batch; subjects resolved now re-route the
        events stored before it that refer to them. `batch`: (position, type, patient_id,
        origin) of the batch's own events, which a patient's new audiences need too (read
        from here rather than back from the database).
        """
        out: list[tuple[int, Target, str]] = []
        resolved = [s for s in self._new_subjects if s]
        for row in self.tx.query_in(
                "SELECT * FROM events WHERE subject_id IN ({ids}) AND position < ?",
                resolved, (before,)):
            event = row_event(row)
            derived = self.derive(event, None)
            if row["patient_id"] is None and derived.patient_id:
                self.tx.execute("UPDATE events SET patient_id = ? WHERE position = ?",
                                (derived.patient_id, row["position"]))
            out.extend((row["position"], t, row["origin"]) for t in self.targets(event, derived))
        wanted: dict[str, list[tuple[str, bool]]] = {}  # patient -> (facility, whole history)
        for patient, facility in self._full | self._profile:
            wanted.setdefault(patient, []).append((facility, (patient, facility) in self._full))
        if not wanted:
            return out
        older = self.tx.query_in("SELECT position, type, patient_id, origin FROM events WHERE "
                                 "patient_id IN ({ids}) AND position < ?", wanted, (before,))
        rows = [(r["position"], r["type"], r["patient_id"], r["origin"]) for r in older]
        rows += [row for row in batch if row[2] in wanted]
        for position, event_type, patient, origin in rows:
            for facility, whole in wanted[patient]:
                if whole or event_type in PROFILE_TYPES:
                    out.append((position, Target(FACILITY, facility), origin))
        return out


def row_event(row: dict[str, Any]) -> Event:
    payload = row["payload"]
    return Event(id=row["id"], origin=row["origin"], seq=row["seq"], hlc=row["hlc"],
                 type=row["type"], version=row["version"],
                 payload=json.loads(payload) if isinstance(payload, str) else payload,
                 prev_hash=row["prev_hash"], hash=row["hash"])


def node_audiences(node: NodeIdentity, facility_ids: set[str]) -> list[Target]:
    """The audiences a node belongs to (what it may pull)."""
    out = [Target(FACILITY, f) for f in sorted(facility_ids)] + [Target(REGION, node.region_code)]
    if node.kind is NodeKind.PHARMACY:
        out.append(Target(PHARMACIES, node.region_code))
    return out
