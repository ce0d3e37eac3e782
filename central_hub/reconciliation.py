"""Paper reconciliation at the hub: paper dispenses matched to prescriptions, mismatches raised.

After an outage the clinic enters its paper prescriptions and the pharmacy its paper dispense
log, in any order. An ingest hook indexes each record and matches every paper dispense to the
prescription it names: by prescription id (the pharmacy node knew it), else by number, else
by pad serial. Each mismatch is raised once as ConflictRaised kind "paper_mismatch", with
`details.reason`:

    serial_not_allocated      a paper prescription's serial is in no pad of its facility
    serial_used_twice         two paper prescriptions carry one serial
    quantity_above_prescribed paper (plus electronic) dispenses of a drug exceed what the
                              prescription allows (quantity x (1 + repeats)), or the drug is
                              not on it at all
    paper_while_online        paper written "because of an outage" while the clinic's node
                              was demonstrably online (central_hub.paper: online evidence)
    e_rx_drug_on_paper_outside_outage
                              a drug that requires an e-prescription dispensed from the paper
                              log, not in an emergency, while the pharmacy's node was online
    never_matched             a paper dispense still unmatched NEVER_MATCHED_AFTER after it
                              was entered (found by `reconcile_overdue`, run periodically)

Mismatches are raised through central_hub.conflicts (Candidate, raise_conflict): keyed by
(kind, subject, events), with ids derived from the key, so the same mismatch found twice is
one conflict, reviewed like any other. Subjects and key events per reason:

    serial_not_allocated        the serial               the prescription
    serial_used_twice           the serial               both prescriptions
    quantity_above_prescribed   prescription:inn         the prescription and each dispense
                                                         (paper or electronic, by the time it
                                                         was handed over) that went past it
    paper_while_online          the prescription         the prescription
    e_rx_drug_on_paper_...      the dispense             the dispense
    never_matched               the serial or number     the dispense

The detection keeps its own state (which dispense matched which prescription, checks waiting
for later evidence) across batches and runs periodically too, so it is an ingest hook of its
own, after the hub's (ProjectionHook, ConflictHook), rather than a per-batch detector
(central_hub.composition lists both).
Nothing here changes or drops a record: the dispense happened.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from sync_protocol import drug_catalogue
from sync_protocol.conflicts import (
    PAPER_MISMATCH,
)
from sync_protocol.event_names import (
    MEDICATION_DISPENSED,
    PAPER_DISPENSE_RECORDED,
    PRESCRIPTION_ISSUED,
)
from sync_protocol.events import Event
from sync_protocol.rules import fill_total
from sync_protocol.timeutil import from_instant, local_date, to_instant

from .conflicts import Candidate, raise_conflict
from .ingest import StoredEvent
from .paper import ONLINE_GAP, facility_online, normal_serial, pad_facility
from .routing import row_event
from .storage import Storage, Tx

log = logging.getLogger(__name__)

KIND = PAPER_MISMATCH
SERIAL_NOT_ALLOCATED = "serial_not_allocated"
SERIAL_USED_TWICE = "serial_used_twice"
QUANTITY_ABOVE_PRESCRIBED = "quantity_above_prescribed"
PAPER_WHILE_ONLINE = "paper_while_online"
E_RX_DRUG_ON_PAPER = "e_rx_drug_on_paper_outside_outage"
NEVER_MATCHED = "never_matched"
REASONS = (SERIAL_NOT_ALLOCATED, SERIAL_USED_TWICE, QUANTITY_ABOVE_PRESCRIBED,
           PAPER_WHILE_ONLINE, E_RX_DRUG_ON_PAPER, NEVER_MATCHED)
# After an outage both sides enter their paper within days; a dispense no prescription has
# claimed after a week is a drug handed over on a prescription the system never learnt.
NEVER_MATCHED_AFTER = timedelta(days=7)
MAX_SUBJECT = 64  # ConflictRaised.subject_id is a CODE
# The drug catalogue (sync_protocol's package data, the node's too): the hub reads the one
# flag it needs here, requires_e_prescription.
DRUG_CATALOGUE = drug_catalogue.CATALOGUE


@functools.cache
def e_prescription_inns(path: Traversable | Path = DRUG_CATALOGUE) -> frozenset[str]:
    """INNs the catalogue marks requires_e_prescription (antibiotics, hormones, ...)."""
    drugs = drug_catalogue.read_drugs(path)
    return frozenset(inn.casefold() for inn, drug in drugs.items()
                     if drug.get("requires_e_prescription"))


def day_of(instant: str) -> str:
    return local_date(from_instant(instant)).isoformat()


# -- the ingest hook -----------------------------------------------------------------------

def on_accepted(tx: Tx, stored: list[StoredEvent]) -> None:
    """Ingest hook (central_hub.ingest.Hook): index, match and check paper records.

    Paper records are handled one by one, in order. The electronic prescriptions and
    dispenses between them, the bulk of every batch, are handled as sets: a few statements a
    batch instead of a few an event. Matching is symmetric (whichever of a prescription and its
    paper dispense comes first, the second finds the first), so this gives the same matches.
    """
    prescriptions: list[StoredEvent] = []
    dispenses: list[Event] = []

    def flush() -> None:
        if prescriptions:
            _on_e_prescriptions(tx, prescriptions)
        if dispenses:
            _on_dispenses(tx, dispenses)
        prescriptions.clear()
        dispenses.clear()

    for one in stored:
        event = one.event
        if event.type == MEDICATION_DISPENSED:
            dispenses.append(event)
        elif event.type == PRESCRIPTION_ISSUED and event.payload["kind"] != "paper":
            prescriptions.append(one)
        elif event.type in _PAPER_HANDLERS:
            flush()
            _PAPER_HANDLERS[event.type](tx, event, one.position, from_instant(one.received_at))
    flush()


RECON_PRESCRIPTION_COLUMNS = ("prescription_id", "number", "kind", "paper_serial",
                              "facility_id", "local_day", "position")


def _on_e_prescriptions(tx: Tx, run: list[StoredEvent]) -> None:
    """Index electronic prescriptions; match the paper dispenses that were waiting for them."""
    rows = []
    for one in run:
        p = one.event.payload
        rows.append((p["prescription_id"], p["number"], p["kind"], p.get("paper_serial"),
                     p["facility_id"], day_of(p["issued_at"]), one.position))
    # A prescription id is indexed once (the first stays, as in ON CONFLICT DO NOTHING);
    # the rest are new, so they go in as one bulk append.
    held = {r["prescription_id"] for r in tx.query_in(
        "SELECT prescription_id FROM recon_prescriptions WHERE prescription_id IN ({ids})",
        [r[0] for r in rows])}
    fresh = {r[0]: r for r in reversed(rows) if r[0] not in held}
    tx.append_rows("recon_prescriptions", RECON_PRESCRIPTION_COLUMNS,
                   sorted(fresh.values(), key=lambda r: r[-1]))
    waiting: dict[str, dict[str, Any]] = {}
    for column, values in (("prescription_id", [r[0] for r in rows]),
                           ("prescription_number", [r[1] for r in rows]),
                           ("paper_serial", [r[3] for r in rows if r[3]])):
        statement = ("SELECT * FROM recon_dispenses WHERE matched_prescription_id IS NULL "  # noqa: S608 - fixed names
                     f"AND {column} IN ({{ids}})")
        for row in tx.query_in(statement, values):
            waiting.setdefault(row["dispense_id"], row)
    prescriptions = [{"prescription_id": r[0], "number": r[1], "paper_serial": r[3]}
                     for r in rows]
    matched: dict[str, None] = {}
    for dispense in sorted(waiting.values(), key=lambda d: d["position"]):
        rx = next((rx for rx in prescriptions if _match(tx, dispense, rx)), None)
        if rx is not None:
            matched[rx["prescription_id"]] = None
    for prescription_id in matched:
        check_quantities(tx, prescription_id)


def _on_prescription(tx: Tx, event: Event, position: int, now: datetime) -> None:
    p = event.payload
    serial = normal_serial(p.get("paper_serial")) if p["kind"] == "paper" else \
        p.get("paper_serial")
    tx.execute("INSERT INTO recon_prescriptions (prescription_id, number, kind, paper_serial, "
               "facility_id, local_day, position) VALUES (?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (prescription_id) DO NOTHING",
               (p["prescription_id"], p["number"], p["kind"], serial, p["facility_id"],
                day_of(p["issued_at"]), position))
    if p["kind"] == "paper":
        _check_serial(tx, event, serial)
        _check_online(tx, event, now)
    waiting = tx.query("SELECT * FROM recon_dispenses WHERE matched_prescription_id IS NULL "
                       "AND (prescription_id = ? OR prescription_number = ? OR "
                       "paper_serial = ?)", (p["prescription_id"], p["number"], serial or ""))
    rx = {"prescription_id": p["prescription_id"], "number": p["number"],
          "paper_serial": serial}
    matched = [d for d in waiting if _match(tx, d, rx)]
    if matched:
        check_quantities(tx, p["prescription_id"])


def _on_paper_dispense(tx: Tx, event: Event, position: int, now: datetime) -> None:
    p = event.payload
    dispense = {"dispense_id": p["dispense_id"], "facility_id": p["facility_id"],
                "local_day": day_of(p["dispensed_at"]), "entered_at": p["entered_at"],
                "paper_serial": normal_serial(p.get("paper_serial")),
                "prescription_number": p.get("prescription_number"),
                "prescription_id": p.get("prescription_id"), "position": position}
    tx.execute(f"INSERT INTO recon_dispenses ({', '.join(dispense)}) VALUES "  # noqa: S608 - fixed names
               f"({', '.join('?' * len(dispense))}) ON CONFLICT (dispense_id) DO NOTHING",
               tuple(dispense.values()))
    rx = _named_prescription(tx, dispense)
    if rx is not None and _match(tx, dispense, rx):
        check_quantities(tx, rx["prescription_id"])
    _check_e_rx(tx, event, now)


def _on_dispenses(tx: Tx, events: list[Event]) -> None:
    """Electronic dispenses count towards prescriptions that paper was dispensed on."""
    named = list(dict.fromkeys(e.payload["prescription_id"] for e in events))
    with_paper = {r["matched_prescription_id"] for r in tx.query_in(
        "SELECT DISTINCT matched_prescription_id FROM recon_dispenses WHERE "
        "matched_prescription_id IN ({ids})", named)}
    for prescription_id in named:
        if prescription_id in with_paper:
            check_quantities(tx, prescription_id)


_PAPER_HANDLERS = {PRESCRIPTION_ISSUED: _on_prescription,
                   PAPER_DISPENSE_RECORDED: _on_paper_dispense}


# -- matching -------------------------------------------------------------------------------

def _matched_by(dispense: dict[str, Any], rx: dict[str, Any]) -> str | None:
    """How a dispense names this prescription; the most specific thing it gives decides."""
    if dispense["prescription_id"]:
        return "id" if dispense["prescription_id"] == rx["prescription_id"] else None
    if dispense["prescription_number"]:
        return "number" if dispense["prescription_number"] == rx["number"] else None
    if dispense["paper_serial"] and dispense["paper_serial"] == rx["paper_serial"]:
        return "serial"
    return None


def _named_prescription(tx: Tx, dispense: dict[str, Any]) -> dict[str, Any] | None:
    for column, value in (("prescription_id", dispense["prescription_id"]),
                          ("number", dispense["prescription_number"]),
                          ("paper_serial", dispense["paper_serial"])):
        if value:
            # A serial used twice matches the prescription entered first; both stay flagged.
            return tx.one(f"SELECT * FROM recon_prescriptions WHERE {column} = ? "  # noqa: S608 - fixed names
                          "ORDER BY position LIMIT 1", (value,))
    return None


def _match(tx: Tx, dispense: dict[str, Any], rx: dict[str, Any]) -> bool:
    by = _matched_by(dispense, rx)
    if by is not None:
        tx.execute("UPDATE recon_dispenses SET matched_prescription_id = ?, matched_by = ? "
                   "WHERE dispense_id = ? AND matched_prescription_id IS NULL",
                   (rx["prescription_id"], by, dispense["dispense_id"]))
    return by is not None


# -- checks ---------------------------------------------------------------------------------

def _check_serial(tx: Tx, event: Event, serial: str | None) -> None:
    p = event.payload
    record = [(p["facility_id"], day_of(p["issued_at"]))]
    holder = pad_facility(tx, serial) if serial else None
    if holder != p["facility_id"]:
        raise_mismatch(tx, SERIAL_NOT_ALLOCATED, subject_id=serial or p["prescription_id"],
                       causes=[event],
                       records=record, details={"paper_serial": serial,
                                                "facility_id": p["facility_id"],
                                                "pad_facility_id": holder})
    if not serial:
        return
    for other in tx.query("SELECT prescription_id, facility_id, local_day, position FROM "
                          "recon_prescriptions WHERE paper_serial = ? AND prescription_id <> ? "
                          "ORDER BY position", (serial, p["prescription_id"])):
        pair = sorted((other["prescription_id"], p["prescription_id"]))
        raise_mismatch(tx, SERIAL_USED_TWICE, subject_id=serial,
                       causes=[*_events_at(tx, [other["position"]]), event],
                       records=[(other["facility_id"], other["local_day"]), *record],
                       details={"paper_serial": serial, "prescription_ids": pair})


def _check_online(tx: Tx, event: Event, now: datetime) -> str | None:
    """paper_while_online, once the hub has had time to see contacts after the paper's time."""
    p = event.payload
    if p.get("paper_reason") != "outage":
        return None
    if now < from_instant(p["issued_at"]) + ONLINE_GAP:
        tx.execute("UPDATE recon_prescriptions SET online_pending = 1 WHERE prescription_id = ?",
                   (p["prescription_id"],))
        return None
    if not facility_online(tx, p["facility_id"], p["issued_at"]):
        return None
    return raise_mismatch(
        tx, PAPER_WHILE_ONLINE, subject_id=p["prescription_id"], causes=[event],
        records=[(p["facility_id"], day_of(p["issued_at"]))],
        details={"paper_serial": p.get("paper_serial"), "issued_at": p["issued_at"],
                 "paper_reason": "outage", "facility_id": p["facility_id"]})


