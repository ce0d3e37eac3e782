"""The pharmacy counter: a verdict for a scanned code, and dispensing against it.

The verdict is built from the code alone (signature, chain to the national root, prescribing
EKU, revocation, validity window) plus what this node knows locally (cancellations and
dispenses), so it works offline. A code that verifies is cached, so the pharmacy can dispense
against it even before the prescription itself reaches it by sync.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sync_protocol import qr, rules
from sync_protocol.certificates import EKU_PRESCRIBE, ChainVerdict
from sync_protocol.event_names import MEDICATION_DISPENSED
from sync_protocol.identifiers import new_ulid, parse_document, parse_pinfl
from sync_protocol.mrz import looks_like_mrz, parse_mrz
from sync_protocol.payloads import medication_dispensed
from sync_protocol.timeutil import from_instant, to_instant, utc_now
from sync_protocol.trust_list import TrustList

from ..errors import Conflict, NotFound, ValidationFailed
from ..store import NodeStore
from .access import Actor
from .clock import SYSTEM_CLOCK, SystemClock, clock_status
from .dispense_history import dispense_history, held_claims

log = logging.getLogger(__name__)

# Verdict code -> (may dispense, English message). Ordered by how a pharmacist acts on them.
VERDICTS: dict[str, tuple[bool, str]] = {
    "valid": (True, "Valid prescription: dispense"),
    "partly_dispensed": (True, "Valid, partly dispensed: dispense what remains"),
    "fill_too_early": (False, "The next fill is allowed from %(next_fill)s"),
    "already_dispensed": (False, "Already dispensed in full"),
    "expired": (False, "Expired on %(expires)s: do not dispense"),
    "not_yet_valid": (False, "Not valid yet (from %(not_before)s): do not dispense"),
    "cancelled": (False, "Cancelled by the doctor: do not dispense"),
    "wrong_patient": (False, "Wrong patient: the PINFL on the ID card does not match"),
    "revoked_key": (False, "Signed by a revoked key: do not dispense"),
    "untrusted_key": (False, "Signed by an unknown key: do not dispense"),
    "forged": (False, "Forged or damaged code: do not dispense"),
    "not_a_prescription": (False, "This is not a prescription code"),
    "clock_unverified": (False, "This terminal's clock is not confirmed: confirm the date and "
                                "time, then scan again"),
}
# Shorter than any signed prescription: a typed number, not a damaged code.
MIN_CODE_DIGITS = 200
MALFORMED = frozenset({"empty", "too_long", "bad_prefix", "unknown_version", "bad_digits",
                       "bad_base45", "bad_compression", "not_cose", "bad_cbor",
                       "not_a_prescription", "no_kid", "bad_claims", "code_too_large"})


@dataclass
class Verdict:
    code: str
    may_dispense: bool
    message: str
    params: dict[str, Any] = field(default_factory=dict)
    prescription: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    clock: dict[str, Any] | None = None
    # Where and when it was handed over, and what other pharmacies hold claimed (as known here)
    history: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.message % self.params if self.params else self.message


def _verdict(code: str, **extra: Any) -> Verdict:
    may, message = VERDICTS[code]
    return Verdict(code, may, message, **extra)


def verdict_for(store: NodeStore, actor: Actor, trust_list: TrustList, text: str, *,
                typed_pinfl: str | None = None, now: datetime | None = None,
                clock: SystemClock = SYSTEM_CLOCK) -> Verdict:
    """Judge a code (a query: nothing is written); never raises on what a scanner typed."""
    return _judge(store, actor, trust_list, text, typed_pinfl, now, clock)[0]


def record_scan(store: NodeStore, actor: Actor, trust_list: TrustList, text: str, *,
                typed_pinfl: str | None = None, now: datetime | None = None,
                clock: SystemClock = SYSTEM_CLOCK) -> Verdict:
    """A code scanned at the counter: judged as verdict_for does, and a genuine one is kept
    (scanned_codes), so the pharmacy can dispense against it before the prescription itself
    arrives by sync."""
    verdict, claims = _judge(store, actor, trust_list, text, typed_pinfl, now, clock)
    if claims is not None:
        _remember(store, claims, text)
    return verdict


def _judge(store: NodeStore, actor: Actor, trust_list: TrustList, text: str,
           typed_pinfl: str | None, now: datetime | None,
           clock: SystemClock) -> tuple[Verdict, qr.PrescriptionClaims | None]:
    """The verdict, and the code's claims when it is genuinely signed (to be kept)."""
    actor.require("verify_prescription")
    now = now or clock.wall()
    result = qr.verify(text, trust_list.nodes, now=now, require_prescription=True)
    timing = result.reason if result.reason in qr.EXPIRY_REASONS else None
    kid = result.kid  # None only for a code refused before its key id was read
    if (not result.valid and timing is None) or kid is None:
        if result.reason == "unknown_kid" and kid is not None:
            return _verdict("revoked_key" if trust_list.revocation(kid) else
                            "untrusted_key"), None
        return _verdict("not_a_prescription" if _not_ours(text, result.reason)
                        else "forged"), None
    chain = trust_list.verify_kid(kid, now, require_eku=EKU_PRESCRIBE)
    if not chain.ok and not (timing and chain.reason in ("cert_expired", "cert_not_yet_valid")):
        return _verdict("revoked_key" if chain.reason == "revoked" else "untrusted_key"), None
    claims = result.prescription
    if claims is None:  # require_prescription: a verified code always carries its claims
        return _verdict("not_a_prescription"), None
    return _judge_claims(store, claims, chain, timing, typed_pinfl, now, clock), claims


