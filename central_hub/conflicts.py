"""Conflict detection at ingest (DESIGN 5), kept in a hub table and sent to the nodes involved.

`ConflictHook` runs after `ProjectionHook` in the batch's transaction. Each detector looks at
the records the batch touched, in the projection tables, and proposes conflicts; a conflict is
keyed by (kind, subject, sorted event ids) and its id is derived from that key, so the same
conflict is raised once, by whichever event completes the picture, whatever the arrival order.

Keys name only events whose part in the conflict can never change as more events arrive:

    over_dispensing             the prescription and the dispense that went past the total
                                (dispenses in (hlc, origin) order; each one past it raises)
    dispense_after_cancellation the cancellation and the dispense made after it
    dispense_after_expiry       the prescription and the dispense outside its validity
    dispense_after_revocation   the prescription and the dispense after its signer's revocation
    double_booking              the two claims of one slot (earlier = winner)
    patient_field               the two edits of one field (later = winner)

Details carry what was known when raised (quantities per pharmacy, every dispense, the loser's
next free slot). Limits, by nature of the facts: a revocation is judged with the trust list the
hub holds when the prescription and dispense are both in; a revocation imported later raises
nothing for dispenses already in (`check_revocations` re-runs the check). A double booking or a
concurrent edit is judged with the releases and edits the hub holds; one that arrives later
with an earlier clock (made by a node that had not seen the other) does not withdraw it.

The detectors below are listed, in order, by central_hub.composition (CONFLICT_DETECTORS); a new
class is a function of the Context added there. (paper_mismatch runs after the batch: see
central_hub.reconciliation.)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync_protocol import cose, qr
from sync_protocol.conflicts import (
    DISPENSE_AFTER_CANCELLATION,
    DISPENSE_AFTER_EXPIRY,
    DISPENSE_AFTER_REVOCATION,
    DOUBLE_BOOKING,
    OPEN,
    OVER_DISPENSING,
    PATIENT_FIELD,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.event_names import (
    CONFLICT_RAISED,
    MEDICATION_DISPENSED,
    PATIENT_FIELD_CHANGED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
    SLOTS_PUBLISHED,
)
from sync_protocol.events import Event
from sync_protocol.hlc import HlcTimestamp
from sync_protocol.payloads import conflict_raised
from sync_protocol.rules import fill_total
from sync_protocol.timeutil import to_instant, utc_now
from sync_protocol.trust_list import TrustList

from .appointment_replay import HOLDING
from .hub_events import emit_hub_event
from .projections import (
    APPOINTMENT_TYPES,
    PROJECTED_TYPES,
    BatchHook,
)
from .snapshots import SnapshotTable
from .storage import Migration, Tx
from .trust_store import STATE_KEY, VERSION_KEY

log = logging.getLogger(__name__)

COMPONENT = "conflicts"
CONFLICTS_V1 = """
-- details: the ConflictRaised details plus event_ids, as the node stores them.
CREATE TABLE hub_conflicts (
    conflict_id TEXT PRIMARY KEY, conflict_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    subject_id TEXT NOT NULL, event_ids TEXT NOT NULL, facility_ids TEXT NOT NULL,
    details TEXT NOT NULL, state TEXT NOT NULL, raised_event_id TEXT NOT NULL,
    raised_position BIGINT NOT NULL, raised_hlc TEXT NOT NULL, raised_at TEXT NOT NULL,
    detected_at TEXT NOT NULL, state_changed_at TEXT, state_changed_by TEXT, note TEXT
);
CREATE INDEX hub_conflicts_by_state ON hub_conflicts (state, kind, raised_position);
CREATE INDEX hub_conflicts_by_position ON hub_conflicts (raised_position);
-- Every event involved: the key's ("key") and the others known when raised ("related").
CREATE TABLE hub_conflict_events (
    conflict_id TEXT NOT NULL, event_id TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY (conflict_id, event_id)
);
CREATE TABLE hub_conflict_facilities (
    conflict_id TEXT NOT NULL, facility_id TEXT NOT NULL,
    PRIMARY KEY (conflict_id, facility_id)
);
CREATE INDEX hub_conflict_facilities_by_facility ON hub_conflict_facilities (facility_id);
-- Who acknowledged or resolved a conflict, when and why.
CREATE TABLE hub_conflict_reviews (
    id {serial_pk}, conflict_id TEXT NOT NULL, state TEXT NOT NULL,
    reviewed_by TEXT NOT NULL, note TEXT NOT NULL, changed_at TEXT NOT NULL,
    event_id TEXT NOT NULL, recorded_at TEXT NOT NULL
);
CREATE INDEX hub_conflict_reviews_by_conflict ON hub_conflict_reviews (conflict_id, id)
"""
MIGRATIONS = (Migration(COMPONENT, 1, CONFLICTS_V1),)  # listed by central_hub.composition
# The conflicts each node holds (listed by central_hub.composition with the projections').
SNAPSHOT_TABLE = SnapshotTable(
    "conflicts", ("conflict_id",),
    ("conflict_id", "kind", "subject_id", "details", "state", "raised_at", "state_changed_at",
     "state_changed_by", "note"),
    "hub_conflicts",
    "conflict_id IN (SELECT conflict_id FROM hub_conflict_facilities WHERE facility_id = ?)")

# ConflictRaised allows 50 event ids, 10 facilities and 30 detail keys (event_types).
MAX_EVENT_IDS = 50
MAX_FACILITIES = 10
MAX_RELATED = 40
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def conflict_key(kind: str, subject_id: str, event_ids: Iterable[str]) -> str:
    return hashlib.sha256(json.dumps([kind, subject_id, sorted(event_ids)]).encode()).hexdigest()


def conflict_id_for(key: str, wall_ms: int) -> str:
    """A ULID made of the key: the time part from the latest event in it, the rest hashed."""
    value = (wall_ms & (2**48 - 1)) << 80 | int(key[:20], 16)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass
class Candidate:
    kind: str
    subject_id: str
    event_ids: list[str]  # the key: events whose part never changes
    hlcs: list[str]  # their clocks
    facility_ids: list[str]
    details: dict[str, Any]
    related: list[str] = field(default_factory=list)  # other events involved, known now
    finish: Callable[[Tx, Candidate], None] | None = None  # extra details, once, if new

    def __post_init__(self) -> None:
        self.event_ids = sorted(set(self.event_ids))
        self.key = conflict_key(self.kind, self.subject_id, self.event_ids)
        self.after_hlc = max(self.hlcs)
        self.conflict_id = conflict_id_for(self.key, HlcTimestamp.parse(self.after_hlc).wall_ms)
        self.facility_ids = list(dict.fromkeys(f for f in self.facility_ids if f))


class Context:
    """What detectors share during one batch: its events, the transaction, cached look-ups."""

    def __init__(self, tx: Tx, events: list[Event], trust: Callable[[Tx], TrustList | None]):
        self.tx = tx
        self.events = events
        self._trust = trust
        self._facilities: dict[str, list[str]] = {}

    def of(self, *types: str) -> list[Event]:
        return [e for e in self.events if e.type in types]

    def trust_list(self) -> TrustList | None:
        return self._trust(self.tx)

    def facilities_of(self, origins: Iterable[str]) -> dict[str, list[str]]:
        """The facilities each node registered (its own: FacilityRegistered is self-only)."""
        missing = set(origins) - set(self._facilities)
        for origin in missing:
            self._facilities[origin] = []
        for row in self.tx.query_in("SELECT facility_id, origin FROM scope_facilities WHERE "
                                    "origin IN ({ids})", missing):
            self._facilities[row["origin"]].append(row["facility_id"])
        return self._facilities


Detector = Callable[[Context], list[Candidate]]


class ConflictHook(BatchHook):
    """The ingest hook that raises conflicts with `detectors` (central_hub.composition lists
    them, in order); needs ProjectionHook before it."""

    types = PROJECTED_TYPES - {SLOTS_PUBLISHED}

    def __init__(self, detectors: Sequence[Detector]) -> None:
        super().__init__()
        self.detectors = tuple(detectors)
        self._trust: tuple[str | None, TrustList | None] = (None, None)

    def apply(self, tx: Tx, events: list[Event]) -> None:
        ctx = Context(tx, events, self._trust_list)
        found: dict[str, Candidate] = {}
        for detect in self.detectors:
            for candidate in detect(ctx):
                found.setdefault(candidate.conflict_id, candidate)
        if not found:
            return
        known = {r["conflict_id"] for r in tx.query_in(
            "SELECT conflict_id FROM hub_conflicts WHERE conflict_id IN ({ids})", found)}
        for candidate in sorted(found.values(), key=lambda c: (c.after_hlc, c.conflict_id)):
            if candidate.conflict_id not in known:
                raise_conflict(tx, candidate)

    def _trust_list(self, tx: Tx) -> TrustList | None:
        """The trust list the hub holds now (re-read only when its digest changed)."""
        version = tx.scalar("SELECT value FROM hub_state WHERE key = ?", (VERSION_KEY,))
        if version != self._trust[0]:
            text = tx.scalar("SELECT value FROM hub_state WHERE key = ?", (STATE_KEY,))
            self._trust = (version, TrustList.from_json(text) if text else None)
        return self._trust[1]


def raise_conflict(tx: Tx, c: Candidate) -> None:
    """Emit ConflictRaised (routed to c.facility_ids) and record the conflict."""
    if c.finish is not None:
        c.finish(tx, c)
    payload = conflict_raised(conflict_id=c.conflict_id, kind=c.kind, subject_id=c.subject_id,
                              event_ids=c.event_ids[:MAX_EVENT_IDS],
                              facility_ids=c.facility_ids[:MAX_FACILITIES], details=c.details)
    stored = emit_hub_event(tx, CONFLICT_RAISED, payload, after_hlc=c.after_hlc)
    details = json.dumps({**c.details, "event_ids": payload["event_ids"]}, sort_keys=True)
    tx.execute("INSERT INTO hub_conflicts (conflict_id, conflict_key, kind, subject_id, "
               "event_ids, facility_ids, details, state, raised_event_id, raised_position, "
               "raised_hlc, raised_at, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
               "?)", (c.conflict_id, c.key, c.kind, c.subject_id,
                      json.dumps(payload["event_ids"]), json.dumps(payload["facility_ids"]),
                      details, OPEN, stored.event.id, stored.position, stored.event.hlc,
                      stored.event.timestamp.to_instant(), to_instant(utc_now())))
    roles = {**{e: "related" for e in c.related}, **{e: "key" for e in c.event_ids}}
    tx.insert_many("hub_conflict_events", ("conflict_id", "event_id", "role"),
                   [(c.conflict_id, e, role) for e, role in sorted(roles.items())])
    tx.insert_many("hub_conflict_facilities", ("conflict_id", "facility_id"),
                   [(c.conflict_id, f) for f in payload["facility_ids"]])
    log.info("conflict %s %s on %s raised (%s)", c.kind, c.conflict_id, c.subject_id,
             ", ".join(c.event_ids))


# -- dispenses ----------------------------------------------------------------------------

def dispense_conflicts(ctx: Context) -> list[Candidate]:
    """Over-dispensing and dispenses after cancellation, expiry or revocation.

    Judged once the prescription is in, whichever of it and its dispenses came first."""
    touched = {e.payload["prescription_id"] for e in ctx.of(
        PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED, MEDICATION_DISPENSED)}
    tx = ctx.tx
    prescriptions = {r["prescription_id"]: r for r in tx.query_in(
        "SELECT * FROM hub_prescriptions WHERE prescription_id IN ({ids})", touched)}
    if not prescriptions:
        return []
    dispenses: dict[str, list[dict[str, Any]]] = {}
    for row in tx.query_in("SELECT * FROM hub_dispenses WHERE prescription_id IN ({ids})",
                           prescriptions):
        dispenses.setdefault(row["prescription_id"], []).append(row)
    if not dispenses:
        return []
    items = {(r["prescription_id"], r["item_no"]): r for r in tx.query_in(
        "SELECT * FROM hub_prescription_items WHERE prescription_id IN ({ids})", dispenses)}
    cancels: dict[str, list[dict[str, Any]]] = {}
    for row in tx.query_in("SELECT * FROM hub_prescription_cancellations WHERE "
                           "prescription_id IN ({ids})", dispenses):
        cancels.setdefault(row["prescription_id"], []).append(row)
    out: list[Candidate] = []
    for rx_id, rx_dispenses in sorted(dispenses.items()):
        rx = prescriptions[rx_id]
        rx_dispenses.sort(key=lambda d: (d["hlc"], d["origin"], d["event_id"]))
        out += _over_dispensing(rx, items, rx_dispenses)
        out += _after_cancellation(ctx, rx, cancels.get(rx_id, []), rx_dispenses)
        out += _outside_validity(rx, rx_dispenses)
    out += _after_revocation(ctx, prescriptions, dispenses)
    return out


def _over_dispensing(rx: dict[str, Any], items: dict[tuple[str, int], dict[str, Any]],
                     dispenses: list[dict[str, Any]]) -> list[Candidate]:
    out = []
    by_item: dict[int, list[dict[str, Any]]] = {}
    for d in dispenses:
        by_item.setdefault(d["item_no"], []).append(d)
    for item_no, item_dispenses in sorted(by_item.items()):
        item = items.get((rx["prescription_id"], item_no))
        if item is None:
            continue  # an item the prescription does not have: not this detector's business
        prescribed = fill_total(item["quantity"], item["repeats"])
        per_facility: dict[str, int] = {}
        for d in item_dispenses:
            per_facility[d["facility_id"]] = per_facility.get(d["facility_id"], 0) + d["quantity"]
        running = 0
        for d in item_dispenses:  # in clock order: each dispense past the total is excess
            running += d["quantity"]
            if running <= prescribed:
                continue
            out.append(Candidate(
                OVER_DISPENSING, rx["prescription_id"], [rx["event_id"], d["event_id"]],
                [rx["hlc"], d["hlc"]],
                [rx["facility_id"], *sorted(per_facility)],
                {"prescription_id": rx["prescription_id"], "item_no": item_no,
                 "inn": item["inn"], "prescribed": prescribed, "quantity": item["quantity"],
                 "repeats": item["repeats"], "dispensed_until_this": running,
                 "dispensed_total": sum(per_facility.values()),
                 "dispensed_by_facility": per_facility,
                 "excess": min(d["quantity"], running - prescribed),
                 "excess_dispense_id": d["dispense_id"], "excess_facility_id": d["facility_id"],
                 "dispense_event_ids": [x["event_id"] for x in item_dispenses][:MAX_RELATED]},
                related=[x["event_id"] for x in item_dispenses][:MAX_RELATED]))
    return out


def _after_cancellation(ctx: Context, rx: dict[str, Any], cancels: list[dict[str, Any]],
                        dispenses: list[dict[str, Any]]) -> list[Candidate]:
    out = []
    for c in cancels:
        for d in dispenses:
            # Instants are to the second; within the cancellation's second the clocks decide.
            if (d["dispensed_at"], d["hlc"]) <= (c["cancelled_at"], c["hlc"]):
                continue
            out.append(Candidate(
                DISPENSE_AFTER_CANCELLATION, rx["prescription_id"],
                [c["event_id"], d["event_id"]], [c["hlc"], d["hlc"]],
                [rx["facility_id"], d["facility_id"],
                 *ctx.facilities_of([c["origin"]])[c["origin"]]],
                {"prescription_id": rx["prescription_id"], "item_no": d["item_no"],
                 "quantity": d["quantity"], "dispense_id": d["dispense_id"],
                 "dispensed_at": d["dispensed_at"], "dispensed_by": d["origin"],
                 "cancelled_at": c["cancelled_at"], "cancelled_by": c["origin"],
                 "cancel_reason": c["reason"]},
                related=[rx["event_id"]]))
    return out


def _outside_validity(rx: dict[str, Any], dispenses: list[dict[str, Any]]) -> list[Candidate]:
    out = []
    for d in dispenses:
        if rx["not_before"] <= d["dispensed_at"] <= rx["expires_at"]:
            continue
        out.append(Candidate(
            DISPENSE_AFTER_EXPIRY, rx["prescription_id"], [rx["event_id"], d["event_id"]],
            [rx["hlc"], d["hlc"]], [rx["facility_id"], d["facility_id"]],
            {"prescription_id": rx["prescription_id"], "item_no": d["item_no"],
             "quantity": d["quantity"], "dispense_id": d["dispense_id"],
             "dispensed_at": d["dispensed_at"], "not_before": rx["not_before"],
             "expires_at": rx["expires_at"],
             "when": "before_validity" if d["dispensed_at"] < rx["not_before"] else "expired"}))
    return out


def _after_revocation(ctx: Context, prescriptions: dict[str, dict[str, Any]],
                      dispenses: dict[str, list[dict[str, Any]]]) -> list[Candidate]:
    trust = ctx.trust_list()
    if trust is None or not trust.revocations:
        return []
    out = []
    for rx_id, rx_dispenses in sorted(dispenses.items()):
        rx = prescriptions[rx_id]
        revocation = _signer_revocation(trust, rx)
        if revocation is None:
            continue
        revoked_at = to_instant(revocation.revoked_at)
        for d in rx_dispenses:
            if d["dispensed_at"] <= revoked_at:
                continue
            out.append(Candidate(
                DISPENSE_AFTER_REVOCATION, rx_id, [rx["event_id"], d["event_id"]],
                [rx["hlc"], d["hlc"]], [rx["facility_id"], d["facility_id"]],
                {"prescription_id": rx_id, "item_no": d["item_no"], "quantity": d["quantity"],
                 "dispense_id": d["dispense_id"], "dispensed_at": d["dispensed_at"],
                 "signer_node": rx["origin"], "kid": revocation.kid.hex(),
                 "revoked_at": revoked_at, "revocation_reason": revocation.reason}))
    return out


def _signer_revocation(trust: TrustList, rx: dict[str, Any]):
    """The revocation of the key that signed the prescription: the QR code's key id, else
    the issuing node's certificates valid when it recorded it (a paper prescription)."""
    kid = _qr_kid(rx["qr"]) if rx["qr"] else None
    if kid is not None:
        return trust.revocation(kid)
    made = HlcTimestamp.parse(rx["hlc"]).to_datetime()
    certs = trust.node_certificates(rx["origin"])
    current = [c for c in certs if c.not_valid_before_utc <= made <= c.not_valid_after_utc]
    found = [trust.revocation(cert) for cert in current or certs]
    return min((r for r in found if r), key=lambda r: r.revoked_at, default=None)


