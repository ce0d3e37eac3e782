"""What this pharmacy node knows was handed over, or is being handed over, elsewhere: every
dispense of a prescription with where and when, and the claims the hub granted other
pharmacies (PrescriptionClaimed, pulled by the normal sync), so a node that goes offline after
a pull still counts them."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime

from sync_protocol.claims import HUB_ORIGIN
from sync_protocol.event_names import PRESCRIPTION_CLAIMED
from sync_protocol.timeutil import to_instant

log = logging.getLogger(__name__)


def dispense_history(conn: sqlite3.Connection, prescription_id: str) -> list[dict]:
    """Every dispense this node knows of the prescription: what, where (the pharmacy's name
    when its registration reached this node) and when."""
    rows = conn.execute(
        "SELECT d.item_no, d.quantity, d.dispensed_at, d.facility_id, d.mode, f.name AS"
        " facility_name FROM dispenses d LEFT JOIN facilities f ON f.facility_id ="
        " d.facility_id WHERE d.prescription_id = ? ORDER BY d.dispensed_at",
        (prescription_id,)).fetchall()
    return [{**dict(r), "facility_name": r["facility_name"] or r["facility_id"]} for r in rows]


def held_claims(conn: sqlite3.Connection, prescription_id: str, now: datetime) -> list[dict]:
    """Claims the hub granted other pharmacies on this prescription (PrescriptionClaimed,
    pulled), still held as far as this node knows: unexpired, and no dispense of that
    pharmacy and item since the grant (the dispense then counts instead)."""
    own = conn.execute("SELECT value FROM node_state WHERE key = 'facility_id'").fetchone()
    rows = conn.execute(
        f"SELECT payload FROM events WHERE origin = ? AND type = '{PRESCRIPTION_CLAIMED}' AND"  # noqa: S608
        " json_extract(payload, '$.prescription_id') = ?", (HUB_ORIGIN, prescription_id))
    held = []
    for row in rows:
        p = json.loads(row["payload"])
        if (own and p["facility_id"] == own["value"]) or p["expires_at"] <= to_instant(now):
            continue
        for item in p["items"]:
            used = conn.execute(
                "SELECT 1 FROM dispenses WHERE prescription_id = ? AND item_no = ? AND"
                " facility_id = ? AND dispensed_at >= ?",
                (prescription_id, item["item_no"], p["facility_id"], p["granted_at"])).fetchone()
            if used is None:
                held.append({"claim_id": p["claim_id"], "item_no": item["item_no"],
                             "quantity": item["quantity"], "facility_id": p["facility_id"],
                             "facility_name": p.get("facility_name") or p["facility_id"],
                             "granted_at": p["granted_at"], "expires_at": p["expires_at"]})
    return held