def _judge_claims(store: NodeStore, claims: qr.PrescriptionClaims,
                  chain: ChainVerdict, timing: str | None, typed_pinfl: str | None,
                  now: datetime, clock: SystemClock) -> Verdict:
    summary = {"prescription_id": claims.prescription_id, "number": claims.number,
               "pinfl": claims.pinfl, "issuer": claims.issuer, "kind": claims.kind,
               "issued_at": to_instant(claims.issued_at),
               "not_before": to_instant(claims.not_before),
               "expires_at": to_instant(claims.expires_at),
               "issued_by": chain.identity.facility_code if chain.identity else None}
    conn = store.reader()
    items = item_states(conn, claims.prescription_id, now, scanned=_scanned_body(claims))
    extra = {"prescription": summary, "items": items,
             "history": dispense_history(conn, claims.prescription_id),
             "claims": held_claims(conn, claims.prescription_id, now)}
    cancelled = store.one("SELECT status FROM prescriptions WHERE prescription_id = ?",
                          (claims.prescription_id,))
    if cancelled and cancelled["status"] == "cancelled":
        return _verdict("cancelled", **extra)
    if timing in ("expired", "cert_expired"):
        return _verdict("expired", params={"expires": summary["expires_at"]}, **extra)
    if timing in ("not_yet_valid", "cert_not_yet_valid"):
        return _verdict("not_yet_valid", params={"not_before": summary["not_before"]}, **extra)
    if typed_pinfl is not None and _digits(typed_pinfl) != claims.pinfl:
        return _verdict("wrong_patient", **extra)
    if all(i["remaining_total"] == 0 for i in items):
        return _verdict("already_dispensed", **extra)
    status = clock_status(store, clock)
    if not status["verified"]:
        return _verdict("clock_unverified", clock=status, **extra)
    if not any(i["may_dispense_now"] for i in items):
        first = min(i["next_fill_at"] for i in items if i["next_fill_at"])
        return _verdict("fill_too_early", params={"next_fill": first}, **extra)
    started = any(i["dispensed"] for i in items)
    return _verdict("partly_dispensed" if started else "valid", clock=status, **extra)


