"""Paper prescriptions at the hub: numbered pads allocated to clinics, the tables paper
reconciliation keeps, and the evidence that a node was online at a given instant.

Pads. A pad is a range of serials of one series (TAS-000100 ... TAS-000149) printed on blank
paper prescription forms and handed to one clinic. Ranges of one series never overlap, so a
serial names at most one pad and one facility. The hub appends PaperPadAllocated, which
routing delivers to the facility's nodes (its facility_id), so the node knows its serials.

Online evidence. Paper is allowed only during a failure or an emergency. A node is
"demonstrably online" at an instant when the hub saw it sync successfully both shortly
before and shortly after it: every successful signed sync request (push, pull, trust list)
extends the node's current online span, a run of contacts at most ONLINE_GAP apart, and an
instant inside a span is online.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timedelta
from typing import Any

from sync_protocol.event_names import FACILITY_REGISTERED, PAPER_PAD_ALLOCATED
from sync_protocol.identifiers import MAX_PAD_SERIAL, format_pad_serial, new_ulid, read_pad_serial
from sync_protocol.timeutil import to_instant

from .errors import HubError, NotFound
from .hub_events import emit_hub_event
from .storage import Migration, Storage, Tx

log = logging.getLogger(__name__)

SERIES_RE = re.compile(r"^[A-Z]{2,6}$")
MAX_SERIAL = MAX_PAD_SERIAL
# A printed pad holds 50 or 100 forms; a region's whole year of paper is a few thousand.
# Larger ranges are typing slips (an extra zero) that would block the series for everyone.
MAX_PAD_SERIALS = 10_000
MAX_NAME = 200
# Healthy nodes sync every 30 s (edge_node.sync.agent.INTERVAL_SECONDS); a gap of five
# minutes means several failed attempts, i.e. a failure the doctor may really have met.
ONLINE_GAP = timedelta(minutes=5)
# Contacts closer than this to the last one recorded are not written again: the span's edge
# is known to a minute, and the hub is spared a write per sync request.
CONTACT_RESOLUTION = timedelta(seconds=60)

PAPER_V1 = """
-- Pads of numbered paper prescription forms, allocated to clinics (PaperPadAllocated).
CREATE TABLE paper_pads (
    pad_id TEXT PRIMARY KEY,
    facility_id TEXT NOT NULL,
    series TEXT NOT NULL,
    first_serial BIGINT NOT NULL,
    last_serial BIGINT NOT NULL,
    allocated_by TEXT,
    allocated_at TEXT NOT NULL
);
CREATE INDEX paper_pads_by_series ON paper_pads (series, first_serial);
CREATE INDEX paper_pads_by_facility ON paper_pads (facility_id);