def _check_e_rx(tx: Tx, event: Event, now: datetime) -> str | None:
    """A drug that needs an e-prescription, from the paper log while the pharmacy was online."""
    p = event.payload
    inns = sorted({i["inn"] for i in p["items"] if i["inn"].casefold() in e_prescription_inns()})
    if p["paper_reason"] == "emergency" or not inns:
        return None
    if now < from_instant(p["dispensed_at"]) + ONLINE_GAP:
        tx.execute("UPDATE recon_dispenses SET online_pending = 1 WHERE dispense_id = ?",
                   (p["dispense_id"],))
        return None
    if not facility_online(tx, p["facility_id"], p["dispensed_at"]):
        return None
    return raise_mismatch(
        tx, E_RX_DRUG_ON_PAPER, subject_id=p["dispense_id"], causes=[event],
        records=[(p["facility_id"], day_of(p["dispensed_at"]))],
        details={"inns": inns, "dispensed_at": p["dispensed_at"],
                 "paper_reason": p["paper_reason"], "facility_id": p["facility_id"]})


def check_quantities(tx: Tx, prescription_id: str) -> None:
    """Per drug, in the order things were handed over: every dispense (paper or electronic)
    that takes the total past what the prescription allows. Drugs no paper dispense of this
    prescription names are central_hub.conflicts' (over_dispensing)."""
    rx_row = tx.one("SELECT * FROM recon_prescriptions WHERE prescription_id = ?",
                    (prescription_id,))
    if rx_row is None:
        return
    rx = _events_at(tx, [rx_row["position"]])[0]
    rx_p = rx.payload
    allowed: dict[str, int] = {}
    inn_of: dict[int, str] = {}
    for item in rx_p["items"]:
        inn = item["inn"].casefold()
        inn_of[item["item_no"]] = inn
        allowed[inn] = allowed.get(inn, 0) + fill_total(item["quantity"], item["repeats"])
    paper_rows = tx.query("SELECT facility_id, local_day, position FROM recon_dispenses WHERE "
                          "matched_prescription_id = ? ORDER BY position", (prescription_id,))
    paper_events = _events_at(tx, [r["position"] for r in paper_rows])
    records = {e.id: (r["facility_id"], r["local_day"])
               for r, e in zip(paper_rows, paper_events, strict=True)}
    lines: list[tuple[str, str, Event, str, int]] = []  # (handed over, event id, event, inn, n)
    for event in paper_events:
        lines += [(event.payload["dispensed_at"], event.id, event, i["inn"].casefold(),
                   i["quantity"]) for i in event.payload["items"]]
    for row in tx.query("SELECT * FROM events WHERE subject_id = ? AND type = "  # noqa: S608
                        f"'{MEDICATION_DISPENSED}' ORDER BY position", (prescription_id,)):
        event = row_event(row)
        p = event.payload
        records[event.id] = (p["facility_id"], day_of(p["dispensed_at"]))
        lines.append((p["dispensed_at"], event.id, event, inn_of.get(p["item_no"], ""),
                      p["quantity"]))
    own = (rx_p["facility_id"], day_of(rx_p["issued_at"]))
    for inn in sorted({line[3] for line in lines if line[2].type == PAPER_DISPENSE_RECORDED}):
        of_inn = sorted((line for line in lines if line[3] == inn), key=lambda x: x[:2])
        total, paper = sum(x[4] for x in of_inn), sum(
            x[4] for x in of_inn if x[2].type == PAPER_DISPENSE_RECORDED)
        running = 0
        for handed_at, _id, event, _inn, quantity in of_inn:
            running += quantity
            if running <= allowed.get(inn, 0):
                continue
            raise_mismatch(
                tx, QUANTITY_ABOVE_PRESCRIBED, subject_id=f"{prescription_id}:{inn}",
                causes=[rx, event], records=[own, *(records[x[1]] for x in of_inn)],
                details={"prescription_id": prescription_id,
                         "prescription_number": rx_p["number"], "inn": inn,
                         "prescribed": allowed.get(inn, 0), "not_prescribed": inn not in allowed,
                         "dispensed_until_this": running,
                         "excess": min(quantity, running - allowed.get(inn, 0)),
                         "excess_dispense_event_id": event.id, "excess_handed_over_at": handed_at,
                         "dispensed_total": total, "dispensed_on_paper": paper,
                         "dispensed_electronically": total - paper})


