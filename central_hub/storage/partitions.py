"""Time partitioning of the hub's append-only log on PostgreSQL (issue 17).

`events` and `deliveries` are partitioned by RANGE (position), with the same bounds: the
position is the hub's order of arrival, so a range of positions is a span of time, and every
query of the sync path names positions or delivery ids that grow with them (a pull joins
`events` by position; the projector reads past its cursor), so the planner prunes to one or
two partitions. Each new partition is sized to last about PARTITION_PERIOD at the rate the
one before it filled (`next_span`), so a partition holds about a month of events: indexes and
vacuum stay bounded as years accumulate, and an old month can be detached and archived whole.

What a partitioned table cannot enforce across partitions is enforced where it always was
decided: an event id and an (origin, seq) are unique because the ingest looks every id and
seq up under the writer lock before storing (central_hub.ingest), and each partition keeps
its own unique indexes on them as a safety net; delivery ids are handed out under the same
lock. The ranges are read from the catalog (a table of them could drift from it: a restore,
a clean-up that empties every table), each partition's creation time from its comment;
`ensure_room` creates the next one ahead of the positions about to be handed out, and
`maintain` (the projector, once a minute) creates it once the current one is half full.
SQLite (one file, a clinic-sized hub) is not partitioned.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sync_protocol.event_names import REMOTE_PRESCRIPTION_REQUESTED
from sync_protocol.timeutil import from_instant, to_instant, utc_now

from .base import POSTGRESQL, Row, Tx

log = logging.getLogger(__name__)

# Tables partitioned by position, with their per-partition unique indexes (what the parent
# cannot hold, as they do not include the partition key).
PARTITIONED = {"events": (("id",), ("origin", "seq")), "deliveries": (("id",),)}
# The parent's plain indexes (name suffix: definition); each partition gets its own copy,
# named after the partition, which ATTACH adopts.
INDEXES = {
    "events": {"by_patient": "(patient_id, position)", "by_subject": "(subject_id, position)",
               "remote_requests": f"(position) WHERE type = '{REMOTE_PRESCRIPTION_REQUESTED}'"},
    "deliveries": {"by_target": "(target_kind, target, id)"},
}
# A partition is meant to hold about this much time of events.
PARTITION_PERIOD = timedelta(days=30)
# Bounds of a partition's span, in positions: a fresh hub (no rate known yet) starts with
# FIRST_SPAN; ~5 M events a day nationally is ~150 M a month.
FIRST_SPAN = 5_000_000
MIN_SPAN = 1_000_000
MAX_SPAN = 500_000_000

# A partition's bounds as pg_get_expr gives them: FROM (MINVALUE) TO ('5') or FROM ('1') ...
BOUND_RE = re.compile(r"FROM \((?:MINVALUE|'?(-?\d+)'?)\) TO \('?(-?\d+)'?\)")
CATALOG = """
SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
       obj_description(c.oid, 'pg_class') AS created_at
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass('events')
"""


def partition_log(tx: Tx) -> None:
    """The migration: turn `events` and `deliveries` into partitioned tables, on a hub that
    may already hold events. The existing tables become the first partition (positions up to
    today's head) without being copied: their indexes match the parent's and are adopted; only
    the check that every row lies in its range reads them once. The next partition follows."""
    if tx.dialect != POSTGRESQL:
        return
    head = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))
    end = head + 1
    for table in PARTITIONED:
        old = f"{table}_p0000"
        # The parent takes the table's name and its index names; the old ones step aside.
        for row in tx.query("SELECT indexname FROM pg_indexes WHERE tablename = ? AND "
                            "schemaname = current_schema()", (table,)):
            constraint = tx.scalar(
                "SELECT conname FROM pg_constraint WHERE conindid = to_regclass(?)::oid",
                (row["indexname"],))
            renamed = f"{old}_{row['indexname'].removeprefix(table + '_')}"
            if constraint:
                tx.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{constraint}" '
                           f'TO "{renamed}"')
            else:
                tx.execute(f'ALTER INDEX "{row["indexname"]}" RENAME TO "{renamed}"')
        tx.execute(f"ALTER TABLE {table} RENAME TO {old}")
        tx.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) "
                   "PARTITION BY RANGE (position)")
    tx.execute("ALTER TABLE events ADD PRIMARY KEY (position)")
    tx.execute("ALTER TABLE deliveries ADD UNIQUE (position, target_kind, target)")
    for table, indexes in INDEXES.items():
        for key, definition in indexes.items():
            tx.execute(f"CREATE INDEX {table}_{key} ON {table} {definition}")
    for table in PARTITIONED:  # the old table's own indexes match the parent's: adopted
        tx.execute(f"ALTER TABLE {table} ATTACH PARTITION {table}_p0000 "
                   f"FOR VALUES FROM (MINVALUE) TO ({end})")
    _note_created("events_p0000", utc_now(), tx)
    _create_next(tx, FIRST_SPAN, utc_now())
    log.info("events and deliveries partitioned by position; positions up to %s in p0000",
             head)


def ensure_room(tx: Tx, last_position: int, now: datetime | None = None) -> list[str]:
    """Before positions up to `last_position` are written: create partitions until one holds
    them (the caller holds the writer lock). Normally `maintain` made it long before."""
    if tx.dialect != POSTGRESQL:
        return []
    made = []
    while last_position >= _last(tx)["end_position"]:
        made.append(_create_next(tx, None, now or utc_now()))
    return made


def maintain(tx: Tx, now: datetime | None = None) -> list[str]:
    """Create the next partition once the last one is half full (the projector's step)."""
    if tx.dialect != POSTGRESQL:
        return []
    last = _last(tx)
    head = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))
    if head < (last["first_position"] + last["end_position"]) // 2:
        return []
    return [_create_next(tx, None, now or utc_now())]


