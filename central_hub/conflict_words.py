"""Conflicts told in words for central staff: which prescription (its number), which
facilities by name, what was dispensed where and when, the rule that was broken and what the
reviewer should do. Ids appear only as links. Sentences are English msgids translated by the
fleet catalogue (uz, ru); the page fills in the facts.

Filters: region (of the conflict's key events), kind, state, and minimum age in days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sync_protocol.conflicts import (
    DISPENSE_AFTER_CANCELLATION,
    DISPENSE_AFTER_EXPIRY,
    DISPENSE_AFTER_REVOCATION,
    DOUBLE_BOOKING,
    IDENTITY_CLASH,
    OVER_DISPENSING,
    PAPER_MISMATCH,
    PATIENT_FIELD,
    STATES,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.event_types import CONFLICT_KINDS
from sync_protocol.hlc import HlcTimestamp
from sync_protocol.timeutil import local_text, to_instant

from .conflict_facts import Facts
from .conflict_review import get_conflicts
from .errors import HubError
from .storage import Storage

log = logging.getLogger(__name__)

# Conflicts on one page; the CSV export takes more.
PAGE_LIMIT = 25
EXPORT_LIMIT = 5000
# Conflicts explained per step of the CSV export (a few queries each).
CSV_CHUNK = 200
MAX_AGE_DAYS = 3650
# The conflicts' region is their key events' region; `where` joins fixed fragments only.
FIND_SQL = ("SELECT c.conflict_id, MIN(e.region) AS region, MAX(c.raised_position) AS p "
            "FROM hub_conflicts c JOIN hub_conflict_events k ON k.conflict_id = c.conflict_id "
            "AND k.role = 'key' JOIN events e ON e.id = k.event_id WHERE {where} "
            "GROUP BY c.conflict_id ORDER BY p DESC LIMIT ?")

# What happened, the rule, what to do: per kind (English msgids), filled with the facts.
RULES = {
    OVER_DISPENSING: (
        "More was dispensed than was prescribed: %(prescribed)s prescribed, %(total)s "
        "dispensed.",
        "A prescription item may be dispensed only up to the prescribed quantity; pharmacies "
        "that were offline could not see each other's dispenses.",
        "Call the pharmacies named below, ask the patient whether the extra was handed over, "
        "and record what was done in the note."),
    DISPENSE_AFTER_CANCELLATION: (
        "The prescription was dispensed at %(place)s on %(dispensed_at)s, after %(by)s had "
        "cancelled it on %(cancelled_at)s (reason: %(reason)s).",
        "A cancelled prescription must not be dispensed; the pharmacy was offline and did not "
        "know of the cancellation.",
        "Call the pharmacy and the prescribing doctor; decide whether the patient must return "
        "the medicine or the cancellation was a mistake."),
    DISPENSE_AFTER_EXPIRY: (
        "The prescription was dispensed at %(place)s on %(dispensed_at)s, after it expired on "
        "%(expires_at)s.",
        "A prescription may be dispensed only between its start and expiry dates.",
        "Check with the pharmacy why it was dispensed; if the pharmacy's clock was wrong, have "
        "it corrected."),
    DISPENSE_AFTER_REVOCATION: (
        "The prescription was dispensed at %(place)s on %(dispensed_at)s, but the key of "
        "%(by)s that signed it had been revoked on %(revoked_at)s (reason: %(reason)s).",
        "A prescription signed by a revoked (lost or stolen) node key is not valid.",
        "Tell the region's IT staff; check with the prescribing clinic whether the "
        "prescription is genuine."),
    DOUBLE_BOOKING: (
        "Two patients were booked with %(doctor)s at %(starts_at)s: at %(first)s and at "
        "%(second)s.",
        "A slot has one owner; the first booking keeps it and the later one must move.",
        "Call the patient who lost the slot and offer the next free time."),
    PATIENT_FIELD: (
        "The %(field)s of patient %(patient)s was changed at two places, neither seeing the "
        "other's change.",
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
# A dispense before the prescription's start date (dispense_after_expiry, "before_validity").
BEFORE_VALIDITY = ("The prescription was dispensed at %(place)s on %(dispensed_at)s, before "
                   "it became valid on %(not_before)s.")
# Paper mismatches by reason (central_hub.reconciliation): what, the rule, what to do.
PAPER_RULES = {
    "serial_not_allocated": (
        "A paper prescription with serial %(serial)s was written at %(place)s, but no pad of "
        "that facility holds this serial.",
        "Paper prescriptions are written only on the pads allocated to the facility.",
        "Ask the facility where the form came from; if it is not theirs, report a possible "
        "forgery."),
    "serial_used_twice": (
        "Two paper prescriptions carry the serial %(serial)s: No. %(numbers)s.",
        "Each paper form is used once.",
        "Compare both paper forms with the facility: one of them was copied or entered "
        "twice."),
    "quantity_above_prescribed": (
        "More %(inn)s was dispensed for prescription No. %(number)s than it allows: "
        "%(prescribed)s allowed, %(total)s dispensed, %(paper)s of it on paper.",
        "Paper and electronic dispenses together may not exceed what the prescription "
        "allows.",
        "Call the pharmacy, check its paper log against the prescription and record what was "
        "done."),
    "paper_while_online": (
        "A paper prescription (serial %(serial)s) was written at %(place)s on %(when)s "
        "because of an outage, while the facility's node was online.",
        "Paper prescriptions are allowed only during outages or emergencies.",
        "Ask the facility why paper was used; remind the staff to prescribe electronically "
        "when the system works."),
    "e_rx_drug_on_paper_outside_outage": (
        "%(inn)s, which needs an electronic prescription, was dispensed from the paper log at "
        "%(place)s on %(when)s while the pharmacy's node was online.",
        "Drugs on the e-prescription list are dispensed on paper only in an outage or an "
        "emergency.",
        "Ask the pharmacy which prescription the patient showed and check it."),
    "never_matched": (
        "A paper dispense (serial %(serial)s, No. %(number)s) entered at %(place)s on "
        "%(when)s has matched no prescription for %(days)s days.",
        "Every paper dispense must match a prescription the clinic entered.",
        "Ask the clinic to enter the paper prescription; if there is none, look into the "
        "dispense."),
}
NOT_PRESCRIBED = ("%(inn)s was dispensed for prescription No. %(number)s, which does not "
                  "prescribe it.")
DISPENSED_LINE = "%(quantity)s dispensed at %(place)s on %(when)s"
NEXT_FREE = "Next free time for the patient: %(starts_at)s"
NO_FREE_TIME = "No free time of this doctor was found; offer the patient another doctor or day."
KEEPS_SLOT = "Keeps the time: patient %(patient)s, booked at %(place)s on %(when)s"
MUST_MOVE = "Must move: patient %(patient)s, booked at %(place)s on %(when)s"
EARLIER_VALUE = "Earlier: %(value)s, entered at %(place)s on %(when)s"
LATER_VALUE = "Later, now in force: %(value)s, entered at %(place)s on %(when)s"
UNKNOWN = "unknown"
# The patient fields that can clash, in words.
FIELDS = {"phone": "phone", "name": "name", "document": "identity document",
          "address": "address", "facility_id": "attached facility"}
# Every sentence above, for the catalogue checks.
SENTENCES = (BEFORE_VALIDITY, NOT_PRESCRIBED, DISPENSED_LINE, NEXT_FREE, NO_FREE_TIME,
             KEEPS_SLOT, MUST_MOVE, EARLIER_VALUE, LATER_VALUE, UNKNOWN, *FIELDS.values(),
             *(s for rules in (RULES, PAPER_RULES) for triple in rules.values() for s in triple))


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
    return _read(storage, _matching(storage, filters, now, limit))


def _matching(storage: Storage, filters: dict[str, Any], now: datetime,
              limit: int) -> list[tuple[str, str]]:
    """(conflict id, region) of the conflicts matching the filters, newest first."""
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
    return [(r["conflict_id"], r["region"]) for r in rows]


def _read(storage: Storage, matching: list[tuple[str, str]]) -> list[dict[str, Any]]:
    regions = dict(matching)
    with storage.reader() as tx:
        found = get_conflicts(tx, [conflict_id for conflict_id, _ in matching])
    return [{**c, "region": regions[c["conflict_id"]]} for c in found]


def explain_all(storage: Storage, conflicts: list[dict[str, Any]],
                translate: Callable[[str], str]) -> list[dict[str, Any]]:
    """Each conflict's facts in words (summary, the lines of facts, the rule, what to do),
    read with a few queries for the whole list."""
    with storage.reader() as tx:
        facts = Facts.load(tx, conflicts)
    return [_words(c, facts, translate) for c in conflicts]


def _words(conflict: dict[str, Any], facts: Facts,
           translate: Callable[[str], str]) -> dict[str, Any]:
    kind, details = conflict["kind"], conflict["details"]
    explain = EXPLAIN.get(kind, _generic)
    what, rule, action, values, lines = explain(conflict, details, facts, translate)
    rx_id = details.get("prescription_id")
    return {"what": translate(what) % values if values else translate(what),
            "rule": translate(rule), "action": translate(action),
            "number": facts.numbers.get(rx_id) or details.get("prescription_number")
            if rx_id or details.get("prescription_number") else None,
            "inn": details.get("inn"), "lines": lines,
            "facilities": [facts.place(f) for f in conflict["facility_ids"] if f]}


Explained = tuple[str, str, str, dict[str, Any], list[str]]


def _dispense_lines(details: dict[str, Any], facts: Facts,
                    translate: Callable[[str], str]) -> list[str]:
    return [translate(DISPENSED_LINE) % {
        "quantity": f"{d['quantity']} × {d['product']}", "place": facts.place(d["facility_id"]),
        "when": _local(d["dispensed_at"])}
        for d in facts.dispenses.get(details.get("prescription_id") or "", [])]


def _over_dispensing(conflict, details, facts, translate) -> Explained:
    given = facts.dispenses.get(details.get("prescription_id") or "", [])
    values = {"prescribed": details.get("prescribed", ""),
              "total": sum(d["quantity"] for d in given) or details.get("dispensed_total", "")}
    return (*RULES[OVER_DISPENSING], values, _dispense_lines(details, facts, translate))


def _after_dispense(conflict, details, facts, translate) -> Explained:
    """Dispensed after cancellation, outside validity or after revocation: where and when
    the dispense was, and what it came after."""
    kind = conflict["kind"]
    dispense = facts.dispense(details.get("dispense_id"))
    values = {"place": facts.place(dispense["facility_id"]) if dispense
              else facts.node_place(details.get("dispensed_by")),
              "dispensed_at": _local(details.get("dispensed_at")),
              "by": facts.node_place(details.get("cancelled_by") or details.get("signer_node")),
              "cancelled_at": _local(details.get("cancelled_at")),
              "reason": details.get("cancel_reason") or details.get("revocation_reason")
              or translate(UNKNOWN),
              "expires_at": _local(details.get("expires_at")),
              "not_before": _local(details.get("not_before")),
              "revoked_at": _local(details.get("revoked_at"))}
    what, rule, action = RULES[kind]
    if kind == DISPENSE_AFTER_EXPIRY and details.get("when") == "before_validity":
        what = BEFORE_VALIDITY
    return what, rule, action, values, _dispense_lines(details, facts, translate)


def _double_booking(conflict, details, facts, translate) -> Explained:
    winner, loser = details.get("winner") or {}, details.get("loser") or {}

    def booking(claim: dict[str, Any]) -> dict[str, str]:
        appointment = facts.appointments.get(claim.get("appointment_id"), {})
        place = facts.place(appointment["facility_id"]) if appointment else \
            facts.node_place(claim.get("origin"))
        return {"patient": facts.patient(claim.get("patient_id")), "place": place,
                "when": _hlc_local(claim.get("hlc"))}

    first, second = booking(winner), booking(loser)
    lines = [translate(KEEPS_SLOT) % first, translate(MUST_MOVE) % second]
    if details.get("suggested_starts_at"):
        lines.append(translate(NEXT_FREE) % {"starts_at": _local(details["suggested_starts_at"])})
    elif "suggested_starts_at" in details:
        lines.append(translate(NO_FREE_TIME))
    values = {"doctor": facts.doctor(details.get("practitioner_id")),
              "starts_at": _local(details.get("starts_at")), "first": first["place"],
              "second": second["place"]}
    return (*RULES[DOUBLE_BOOKING], values, lines)


def _patient_field(conflict, details, facts, translate) -> Explained:
    field = details.get("field") or ""

    def edit(summary: dict[str, Any], sentence: str) -> str:
        value = summary.get("value")
        shown = facts.place(value) if field == "facility_id" and value else value
        return translate(sentence) % {"value": shown or "—",
                                      "place": facts.node_place(summary.get("origin")),
                                      "when": _hlc_local(summary.get("hlc"))}

    lines = [edit(details.get("earlier") or {}, EARLIER_VALUE),
             edit(details.get("later") or {}, LATER_VALUE)]
    values = {"field": translate(FIELDS.get(field, field)),
              "patient": facts.patient(details.get("patient_id"))}
    return (*RULES[PATIENT_FIELD], values, lines)


def _paper_mismatch(conflict, details, facts, translate) -> Explained:
    reason = details.get("reason")
    if reason not in PAPER_RULES:
        return _generic(conflict, details, facts, translate)
    what, rule, action = PAPER_RULES[reason]
    place = details.get("facility_id") or next(iter(conflict["facility_ids"]), None)
    inns = details.get("inns") or [details.get("inn") or ""]
    values = {"serial": details.get("paper_serial") or "—",
              "place": facts.place(place) if place else translate(UNKNOWN),
              "numbers": ", ".join(facts.numbers.get(p, p)
                                   for p in details.get("prescription_ids") or []),
              "number": details.get("prescription_number") or facts.numbers.get(
                  details.get("prescription_id"), "—"),
              "inn": ", ".join(inns), "prescribed": details.get("prescribed", ""),
              "total": details.get("dispensed_total", ""),
              "paper": details.get("dispensed_on_paper", ""),
              "when": _local(details.get("issued_at") or details.get("dispensed_at")
                             or details.get("entered_at")),
              "days": details.get("days_unmatched", "")}
    if reason == "quantity_above_prescribed" and details.get("not_prescribed"):
        what = NOT_PRESCRIBED
    return what, rule, action, values, []


def _generic(conflict, details, facts, translate) -> Explained:
    return (*RULES.get(conflict["kind"], RULES[IDENTITY_CLASH]), {}, [])


EXPLAIN: dict[str, Callable[..., Explained]] = {
    OVER_DISPENSING: _over_dispensing, DISPENSE_AFTER_CANCELLATION: _after_dispense,
    DISPENSE_AFTER_EXPIRY: _after_dispense, DISPENSE_AFTER_REVOCATION: _after_dispense,
    DOUBLE_BOOKING: _double_booking, PATIENT_FIELD: _patient_field,
    PAPER_MISMATCH: _paper_mismatch,
}


def csv_rows(storage: Storage, filters: dict[str, Any], now: datetime,
             translate: Callable[[str], str]) -> Iterator[list[Any]]:
    """The conflict list's CSV rows, read and explained CSV_CHUNK conflicts at a time, so
    the export streams from its first row."""
    matching = _matching(storage, filters, now, EXPORT_LIMIT)
    for start in range(0, len(matching), CSV_CHUNK):
        items = _read(storage, matching[start:start + CSV_CHUNK])
        for item, words in zip(items, explain_all(storage, items, translate), strict=True):
            yield [item["conflict_id"], item["kind"], item["state"], item.get("region") or "",
                   item["raised_at"], words["number"] or "", "; ".join(words["facilities"]),
                   words["what"], " | ".join(words["lines"]), words["action"]]


def _local(instant: str | None) -> str:
    return local_text(instant) if instant else "—"


def _hlc_local(hlc: str | None) -> str:
    """When something happened at its node, by its clock (an HLC's wall time)."""
    try:
        return _local(HlcTimestamp.parse(hlc or "").to_instant())
    except ProtocolError:  # a summary without a clock
        return "—"
