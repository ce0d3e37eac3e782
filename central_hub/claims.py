"""Claims: online, the hub prevents over-dispensing instead of detecting it afterwards.

A pharmacy that reaches the hub claims the quantities it is about to hand over. The hub
decides under its writer lock, the lock every push takes to append to the log, so a decision
sees every dispense event already stored and no dispense or claim can slip in between the
check and the grant (on PostgreSQL a transaction-scoped advisory lock, on SQLite the database's
own write lock). It counts every dispense it holds for the prescription (from any pharmacy,
e-prescription or paper log) and every claim still held: not released, not expired, and not
consumed by a dispense that carries its id. A granted claim is stored here (so it survives a
restart) and appended as a PrescriptionClaimed hub event, which the region's pharmacies pull.

What the prescription holds comes from its PrescriptionIssued event, or, when the clinic has
not synced it yet, from the signed code the pharmacy scanned.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sync_protocol import claims as claim_rules
from sync_protocol import qr
from sync_protocol.certificates import EKU_PRESCRIBE, NodeIdentity, NodeKind
from sync_protocol.event_names import (
    FACILITY_REGISTERED,
    MEDICATION_DISPENSED,
    PAPER_DISPENSE_RECORDED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_CLAIMED,
    PRESCRIPTION_ISSUED,
)
from sync_protocol.identifiers import new_ulid
from sync_protocol.payloads import prescription_claimed
from sync_protocol.rules import fills
from sync_protocol.timeutil import to_instant
from sync_protocol.trust_list import TrustList

from .errors import Forbidden
from .hub_events import emit_hub_event
from .scope import node_facilities
from .storage import Migration, Storage, Tx

log = logging.getLogger(__name__)

COMPONENT = "claims"
CLAIMS_V1 = """
-- One row per granted claim. items: JSON [[item_no, quantity], ...]. A claim holds its
-- quantities until released_at is set, expires_at passes, or a MedicationDispensed event
-- carries its claim_id (consumed: the dispense itself then counts).
CREATE TABLE hub_claims (
    claim_id TEXT PRIMARY KEY, prescription_id TEXT NOT NULL, facility_id TEXT NOT NULL,
    node_id TEXT NOT NULL, items TEXT NOT NULL, granted_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, released_at TEXT, event_id TEXT NOT NULL
);
CREATE INDEX hub_claims_by_prescription ON hub_claims (prescription_id, expires_at)
"""
MIGRATIONS = (Migration(COMPONENT, 1, CLAIMS_V1),)  # listed by central_hub.composition

RX_TYPES = (PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED, MEDICATION_DISPENSED,
            PAPER_DISPENSE_RECORDED)


@dataclass
class Knowledge:
    """What the hub holds about one prescription, at one instant."""

    items: dict[int, dict[str, Any]] | None = None  # item_no -> {inn, quantity, fills}
    cancelled: bool = False
    window: tuple[str, str] | None = None  # (not_before, expires_at) as instants
    dispensed: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)  # held now
    names: dict[str, str] = field(default_factory=dict)  # facility id -> name

    def taken(self, item_no: int) -> int:
        return (sum(d["quantity"] for d in self.dispensed if d["item_no"] == item_no)
                + sum(c["quantity"] for c in self.claims if c["item_no"] == item_no))

    def remaining(self) -> list[dict[str, Any]]:
        out = []
        for no, item in sorted((self.items or {}).items()):
            taken = self.taken(no)
            out.append({"item_no": no, "inn": item["inn"],
                        "remaining_total": claim_rules.remaining_total(item["quantity"],
                                                                 item["fills"], taken),
                        "room_in_fill": claim_rules.room_in_fill(item["quantity"], item["fills"],
                                                           taken)})
        return out

    def answer(self) -> dict[str, Any]:
        return {"prescription_known": self.items is not None, "cancelled": self.cancelled,
                "remaining": self.remaining(), "dispensed": self.dispensed,
                "claims": self.claims}


def _payload(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)  # PostgreSQL: JSONB


def _items_of(rx_items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {i["item_no"]: {"inn": i["inn"], "quantity": i["quantity"],
                           "fills": fills(i.get("repeats", 0))} for i in rx_items}


def _items_from_code(code: str | None, prescription_id: str, trust_list: TrustList | None,
                     now: datetime) -> dict[int, dict[str, Any]] | None:
    """The items of a prescription the hub has not received, from its signed code (which
    qr.verify refuses outside its validity window)."""
    if not code or trust_list is None:
        return None
    result = qr.verify(code, trust_list.nodes, now=now, require_prescription=True)
    if not result.valid or result.prescription.prescription_id != prescription_id:
        return None
    if not trust_list.verify_kid(result.kid, now, require_eku=EKU_PRESCRIBE).ok:
        return None
    return {n: {"inn": i.inn, "quantity": i.quantity, "fills": fills(i.repeats)}
            for n, i in enumerate(result.prescription.items, start=1)}


def knowledge(tx: Tx, prescription_id: str, now: datetime, *, code: str | None = None,
              trust_list: TrustList | None = None, claimant: str | None = None) -> Knowledge:
    know = Knowledge()
    rows = tx.query("SELECT type, payload FROM events WHERE subject_id = ? AND type IN "
                    "(?, ?, ?, ?) ORDER BY position", (prescription_id, *RX_TYPES))
    consumed: set[str] = set()
    paper: list[dict[str, Any]] = []
    for row in rows:
        p = _payload(row["payload"])
        if row["type"] == PRESCRIPTION_ISSUED:
            know.items = _items_of(p["items"])
            know.window = (p["not_before"], p["expires_at"])
        elif row["type"] == PRESCRIPTION_CANCELLED:
            know.cancelled = True
        elif row["type"] == MEDICATION_DISPENSED:
            know.dispensed.append({"facility_id": p["facility_id"], "item_no": p["item_no"],
                                   "quantity": p["quantity"],
                                   "dispensed_at": p["dispensed_at"], "mode": p["mode"]})
            if p.get("claim_id"):
                consumed.add(p["claim_id"])
        else:
            paper.append(p)
    if know.items is None:
        know.items = _items_from_code(code, prescription_id, trust_list, now)
    by_inn = {i["inn"]: no for no, i in (know.items or {}).items()}
    for p in paper:  # the paper log names drugs by INN: count them against the same item
        for line in p["items"]:
            if line["inn"] in by_inn:
                know.dispensed.append({"facility_id": p["facility_id"],
                                       "item_no": by_inn[line["inn"]],
                                       "quantity": line["quantity"],
                                       "dispensed_at": p["dispensed_at"], "mode": "paper"})
    for row in tx.query("SELECT claim_id, facility_id, items, granted_at, expires_at FROM "
                        "hub_claims WHERE prescription_id = ? AND expires_at > ? AND "
                        "released_at IS NULL ORDER BY granted_at",
                        (prescription_id, to_instant(now))):
        if row["claim_id"] in consumed:
            continue
        for item_no, quantity in json.loads(row["items"]):
            know.claims.append({"claim_id": row["claim_id"], "facility_id": row["facility_id"],
                                "item_no": item_no, "quantity": quantity,
                                "granted_at": row["granted_at"],
                                "expires_at": row["expires_at"]})
    know.names = _name_facilities(tx, [*know.dispensed, *know.claims], also=claimant)
    return know


def _name_facilities(tx: Tx, rows: list[dict[str, Any]],
                     also: str | None = None) -> dict[str, str]:
    """Add each row's facility name (a refusal says where, in words); return the names found,
    with the claimant's (`also`) in the same query."""
    ids = {r["facility_id"] for r in rows} | ({also} if also else set())
    names = {}
    for row in tx.query_in("SELECT subject_id, payload FROM events WHERE type = "  # noqa: S608
                           f"'{FACILITY_REGISTERED}' AND subject_id IN ({{ids}})", ids):
        names[row["subject_id"]] = _payload(row["payload"]).get("name")
    for r in rows:
        r["facility_name"] = names.get(r["facility_id"]) or r["facility_id"]
    return names


