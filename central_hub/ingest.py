"""Ingest: a node's pushed batch becomes events in the global log, each judged on its own.

For every pushed item, in order: the envelope, payload schema and own hash
(sync_protocol.events.event_from_dict); the origin is the authenticated node (no one pushes
in another node's name); an id already held is a duplicate (idempotent); the event must
continue its origin's chain as the hub holds it (seq = head + 1, prev_hash = head hash); the
node must have the right to emit it (central_hub.rights) and its clock must not be further
ahead of the hub's than the nodes accept (sync_protocol.hlc.check_not_ahead); then it is
routed (central_hub.routing), stored and given the next global position.

A refused event never blocks the good ones, and what is refused is kept in quarantine with
its reason. Refusals come in two kinds:

- blocking: the event cannot be placed in the chain (broken hash, gap, fork, another node's
  name). The origin's head does not move, so the following events of the batch are refused
  with seq_gap too; the node resends them once the cause is fixed.
- final: the event chains correctly but is refused for what it says (unknown type, invalid
  payload, not the node's right, a clock far ahead). It keeps its place in the chain and the
  head moves on, so one bad event does not stop everything after it; it stays in quarantine
  for people.

Parsing and schema checks run before the writer lock; the decisions and inserts of a batch
run in one transaction under it. On PostgreSQL the hooks (projections, conflicts,
reconciliation) then run in a second transaction under the projector's lock
(`project_pending`): over every node event the log holds past the projector's cursor, in log
order, each exactly once. So one batch is projected while the next is stored, and the writer
lock is held half as long. A push answers once its events are projected (by its own request
or by another that came first). Should the hub stop between the two transactions, the next
push or the next start projects what waits; nothing is lost and nothing projected twice, as
the cursor moves in the same transaction as the projections. SQLite has one writer, so there
the hooks run in the storing transaction, by the same cursor. With `background` (what
`dmed-hub serve` runs) the push answers once stored, on both backends, and the projector's
thread (central_hub.projector) runs the same steps after it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync_protocol.certificates import NodeIdentity
from sync_protocol.errors import EventRejected, PayloadInvalid, UnknownEventType
from sync_protocol.event_names import FACILITY_REGISTERED
from sync_protocol.events import (
    ENVELOPE_FIELDS,
    MAX_EVENT_BYTES,
    Event,
    payload_json,
    read_event_text,
)
from sync_protocol.hlc import ClockAhead, check_not_ahead
from sync_protocol.timeutil import to_instant, utc_now
from sync_protocol.wire import ACCEPTED, DUPLICATE, REFUSED, EventResult, PushResponse

from . import nodes, pending, quarantine
from .quarantine import Refusal
from .rights import HUB_ORIGIN, NotPermitted, check_right
from .routing import Derived, ScopeIndex, Target, row_event
from .storage import Storage, Tx
from .storage.partitions import ensure_room

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("position", "id", "origin", "seq", "hlc", "type", "version", "payload",
                 "prev_hash", "hash", "received_at", "facility_id", "region", "patient_id",
                 "subject_id")
DELIVERY_COLUMNS = ("id", "position", "target_kind", "target", "origin", "until")

# Codes of refusals (besides the leaves of sync_protocol.errors, e.g. bad_hash).
FORGED_ORIGIN = "forged_origin"
SEQ_GAP = "seq_gap"
CHAIN_BROKEN = "chain_broken"
IDENTITY_CONFLICT = "identity_conflict"
ID_CONFLICT = "id_conflict"
HOOK_FAILED = "hook_failed"
# Errors after which the event's own hash still verifies, so it can hold its chain place.
FINAL_PARSE_ERRORS = (UnknownEventType, PayloadInvalid)


@dataclass(frozen=True)
class StoredEvent:
    """What a hook receives for each accepted event."""

    position: int
    event: Event
    node: NodeIdentity | None  # the node that pushed it (its origin); None: the hub's own
    scope: Derived
    received_at: str
    payload_json: str | None = None  # as stored, when made before the writer lock


# Called with node events in log order (a pushed batch, or what waited), inside the projector's
# transaction (so a hook fetches what it needs once per batch); when isolating a failure, once
# per event.
Hook = Callable[[Tx, list[StoredEvent]], None]

# hub_state key: every node event up to this position has been through the hooks.
PROJECTED_THROUGH = "projected_through"
# Events the projector takes per transaction when it works off a backlog.
PROJECT_CHUNK = 5000
# Events stored in one group commit at most (more waiting pushes go in the next group): a
# bound on the transaction, and on how long the first push of a group waits for the last.
GROUP_EVENTS = 5000
# Stored events a process keeps in memory for its projector (a few seconds of peak ingest;
# about 2 KB each).
RECENT_LIMIT = 10_000


@dataclass
class _Push:
    """One push in the queue: what it brought, then its outcome."""

    node: NodeIdentity
    kid: str
    parsed: list[_Item]
    batch: _Batch | None = None  # decided and stored (until the group commits)
    fresh: list[StoredEvent] = field(default_factory=list)
    waiting: bool = False  # stored; its projection runs after the commit
    response: PushResponse | None = None
    error: BaseException | None = None
    finished: bool = False


@dataclass
class _Item:
    raw: Any
    event: Event | None = None  # readable, with a verified own hash
    error: EventRejected | None = None  # why it is refused whatever the chain says
    payload_json: str | None = None


@dataclass(frozen=True)
class _Held:
    """What the hub holds at one seq of the pushing node: an event, or a final refusal."""

    id: str | None
    hash: str
    code: str | None = None  # set: refused for good
    reason: str | None = None


@dataclass
class _Batch:
    """The state of one push while it is decided."""

    node: NodeIdentity
    kid: str
    now: str
    now_ms: int  # the hub's wall clock, for the clock bound
    head_seq: int
    head_hash: str
    position: int  # the last global position handed out
    results: list[EventResult] = field(default_factory=list)
    stored: list[tuple[StoredEvent, list[Target]]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[str, str] = field(default_factory=dict)  # ids held (this node's) -> hash
    by_seq: dict[int, _Held] = field(default_factory=dict)  # this node's seqs <= head


def parse_item(raw: Any) -> _Item:
    """Check one pushed item on its own (no database): envelope, schema, own hash, size."""
    try:
        event, size, payload = read_event_text(raw)
    except FINAL_PARSE_ERRORS as e:
        shell = Event(**{name: raw[name] for name in ENVELOPE_FIELDS})
        if shell.compute_hash() != shell.hash:
            return _Item(raw, error=EventRejected("Event %(id)s does not match its hash",
                                                  field="hash", code="bad_hash", id=shell.id))
        return _Item(raw, shell, e)
    except EventRejected as e:
        return _Item(raw, error=e)
    if size > MAX_EVENT_BYTES:
        return _Item(raw, event, EventRejected("Event is larger than %(limit)s bytes",
                                               code="event_too_large", limit=MAX_EVENT_BYTES))
    return _Item(raw, event, payload_json=payload)


class Ingestor:
    """Judges and stores pushed batches; `on_accepted` hooks run in the same transaction."""

    def __init__(self, storage: Storage, on_accepted: Iterable[Hook] = (),
                 clock: Callable[[], datetime] = utc_now, *, background: bool = False) -> None:
        self.storage = storage
        self.on_accepted = list(on_accepted)
        self.clock = clock
        # True: a push answers once stored; central_hub.projector projects after it.
        self.background = background
        self.on_stored: Callable[[], None] | None = None  # wakes this process's projector
        # Events this process stored and its projector has not passed yet, by position: read
        # back from the database each would cost a row and a JSON decode. Filled after the
        # commit only (a rolled-back position is handed out again), bounded by RECENT_LIMIT.
        self._recent: dict[int, StoredEvent] = {}
        self._recent_lock = threading.Lock()
        self._queue: deque[_Push] = deque()  # pushes waiting to be stored (group commit)
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()  # held by the thread storing a group

    def push(self, node: NodeIdentity, items: Sequence[Any], *, kid: str = "") -> PushResponse:
        """Ingest one batch pushed by `node` (already authenticated); answer per item.

        Pushes that arrive while this process is storing others wait in a queue; the next
        to take the writer lock stores every waiting push, one after the other, in one
        transaction (group commit): each is decided against what the ones before it stored,
        exactly as if it had its own transaction, but the lock and the commit are paid once.
        """
        job = _Push(node, kid, [parse_item(raw) for raw in items])
        with self._queue_lock:
            self._queue.append(job)
        with self._leader:
            while not job.finished:
                self._store_group(self._take_group())
        if job.error is not None:
            raise job.error
        if job.response is None:  # unreachable: a finished push has an answer or an error
            raise RuntimeError("push finished without an answer")
        return job.response

    def _take_group(self) -> list[_Push]:
        """The waiting pushes, oldest first, up to GROUP_EVENTS events (at least one)."""
        with self._queue_lock:
            group, events = [], 0
            while self._queue and (not group or
                                   events + len(self._queue[0].parsed) <= GROUP_EVENTS):
                group.append(self._queue.popleft())
                events += len(group[-1].parsed)
            return group

    def _store_group(self, group: list[_Push]) -> None:
        moment = self.clock()
        try:
            with self.storage.transaction() as tx:
                for job in group:
                    if len(group) == 1:
                        self._store_push(tx, job, moment)
                        continue
                    try:  # one push's failure is its own: the others are stored
                        with tx.savepoint("push"):
                            self._store_push(tx, job, moment)
                    except Exception as e:  # noqa: BLE001 - raised again in its own request
                        job.error, job.batch = e, None
        except BaseException as e:  # the lock or the commit: no push of the group is stored
            for job in group:
                job.error, job.batch, job.finished = job.error or e, None, True
            if not isinstance(e, Exception):
                raise
            return
        waiting = [job for job in group if job.batch is not None and job.waiting]
        if waiting:
            head = self._project_logged([s for job in waiting for s in job.fresh])
            for job in waiting:
                job.batch.position = max(job.batch.position, head)  # type: ignore[union-attr]
        stored = [s for job in group if job.batch is not None and not job.waiting
                  for s in job.fresh]
        if stored and self.on_stored is not None:
            self._remember(stored)
            self.on_stored()
        for job in group:
            batch = job.batch
            if batch is not None:
                accepted = len(batch.stored)
                if accepted or batch.refusals:
                    log.info("push from %s: %s accepted, %s refused, acked seq %s",
                             job.node.node_id, accepted, len(batch.refusals), batch.head_seq)
                job.response = PushResponse(batch.results, batch.head_seq, batch.position)
            job.finished = True

    def _store_push(self, tx: Tx, job: _Push, moment: datetime) -> None:
        """Decide and store one push inside the group's transaction."""
        node, parsed, now = job.node, job.parsed, to_instant(moment)
        row = nodes.record_contact(tx, node, job.kid, now)
        batch = _Batch(node, job.kid, now, int(moment.timestamp() * 1000), row["acked_seq"],
                       row["head_hash"],
                       int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events")))
        first_position = batch.position + 1
        index = ScopeIndex(tx)
        index.load([node], [i.event.payload for i in parsed if i.event and not i.error])
        self._load_held(tx, batch, parsed)
        for item in parsed:
            batch.results.append(self._decide(item, batch, index))
        self._store(tx, batch, index, first_position)
        fresh = [s for s, _ in batch.stored]
        # SQLite has one writer: a second transaction would only wait for it (and cost a
        # commit), so the hooks run in this one.
        waiting = bool(fresh) and not self.background and (
            self.storage.separate_projector or self._project_chunk(tx, fresh))
        if fresh and not waiting:  # projected here; the hooks may have added hub events
            batch.position = int(tx.scalar("SELECT MAX(position) AS p FROM events"))
        job.batch, job.fresh, job.waiting = batch, fresh, waiting

    # -- deciding ---------------------------------------------------------------------------
    @staticmethod
    def _load_held(tx: Tx, batch: _Batch, parsed: list[_Item]) -> None:
        """What the hub already holds for the batch: its ids, and this node's seqs."""
        origin = batch.node.node_id
        ids = [i.event.id for i in parsed if i.event]
        seqs = [i.event.seq for i in parsed if i.event and i.event.seq <= batch.head_seq]
        for row in tx.query_in("SELECT id, hash FROM events WHERE id IN ({ids})", ids):
            batch.by_id[row["id"]] = row["hash"]
        for row in tx.query_in("SELECT id, seq, hash FROM events WHERE seq IN ({ids}) AND "
                               "origin = ?", seqs, (origin,)):
            batch.by_seq[row["seq"]] = _Held(row["id"], row["hash"])
        for seq, row in quarantine.chained_refusals(tx, origin, seqs).items():
            batch.by_seq.setdefault(seq, _Held(row["event_id"], row["hash"], row["code"],
                                               row["reason"]))

    def _decide(self, item: _Item, batch: _Batch, index: ScopeIndex) -> EventResult:
        event, node = item.event, batch.node
        if event is None:
            return self._refuse(batch, item, item.error or EventRejected("Unreadable event"))
        if event.origin != node.node_id:
            return self._refuse(batch, item, EventRejected(
                "Event %(id)s names origin %(origin)s, but node %(node)s pushed it; a node "
                "pushes only its own events", field="origin", code=FORGED_ORIGIN, id=event.id,
                origin=event.origin, node=node.node_id))
        known = batch.by_id.get(event.id)
        if known is not None:
            if known == event.hash:
                return EventResult(event.id, DUPLICATE)
            return self._refuse(batch, item, EventRejected(
                "Event id %(id)s is already held with other content", field="id",
                code=ID_CONFLICT, id=event.id))
        if event.seq <= batch.head_seq:
            return self._behind_head(item, event, batch, batch.by_seq.get(event.seq))
        if event.seq > batch.head_seq + 1:
            return self._refuse(batch, item, EventRejected(
                "Event %(id)s has sequence %(seq)s but the hub holds this node's events up to "
                "%(head)s; send %(expected)s first", field="seq", code=SEQ_GAP, id=event.id,
                seq=event.seq, head=batch.head_seq, expected=batch.head_seq + 1))
        if event.prev_hash != batch.head_hash:
            self._conflict(batch, batch.head_seq, "fork", None, batch.head_hash, None,
                           event.prev_hash)
            return self._refuse(batch, item, EventRejected(
                "Event %(id)s does not chain to event %(seq)s as the hub holds it: this node's "
                "log diverged from what it sent before", field="prev_hash", code=CHAIN_BROKEN,
                id=event.id, seq=batch.head_seq))
        # From here the event holds its place in the chain, accepted or not.
        error = item.error
        if error is None:
            try:
                # The nodes' own bound (hlc.observe): a clock no node would accept is refused
                # here, for good, rather than stored and relayed to be refused everywhere.
                check_not_ahead(event.timestamp, batch.now_ms)
                check_right(event, node, index.facility_ids(node), index.facility_of_subject)
            except (ClockAhead, NotPermitted) as e:
                error = e
        batch.by_seq[event.seq] = _Held(event.id, event.hash, error and error.code,
                                        error and error.text)
        batch.head_seq, batch.head_hash = event.seq, event.hash
        if error is not None:
            return self._refuse(batch, item, error, chained=True)
        batch.by_id[event.id] = event.hash
        batch.position += 1
        derived, targets = index.route(event, node)
        batch.stored.append((StoredEvent(batch.position, event, node, derived, batch.now,
                                         item.payload_json), targets))
        return EventResult(event.id, ACCEPTED)

    def _behind_head(self, item: _Item, event: Event, batch: _Batch,
                     held: _Held | None) -> EventResult:
        if held is not None and held.hash == event.hash:
            if held.code:  # refused for good before: the same answer, one more attempt
                batch.refusals.append(Refusal(batch.node.node_id, item.raw, held.code,
                                              held.reason or "", chained=True))
                return EventResult(event.id, REFUSED, held.code, held.reason)
            return EventResult(event.id, DUPLICATE)
        self._conflict(batch, event.seq, "seq_clash", held.id if held else None,
                       held.hash if held else "", event.id, event.hash)
        return self._refuse(batch, item, EventRejected(
            "Sequence %(seq)s of node %(node)s is already held with another event: two devices "
            "may be using this node's identity", field="seq", code=IDENTITY_CONFLICT,
            seq=event.seq, node=batch.node.node_id))

    @staticmethod
    def _refuse(batch: _Batch, item: _Item, error: EventRejected, *,
                chained: bool = False) -> EventResult:
        raw_id = item.raw.get("id") if isinstance(item.raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
        batch.refusals.append(Refusal(batch.node.node_id, item.raw, error.code, error.text,
                                      chained))
        return EventResult(event_id, REFUSED, error.code, error.text)

    @staticmethod
    def _conflict(batch: _Batch, seq: int, kind: str, held_id: str | None, held_hash: str,
                  presented_id: str | None, presented_hash: str) -> None:
        batch.conflicts.append({"seq": seq, "kind": kind, "held_id": held_id,
                                "held_hash": held_hash, "presented_id": presented_id,
                                "presented_hash": presented_hash})

    # -- storing ----------------------------------------------------------------------------
    def _store(self, tx: Tx, batch: _Batch, index: ScopeIndex, first_position: int) -> None:
        now, node_id = batch.now, batch.node.node_id
        append_routed(tx, batch.stored, index, first_position)
        if batch.refusals:
            quarantine.record(tx, batch.refusals, now)
        if batch.stored:
            quarantine.resolve_accepted(tx, [s.event.id for s, _ in batch.stored], now)
        for conflict in batch.conflicts:
            nodes.record_identity_conflict(tx, node_id, kid=batch.kid, now=now, **conflict)
        error = None
        if batch.refusals:
            first = batch.refusals[0]
            error = (first.code, f"{len(batch.refusals)} event(s) refused; first: {first.reason}")
        nodes.record_push(tx, node_id, acked_seq=batch.head_seq, head_hash=batch.head_hash,
                          accepted=len(batch.stored), now=now, error=error)

    # -- projecting ---------------------------------------------------------------------------
    def catch_up(self) -> None:
        """At start: project what a stop between storing and projecting left waiting."""
        self._project_logged([])

    def _project_logged(self, fresh: list[StoredEvent]) -> int:
        try:
            return self.project_pending(fresh)
        except Exception:  # noqa: BLE001 - the events are stored; the next push projects them
            log.exception("the ingest hooks could not run; the events are stored, and the "
                          "next push or start projects them")
            return 0

    def project_pending(self, fresh: Sequence[StoredEvent] = ()) -> int:
        """Run the hooks over every node event past the projector's cursor, in log order, in
        transactions of at most PROJECT_CHUNK events; return the log's head position.

        `fresh`: events just stored and still in memory, so they are not read back.
        """
        while True:
            with self.storage.transaction(projector=True) as tx:
                more = self._project_chunk(tx, fresh)
            if not more:
                return self._head()

    def _remember(self, fresh: list[StoredEvent]) -> None:
        with self._recent_lock:
            for stored in fresh:
                self._recent[stored.position] = stored
            while len(self._recent) > RECENT_LIMIT:  # the oldest first (insertion order)
                del self._recent[next(iter(self._recent))]

    def _recalled(self, through: int) -> dict[int, StoredEvent]:
        """What this process remembers past `through` (and forget what lies before it)."""
        with self._recent_lock:
            for position in [p for p in self._recent if p <= through]:
                del self._recent[position]
            return dict(self._recent)

    def _project_chunk(self, tx: Tx, fresh: Sequence[StoredEvent]) -> bool:
        """Run the hooks over up to PROJECT_CHUNK events past the cursor and move it on;
        True if more wait."""
        through = projected_through(tx)
        known = self._recalled(through)
        known.update((s.position, s) for s in fresh if s.position > through)
        if known:  # positions and ids first; whole rows only of events not in memory
            heads = tx.query("SELECT position, id FROM events WHERE position > ? AND "
                             "origin <> ? ORDER BY position LIMIT ?",
                             (through, HUB_ORIGIN, PROJECT_CHUNK))
            missing = [r["position"] for r in heads if (held := known.get(r["position"])) is None
                       or held.event.id != r["id"]]
            read = {r["position"]: stored_from_row(r) for r in tx.query_in(
                "SELECT * FROM events WHERE position IN ({ids})", missing)}
            pending = [read.get(r["position"]) or known[r["position"]] for r in heads]
            more = len(heads) == PROJECT_CHUNK
        else:
            rows = tx.query("SELECT * FROM events WHERE position > ? AND origin <> ? "
                            "ORDER BY position LIMIT ?", (through, HUB_ORIGIN, PROJECT_CHUNK))
            pending = [stored_from_row(r) for r in rows]
            more = len(rows) == PROJECT_CHUNK
        if pending:
            self._run_hooks(tx, pending)
            tx.execute("UPDATE hub_state SET value = ?, updated_at = ? WHERE key = ?",
                       (str(pending[-1].position), to_instant(self.clock()), PROJECTED_THROUGH))
        return more

    def _head(self) -> int:
        with self.storage.reader() as tx:
            return int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))

    def _run_hooks(self, tx: Tx, stored: list[StoredEvent]) -> None:
        """Each hook over all of `stored`; if one fails, again event by event to isolate it."""
        if not self.on_accepted:
            return
        try:
            with tx.savepoint("hooks"):
                for hook in self.on_accepted:
                    hook(tx, stored)
            return
        except Exception:  # noqa: BLE001 - isolated below, then recorded
            log.warning("an ingest hook failed; retrying event by event to isolate it")
        failed = []
        for one in stored:
            for hook in self.on_accepted:
                try:
                    with tx.savepoint("hook"):
                        hook(tx, [one])
                except Exception as e:  # noqa: BLE001 - a projection bug must not lose events
                    name = getattr(hook, "__qualname__", repr(hook))
                    log.exception("hook %s failed on event %s", name, one.event.id)
                    # the pushing node is the origin: no one pushes another's events
                    failed.append(Refusal(one.event.origin, one.event.to_dict(),
                                          HOOK_FAILED, f"{name}: {e}"[:2000]))
        quarantine.record(tx, failed, to_instant(self.clock()))