def _not_ours(text: str, reason: str | None) -> bool:
    """Malformed and not even shaped like our code. A code with our digits format that fails
    to decode was damaged or tampered with: the pharmacist must hear "forged", not "not a
    prescription" (a changed digit breaks the compression checksum before the signature)."""
    if reason not in MALFORMED:
        return False
    digits = str(text).strip()
    return not (digits.startswith(qr.FORMAT_PREFIX) and digits.isdigit()
                and len(digits) >= MIN_CODE_DIGITS)


def _digits(text: str) -> str:
    return "".join(c for c in str(text) if c.isdigit())


def _scanned_body(claims: qr.PrescriptionClaims) -> dict[str, Any]:
    """What a scanned code says of its prescription, as scanned_codes keeps it."""
    items = [{"item_no": n, "inn": i.inn, "form": i.form, "strength": i.strength,
              "quantity": i.quantity, "repeats": i.repeats,
              "min_days_between_fills": i.min_days_between_fills}
             for n, i in enumerate(claims.items, start=1)]
    return {"pinfl": claims.pinfl, "number": claims.number,
            "not_before": to_instant(claims.not_before),
            "expires_at": to_instant(claims.expires_at), "items": items}


def _remember(store: NodeStore, claims: qr.PrescriptionClaims, text: str) -> None:
    if store.one("SELECT 1 FROM scanned_codes WHERE prescription_id = ?",
                 (claims.prescription_id,)):
        return
    with store.transaction() as tx:
        tx.conn.execute("INSERT OR IGNORE INTO scanned_codes (prescription_id, qr, claims,"
                        " first_scanned_at) VALUES (?, ?, ?, ?)",
                        (claims.prescription_id, text.strip(),
                         json.dumps(_scanned_body(claims)), to_instant(utc_now())))


def known_items(conn: sqlite3.Connection, prescription_id: str,
                scanned: dict[str, Any] | None = None) -> tuple[dict, list[dict]]:
    """The prescription as the replica has it, else as a scanned code told us (kept in
    scanned_codes, or `scanned`: the code being judged now)."""
    row = conn.execute("SELECT * FROM prescriptions WHERE prescription_id = ?",
                       (prescription_id,)).fetchone()
    if row is not None:
        items = [dict(r) for r in conn.execute(
            "SELECT * FROM prescription_items WHERE prescription_id = ? ORDER BY item_no",
            (prescription_id,))]
        return dict(row), items
    kept = conn.execute("SELECT claims FROM scanned_codes WHERE prescription_id = ?",
                        (prescription_id,)).fetchone()
    if kept is not None:
        body = json.loads(kept["claims"])
    elif scanned is not None:
        body = scanned
    else:
        raise NotFound("Scan the prescription's code first: it is not known on this node",
                       field="prescription_id", code="prescription_unknown")
    return {"prescription_id": prescription_id, "status": "active", **body}, body["items"]


def item_states(conn: sqlite3.Connection, prescription_id: str, now: datetime,
                scanned: dict[str, Any] | None = None) -> list[dict]:
    """Per item: fills, what was dispensed, what remains, when the next fill is allowed.

    Quantities other pharmacies hold claimed at the hub (held_claims) count as handed over:
    the hub granted them, so this node must not hand them out again, even offline."""
    _header, items = known_items(conn, prescription_id, scanned)
    claimed = held_claims(conn, prescription_id, now)
    states = []
    for item in items:
        rows = conn.execute("SELECT quantity, dispensed_at FROM dispenses WHERE"
                            " prescription_id = ? AND item_no = ? ORDER BY dispensed_at",
                            (prescription_id, item["item_no"])).fetchall()
        taken = [(r["quantity"], r["dispensed_at"]) for r in rows]
        taken += [(c["quantity"], c["granted_at"]) for c in claimed
                  if c["item_no"] == item["item_no"]]
        states.append({**_progress(item, sorted(taken, key=lambda t: t[1]), now),
                       "item_no": item["item_no"], "inn": item["inn"],
                       "form": item["form"], "strength": item["strength"],
                       "quantity": item["quantity"], "repeats": item["repeats"],
                       "dosage": item.get("dosage")})
    return states