def _qr_kid(text: str) -> bytes | None:
    try:
        transport = qr.decode_transport(text)
        return cose.decode_sign1(transport.cose).kid if transport.cose else None
    except (ProtocolError, ValueError, TypeError):
        return None


def check_revocations(storage) -> int:
    """Re-judge every dispense against the trust list held now (after a revocation was
    imported late); return the conflicts raised."""
    hook = ConflictHook()
    with storage.transaction() as tx:
        ctx = Context(tx, [], hook._trust_list)
        prescriptions = {r["prescription_id"]: r for r in tx.query(
            "SELECT * FROM hub_prescriptions WHERE prescription_id IN (SELECT prescription_id "
            "FROM hub_dispenses)")}
        dispenses: dict[str, list[dict[str, Any]]] = {}
        for row in tx.query("SELECT * FROM hub_dispenses"):
            if row["prescription_id"] in prescriptions:
                dispenses.setdefault(row["prescription_id"], []).append(row)
        found = {c.conflict_id: c for c in _after_revocation(ctx, prescriptions, dispenses)}
        known = {r["conflict_id"] for r in tx.query_in(
            "SELECT conflict_id FROM hub_conflicts WHERE conflict_id IN ({ids})", found)}
        fresh = [c for cid, c in sorted(found.items()) if cid not in known]
        for candidate in fresh:
            raise_conflict(tx, candidate)
    return len(fresh)