-- Every prescription a paper dispense may name (e and paper), found by id, number or serial.
-- The payload stays in the events table (position); local_day is the Tashkent date of the
-- time written on it. online_pending: paper whose online check waits for later contacts.
CREATE TABLE recon_prescriptions (
    prescription_id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    paper_serial TEXT,
    facility_id TEXT NOT NULL,
    local_day TEXT NOT NULL,
    position BIGINT NOT NULL,
    online_pending INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recon_prescriptions_by_number ON recon_prescriptions (number);
CREATE INDEX recon_prescriptions_by_serial ON recon_prescriptions (paper_serial);
CREATE INDEX recon_prescriptions_by_day ON recon_prescriptions (facility_id, local_day);

-- Lines of pharmacies' paper dispense logs, and the prescription each was matched to.
CREATE TABLE recon_dispenses (
    dispense_id TEXT PRIMARY KEY,
    facility_id TEXT NOT NULL,
    local_day TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    paper_serial TEXT,
    prescription_number TEXT,
    prescription_id TEXT,
    position BIGINT NOT NULL,
    matched_prescription_id TEXT,
    matched_by TEXT,
    online_pending INTEGER NOT NULL DEFAULT 0,
    never_matched_at TEXT
);
CREATE INDEX recon_dispenses_by_serial ON recon_dispenses (paper_serial);
CREATE INDEX recon_dispenses_by_number ON recon_dispenses (prescription_number);
CREATE INDEX recon_dispenses_by_named ON recon_dispenses (prescription_id);
CREATE INDEX recon_dispenses_by_match ON recon_dispenses (matched_prescription_id, entered_at);
CREATE INDEX recon_dispenses_by_day ON recon_dispenses (facility_id, local_day);

-- The facilities and days whose reconciliation report lists each paper mismatch (the
-- conflict itself is in hub_conflicts, central_hub.conflicts).
CREATE TABLE recon_conflict_days (
    conflict_id TEXT NOT NULL,
    facility_id TEXT NOT NULL,
    local_day TEXT NOT NULL,
    PRIMARY KEY (conflict_id, facility_id, local_day)
);
CREATE INDEX recon_conflict_days_by_day ON recon_conflict_days (facility_id, local_day);

-- When the hub saw each node online: runs of successful sync requests at most ONLINE_GAP
-- apart.
CREATE TABLE node_online_spans (
    node_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (node_id, started_at)
);
CREATE INDEX node_online_spans_by_end ON node_online_spans (node_id, last_at)
"""

COMPONENT = "paper"
MIGRATIONS = (Migration(COMPONENT, 1, PAPER_V1),)  # listed by central_hub.composition


class PadOverlap(HubError):
    code = "pad_overlap"
    http_status = 409


# -- serials and pads ------------------------------------------------------------------------

def normal_serial(text: str | None) -> str | None:
    """A pad serial in its one printed form (TAS-000123); text that is not one, as it is."""
    parsed = read_pad_serial(text)
    return format_pad_serial(*parsed) if parsed else text


def allocate_pad(storage: Storage, *, facility_id: str, series: str, first_serial: int,
                 last_serial: int, allocated_by: str, now: datetime) -> dict[str, Any]:
    """Give a clinic a range of serials; refuse a range that overlaps any pad of its series."""
    series = str(series or "").strip().upper()
    if not SERIES_RE.match(series):
        raise HubError("A series is 2 to 6 capital letters, e.g. TAS", field="series")
    for name, value in (("first_serial", first_serial), ("last_serial", last_serial)):
        if type(value) is not int or not 1 <= value <= MAX_SERIAL:
            raise HubError("%(name)s must be a whole number from 1 to %(max)s", field=name,
                           name=name, max=MAX_SERIAL)
    if last_serial < first_serial:
        raise HubError("last_serial must not be below first_serial", field="last_serial")
    if last_serial - first_serial + 1 > MAX_PAD_SERIALS:
        raise HubError("A pad holds at most %(max)s serials", field="last_serial",
                       max=MAX_PAD_SERIALS)
    allocated_by = " ".join(str(allocated_by or "").split())
    if not 1 <= len(allocated_by) <= MAX_NAME:
        raise HubError("Say who allocates the pad (allocated_by)", field="allocated_by")
    with storage.transaction() as tx:
        facility = tx.one("SELECT kind FROM scope_facilities WHERE facility_id = ?",
                          (facility_id,))
        if facility is None:
            raise NotFound("Facility %(facility)s is not known to the hub", field="facility_id",
                           facility=facility_id)
        if facility["kind"] != "clinic":
            raise HubError("Paper prescription pads go to clinics, not to a %(kind)s",
                           field="facility_id", kind=facility["kind"])
        clash = tx.one("SELECT * FROM paper_pads WHERE series = ? AND first_serial <= ? AND "
                       "last_serial >= ? ORDER BY first_serial LIMIT 1",
                       (series, last_serial, first_serial))
        if clash is not None:
            raise PadOverlap("Serials %(first)s to %(last)s overlap pad %(pad)s (%(pad_first)s "
                             "to %(pad_last)s, facility %(facility)s); choose a free range",
                             field="first_serial", first=format_pad_serial(series, first_serial),
                             last=format_pad_serial(series, last_serial), pad=clash["pad_id"],
                             pad_first=format_pad_serial(series, clash["first_serial"]),
                             pad_last=format_pad_serial(series, clash["last_serial"]),
                             facility=clash["facility_id"])
        pad = {"pad_id": new_ulid(), "facility_id": facility_id, "series": series,
               "first_serial": first_serial, "last_serial": last_serial,
               "allocated_by": allocated_by}
        stored = emit_hub_event(tx, PAPER_PAD_ALLOCATED, dict(pad))
        row = {**pad, "allocated_at": to_instant(now)}
        tx.execute("INSERT INTO paper_pads (pad_id, facility_id, series, first_serial, "
                   "last_serial, allocated_by, allocated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   tuple(row.values()))
    log.info("pad %s %s..%s allocated to %s by %s", pad["pad_id"], first_serial, last_serial,
             facility_id, allocated_by)
    return {**row, "event_id": stored.event.id}


def list_pads(storage: Storage, facility_id: str | None = None) -> list[dict[str, Any]]:
    sql, params = "SELECT * FROM paper_pads", ()
    if facility_id:
        sql, params = sql + " WHERE facility_id = ?", (facility_id,)
    with storage.reader() as tx:
        return tx.query(sql + " ORDER BY series, first_serial", params)


def pad_facility(tx: Tx, serial: str) -> str | None:
    """The facility holding the pad a serial belongs to, or None."""
    parsed = read_pad_serial(serial)
    if parsed is None:
        return None
    row = tx.one("SELECT facility_id FROM paper_pads WHERE series = ? AND first_serial <= ? AND "
                 "last_serial >= ?", (parsed[0], parsed[1], parsed[1]))
    return row["facility_id"] if row else None


# -- online evidence -------------------------------------------------------------------------

class ContactRecorder:
    """Extends nodes' online spans on successful sync requests, one write a minute at most."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def seen(self, node_id: str, at: datetime) -> None:
        with self._lock:
            last = self._last.get(node_id)
            if last is not None and timedelta(0) <= at - last < CONTACT_RESOLUTION:
                return
            self._last[node_id] = at
        with self.storage.transaction(exclusive=False) as tx:
            record_contact(tx, node_id, at)


def record_contact(tx: Tx, node_id: str, at: datetime) -> None:
    """Extend the node's span that reaches `at` within ONLINE_GAP, or start a new one."""
    moment = to_instant(at)
    span = tx.one("SELECT started_at, last_at FROM node_online_spans WHERE node_id = ? AND "
                  "last_at >= ? AND started_at <= ? ORDER BY started_at DESC LIMIT 1",
                  (node_id, to_instant(at - ONLINE_GAP), to_instant(at + ONLINE_GAP)))
    if span is None:
        tx.execute("INSERT INTO node_online_spans (node_id, started_at, last_at) VALUES "
                   "(?, ?, ?) ON CONFLICT (node_id, started_at) DO NOTHING",
                   (node_id, moment, moment))
    elif moment > span["last_at"]:
        tx.execute("UPDATE node_online_spans SET last_at = ? WHERE node_id = ? AND "
                   "started_at = ?", (moment, node_id, span["started_at"]))
    elif moment < span["started_at"]:
        tx.execute("UPDATE node_online_spans SET started_at = ? WHERE node_id = ? AND "
                   "started_at = ?", (moment, node_id, span["started_at"]))


def facility_online(tx: Tx, facility_id: str, at: str) -> bool:
    """Whether a node of the facility was demonstrably online at instant `at`."""
    row = tx.one("SELECT 1 AS online FROM node_online_spans s JOIN nodes n ON n.node_id = "
                 "s.node_id JOIN scope_facilities f ON f.code = n.facility_code AND f.region = "
                 "n.region WHERE f.facility_id = ? AND s.started_at <= ? AND s.last_at >= ? "
                 "LIMIT 1", (facility_id, at, at))
    return row is not None


# -- the reconciliation report -----------------------------------------------------------------

def find_facility(storage: Storage, facility: str) -> dict[str, Any]:
    """A facility by id or by code (as people type it), with its registered name."""
    text = str(facility or "").strip()
    if not text:
        raise HubError("Choose a facility (its id or code)", field="facility")
    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM scope_facilities WHERE facility_id = ? OR code = ? "
                        "ORDER BY facility_id", (text, text.upper()))
        if len(rows) != 1:
            if rows:
                raise HubError("Code %(code)s names facilities in several regions; give the "
                               "facility id", field="facility", code=text)
            raise NotFound("Facility %(facility)s is not known to the hub", field="facility",
                           facility=text)
        registered = tx.one("SELECT payload FROM events WHERE subject_id = ? AND type = "  # noqa: S608
                            f"'{FACILITY_REGISTERED}' ORDER BY position LIMIT 1",
                            (rows[0]["facility_id"],))
    name = _payload(registered)["name"] if registered else rows[0]["code"]
    return {**{k: rows[0][k] for k in ("facility_id", "code", "kind", "region")}, "name": name}