def _events_at(tx: Tx, positions: Iterable[int]) -> list[Event]:
    rows = tx.query_in("SELECT * FROM events WHERE position IN ({ids})", list(positions))
    return [row_event(r) for r in sorted(rows, key=lambda r: r["position"])]


# -- raising ----------------------------------------------------------------------------------

def raise_mismatch(tx: Tx, reason: str, *, subject_id: str, causes: list[Event],
                   records: list[tuple[str, str]], details: dict[str, Any]) -> str | None:
    """Raise a paper mismatch once (central_hub.conflicts keys it by subject and `causes`);
    return its id, or None if it was raised before.

    `records`: (facility_id, Tashkent day) of each record involved, for the reports.
    """
    candidate = Candidate(KIND, subject_id[:MAX_SUBJECT], [e.id for e in causes],
                          [e.hlc for e in causes], [f for f, _ in records],
                          {"reason": reason, **details})
    if tx.one("SELECT 1 AS x FROM hub_conflicts WHERE conflict_id = ?",
              (candidate.conflict_id,)):
        return None
    raise_conflict(tx, candidate)
    tx.insert_many("recon_conflict_days", ("conflict_id", "facility_id", "local_day"),
                   [(candidate.conflict_id, f, d) for f, d in dict.fromkeys(records)],
                   "ON CONFLICT (conflict_id, facility_id, local_day) DO NOTHING")
    log.info("paper mismatch %s: %s on %s", candidate.conflict_id, reason, subject_id)
    return candidate.conflict_id


