"""Conflicts told in words for central staff: which prescription (its number), which
facilities by name, what was dispensed where and when, the rule that was broken and what the
reviewer should do. Ids appear only as links. Sentences are English msgids translated by the
fleet catalogue (uz, ru); the page fills in the facts.

Filters: region (of the conflict's key events), kind, state, and minimum age in days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sync_protocol.conflicts import (
    DISPENSE_AFTER_CANCELLATION,
    DISPENSE_AFTER_EXPIRY,
    DISPENSE_AFTER_REVOCATION,
    DISPENSE_KINDS,
    DOUBLE_BOOKING,
    IDENTITY_CLASH,
    OVER_DISPENSING,
    PAPER_MISMATCH,
    PATIENT_FIELD,
    STATES,
)
from sync_protocol.event_types import CONFLICT_KINDS
from sync_protocol.timeutil import local_text, to_instant

from .conflict_review import get_conflict
from .errors import HubError
from .fleet import facility_names
from .storage import Storage

log = logging.getLogger(__name__)

# Conflicts on one page; the CSV export takes more.
PAGE_LIMIT = 25
EXPORT_LIMIT = 5000
MAX_AGE_DAYS = 3650
# The conflicts' region is their key events' region; `where` joins fixed fragments only.
FIND_SQL = ("SELECT c.conflict_id, MIN(e.region) AS region, MAX(c.raised_position) AS p "
            "FROM hub_conflicts c JOIN hub_conflict_events k ON k.conflict_id = c.conflict_id "
            "AND k.role = 'key' JOIN events e ON e.id = k.event_id WHERE {where} "
            "GROUP BY c.conflict_id ORDER BY p DESC LIMIT ?")

# What happened, the rule, what to do: per kind (English msgids).
RULES = {
    OVER_DISPENSING: (
        "More was dispensed than was prescribed: %(prescribed)s prescribed, %(total)s "
        "dispensed.",
        "A prescription item may be dispensed only up to the prescribed quantity; pharmacies "
        "that were offline could not see each other's dispenses.",
        "Call the pharmacies named below, ask the patient whether the extra was handed over, "
        "and record what was done in the note."),
    DISPENSE_AFTER_CANCELLATION: (
        "The prescription was dispensed after the doctor had cancelled it.",
        "A cancelled prescription must not be dispensed; the pharmacy was offline and did not "
        "know of the cancellation.",
        "Call the pharmacy and the prescribing doctor; decide whether the patient must return "
        "the medicine or the cancellation was a mistake."),
    DISPENSE_AFTER_EXPIRY: (
        "The prescription was dispensed outside its validity period.",
        "A prescription may be dispensed only between its start and expiry dates.",
        "Check with the pharmacy why it was dispensed; if the pharmacy's clock was wrong, have "
        "it corrected."),
    DISPENSE_AFTER_REVOCATION: (
        "The prescription was signed with a key that had been revoked.",
        "A prescription signed by a revoked (lost or stolen) node key is not valid.",
        "Tell the region's IT staff; check with the prescribing clinic whether the "
        "prescription is genuine."),
    DOUBLE_BOOKING: (
        "Two patients were booked into the same doctor's slot at %(starts_at)s.",
        "A slot has one owner; the first booking keeps it and the later one must move.",
        "Call the patient who lost the slot and offer the next free time."),
    PATIENT_FIELD: (
        "The patient's %(field)s was changed at two places at about the same time.",
        "The later change wins; both values are kept in the history.",
        "Check with the patient which value is right and correct it if needed."),
    PAPER_MISMATCH: (
        "A paper prescription does not match the electronic records.",
        "Paper prescriptions are allowed only during outages or emergencies and must match "
        "what was dispensed.",
        "Compare the paper with the pharmacy's records and contact the facility."),
    IDENTITY_CLASH: (
        "Two records claim the same identity.",
        "One person, one identity.",
        "Check the documents with the facilities named and merge or correct the records."),
}
DISPENSED_LINE = "%(quantity)s dispensed at %(place)s on %(when)s"
NEXT_FREE = "Next free time for the patient: %(starts_at)s"


def parse_filters(args: dict[str, str]) -> dict[str, Any]:
    """Validated filters; a bad one raises HubError with its field."""
    kind, state = args.get("kind") or None, args.get("state") or None
    if kind is not None and kind not in CONFLICT_KINDS:
        raise HubError("Kind must be one of %(kinds)s", field="kind",
                       kinds=", ".join(CONFLICT_KINDS))
    if state is not None and state not in STATES:
        raise HubError("State must be one of %(states)s", field="state",
                       states=", ".join(STATES))
    age = args.get("age") or ""
    if age and (not age.isdigit() or int(age) > MAX_AGE_DAYS):
        raise HubError("Age must be a whole number of days up to %(max)s", field="age",
                       max=MAX_AGE_DAYS)
    region = (args.get("region") or "").strip().upper()[:16] or None
    return {"kind": kind, "state": state, "age": int(age) if age else None, "region": region}


def find(storage: Storage, filters: dict[str, Any], now: datetime,
         limit: int = PAGE_LIMIT) -> list[dict[str, Any]]:
    """Conflicts matching the filters, newest first, each with its region."""
    where, params = ["1 = 1"], []
    for column in ("kind", "state"):
        if filters.get(column):
            where.append(f"c.{column} = ?")
            params.append(filters[column])
    if filters.get("age"):
        where.append("c.detected_at <= ?")
        params.append(to_instant(now - timedelta(days=filters["age"])))
    if filters.get("region"):
        where.append("e.region = ?")
        params.append(filters["region"])
    with storage.reader() as tx:
        rows = tx.query(FIND_SQL.format(where=" AND ".join(where)), (*params, limit))
    return [{**get_conflict(storage, r["conflict_id"]), "region": r["region"]} for r in rows]


def explain_all(storage: Storage, conflicts: list[dict[str, Any]],
                translate: Callable[[str], str]) -> list[dict[str, Any]]:
    """Each conflict's facts in words (summary, the dispenses, the rule, what to do), read
    with three queries for the whole list."""
    rx_ids = [c["details"]["prescription_id"] for c in conflicts
              if c["kind"] in DISPENSE_KINDS and c["details"].get("prescription_id")]
    with storage.reader() as tx:
        numbers = {r["prescription_id"]: r["number"] for r in tx.query_in(
            "SELECT prescription_id, number FROM hub_prescriptions WHERE prescription_id IN "
            "({ids})", rx_ids)} if rx_ids else {}
        dispenses: dict[str, list[dict[str, Any]]] = {}
        for row in tx.query_in("SELECT prescription_id, quantity, product, facility_id, "
                               "dispensed_at, hlc FROM hub_dispenses WHERE prescription_id IN "
                               "({ids}) ORDER BY hlc", rx_ids) if rx_ids else []:
            dispenses.setdefault(row["prescription_id"], []).append(row)
        places = [f for c in conflicts for f in c["facility_ids"]] + [
            d["facility_id"] for rows in dispenses.values() for d in rows]
        names = facility_names(tx, places, by="id")
    return [_words(c, numbers, dispenses, names, translate) for c in conflicts]


def _words(conflict: dict[str, Any], numbers: dict[str, str],
           dispenses: dict[str, list[dict[str, Any]]], names: dict[str, str],
           translate: Callable[[str], str]) -> dict[str, Any]:
    details = conflict["details"]
    what, rule, action = RULES.get(conflict["kind"], RULES[IDENTITY_CLASH])
    rx_id = details.get("prescription_id")
    given = dispenses.get(rx_id, []) if conflict["kind"] in DISPENSE_KINDS else []
    facts = {"prescribed": details.get("prescribed", ""),
             "total": sum(d["quantity"] for d in given),
             "starts_at": _local(details.get("starts_at")),
             "field": translate(details.get("field") or "")}
    lines = [translate(DISPENSED_LINE) % {
        "quantity": f"{d['quantity']} × {d['product']}",
        "place": names.get(d["facility_id"], d["facility_id"]),
        "when": _local(d["dispensed_at"])} for d in given]
    if details.get("suggested_starts_at"):
        lines.append(translate(NEXT_FREE) % {"starts_at": _local(details["suggested_starts_at"])})
    return {"what": translate(what) % facts if "%(" in what else translate(what),
            "rule": translate(rule), "action": translate(action),
            "number": numbers.get(rx_id) if rx_id else None, "inn": details.get("inn"),
            "lines": lines, "facilities": [names.get(f, f) for f in conflict["facility_ids"]
                                           if f]}


def csv_rows(storage: Storage, items: list[dict[str, Any]],
             translate: Callable[[str], str]) -> list[list[Any]]:
    out = []
    for item, words in zip(items, explain_all(storage, items, translate), strict=True):
        out.append([item["conflict_id"], item["kind"], item["state"], item.get("region") or "",
                    item["raised_at"], words["number"] or "", "; ".join(words["facilities"]),
                    words["what"], " | ".join(words["lines"]), words["action"]])
    return out


def _local(instant: str | None) -> str:
    return local_text(instant) if instant else ""