# -- double bookings ----------------------------------------------------------------------

def double_bookings(ctx: Context) -> list[Candidate]:
    """Two claims of one slot from different nodes while the first was still held."""
    touched = {e.payload["appointment_id"] for e in ctx.of(*APPOINTMENT_TYPES)}
    slots = {r["slot"] for r in ctx.tx.query_in(
        "SELECT slot FROM hub_appointment_claims WHERE appointment_id IN ({ids})", touched)}
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for row in ctx.tx.query_in("SELECT * FROM hub_appointment_claims WHERE slot IN ({ids})",
                               slots):
        by_slot.setdefault(row["slot"], []).append(row)
    out = []
    for slot, claims in sorted(by_slot.items()):
        claims.sort(key=lambda c: (c["hlc"], c["origin"], c["event_id"]))
        for i, first in enumerate(claims):
            for later in claims[i + 1:]:
                released = first["release_hlc"] is not None and (
                    first["release_hlc"], first["release_origin"]) < (later["hlc"],
                                                                       later["origin"])
                if (released or first["origin"] == later["origin"]
                        or first["appointment_id"] == later["appointment_id"]):
                    continue
                out.append(Candidate(
                    DOUBLE_BOOKING, slot, [first["event_id"], later["event_id"]],
                    [first["hlc"], later["hlc"]], [first["facility_id"], later["facility_id"]],
                    {"practitioner_id": first["practitioner_id"],
                     "starts_at": first["starts_at"], "winner": _claim_summary(first),
                     "loser": _claim_summary(later)},
                    finish=_suggest_slot))
    return out