def next_span(first: int, end: int, created_at: str | None, head: int, now: datetime) -> int:
    """Positions for the next partition: what the last one took per second since it was
    created, times PARTITION_PERIOD, within [MIN_SPAN, MAX_SPAN]."""
    if not created_at:  # a comment lost (a restore without comments): no rate known
        return FIRST_SPAN
    seconds = (now - from_instant(created_at)).total_seconds()
    used = max(0, min(head, end - 1) - first + 1)
    if seconds <= 0 or used == 0:
        return FIRST_SPAN
    return int(min(MAX_SPAN, max(MIN_SPAN, used / seconds * PARTITION_PERIOD.total_seconds())))


def partitions(tx: Tx) -> list[Row]:
    """The log's partitions, oldest first (empty on SQLite): suffix, first_position,
    end_position (the first one past it), created_at."""
    if tx.dialect != POSTGRESQL:
        return []
    out = []
    for row in tx.query(CATALOG):
        match = BOUND_RE.search(row["bound"] or "")
        if match is None:
            raise RuntimeError(f"partition {row['name']} has bounds {row['bound']!r}; "
                               "expected a range of positions")
        out.append({"suffix": row["name"].removeprefix("events_"),
                    "first_position": int(match.group(1) or 0),
                    "end_position": int(match.group(2)), "created_at": row["created_at"]})
    return sorted(out, key=lambda p: p["first_position"])


def _last(tx: Tx) -> Row:
    found = partitions(tx)
    if not found:
        raise RuntimeError("events has no partitions: the hub's migration core 4 did not run")
    return found[-1]


def _note_created(name: str, now: datetime, tx: Tx) -> None:
    # the creation time, for the next partition's size (a comment: it stays with the table)
    tx.execute(f"COMMENT ON TABLE {name} IS '{to_instant(now)}'")


def _create_next(tx: Tx, span: int | None, now: datetime) -> str:
    last = _last(tx)
    if span is None:
        head = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))
        span = next_span(last["first_position"], last["end_position"], last["created_at"],
                         head, now)
    first = int(last["end_position"])
    suffix = f"p{int(last['suffix'][1:]) + 1:04d}"
    for table, unique in PARTITIONED.items():
        name = f"{table}_{suffix}"
        # Made apart and attached: ATTACH takes a lighter lock on the parent than CREATE
        # ... PARTITION OF, so pulls reading `events` do not wait for it.
        tx.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
        for columns in unique:
            tx.execute(f"CREATE UNIQUE INDEX {name}_{'_'.join(columns)}_key ON {name} "
                       f"({', '.join(columns)})")
        for key, definition in INDEXES[table].items():
            tx.execute(f"CREATE INDEX {name}_{key} ON {name} {definition}")
        tx.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                   f"FOR VALUES FROM ({first}) TO ({first + span})")
    _note_created(f"events_{suffix}", now, tx)
    log.info("log partition %s created for positions %s to %s", suffix, first, first + span - 1)
    return suffix
