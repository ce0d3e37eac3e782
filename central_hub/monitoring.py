"""The fleet's health and its compact history, for the dashboard and /metrics.

A node's state is judged from what the hub saw of it, against the nodes' sync interval:
offline once it missed two intervals (silent), failing when its latest request ended in an
error, lagging when it was heard from but has not been fully synced for longer than two
intervals, healthy otherwise.

History (migration component "monitoring"): every sync request of a known node is one row
of `monitor_attempts` (kind, outcome, events, duration, clock offset), at most
HISTORY_MAX_ATTEMPTS per node and HISTORY_RETENTION_DAYS old; `monitor_counts` holds what the
charts need per region and hour (events ingested, attempts, failures, worst lag, nodes
offline), merged into one row per day after HISTORY_HOURLY_DAYS, kept as long as attempts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sync_protocol.timeutil import from_instant, to_instant

from . import pending
from .storage import Migration, Storage, Tx

log = logging.getLogger(__name__)

COMPONENT = "monitoring"
MONITORING_V1 = """
CREATE TABLE monitor_attempts (
    id {serial_pk}, node_id TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    outcome TEXT NOT NULL, events INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
    clock_offset_s DOUBLE PRECISION
);
CREATE INDEX monitor_attempts_by_node ON monitor_attempts (node_id, id);
CREATE INDEX monitor_attempts_by_time ON monitor_attempts (at);
-- What a node last told the hub about itself (its clock, its software).
CREATE TABLE monitor_nodes (
    node_id TEXT PRIMARY KEY, clock_offset_s DOUBLE PRECISION, user_agent TEXT,
    reported_at TEXT NOT NULL
);
-- bucket: 'YYYY-MM-DDTHH' (an hour) or 'YYYY-MM-DD' (a day, after downsampling).
CREATE TABLE monitor_counts (
    bucket TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, PRIMARY KEY (bucket, region, name)
);
"""
# The charts read one count over a span of hours (central_hub.fleet.hourly); the pending
# counters of central_hub.pending, back-filled from the feed.
MONITORING_V2 = """
CREATE INDEX monitor_counts_by_name ON monitor_counts (name, bucket);
""" + pending.MIGRATION_V2
MIGRATIONS = (Migration(COMPONENT, 1, MONITORING_V1),  # listed by central_hub.composition
              Migration(COMPONENT, 2, MONITORING_V2),
              Migration(COMPONENT, 3, pending.MIGRATION_V3))

SAMPLER = "dmed_monitor_sampler"  # the app's Sampler, in app.extensions
HEALTHY, LAGGING, OFFLINE, FAILING = "healthy", "lagging", "offline", "failing"
STATES = (HEALTHY, LAGGING, OFFLINE, FAILING)
# A node is flagged once it missed this many sync intervals (the bound).
MISSED_INTERVALS = 2
# Counts added up per bucket, and samples of which the worst of a bucket is kept.
SUMMED = ("events_ingested", "attempts", "failed_attempts")
WORST = ("lag_seconds_max", "nodes_offline")
HOUR_FORMAT, DAY_FORMAT = "%Y-%m-%dT%H", "%Y-%m-%d"
# How often lag and offline nodes are sampled into the hour's counts.
SAMPLE_EVERY = timedelta(minutes=5)
# User agents are shown, not parsed; a long one is somebody's noise.
MAX_USER_AGENT = 120


@dataclass(frozen=True)
class HistorySettings:
    sync_interval: int = 30
    retention_days: int = 90
    hourly_days: int = 7
    max_attempts: int = 1000

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HistorySettings:
        return cls(int(config["SYNC_INTERVAL_SECONDS"]), int(config["HISTORY_RETENTION_DAYS"]),
                   int(config["HISTORY_HOURLY_DAYS"]), int(config["HISTORY_MAX_ATTEMPTS"]))

    @property
    def silent_after(self) -> timedelta:
        return timedelta(seconds=MISSED_INTERVALS * self.sync_interval)


def node_state(row: dict[str, Any], now: datetime, settings: HistorySettings) -> dict[str, Any]:
    """A node's state and why: seconds since contact, since last fully synced."""
    silent = int((now - from_instant(row["last_seen"])).total_seconds())
    synced = row.get("synced_at")
    lag = int((now - from_instant(synced)).total_seconds()) if synced else None
    error_current = bool(row.get("last_error_at")) and (
        not synced or row["last_error_at"] >= synced)
    bound = settings.silent_after.total_seconds()
    if silent > bound:
        state = OFFLINE
    elif error_current:
        state = FAILING
    elif lag is None or lag > bound:
        state = LAGGING
    else:
        state = HEALTHY
    return {"state": state, "silent_seconds": silent, "lag_seconds": lag,
            "error_is_current": error_current}


# -- recording ------------------------------------------------------------------------------

