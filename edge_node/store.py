"""The node's local store: one SQLite file in WAL mode, one write path, an append-only log.

Every change goes through ``NodeStore.transaction()``: one ``BEGIN IMMEDIATE`` transaction,
under one process-wide lock, that appends the event and applies it to the projection tables.
Web requests and background jobs (the sync agent, the SMS sender) share this single path, so
they never fight over the file and an event is never recorded without its effect, or the
other way round.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sync_protocol.errors import ProtocolError
from sync_protocol.event_types import latest_version
from sync_protocol.events import GENESIS_HASH, Event, seal
from sync_protocol.hlc import ZERO, HlcTimestamp, HybridLogicalClock, wall_clock_ms
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import to_instant, utc_now

from . import projections
from .errors import NodeNotInitialised
from .migrations import PROJECTION_TABLES, migrate
from .rights import check_local_event

log = logging.getLogger(__name__)

# Seconds a writer waits for the file lock held by another process (a CLI next to the server).
BUSY_TIMEOUT_MS = 10_000
# Ids per `id IN (...)` look-up: well under SQLite's bound parameters (999 before 3.32).
ID_LOOKUP_CHUNK = 500
# The log's payload text (sorted keys, as _insert_event writes it), with one encoder for all.
_payload_text = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a write the UI confirmed survives a power cut, which Raspberry Pis see often.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Transaction:
    """One open write transaction; services query and append through it."""

    def __init__(self, store: NodeStore, conn: sqlite3.Connection) -> None:
        self.store = store
        self.conn = conn
        self.events: list[Event] = []

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def append(self, event_type: str, payload: Mapping[str, Any]) -> Event:
        """Validate, seal and record a local event, and apply it to the projections."""
        payload = dict(payload)  # the builders' typed dicts, or a plain dict: sealed as a dict
        node_id = self.store.node_id
        if self.store.network_rights:  # refuse now what the hub would refuse for ever
            check_local_event(self.conn, event_type, payload)
        # Another process (a CLI beside the server) may have written since: never go below it.
        persisted = self.one("SELECT value FROM node_state WHERE key = 'hlc_last'")
        if persisted is not None:
            self.store.clock.catch_up(HlcTimestamp.parse(persisted["value"]))
        head = self.one("SELECT seq, hash FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                        (node_id,))
        event = seal(
            id=new_ulid(), origin=node_id, seq=(head["seq"] + 1) if head else 1,
            hlc=self.store.clock.now(), type=event_type, version=latest_version(event_type),
            payload=payload, prev_hash=head["hash"] if head else GENESIS_HASH,
        )
        self._record(event)
        return event

    def _record(self, event: Event) -> None:
        _insert_event(self.conn, event)
        projections.apply(self.conn, event)
        self.store.set_state(self.conn, "hlc_last", str(self.store.clock.last))
        self.events.append(event)

    def receive(self, event: Event) -> str:
        """Record an event from another node: 'applied', 'duplicate' or 'quarantined'.

        A remote event this node cannot apply is still kept in the log (it happened), and
        the failure is recorded for staff to see; it never blocks the events after it.
        """
        if self.one("SELECT 1 FROM events WHERE id = ?", (event.id,)):
            return "duplicate"
        try:
            self.store.clock.observe(event.timestamp)
        except ProtocolError as e:
            _insert_event(self.conn, event)
            _record_failure(self.conn, event, e.text, CLOCK_REFUSED)
            return "quarantined"
        _insert_event(self.conn, event)
        outcome = _project_isolated(self.conn, event)
        self.store.set_state(self.conn, "hlc_last", str(self.store.clock.last))
        return outcome

    def receive_page(self, events: Sequence[Event],
                     payloads: Sequence[str] | None = None) -> list[str]:
        """Record a page of events from other nodes, in order: one outcome per event, the
        same as ``receive`` gives each (a page is the unit of a catch-up, so this does per
        page what ``receive`` does per event: one duplicate look-up, one clock merge, one
        insert of the log rows, and one savepoint around the projections). ``payloads``: each
        event's payload as JSON text, if the caller has it (the canonical text its hash was
        checked on), so it is not encoded again.

        If one event cannot be projected, the page's projections are undone and redone one
        event at a time, so the bad event is quarantined alone and the good ones apply.
        """
        known = self._known_ids([event.id for event in events])
        outcomes: list[str] = []
        fresh: list[Event] = []
        texts: list[str] = []
        for index, event in enumerate(events):
            if event.id in known:
                outcomes.append("duplicate")
                continue
            known.add(event.id)  # the same event twice in one page
            fresh.append(event)
            texts.append(payloads[index] if payloads is not None
                         else _payload_text(event.payload))
            outcomes.append("applied")
        if not fresh:
            return outcomes
        refused = self._observe_clocks(fresh)
        _insert_events(self.conn, fresh, texts)
        for event in fresh:
            if event.id in refused:
                _record_failure(self.conn, event, refused[event.id], CLOCK_REFUSED)
        projectable = [event for event in fresh if event.id not in refused]
        quarantined = set(refused)
        if not _project_together(self.conn, projectable):
            quarantined.update(event.id for event in projectable
                               if _project_isolated(self.conn, event) == "quarantined")
        self.store.set_state(self.conn, "hlc_last", str(self.store.clock.last))
        # The first copy of an event carries its outcome (a repeat is already 'duplicate').
        return ["quarantined" if outcome == "applied" and event.id in quarantined else outcome
                for event, outcome in zip(events, outcomes, strict=True)]

    def _known_ids(self, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(ids), ID_LOOKUP_CHUNK):
            chunk = ids[start:start + ID_LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            known.update(row[0] for row in self.conn.execute(
                f"SELECT id FROM events WHERE id IN ({marks})", chunk))  # noqa: S608 - marks
        return known

    def _observe_clocks(self, events: list[Event]) -> dict[str, str]:
        """Merge the page's clocks into this node's; return the ids of the events refused
        for a clock too far ahead, with the reason. Clock strings sort in time order, so
        observing the latest one alone merges them all; only if it is refused is each one
        observed in turn, to tell the bad ones from the good."""
        clock = self.store.clock
        try:
            clock.observe(HlcTimestamp.parse(max(event.hlc for event in events)))
        except ProtocolError:
            pass
        else:
            return {}
        refused: dict[str, str] = {}
        for event in events:
            try:
                clock.observe(event.timestamp)
            except ProtocolError as e:
                refused[event.id] = e.text
        return refused


class NodeStore:
    def __init__(self, path: Path | str, *, wall=wall_clock_ms) -> None:
        self.path = Path(path)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._writer = connect(self.path)
        migrate(self._writer, to_instant(utc_now()))
        self.clock = HybridLogicalClock(self._last_clock(), wall=wall)
        # Set when the node syncs with a hub (the sync agent does): local events must then
        # pass the hub's rules (edge_node.rights); a stand-alone node is its own authority.
        self.network_rights = False

    # -- identity -------------------------------------------------------------------------
    @property
    def node_id(self) -> str:
        value = self.state("node_id")
        if value is None:
            raise NodeNotInitialised("This node has no identity yet; run dmed-node init")
        return value

    @property
    def facility_id(self) -> str:
        """The facility this node serves (set when its facility is registered on it)."""
        value = self.state("facility_id")
        if value is None:
            raise NodeNotInitialised("This node has no facility yet")
        return value

    def initialise(self, node_id: str, facility_id: str | None = None) -> None:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            self.set_state(self._writer, "node_id", node_id)
            if facility_id:
                self.set_state(self._writer, "facility_id", facility_id)
            self._writer.execute("COMMIT")

    def state(self, key: str) -> str | None:
        row = self.reader().execute("SELECT value FROM node_state WHERE key = ?",
                                    (key,)).fetchone()
        return row["value"] if row else None

    @staticmethod
    def set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT INTO node_state (key, value) VALUES (?, ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def _last_clock(self) -> HlcTimestamp:
        """The highest clock this node ever issued or saw, so a restart never goes back."""
        row = self._writer.execute("SELECT value FROM node_state WHERE key = 'hlc_last'").fetchone()
        persisted = HlcTimestamp.parse(row["value"]) if row else ZERO
        top = self._writer.execute("SELECT MAX(hlc) FROM events").fetchone()[0]
        return max(persisted, HlcTimestamp.parse(top) if top else ZERO)

    # -- reading and writing ----------------------------------------------------------------
    def reader(self) -> sqlite3.Connection:
        """A connection of this thread's own; WAL lets it read while a write is open."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.reader().execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.reader().execute(sql, params).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            tx = Transaction(self, self._writer)
            try:
                yield tx
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
        for event in tx.events:
            log.debug("recorded %s %s seq=%s", event.type, event.id, event.seq)

    # -- the log ----------------------------------------------------------------------------
    def events(self, origin: str | None = None, after_position: int = 0,
               limit: int | None = None) -> list[Event]:
        sql = "SELECT * FROM events WHERE position > ?"
        params: list[Any] = [after_position]
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        sql += " ORDER BY position"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [row_to_event(row) for row in self.query(sql, tuple(params))]

    def local_events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        """This node's own events after ``seq``, in sequence order (what a push sends)."""
        rows = self.query("SELECT * FROM events WHERE origin = ? AND seq > ? ORDER BY seq"
                          " LIMIT ?", (self.node_id, seq, limit))
        return [row_to_event(row) for row in rows]

    def rebuild_projections(self) -> int:
        """Empty every projection and re-apply the log in its order; return the count.

        Events refused before applying (a clock too far ahead) stay out, as they did live.
        """
        with self.transaction() as tx:
            for table in PROJECTION_TABLES:
                tx.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            rows = tx.query("SELECT * FROM events WHERE id NOT IN (SELECT event_id FROM "
                            "apply_failures WHERE kind = ?) ORDER BY position",
                            (CLOCK_REFUSED,))
            for row in rows:
                _project_isolated(tx.conn, row_to_event(row))
        return len(rows)

    def close(self) -> None:
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _insert_event(conn: sqlite3.Connection, event: Event) -> None:
    conn.execute(
        "INSERT INTO events (id, origin, seq, hlc, type, version, payload, prev_hash, hash,"
        " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event.id, event.origin, event.seq, event.hlc, event.type, event.version,
         json.dumps(event.payload, sort_keys=True, ensure_ascii=False), event.prev_hash,
         event.hash, to_instant(utc_now())),
    )