def _refusal(reason: str, know: Knowledge, **extra: Any) -> dict[str, Any]:
    return {"granted": False, "reason": reason, **know.answer(), **extra}


def claim(storage: Storage, node: NodeIdentity, request: claim_rules.ClaimRequest, now: datetime,
          trust_list: TrustList | None) -> dict[str, Any]:
    """Grant all the quantities asked, or none; the answer says what remains and why."""
    _pharmacy_only(node)
    with storage.transaction() as tx:  # the writer lock: pushes and other claims wait
        if request.facility_id not in node_facilities(tx, node):
            raise Forbidden("Facility %(facility)s is not this node's", field="facility_id",
                            code="not_permitted", facility=request.facility_id)
        know = knowledge(tx, request.prescription_id, now, code=request.code,
                         trust_list=trust_list, claimant=request.facility_id)
        if know.items is None:
            return _refusal(claim_rules.UNKNOWN_PRESCRIPTION, know)
        if know.cancelled:
            return _refusal(claim_rules.CANCELLED, know)
        if know.window and not know.window[0] <= to_instant(now) <= know.window[1]:
            return _refusal(claim_rules.OUTSIDE_VALIDITY, know)
        for item_no, quantity in request.items:
            item = know.items.get(item_no)
            if item is None:
                return _refusal(claim_rules.UNKNOWN_ITEM, know, item_no=item_no)
            room = claim_rules.room_in_fill(item["quantity"], item["fills"], know.taken(item_no))
            if quantity > room:
                reason = claim_rules.NOTHING_LEFT if room == 0 else claim_rules.MORE_THAN_REMAINS
                return _refusal(reason, know, item_no=item_no)
        claim_id = new_ulid()
        granted_at = to_instant(now)
        expires_at = to_instant(now + timedelta(seconds=claim_rules.CLAIM_TTL_SECONDS))
        name = know.names.get(request.facility_id)
        payload = prescription_claimed(
            claim_id=claim_id, prescription_id=request.prescription_id,
            facility_id=request.facility_id,
            items=[{"item_no": n, "quantity": q} for n, q in request.items],
            granted_at=granted_at, expires_at=expires_at,
            facility_name=name[:200] if name else None)
        stored = emit_hub_event(tx, PRESCRIPTION_CLAIMED, payload)
        tx.execute("INSERT INTO hub_claims (claim_id, prescription_id, facility_id, node_id, "
                   "items, granted_at, expires_at, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (claim_id, request.prescription_id, request.facility_id, node.node_id,
                    json.dumps([list(i) for i in request.items]), granted_at, expires_at,
                    stored.event.id))
        for item_no, quantity in request.items:
            know.claims.append({"claim_id": claim_id, "facility_id": request.facility_id,
                                "facility_name": name or request.facility_id, "item_no": item_no,
                                "quantity": quantity, "granted_at": granted_at,
                                "expires_at": expires_at})
    log.info("claim %s on %s granted to %s", claim_id, request.prescription_id, node.node_id)
    return {"granted": True, "claim_id": claim_id, "expires_at": expires_at,
            "items": payload["items"], **know.answer()}