def _progress(item: dict, dispenses: list[tuple[int, str]], now: datetime) -> dict:
    quantity, fills = item["quantity"], rules.fills(item["repeats"])
    fill_started: list[str] = []  # when each fill's first unit was handed over
    dispensed = 0
    for amount, when in dispenses:
        if dispensed % quantity == 0 and dispensed // quantity < fills:
            fill_started.append(when)
        dispensed += amount
    total = rules.fill_total(quantity, item["repeats"])
    remaining_total = max(0, total - dispensed)
    partial = dispensed % quantity if dispensed < total else 0
    if remaining_total == 0:
        fill, in_fill, next_at = fills, 0, None
    elif partial:
        fill, in_fill, next_at = len(fill_started), quantity - partial, None
    else:
        fill, in_fill = len(fill_started) + 1, quantity
        next_at = None
        if fill_started and item["min_days_between_fills"]:
            allowed = from_instant(fill_started[-1]) + timedelta(
                days=item["min_days_between_fills"])
            next_at = to_instant(allowed) if allowed > now else None
    return {"fill_number": fill, "fills": fills, "dispensed": dispensed,
            "remaining_in_fill": in_fill, "remaining_total": remaining_total,
            "next_fill_at": next_at, "may_dispense_now": in_fill > 0 and next_at is None}


def checked_fields(*, quantity: Any, product: Any, batch: Any, expiry: date | str,
                   now: datetime) -> tuple[str, str, date]:
    """The pack's details, checked before anything is claimed or written."""
    product, batch = str(product or "").strip(), str(batch or "").strip()
    if not product:
        raise ValidationFailed("Write the product's trade name", field="product")
    if not batch:
        raise ValidationFailed("Write the batch (series) number from the pack", field="batch")
    try:
        expiry_day = expiry if isinstance(expiry, date) else date.fromisoformat(str(expiry))
    except ValueError:
        raise ValidationFailed("Expiry date must be YYYY-MM-DD", field="expiry") from None
    if expiry_day < now.date():
        raise ValidationFailed("This pack expired on %(date)s: do not hand it over",
                               field="expiry", code="pack_expired", date=expiry_day.isoformat())
    if type(quantity) is not int or quantity < 1:
        raise ValidationFailed("Quantity must be a whole number of at least 1",
                               field="quantity")
    return product, batch, expiry_day