def _insert_events(conn: sqlite3.Connection, events: list[Event], payloads: list[str]) -> None:
    recorded_at = to_instant(utc_now())
    conn.executemany(
        "INSERT INTO events (id, origin, seq, hlc, type, version, payload, prev_hash, hash,"
        " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(event.id, event.origin, event.seq, event.hlc, event.type, event.version, payload,
          event.prev_hash, event.hash, recorded_at)
         for event, payload in zip(events, payloads, strict=True)],
    )


def _project_together(conn: sqlite3.Connection, events: list[Event]) -> bool:
    """Apply events inside one savepoint; on a failure undo them all and return False."""
    conn.execute("SAVEPOINT project_page")
    try:
        projections.apply_all(conn, events)
    except (sqlite3.IntegrityError, ProtocolError, KeyError, ValueError) as e:
        log.info("a page did not apply in one go (%s: %s); applying it event by event",
                 type(e).__name__, e)
        conn.execute("ROLLBACK TO SAVEPOINT project_page")
        conn.execute("RELEASE SAVEPOINT project_page")
        return False
    conn.execute("RELEASE SAVEPOINT project_page")
    return True


def _project_isolated(conn: sqlite3.Connection, event: Event) -> str:
    """Apply one event inside a savepoint, so a failure undoes only its own effects."""
    conn.execute("SAVEPOINT project_event")
    try:
        projections.apply(conn, event)
    except (sqlite3.IntegrityError, ProtocolError, KeyError, ValueError) as e:
        conn.execute("ROLLBACK TO SAVEPOINT project_event")
        conn.execute("RELEASE SAVEPOINT project_event")
        _record_failure(conn, event, f"{type(e).__name__}: {e}")
        return "quarantined"
    conn.execute("RELEASE SAVEPOINT project_event")
    return "applied"


APPLY_FAILED, CLOCK_REFUSED = "apply", "clock"  # apply_failures.kind


def _record_failure(conn: sqlite3.Connection, event: Event, reason: str,
                    kind: str = APPLY_FAILED) -> None:
    log.warning("could not apply %s %s from %s: %s", event.type, event.id, event.origin, reason)
    conn.execute("INSERT OR REPLACE INTO apply_failures (event_id, origin, type, reason,"
                 " failed_at, kind) VALUES (?, ?, ?, ?, ?, ?)",
                 (event.id, event.origin, event.type, reason[:500], to_instant(utc_now()), kind))


def row_to_event(row: sqlite3.Row) -> Event:
    return Event(id=row["id"], origin=row["origin"], seq=row["seq"], hlc=row["hlc"],
                 type=row["type"], version=row["version"], payload=json.loads(row["payload"]),
                 prev_hash=row["prev_hash"], hash=row["hash"])