def append_routed(tx: Tx, stored: list[tuple[StoredEvent, list[Target]]], index: ScopeIndex,
                  first_position: int) -> None:
    """Insert routed events and their deliveries, then the index changes and backfills.

    The caller holds the writer lock and gave the events positions from first_position on.
    """
    if stored:
        ensure_room(tx, stored[-1][0].position)
    tx.append_rows("events", EVENT_COLUMNS, [_event_row(s) for s, _ in stored])
    delivery = int(tx.scalar("SELECT COALESCE(MAX(id), 0) AS d FROM deliveries"))
    rows, routed = [], set()
    for event, targets in stored:
        for target in targets:
            delivery += 1
            rows.append((delivery, event.position, target.kind, target.target,
                         event.event.origin, target.until))
            routed.add((event.position, target.kind, target.target))
    tx.append_rows("deliveries", DELIVERY_COLUMNS, rows)
    index.write()
    fresh, older = [], []  # for this batch's events, `routed` knows every row there is
    batch = [(s.position, s.event.type, s.scope.patient_id, s.event.origin) for s, _ in stored]
    for position, target, origin in index.backfill(first_position, batch):
        if (position, target.kind, target.target) not in routed:
            routed.add((position, target.kind, target.target))
            delivery += 1
            row = (delivery, position, target.kind, target.target, origin, target.until)
            (fresh if position >= first_position else older).append(row)
    tx.append_rows("deliveries", DELIVERY_COLUMNS, fresh)
    tx.insert_many("deliveries", DELIVERY_COLUMNS, older,
                   "ON CONFLICT (position, target_kind, target) DO NOTHING")
    # Each node's pending counter follows the feed in this transaction (central_hub.pending).
    registered = [(s.event.payload["code"], s.event.payload["region"]) for s, _ in stored
                  if s.event.type == FACILITY_REGISTERED]
    pending.count_appended(tx, registered, rows + fresh, older)


def projected_through(tx: Tx) -> int:
    """The projector's cursor: every node event up to here has been through the hooks (the
    log's head, unless pushes are being projected or a stop left some waiting)."""
    return int(tx.scalar("SELECT value FROM hub_state WHERE key = ?", (PROJECTED_THROUGH,)) or 0)


def stored_from_row(row: dict[str, Any]) -> StoredEvent:
    """An event of the log as the hooks receive it (read back, for the projector)."""
    payload = row["payload"]
    return StoredEvent(row["position"], row_event(row), None,
                       Derived(row["facility_id"], row["region"], row["patient_id"],
                               row["subject_id"]), row["received_at"],
                       payload if isinstance(payload, str) else None)


def _event_row(stored: StoredEvent) -> tuple:
    event, scope = stored.event, stored.scope
    return (stored.position, event.id, event.origin, event.seq, event.hlc, event.type,
            event.version, stored.payload_json or payload_json(event.payload),
            event.prev_hash, event.hash, stored.received_at, scope.facility_id, scope.region,
            scope.patient_id, scope.subject_id)
