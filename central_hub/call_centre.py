"""The 1003 call centre: remote prescription requests for bedridden patients.

An operator records a request for a patient (by PINFL or patient id). The hub appends
RemotePrescriptionRequested, routed to the patient's clinic, where the family doctor
approves it (a normal e-prescription, signed on the clinic node, never by the hub) or
declines it; the node's RemotePrescriptionDecided comes back by sync and the operator sees
the state: requested, approved (with the prescription number) or declined.

The state is read from the global log itself (the request, its decisions and the
prescription), so it needs no table of its own; the patient comes from the hub's projection
(central_hub.projections: hub_patients).

The library only; its screen and JSON API are central_hub.web.call_centre_pages.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sync_protocol.event_names import (
    PRESCRIPTION_ISSUED,
    REMOTE_PRESCRIPTION_DECIDED,
    REMOTE_PRESCRIPTION_REQUESTED,
)
from sync_protocol.hlc import HlcTimestamp
from sync_protocol.identifiers import new_ulid, parse_phone, parse_pinfl

from . import paper
from .errors import HubError, NotFound
from .hub_events import emit_hub_event
from .storage import Storage, Tx

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # RemotePrescriptionRequested.request_text
MAX_NAME = 200
LIST_LIMIT = 100  # the operator screen shows the latest requests; older ones by id
REQUESTED, APPROVED, DECLINED = "requested", "approved", "declined"

def create_request(storage: Storage, *, request_text: str, requested_by: str,
                   pinfl: str | None = None, patient_id: str | None = None,
                   facility: str | None = None, phone: str | None = None) -> dict[str, Any]:
    """Record a request; it goes to the patient's clinic (`facility`, if given, must be it)."""
    text = str(request_text or "").strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise HubError("Write what the patient asks for (up to %(max)s characters)",
                       field="request_text", max=MAX_TEXT)
    operator = " ".join(str(requested_by or "").split())
    if not 1 <= len(operator) <= MAX_NAME:
        raise HubError("Give the operator's name", field="requested_by")
    phone = parse_phone(phone) if phone else None
    chosen = paper.find_facility(storage, facility) if facility else None
    with storage.transaction() as tx:
        patient = _patient(tx, pinfl, patient_id)
        facility_id = patient["facility_id"]
        if chosen and chosen["facility_id"] != facility_id:
            # Only the patient's own clinic holds their record and their family doctor.
            raise HubError("The patient is attached to another clinic (%(facility)s); remote "
                           "requests go to the patient's own clinic", field="facility",
                           facility=facility_id)
        row = tx.one("SELECT kind FROM scope_facilities WHERE facility_id = ?", (facility_id,))
        if row is None or row["kind"] != "clinic":
            raise HubError("Remote prescriptions are written at a clinic; %(facility)s is not "
                           "one", field="facility", facility=facility_id)
        payload: dict[str, Any] = {"request_id": new_ulid(), "patient_id": patient["patient_id"],
                                   "facility_id": facility_id, "requested_by": operator,
                                   "request_text": text}
        if patient["family_doctor_id"]:
            payload["practitioner_id"] = patient["family_doctor_id"]
        if phone or patient["phone"]:
            payload["phone"] = phone or patient["phone"]
        emit_hub_event(tx, REMOTE_PRESCRIPTION_REQUESTED, payload)
    log.info("remote request %s for patient %s sent to %s by %s", payload["request_id"],
             payload["patient_id"], facility_id, operator)
    return get_request(storage, payload["request_id"])


def _patient(tx: Tx, pinfl: str | None, patient_id: str | None) -> dict[str, Any]:
    if patient_id:
        rows = tx.query("SELECT * FROM hub_patients WHERE patient_id = ? AND registered = 1",
                        (patient_id,))
    elif pinfl:
        digits = parse_pinfl(pinfl).digits
        rows = tx.query("SELECT * FROM hub_patients WHERE pinfl = ? AND registered = 1",
                        (digits,))
    else:
        raise HubError("Give the patient's PINFL", field="pinfl")
    if not rows:
        raise NotFound("No patient with this PINFL is registered; the patient must be "
                       "registered at their clinic first", field="pinfl")
    if len(rows) > 1:
        raise HubError("Several patient records carry this PINFL; give the patient id",
                       field="pinfl")
    return rows[0]


def list_requests(storage: Storage, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """The latest requests, newest first, with their state."""
    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM events WHERE type = "  # noqa: S608 - event-type constants
                        f"'{REMOTE_PRESCRIPTION_REQUESTED}' ORDER BY position DESC LIMIT ?",
                        (max(1, min(limit, LIST_LIMIT)),))
        return _states(tx, rows)


def get_request(storage: Storage, request_id: str) -> dict[str, Any]:
    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM events WHERE subject_id = ? AND type = "  # noqa: S608
                        f"'{REMOTE_PRESCRIPTION_REQUESTED}'", (request_id,))
        if not rows:
            raise NotFound("Request %(id)s is not known", field="request_id", id=request_id)
        return _states(tx, rows)[0]


def _states(tx: Tx, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    requests = [(row, _payload(row)) for row in rows]
    decisions: dict[str, list[dict[str, Any]]] = {}
    for row in tx.query_in("SELECT * FROM events WHERE subject_id IN ({ids}) AND type = "  # noqa: S608
                           f"'{REMOTE_PRESCRIPTION_DECIDED}'",
                           [p["request_id"] for _, p in requests]):
        decisions.setdefault(row["subject_id"], []).append(row)
    in_force = {rid: min(found, key=lambda r: (r["hlc"], r["origin"]))
                for rid, found in decisions.items()}
    prescription_ids = [p["prescription_id"] for p in map(_payload, in_force.values())
                        if p.get("prescription_id")]
    numbers = {row["subject_id"]: _payload(row)["number"] for row in tx.query_in(
        f"SELECT * FROM events WHERE subject_id IN ({{ids}}) AND type = '{PRESCRIPTION_ISSUED}'",  # noqa: S608
        prescription_ids)}
    patients = {row["patient_id"]: row for row in tx.query_in(
        "SELECT patient_id, pinfl, full_name FROM hub_patients WHERE patient_id IN ({ids})",
        [p["patient_id"] for _, p in requests])}
    out = []
    for row, p in requests:
        decided = in_force.get(p["request_id"])
        decision = _payload(decided) if decided else {}
        patient = patients.get(p["patient_id"], {})
        out.append({
            "request_id": p["request_id"], "patient_id": p["patient_id"],
            "pinfl": patient.get("pinfl"), "patient_name": patient.get("full_name"),
            "facility_id": p["facility_id"], "practitioner_id": p.get("practitioner_id"),
            "phone": p.get("phone"), "request_text": p["request_text"],
            "requested_by": p["requested_by"], "requested_at": _instant(row["hlc"]),
            "state": decision.get("decision", REQUESTED),
            "decided_at": _instant(decided["hlc"]) if decided else None,
            "decided_by": decision.get("practitioner_id"), "note": decision.get("note"),
            "prescription_id": decision.get("prescription_id"),
            "prescription_number": numbers.get(decision.get("prescription_id", "")),
            "decisions": len(decisions.get(p["request_id"], ()))})
    return out


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    value = row["payload"]
    return json.loads(value) if isinstance(value, str) else value


def _instant(hlc: str) -> str:
    return HlcTimestamp.parse(hlc).to_instant()