def dispense(store: NodeStore, actor: Actor, *, facility_id: str, prescription_id: str,
             item_no: int, quantity: int, product: str, batch: str, expiry: date | str,
             now: datetime | None = None, claim_id: str | None = None,
             offline_fills: int = 0) -> dict:
    """Hand over part or all of one item's current fill; never more than remains.

    With `claim_id` (granted by the hub) the dispense is recorded as online-claimed and
    consumes the claim; without, it is offline, and `offline_fills` (0: no bound) caps what
    of the item may be handed over in all without the hub (the drug class's setting)."""
    actor.require("dispense")
    now = now or utc_now()
    product, batch, expiry_day = checked_fields(quantity=quantity, product=product,
                                                batch=batch, expiry=expiry, now=now)
    with store.transaction() as tx:
        header, _items = known_items(tx.conn, prescription_id)
        if header.get("status") == "cancelled":
            raise Conflict("The prescription was cancelled: do not dispense",
                           field="prescription_id", code="cancelled")
        if not from_instant(header["not_before"]) <= now <= from_instant(header["expires_at"]):
            raise Conflict("The prescription is outside its validity: do not dispense",
                           field="prescription_id", code="outside_validity")
        state = next((s for s in item_states(tx.conn, prescription_id, now)
                      if s["item_no"] == item_no), None)
        if state is None:
            raise NotFound("The prescription has no item %(item)s", field="item_no",
                           item=item_no)
        if state["next_fill_at"]:
            raise Conflict("The next fill is allowed from %(next_fill)s", field="item_no",
                           code="fill_too_early", next_fill=state["next_fill_at"])
        if quantity > state["remaining_in_fill"]:
            raise Conflict("Only %(remaining)s remain of this fill; %(asked)s were asked",
                           field="quantity", code="more_than_remains",
                           remaining=state["remaining_in_fill"], asked=quantity)
        if claim_id is None and offline_fills and \
                state["dispensed"] + quantity > offline_fills * state["quantity"]:
            raise Conflict("Without the hub at most %(limit)s may be dispensed of this"
                           " medicine; %(dispensed)s already were. Dispense the rest when the"
                           " hub answers", field="quantity", code="offline_limit",
                           limit=offline_fills * state["quantity"],
                           dispensed=state["dispensed"])
        dispense_id = new_ulid()
        payload = medication_dispensed(
            dispense_id=dispense_id, prescription_id=prescription_id,
            item_no=item_no, quantity=quantity, product=product[:200],
            batch=batch[:64], expiry=expiry_day.isoformat(),
            dispensed_at=to_instant(now), facility_id=facility_id,
            mode="online_claimed" if claim_id else "offline",
            fill_number=state["fill_number"],
            pharmacist=actor.display_name or actor.actor_id, claim_id=claim_id or None)
        tx.append(MEDICATION_DISPENSED, payload)
    return {"dispense_id": dispense_id, "fill_number": state["fill_number"],
            "mode": payload["mode"], "claim_id": claim_id,
            "remaining_in_fill": state["remaining_in_fill"] - quantity,
            "remaining_total": state["remaining_total"] - quantity}


def find_by_identity(store: NodeStore, actor: Actor, *, pinfl: str | None = None,
                     document: str | None = None) -> dict:
    """No phone: the patient's active prescriptions in the local replica, found by the PINFL
    or the identity document (a pharmacy holds prescriptions, not patient records)."""
    actor.require("verify_prescription")
    if pinfl:
        column, value = "pinfl", parse_pinfl(pinfl).digits
    elif document:
        column, value = "patient_document", str(parse_document(document))
    else:
        raise ValidationFailed("Give a PINFL or an identity document", field="pinfl")
    rows = store.query(f"SELECT prescription_id, number, qr, pinfl, issued_at, expires_at,"  # noqa: S608
                       f" status, kind FROM prescriptions WHERE {column} = ? AND"
                       " status = 'active' AND expires_at > ? ORDER BY issued_at DESC",
                       (value, to_instant(utc_now())))
    if not rows:
        raise NotFound("No active prescription for this patient on this node",
                       field=column if column == "pinfl" else "document",
                       code="no_prescriptions")
    return {"pinfl": rows[0]["pinfl"], "prescriptions": [dict(r) for r in rows]}


def sale_without_prescription(inn: str) -> None:
    """A counter sale with no prescription: allowed only for drugs that need none."""
    from ..catalogue import Catalogue
    from ..prescribing_rules import dispense_rule_for_paper
    rule = dispense_rule_for_paper(Catalogue.load().get(inn))
    if rule.needs_prescription:
        raise Conflict(rule.message, field="inn", code=rule.code, inn=rule.inn)


def parse_typed_pinfl(text: str | None) -> str | None:
    """The PINFL typed from the ID card, or read from its MRZ by a reader."""
    if text and looks_like_mrz(text):
        pinfl = parse_mrz(text).pinfl
        if pinfl is None:
            raise ValidationFailed("This document's MRZ carries no PINFL; type it",
                                   field="pinfl", code="mrz_without_pinfl")
        return pinfl
    return parse_pinfl(text).digits if text else None