def reconciliation_report(storage: Storage, facility: dict[str, Any], day: str
                          ) -> dict[str, Any]:
    """One facility's paper of one Tashkent day: paper prescriptions written and paper
    dispenses made that day, what each matched, and the mismatches raised about them."""
    facility_id = facility["facility_id"]
    with storage.reader() as tx:
        own_rx = tx.query("SELECT * FROM recon_prescriptions WHERE facility_id = ? AND "
                          "local_day = ? AND kind = 'paper' ORDER BY position",
                          (facility_id, day))
        own_d = tx.query("SELECT * FROM recon_dispenses WHERE facility_id = ? AND "
                         "local_day = ? ORDER BY position", (facility_id, day))
        # The other side of each match, whatever its facility or day.
        their_d = tx.query_in("SELECT * FROM recon_dispenses WHERE matched_prescription_id IN "
                              "({ids})", [r["prescription_id"] for r in own_rx])
        their_rx = tx.query_in("SELECT * FROM recon_prescriptions WHERE prescription_id IN "
                               "({ids})", [r["matched_prescription_id"] for r in own_d
                                           if r["matched_prescription_id"]])
        conflicts = tx.query("SELECT c.* FROM recon_conflict_days d JOIN hub_conflicts c ON "
                             "c.conflict_id = d.conflict_id WHERE d.facility_id = ? AND "
                             "d.local_day = ? ORDER BY c.raised_position", (facility_id, day))
        rows = [*own_rx, *own_d, *their_d, *their_rx]
        payloads = {r["position"]: _payload(r) for r in tx.query_in(
            "SELECT position, payload FROM events WHERE position IN ({ids})",
            [r["position"] for r in rows])}
    prescriptions = {r["prescription_id"]: r for r in [*own_rx, *their_rx]}
    dispenses = {r["dispense_id"]: r for r in [*own_d, *their_d]}
    matches = [{"dispense_id": d["dispense_id"], "prescription_id": rx["prescription_id"],
                "number": rx["number"], "kind": rx["kind"], "paper_serial": rx["paper_serial"],
                "matched_by": d["matched_by"], "dispense_facility_id": d["facility_id"],
                "prescription_facility_id": rx["facility_id"]}
               for d in dispenses.values() if (rx := prescriptions.get(
                   d["matched_prescription_id"] or ""))]
    matched_rx = {m["prescription_id"] for m in matches}
    paper_rx = [_prescription_line(r, payloads[r["position"]], [
        m["dispense_id"] for m in matches if m["prescription_id"] == r["prescription_id"]])
        for r in own_rx]
    paper_d = [_dispense_line(r, payloads[r["position"]], prescriptions) for r in own_d]
    mismatches = [_mismatch_line(c) for c in conflicts]
    return {"facility": facility, "day": day, "paper_prescriptions": paper_rx,
            "paper_dispenses": paper_d, "matches": sorted(matches, key=_match_order),
            "mismatches": mismatches,
            "summary": {"paper_prescriptions": len(paper_rx), "paper_dispenses": len(paper_d),
                        "matches": len(matches), "mismatches": len(mismatches),
                        "unmatched_prescriptions": sum(
                            r["prescription_id"] not in matched_rx for r in own_rx),
                        "unmatched_dispenses": sum(
                            not r["matched_prescription_id"] for r in own_d)}}


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    value = row["payload"]
    return json.loads(value) if isinstance(value, str) else value