# -- what only time reveals -----------------------------------------------------------------

def reconcile_overdue(storage: Storage, now: datetime) -> list[str]:
    """The periodic pass: online checks that waited for later contacts, and paper dispenses
    never matched. Safe to run at any interval; returns the conflict ids it raised."""
    raised: list[str | None] = []
    cutoff = to_instant(now - ONLINE_GAP)
    with storage.transaction() as tx:
        for table, key, check in (("recon_prescriptions", "prescription_id", _check_online),
                                  ("recon_dispenses", "dispense_id", _check_e_rx)):
            pending = tx.query(f"SELECT {key} AS id, position FROM {table} WHERE "  # noqa: S608 - fixed names
                               "online_pending = 1 ORDER BY position")
            for row, event in zip(pending, _events_at(tx, [r["position"] for r in pending]),
                                  strict=True):
                paper_time = event.payload.get("issued_at") or event.payload["dispensed_at"]
                if paper_time <= cutoff:
                    tx.execute(f"UPDATE {table} SET online_pending = 0 WHERE {key} = ?",  # noqa: S608
                               (row["id"],))
                    raised.append(check(tx, event, now))
        overdue = tx.query("SELECT * FROM recon_dispenses WHERE matched_prescription_id IS NULL "
                           "AND never_matched_at IS NULL AND entered_at <= ? ORDER BY position",
                           (to_instant(now - NEVER_MATCHED_AFTER),))
        for row, event in zip(overdue, _events_at(tx, [r["position"] for r in overdue]),
                              strict=True):
            p = event.payload
            tx.execute("UPDATE recon_dispenses SET never_matched_at = ? WHERE dispense_id = ?",
                       (to_instant(now), row["dispense_id"]))
            raised.append(raise_mismatch(
                tx, NEVER_MATCHED, subject_id=(row["paper_serial"] or row["prescription_number"]
                                               or f"{row['dispense_id']}:unmatched"),
                causes=[event], records=[(row["facility_id"], row["local_day"])],
                details={"paper_serial": p.get("paper_serial"),
                         "prescription_number": p.get("prescription_number"),
                         "dispensed_at": p["dispensed_at"], "entered_at": p["entered_at"],
                         "days_unmatched": (now - from_instant(p["entered_at"])).days}))
    done = [c for c in raised if c]
    if done:
        log.info("reconciliation raised %s overdue paper mismatch(es)", len(done))
    return done
