"""Remote prescriptions for bedridden patients (the 1003 call centre), on the clinic node.

The hub records a call-centre request (RemotePrescriptionRequested) and sync brings it to the
patient's clinic. Here the family doctor approves it, writing a normal e-prescription signed
with this node's key (never by the hub), or declines it. Either way RemotePrescriptionDecided
goes back to the hub, where the operator sees the state, and the patient is told by SMS.

The approval's SMS carries the prescription number and a pickup code. The code is derived
from the prescription id, so any pharmacy that holds the prescription checks it offline:
with the patient's identity document (or PINFL) and the code, `find_by_pickup_code` finds it.
A relative can collect the drugs for the patient this way, with no QR code.

Its projections (RemotePrescriptionRequested/Decided) live in edge_node.projections.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import datetime
from typing import Any

from sync_protocol.event_names import REMOTE_PRESCRIPTION_DECIDED
from sync_protocol.events import Event
from sync_protocol.identifiers import parse_document, parse_pinfl
from sync_protocol.timeutil import to_instant, utc_now

from ..credentials import NodeCredentials
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..store import NodeStore, Transaction
from . import prescribing
from .access import Actor
from .records import RemoteRequestRecord, record
from .sms import queue_sms

log = logging.getLogger(__name__)

REQUESTED, APPROVED, DECLINED = "requested", "approved", "declined"
STATUSES = (REQUESTED, APPROVED, DECLINED)
# Six digits: typed from an SMS at the counter, and checked together with the patient's
# document, so a guess has one chance in a million of naming a prescription.
PICKUP_CODE_DIGITS = 6
MAX_NOTE = 400
SMS_PURPOSE = "remote_prescription"
# Uzbek first, then Russian, as the other SMS of the node (services.patients).
APPROVED_SMS = ("DMED: retsept %(number)s tayyor. Dorixonada bemor hujjatini va %(code)s "
                "kodini ko'rsating. Рецепт %(number)s готов: в аптеке покажите документ "
                "пациента и код %(code)s.")
DECLINED_SMS = ("DMED: masofaviy retsept so'rovi rad etildi, oilaviy shifokorga murojaat "
                "qiling. Запрос рецепта отклонён, обратитесь к семейному врачу.")


def pickup_code(prescription_id: str) -> str:
    """The short code that, with the patient's document, finds a remote prescription."""
    digest = hashlib.sha256(f"dmed-pickup:{prescription_id}".encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**PICKUP_CODE_DIGITS:0{PICKUP_CODE_DIGITS}d}"


# -- the doctor ---------------------------------------------------------------------------

def list_requests(store: NodeStore, actor: Actor, status: str | None = REQUESTED
                  ) -> list[dict[str, Any]]:
    """This facility's requests (oldest waiting first), with the patient's name."""
    actor.require("prescribe")
    if status is not None and status not in STATUSES:
        raise ValidationFailed("Status must be one of %(statuses)s", field="status",
                               statuses=", ".join(STATUSES))
    sql = ("SELECT r.*, p.full_name, p.pinfl, p.phone AS patient_phone FROM remote_requests r"
           " LEFT JOIN patients p ON p.patient_id = r.patient_id")
    params: tuple = ()
    if status is not None:
        sql, params = sql + " WHERE r.status = ?", (status,)
    return [dict(r) for r in store.query(sql + " ORDER BY r.requested_at, r.request_id",
                                         params)]


def count_requests(store: NodeStore, actor: Actor, status: str = REQUESTED) -> int:
    """How many of this facility's requests are in this state (waiting, by default)."""
    actor.require("prescribe")
    row = store.one("SELECT COUNT(*) AS n FROM remote_requests WHERE status = ?", (status,))
    return int(row["n"]) if row else 0


def get_request(store: NodeStore, request_id: str) -> RemoteRequestRecord:
    return record(load_request(store.reader(), request_id), RemoteRequestRecord)


def load_request(conn: sqlite3.Connection, request_id: str) -> sqlite3.Row:
    """The remote request's row, read inside a service's transaction."""
    row = conn.execute("SELECT * FROM remote_requests WHERE request_id = ?",
                       (request_id,)).fetchone()
    if row is None:
        raise NotFound("Remote request %(id)s is not known on this node", field="request_id",
                       id=request_id)
    return row


def _open_request(conn: sqlite3.Connection, actor: Actor, request_id: str) -> sqlite3.Row:
    actor.require("prescribe")
    if not actor.practitioner_id:
        raise Forbidden("Only a doctor linked to a practitioner record can prescribe")
    row = load_request(conn, request_id)
    if row["status"] != REQUESTED:
        raise Conflict("This request has already been decided", field="request_id",
                       code="already_decided", status=row["status"])
    return row