def record_attempt(storage: Storage, *, node_id: str, kind: str, outcome: str, events: int,
                   duration_ms: int, clock_offset: float | None, user_agent: str,
                   now: datetime, region: str | None = None) -> None:
    """One sync request of a node the hub knows (strangers leave no rows)."""
    at = to_instant(now)
    with storage.transaction(exclusive=False) as tx:
        if region is None:
            region = tx.scalar("SELECT region FROM nodes WHERE node_id = ?", (node_id,))
            if region is None:
                return
        tx.execute("INSERT INTO monitor_attempts (node_id, at, kind, outcome, events, "
                   "duration_ms, clock_offset_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (node_id, at, kind, outcome, events, duration_ms, clock_offset))
        if clock_offset is not None:
            tx.execute("INSERT INTO monitor_nodes (node_id, clock_offset_s, user_agent, "
                       "reported_at) VALUES (?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET "
                       "clock_offset_s = excluded.clock_offset_s, user_agent = "
                       "excluded.user_agent, reported_at = excluded.reported_at",
                       (node_id, clock_offset, user_agent[:MAX_USER_AGENT], at))
        hour = now.strftime(HOUR_FORMAT)
        add_count(tx, hour, region, "attempts", 1)
        if outcome != "ok":
            add_count(tx, hour, region, "failed_attempts", 1)
        if kind == "push" and events:
            add_count(tx, hour, region, "events_ingested", events)


_UPSERT = ("INSERT INTO monitor_counts (bucket, region, name, value) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (bucket, region, name) DO UPDATE SET value = ")
ADD_SQL = _UPSERT + "monitor_counts.value + excluded.value"
WORST_SQL = _UPSERT + ("CASE WHEN excluded.value > monitor_counts.value THEN excluded.value "
                       "ELSE monitor_counts.value END")


def add_count(tx: Tx, bucket: str, region: str, name: str, value: float) -> None:
    tx.execute(ADD_SQL if name in SUMMED else WORST_SQL, (bucket, region, name, value))


class Sampler:
    """Every SAMPLE_SECONDS (per process, by the hub's clock): the worst lag and the offline
    nodes of each region go into the hour's counts (the worst of the hour is kept); once per
    hour the history is downsampled and trimmed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sampled: datetime | None = None
        self._compacted: str | None = None

    def sample_if_due(self, storage: Storage, now: datetime, settings: HistorySettings) -> bool:
        hour = now.strftime(HOUR_FORMAT)
        with self._lock:
            last = self._sampled
            if last is not None and timedelta(0) <= now - last < SAMPLE_EVERY and \
                    last.strftime(HOUR_FORMAT) == hour:
                return False
            self._sampled = now
            compact_now, self._compacted = self._compacted != hour, hour
        sample(storage, now, settings)
        if compact_now:
            compact(storage, now, settings)
        return True


def sample(storage: Storage, now: datetime, settings: HistorySettings) -> None:
    with storage.reader() as tx:
        rows = tx.query("SELECT node_id, region, last_seen, synced_at, last_error_at "
                        "FROM nodes")
    worst: dict[str, tuple[int, int]] = {}
    for row in rows:
        state = node_state(row, now, settings)
        lag, offline = worst.get(row["region"], (0, 0))
        worst[row["region"]] = (max(lag, state["lag_seconds"] or state["silent_seconds"]),
                                offline + (state["state"] == OFFLINE))
    hour = now.strftime(HOUR_FORMAT)
    with storage.transaction(exclusive=False) as tx:
        for region, (lag, offline) in worst.items():
            add_count(tx, hour, region, "lag_seconds_max", lag)
            add_count(tx, hour, region, "nodes_offline", offline)


def compact(storage: Storage, now: datetime, settings: HistorySettings) -> None:
    """Hours older than the hourly window become days; rows past retention go; each node
    keeps at most max_attempts attempts."""
    horizon = (now - timedelta(days=settings.hourly_days)).strftime(HOUR_FORMAT)
    oldest = now - timedelta(days=settings.retention_days)
    with storage.transaction(exclusive=False) as tx:
        old = tx.query("SELECT bucket, region, name, value FROM monitor_counts "
                       "WHERE bucket < ? AND LENGTH(bucket) = 13", (horizon,))
        tx.execute("DELETE FROM monitor_counts WHERE bucket < ? AND LENGTH(bucket) = 13",
                   (horizon,))
        for row in old:
            add_count(tx, row["bucket"][:10], row["region"], row["name"], row["value"])
        tx.execute("DELETE FROM monitor_counts WHERE bucket < ?",
                   (oldest.strftime(DAY_FORMAT),))
        tx.execute("DELETE FROM monitor_attempts WHERE at < ?", (to_instant(oldest),))
        for row in tx.query("SELECT node_id FROM monitor_attempts GROUP BY node_id "
                            "HAVING COUNT(*) > ?", (settings.max_attempts,)):
            cut = tx.scalar("SELECT id FROM monitor_attempts WHERE node_id = ? ORDER BY id "
                            "DESC LIMIT 1 OFFSET ?", (row["node_id"], settings.max_attempts))
            tx.execute("DELETE FROM monitor_attempts WHERE node_id = ? AND id <= ?",
                       (row["node_id"], cut))
    log.debug("monitoring history compacted before %s", horizon)


# -- reading ----------------------------------------------------------------------------

def node_attempts(storage: Storage, node_id: str, limit: int) -> list[dict[str, Any]]:
    with storage.reader() as tx:
        return tx.query("SELECT * FROM monitor_attempts WHERE node_id = ? ORDER BY id DESC "
                        "LIMIT ?", (node_id, limit))


def counts(storage: Storage, name: str, since: datetime) -> list[dict[str, Any]]:
    """(bucket, region, value) of one count since a time, oldest first."""
    with storage.reader() as tx:
        return tx.query("SELECT bucket, region, value FROM monitor_counts WHERE name = ? AND "
                        "bucket >= ? ORDER BY bucket, region",
                        (name, since.strftime(HOUR_FORMAT)))


def node_reports(storage: Storage) -> dict[str, dict[str, Any]]:
    with storage.reader() as tx:
        return {r["node_id"]: r for r in tx.query("SELECT * FROM monitor_nodes")}