def _claim_summary(claim: dict[str, Any]) -> dict[str, Any]:
    return {k: claim[k] for k in ("appointment_id", "patient_id", "origin", "hlc", "event_id")}


def _suggest_slot(tx: Tx, c: Candidate) -> None:
    """The loser's next free slot of the same doctor: published, and held by no one."""
    marks = ", ".join("?" * len(HOLDING))
    row = tx.one(
        "SELECT s.starts_at FROM hub_slots s WHERE s.practitioner_id = ? AND s.starts_at > ? "  # noqa: S608 - placeholders only
        "AND NOT EXISTS (SELECT 1 FROM hub_appointments a WHERE a.practitioner_id = "
        f"s.practitioner_id AND a.starts_at = s.starts_at AND a.status IN ({marks})) "
        "ORDER BY s.starts_at LIMIT 1",
        (c.details["practitioner_id"], c.details["starts_at"], *sorted(HOLDING)))
    c.details["suggested_starts_at"] = row["starts_at"] if row else None


# -- patient fields -----------------------------------------------------------------------

def patient_field_edits(ctx: Context) -> list[Candidate]:
    """Two nodes changed one field, the later without having seen the earlier's value."""
    touched = {(e.payload["patient_id"], e.payload["field"])
               for e in ctx.of(PATIENT_FIELD_CHANGED)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in ctx.tx.query_in("SELECT * FROM hub_patient_history WHERE patient_id IN ({ids}) "  # noqa: S608
                               f"AND source = '{PATIENT_FIELD_CHANGED}'", {p for p, _ in touched}):
        if (row["patient_id"], row["field"]) in touched:
            groups.setdefault((row["patient_id"], row["field"]), []).append(row)
    if not groups:
        return []
    attached = {r["patient_id"]: r["facility_id"] for r in ctx.tx.query_in(
        "SELECT patient_id, facility_id FROM hub_patients WHERE patient_id IN ({ids})",
        {p for p, _ in groups})}
    out = []
    for (patient_id, name), edits in sorted(groups.items()):
        edits.sort(key=lambda r: (r["hlc"], r["origin"], r["event_id"]))
        for i, earlier in enumerate(edits):
            for j in range(i + 1, len(edits)):
                later = edits[j]
                if not _unseen(earlier, later, edits[i + 1:j]):
                    continue
                homes = ctx.facilities_of([earlier["origin"], later["origin"]])
                out.append(Candidate(
                    PATIENT_FIELD, f"{patient_id}:{name}",
                    [earlier["event_id"], later["event_id"]], [earlier["hlc"], later["hlc"]],
                    [attached.get(patient_id), *homes[earlier["origin"]],
                     *homes[later["origin"]]],
                    {"patient_id": patient_id, "field": name, "winner": "later",
                     "earlier": _edit_summary(earlier), "later": _edit_summary(later)}))
    return out


def _unseen(earlier: dict[str, Any], later: dict[str, Any],
            between: list[dict[str, Any]]) -> bool:
    """Did `later` overwrite `earlier` without having seen it? Its `previous` names what it
    saw: not the earlier value, nor one an edit in between set (that one it saw instead)."""
    if earlier["origin"] == later["origin"] or earlier["value"] == later["value"]:
        return False
    if not later["has_previous"]:
        return True  # it does not say what it saw
    saw = later["previous"]
    return saw != earlier["value"] and all(x["value"] != saw for x in between)


def _edit_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"value": row["value"], "previous": row["previous"], "origin": row["origin"],
            "hlc": row["hlc"], "event_id": row["event_id"]}