def approve(store: NodeStore, actor: Actor, credentials: NodeCredentials, request_id: str, *,
            items: list[dict], validity_days: int | None = None, note: str | None = None,
            allergy_override: str | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Write and sign the e-prescription, record the decision and queue the patient's SMS,
    all in one transaction."""
    request = _open_request(store.reader(), actor, request_id)
    decided: dict[str, Any] = {}

    def finish(tx: Transaction, issued: Event) -> None:
        _open_request(tx.conn, actor, request_id)  # still open inside the write lock
        p = issued.payload
        code = pickup_code(p["prescription_id"])
        tx.append(REMOTE_PRESCRIPTION_DECIDED, {
            "request_id": request_id, "decision": APPROVED,
            "practitioner_id": actor.practitioner_id, "prescription_id": p["prescription_id"],
            "pickup_code": code, **_note(note)})
        phone = _phone(tx.conn, request)
        if phone:
            queue_sms(tx.conn, phone, APPROVED_SMS % {"number": p["number"], "code": code},
                      SMS_PURPOSE)
        decided.update(pickup_code=code, sms_queued=bool(phone))

    result = prescribing.issue_prescription(
        store, actor, credentials, patient_id=request["patient_id"], items=items,
        validity_days=validity_days, now=now, allergy_override=allergy_override,
        remote_request_id=request_id, then=finish)
    log.info("remote request %s approved: prescription %s", request_id, result["number"])
    return {**result, **decided, "request_id": request_id, "status": APPROVED}


def decline(store: NodeStore, actor: Actor, request_id: str, *, note: str) -> dict[str, Any]:
    note = str(note or "").strip()
    if not note:
        raise ValidationFailed("Say why the request is declined: the patient is told",
                               field="note")
    with store.transaction() as tx:
        request = _open_request(tx.conn, actor, request_id)
        tx.append(REMOTE_PRESCRIPTION_DECIDED, {
            "request_id": request_id, "decision": DECLINED,
            "practitioner_id": actor.practitioner_id, **_note(note)})
        phone = _phone(tx.conn, request)
        if phone:
            queue_sms(tx.conn, phone, DECLINED_SMS, SMS_PURPOSE)
    log.info("remote request %s declined by %s", request_id, actor.practitioner_id)
    return {"request_id": request_id, "status": DECLINED, "sms_queued": bool(phone)}


def _note(note: str | None) -> dict[str, str]:
    text = str(note or "").strip()[:MAX_NOTE]
    return {"note": text} if text else {}


def _phone(conn: sqlite3.Connection, request: sqlite3.Row) -> str | None:
    if request["phone"]:
        return request["phone"]
    row = conn.execute("SELECT phone FROM patients WHERE patient_id = ?",
                       (request["patient_id"],)).fetchone()
    return row["phone"] if row else None




# -- the pharmacy -------------------------------------------------------------------------

def find_by_pickup_code(store: NodeStore, actor: Actor, *, code: str,
                        document: str | None = None, pinfl: str | None = None
                        ) -> dict[str, Any]:
    """The active prescription a pickup code names, among the patient's (by document or
    PINFL); works on any node that holds the prescription, offline."""
    actor.require("verify_prescription")
    typed = "".join(c for c in str(code or "") if c.isdigit())
    if len(typed) != PICKUP_CODE_DIGITS:
        raise ValidationFailed("The pickup code has %(digits)s digits", field="code",
                               digits=PICKUP_CODE_DIGITS)
    if document:
        column, value = "patient_document", str(parse_document(document))
    elif pinfl:
        column, value = "pinfl", parse_pinfl(pinfl).digits
    else:
        raise ValidationFailed("Give the patient's identity document or PINFL",
                               field="document")
    rows = store.query(f"SELECT prescription_id, number, qr, pinfl, issued_at, expires_at,"  # noqa: S608 - fixed column names
                       f" status, kind FROM prescriptions WHERE {column} = ? AND"
                       " status = 'active' AND expires_at > ? ORDER BY issued_at DESC",
                       (value, to_instant(utc_now())))
    found = [dict(r) for r in rows if pickup_code(r["prescription_id"]) == typed]
    if not found:
        raise NotFound("No active prescription matches this document and pickup code",
                       field="code", code="no_prescription")
    return {"pinfl": found[0]["pinfl"], "prescriptions": found}
