"""What the fleet pages show, read from the hub database: regions with their nodes' states,
a region's nodes, a node's sync history, and the data behind the charts.

Node states come from the nodes table judged by central_hub.monitoring (one row per node:
cheap for hundreds); conflict and quarantine counts are grouped in the database; chart series
come from the monitoring history (monitor_counts) and the conflict tables.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sync_protocol.event_names import FACILITY_REGISTERED
from sync_protocol.timeutil import from_instant

from . import monitoring, pending
from .monitoring import HistorySettings
from .storage import Storage, Tx

log = logging.getLogger(__name__)

# Attempts shown on a node's page (its chart and table); the history keeps more.
NODE_PAGE_ATTEMPTS = 100
# Pending events counted against the feed for a node without a counter (central_hub.pending);
# beyond it the pages show "500+".
PAGE_PENDING_CAP = 500
# Errors listed in words on a node's page.
NODE_PAGE_ERRORS = 10
# Days of conflicts opened and resolved on the chart.
CONFLICT_CHART_DAYS = 30


def _nodes(tx: Tx, region: str | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT node_id, facility_code, region, kind, cert_kid, last_seen, last_push_at, "
           "last_pull_at, synced_at, acked_seq, last_cursor, last_error, last_error_code, "
           "last_error_at, flag FROM nodes")
    if region is None:
        return tx.query(sql + " ORDER BY region, facility_code, node_id")
    return tx.query(sql + " WHERE region = ? ORDER BY facility_code, node_id", (region,))


def regions(storage: Storage, now: datetime, settings: HistorySettings) -> list[dict[str, Any]]:
    """Each region: nodes per state, open conflicts and quarantined events."""
    with storage.reader() as tx:
        rows = _nodes(tx)
        conflicts = {r["region"]: int(r["n"]) for r in tx.query(
            "SELECT e.region AS region, COUNT(DISTINCT c.conflict_id) AS n FROM hub_conflicts c "
            "JOIN hub_conflict_events k ON k.conflict_id = c.conflict_id AND k.role = 'key' "
            "JOIN events e ON e.id = k.event_id WHERE c.state = 'open' GROUP BY e.region")}
        quarantined = {r["region"]: int(r["n"]) for r in tx.query(
            "SELECT n.region AS region, COUNT(*) AS n FROM quarantine q JOIN nodes n ON "
            "n.node_id = q.node_id WHERE q.resolved_at IS NULL GROUP BY n.region")}
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["region"], {
            "region": row["region"], "nodes": 0, **dict.fromkeys(monitoring.STATES, 0),
            "conflicts": conflicts.get(row["region"], 0),
            "quarantined": quarantined.get(row["region"], 0)})
        entry["nodes"] += 1
        entry[monitoring.node_state(row, now, settings)["state"]] += 1
    return list(out.values())


def region_names(storage: Storage) -> list[str]:
    """The regions that have nodes (the filters' choices), without judging any node."""
    with storage.reader() as tx:
        return [r["region"] for r in tx.query("SELECT DISTINCT region FROM nodes "
                                              "ORDER BY region")]


def region_nodes(storage: Storage, region: str, now: datetime, settings: HistorySettings,
                 trust: Any = None) -> list[dict[str, Any]]:
    """A region's nodes with state, last contact, pending events, version, certificate."""
    with storage.reader() as tx:
        rows = _nodes(tx, region)
        reports = {r["node_id"]: r for r in tx.query_in(
            "SELECT * FROM monitor_nodes WHERE node_id IN ({ids})", [r["node_id"] for r in rows])
        } if rows else {}
        names = facility_names(tx, [r["facility_code"] for r in rows], by="code")
        waiting = pending.waiting(tx, rows, now, PAGE_PENDING_CAP)
    return [_node_view(row, now, settings, trust, reports.get(row["node_id"]),
                       names.get(row["facility_code"]), *waiting[row["node_id"]])
            for row in rows]


def _node_view(row: dict[str, Any], now: datetime, settings: HistorySettings, trust: Any,
               report: dict[str, Any] | None, facility: str | None, count: int,
               capped: bool) -> dict[str, Any]:
    cert = trust.get(bytes.fromhex(row["cert_kid"])) if trust is not None else None
    expiry = cert.not_valid_after_utc if cert is not None else None
    return {**row, **monitoring.node_state(row, now, settings), "pending": count,
            "pending_capped": capped, "facility_name": facility or row["facility_code"],
            "version": (report or {}).get("user_agent") or "",
            "clock_offset": (report or {}).get("clock_offset_s"),
            "cert_expires": expiry.strftime("%Y-%m-%d") if expiry else "",
            "cert_days_left": (expiry - now).days if expiry else None}


def node_detail(storage: Storage, node_id: str, now: datetime, settings: HistorySettings,
                trust: Any = None) -> dict[str, Any] | None:
    with storage.reader() as tx:
        row = tx.one("SELECT * FROM nodes WHERE node_id = ?", (node_id,))
        if row is None:
            return None
        report = tx.one("SELECT * FROM monitor_nodes WHERE node_id = ?", (node_id,))
        names = facility_names(tx, [row["facility_code"]], by="code")
        count, capped = pending.waiting(tx, [row], now, PAGE_PENDING_CAP)[node_id]
        attempts = tx.query("SELECT * FROM monitor_attempts WHERE node_id = ? ORDER BY id DESC "
                            "LIMIT ?", (node_id, NODE_PAGE_ATTEMPTS))
        errors = tx.query("SELECT * FROM monitor_attempts WHERE node_id = ? AND outcome <> 'ok' "
                          "ORDER BY id DESC LIMIT ?", (node_id, NODE_PAGE_ERRORS))
    view = _node_view(row, now, settings, trust, report, names.get(row["facility_code"]),
                      count, capped)
    return {**view, "attempts": attempts, "errors": errors}


def facility_names(tx: Tx, keys: list[str], *, by: str) -> dict[str, str]:
    """Facility names as registered (FacilityRegistered, found by its subject through the
    events_by_subject index), by facility id or by facility code."""
    keys = sorted({k for k in keys if k})
    if not keys:
        return {}
    if by == "code":
        ids = {r["facility_id"]: r["code"] for r in tx.query_in(
            "SELECT facility_id, code FROM scope_facilities WHERE code IN ({ids})", keys)}
    else:
        ids = {k: k for k in keys}
    if not ids:
        return {}
    names: dict[str, str] = {}
    for row in tx.query_in("SELECT subject_id, payload FROM events WHERE subject_id IN ({ids}) "  # noqa: S608
                           f"AND type = '{FACILITY_REGISTERED}' ORDER BY position", list(ids)):
        payload = row["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        names[ids[row["subject_id"]]] = payload.get("name") or ids[row["subject_id"]]
    return names


# -- chart series ---------------------------------------------------------------------------

def hourly(storage: Storage, name: str, now: datetime, hours: int) -> dict[str, Any]:
    """{labels: hour buckets, series: {region: [value per hour]}} for the last `hours`."""
    start = now - timedelta(hours=hours - 1)
    buckets = [(start + timedelta(hours=i)).strftime(monitoring.HOUR_FORMAT)
               for i in range(hours)]
    slot = {bucket: i for i, bucket in enumerate(buckets)}
    series: dict[str, list[float]] = {}
    for row in monitoring.counts(storage, name, start):
        i = slot.get(row["bucket"])  # days (downsampled) and future hours are not drawn
        if i is not None:
            series.setdefault(row["region"], [0.0] * hours)[i] = float(row["value"])
    return {"labels": buckets, "series": series}


def last_hours(data: dict[str, Any], hours: int) -> dict[str, Any]:
    """The last `hours` of an hourly series (the day's chart cut from the week's reading)."""
    return {"labels": data["labels"][-hours:],
            "series": {name: values[-hours:] for name, values in data["series"].items()}}


def coarser(data: dict[str, Any], hours: int) -> dict[str, Any]:
    """Hourly series as one point per `hours` (the worst of each span): a week's chart
    reads as well with 28 points as with 168, and draws six times faster."""
    labels = data["labels"][::hours]
    series = {name: [max(values[i:i + hours]) for i in range(0, len(values), hours)]
              for name, values in data["series"].items()}
    return {"labels": labels, "series": series}


def conflicts_per_day(storage: Storage, now: datetime,
                      days: int = CONFLICT_CHART_DAYS) -> dict[str, Any]:
    """Conflicts opened and resolved per day, by kind, for the last `days`."""
    start = (now - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    with storage.reader() as tx:
        opened = tx.query("SELECT SUBSTR(detected_at, 1, 10) AS day, kind, COUNT(*) AS n FROM "
                          "hub_conflicts WHERE detected_at >= ? GROUP BY SUBSTR(detected_at, "
                          "1, 10), kind", (start,))
        resolved = tx.query("SELECT SUBSTR(r.changed_at, 1, 10) AS day, c.kind AS kind, "
                            "COUNT(*) AS n FROM hub_conflict_reviews r JOIN hub_conflicts c ON "
                            "c.conflict_id = r.conflict_id WHERE r.state = 'resolved' AND "
                            "r.changed_at >= ? GROUP BY SUBSTR(r.changed_at, 1, 10), c.kind",
                            (start,))
    labels = [(from_instant(start + "T00:00:00Z") + timedelta(days=i)).strftime("%Y-%m-%d")
              for i in range(days)]
    series: dict[tuple[str, str], list[int]] = {}
    for what, rows in (("opened", opened), ("resolved", resolved)):
        for row in rows:
            if row["day"] in labels:
                series.setdefault((what, row["kind"]), [0] * days)[labels.index(row["day"])] = \
                    int(row["n"])
    return {"labels": labels, "series": series}
