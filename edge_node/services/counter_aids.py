"""Aids at the pharmacy counter beyond the scan (issue 12 points 3, 10, 13): the printed
prescription number typed with the patient's PINFL, medicine names for look-up rows, and the
printable dispense receipt."""

from __future__ import annotations

import logging
from datetime import datetime

from sync_protocol.timeutil import utc_now

from ..errors import NotFound, ValidationFailed
from ..store import NodeStore
from .access import Actor
from .dispensing import item_states, known_items
from .prescribing import is_valid_number

log = logging.getLogger(__name__)


def _digits(text: str) -> str:
    return "".join(c for c in str(text) if c.isdigit())


def medicine_names(store: NodeStore, prescription_id: str) -> list[str]:
    """"Amoxicillin 500 mg capsule" per item, for look-up rows."""
    _header, items = known_items(store.reader(), prescription_id)
    return [f"{i['inn']} {i['strength']} {i['form']}" for i in items]


def receipt(store: NodeStore, actor: Actor, dispense_id: str,
            now: datetime | None = None) -> dict:
    """What the patient takes home (issue 12.13): what, how much, batch, expiry, what
    remains, and when the next fill may be dispensed."""
    actor.require("dispense")
    now = now or utc_now()
    conn = store.reader()
    row = conn.execute("SELECT d.*, f.name AS facility_name, f.address AS facility_address"
                       " FROM dispenses d LEFT JOIN facilities f ON f.facility_id ="
                       " d.facility_id WHERE d.dispense_id = ?", (dispense_id,)).fetchone()
    if row is None:
        raise NotFound("No such dispense on this node", field="dispense_id")
    header, _items = known_items(conn, row["prescription_id"])
    state = next(s for s in item_states(conn, row["prescription_id"], now)
                 if s["item_no"] == row["item_no"])
    return {"dispense": dict(row), "number": header.get("number"),
            "expires_at": header.get("expires_at"), "item": state,
            "next_fill_at": _next_fill(state)}


def _next_fill(state: dict) -> str | None:
    """None: nothing more to dispense; "now": the rest may be dispensed at any time."""
    if state["remaining_total"] == 0:
        return None
    return state["next_fill_at"] or "now"


def find_by_number(store: NodeStore, actor: Actor, *, number: str, pinfl: str | None) -> str:
    """No scannable QR: the printed number with the patient's PINFL finds the prescription
    this node holds; its stored code then gives the same verdicts as a scan."""
    actor.require("verify_prescription")
    digits = _digits(number)
    if not is_valid_number(digits):
        raise ValidationFailed("This is not a prescription number (16 digits as printed)",
                               field="code", code="bad_number")
    if not pinfl:
        raise ValidationFailed("Type the patient's PINFL from the ID card with the number",
                               field="pinfl", code="pinfl_needed")
    printed = "-".join(digits[i:i + 4] for i in range(0, 16, 4))
    row = store.one("SELECT qr FROM prescriptions WHERE number = ? AND pinfl = ?",
                    (printed, pinfl))
    if row is None or not row["qr"]:
        raise NotFound("This prescription is not on this node: scan its QR code, or wait"
                       " until the network is back", field="code", code="need_qr_or_network")
    return row["qr"]


def looks_like_number(text: str) -> bool:
    """Typed by hand from the paper (16 digits, maybe grouped), not scanned."""
    digits = _digits(text)
    return len(digits) == 16 and all(c.isdigit() or c in " -" for c in text.strip())