def _pharmacy_only(node: NodeIdentity) -> None:
    """Claims and what was dispensed where are a pharmacy's business (least knowledge)."""
    if node.kind is not NodeKind.PHARMACY:
        raise Forbidden("Only a pharmacy claims prescriptions", field="facility_id",
                        code="not_permitted")


def status(storage: Storage, node: NodeIdentity, request: claim_rules.ClaimRequest,
           now: datetime, trust_list: TrustList | None) -> dict[str, Any]:
    """What the hub knows of a prescription now, claiming nothing."""
    _pharmacy_only(node)
    with storage.reader() as tx:
        return knowledge(tx, request.prescription_id, now, code=request.code,
                         trust_list=trust_list).answer()


def release(storage: Storage, node: NodeIdentity, claim_id: str, now: datetime) -> bool:
    """The pharmacist cancelled: free the claim at once (only its own node may)."""
    with storage.transaction() as tx:
        changed = tx.execute("UPDATE hub_claims SET released_at = ? WHERE claim_id = ? AND "
                             "node_id = ? AND released_at IS NULL",
                             (to_instant(now), claim_id, node.node_id))
    log.info("claim %s released by %s: %s", claim_id, node.node_id, bool(changed))
    return bool(changed)


# The review list shows the newest offline dispenses first, this many at most.
OFFLINE_REVIEW_LIMIT = 200


def offline_dispenses(storage: Storage, limit: int = OFFLINE_REVIEW_LIMIT) -> list[dict]:
    """Every dispense made without the hub's claim, newest first, for review at the hub
    (issue 13.3): the pharmacy, the prescription, and the conflicts it is part of."""
    with storage.reader() as tx:
        rows = tx.query("SELECT d.event_id, d.dispense_id, d.prescription_id, d.item_no, "
                        "d.quantity, d.dispensed_at, d.facility_id, d.pharmacist, p.number "
                        "FROM hub_dispenses d LEFT JOIN hub_prescriptions p ON "
                        "p.prescription_id = d.prescription_id WHERE d.mode = 'offline' "
                        "ORDER BY d.dispensed_at DESC, d.event_id LIMIT ?", (limit,))
        conflicts: dict[str, list[dict]] = {}
        for row in tx.query_in("SELECT e.event_id, c.conflict_id, c.kind, c.state FROM "
                               "hub_conflict_events e JOIN hub_conflicts c ON c.conflict_id = "
                               "e.conflict_id WHERE e.event_id IN ({ids})",
                               [r["event_id"] for r in rows]):
            conflicts.setdefault(row["event_id"], []).append(row)
        _name_facilities(tx, rows)
    return [{**r, "conflicts": conflicts.get(r["event_id"], [])} for r in rows]