def _mismatch_line(row: dict[str, Any]) -> dict[str, Any]:
    details = json.loads(row["details"])
    return {"conflict_id": row["conflict_id"], "reason": details.pop("reason", None),
            "subject_id": row["subject_id"], "state": row["state"],
            "raised_at": row["raised_at"], "event_ids": details.pop("event_ids", []),
            "facility_ids": json.loads(row["facility_ids"]), "details": details}


def _match_order(match: dict[str, Any]) -> tuple[str, str]:
    return match["prescription_id"], match["dispense_id"]


def _prescription_line(row: dict[str, Any], p: dict[str, Any],
                       dispense_ids: list[str]) -> dict[str, Any]:
    return {"prescription_id": row["prescription_id"], "number": row["number"],
            "paper_serial": row["paper_serial"], "paper_reason": p.get("paper_reason"),
            "issued_at": p["issued_at"], "entered_at": p.get("entered_at"),
            "items": [{k: i[k] for k in ("inn", "form", "strength", "quantity", "repeats")}
                      for i in p["items"]],
            "dispense_ids": dispense_ids, "status": "matched" if dispense_ids else "unmatched"}


def _dispense_line(row: dict[str, Any], p: dict[str, Any],
                   prescriptions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rx = prescriptions.get(row["matched_prescription_id"] or "")
    return {"dispense_id": row["dispense_id"], "paper_serial": row["paper_serial"],
            "prescription_number": row["prescription_number"],
            "paper_reason": p["paper_reason"], "dispensed_at": p["dispensed_at"],
            "entered_at": p["entered_at"],
            "items": [{k: i[k] for k in ("inn", "form", "strength", "quantity", "product",
                                         "batch")} for i in p["items"]],
            "prescription_id": row["matched_prescription_id"],
            "matched_number": rx["number"] if rx else None, "matched_by": row["matched_by"],
            "status": "matched" if row["matched_prescription_id"] else "unmatched"}
