"""The sync agent: push this node's events, pull its scope, refresh the trust list.

A resumable state machine with named stages. Progress is saved as it is made (the hub's
acknowledged sequence after each push, the pull cursor in the same transaction as the events
it covers), so a sync cut at any byte resumes without loss or duplication.
"""

from __future__ import annotations

import fcntl
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sync_protocol import wire
from sync_protocol.errors import ProtocolError
from sync_protocol.events import Event, read_event_text
from sync_protocol.hlc import CLOCK_AHEAD
from sync_protocol.timeutil import from_instant, to_instant, utc_now

from ..credentials import NodeCredentials
from ..services.clock import SYSTEM_CLOCK, SystemClock, confirm_clock
from ..store import NodeStore
from ..trust_store import merge_trust_list
from . import metrics
from .client import BatchTooLarge, CursorAhead, HubBusy, HubClient, HubUnreachable
from .read_ahead import ReadAhead

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30  # a healthy node syncs twice a minute; a failure shows at the next one
BACKOFF_BASE_SECONDS = 5
# Retries while the hub is unreachable never wait longer than this, jitter included, so a
# node is back within a minute of the hub's return (a retry is one small signed request).
BACKOFF_MAX_SECONDS = 55
# Each delay is scaled by a random factor in this range: hundreds of nodes coming back
# together must not hit the hub at once, and no delay grows past the cap.
JITTER = (0.5, 1.0)
# The hub's Date header confirms our clock if the two agree within this much.
CLOCK_AGREEMENT_SECONDS = 120
STAGES = ("push", "pull", "trust")


class SyncAgent:
    def __init__(self, store: NodeStore, client: HubClient, credentials: NodeCredentials, *,
                 clock: SystemClock = SYSTEM_CLOCK, rng: random.Random | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        # A node that syncs obeys the hub's rules before it writes (edge_node.rights).
        store.network_rights = True
        self.client = client
        self.credentials = credentials
        self.clock = clock
        self.rng = rng or random.Random()
        self.batch = wire.AdaptiveBatch()
        self._running = threading.Lock()
        self.monotonic = monotonic  # tests drive a fake clock through it
        self.next_attempt = 0.0  # self.monotonic() when the next scheduled run is due

    # -- scheduling -----------------------------------------------------------------------
    def tick(self) -> None:
        """Called every second by the scheduler; runs when due."""
        if self.monotonic() >= self.next_attempt:
            self.run_once()

    def sync_now(self) -> dict:
        """A person asked ("Sync now"): run at once, and start the back-off afresh, so a
        failure is retried soon rather than after the long delay the outage had reached."""
        self._save(failures="0")
        self.next_attempt = 0.0
        return self.run_once()

    def run_once(self) -> dict:
        """One full sync; returns a report. Never raises for network trouble."""
        if not self._running.acquire(blocking=False):
            return {"ok": False, "stage": None, "error": "A sync is already running"}
        try:
            with _process_lock(self.store.path) as held:
                if not held:  # another process of this node (a server worker) is syncing
                    return {"ok": False, "stage": None, "error": "A sync is already running"}
                report = self._run()
            metrics.count_sync(report)
            return report
        finally:
            self._running.release()

    def _run(self) -> dict:
        report: dict[str, Any] = {"ok": False, "pushed": 0, "pulled": 0, "refused": 0,
                                  "stage": None}
        self._save(last_attempt_at=to_instant(utc_now()))
        try:
            for stage in STAGES:
                report["stage"] = stage
                getattr(self, f"_{stage}")(report)
        except HubBusy as e:
            return self._failed(report, e.text, delay=e.retry_after)
        except (HubUnreachable, BatchTooLarge, ProtocolError) as e:
            return self._failed(report, e.text)
        report.update(ok=True, stage=None)
        self._save(last_success_at=to_instant(utc_now()), last_error="", offline_since="",
                   failures="0")
        self.next_attempt = self.monotonic() + INTERVAL_SECONDS
        log.info("sync done: pushed %s, pulled %s, refused %s", report["pushed"],
                 report["pulled"], report["refused"])
        return report

    def _failed(self, report: dict, error: str, delay: float | None = None) -> dict:
        failures = int(self.store.state("sync_failures") or 0) + 1
        if delay is None:
            delay = backoff_delay(failures, self.rng)
        self.next_attempt = self.monotonic() + delay
        self._save(last_error=error, failures=str(failures),
                   offline_since=self.store.state("sync_offline_since") or to_instant(utc_now()))
        log.warning("sync failed at %s: %s (next try in %.0f s)", report["stage"], error, delay)
        return {**report, "error": error, "retry_in_seconds": round(delay, 1)}

    def _save(self, **values: str) -> None:
        with self.store.transaction() as tx:
            for key, value in values.items():
                self.store.set_state(tx.conn, f"sync_{key}", value)

    # -- stages ---------------------------------------------------------------------------
    def _push(self, report: dict) -> None:
        node_id = self.store.node_id
        while True:
            acked = int(self.store.state("sync_acked_seq") or 0)
            events = [e.to_dict() for e in self.store.local_events_after(
                acked, limit=self.batch.max_events)]
            if not events:
                return
            batch = next(self.batch.split(events))
            try:
                response = self.client.push(batch)
            except BatchTooLarge:
                if not self.batch.shrink():
                    raise
                continue
            self.batch.succeeded()
            refused = [r for r in response.results if r.status == wire.REFUSED]
            self._record_refusals(refused, {e["id"]: e for e in batch})
            self._note_clock(refused, accepted=len(batch) - len(refused))
            report["pushed"] += len(batch) - len(refused)
            report["refused"] += len(refused)
            if response.acked_seq < acked:
                # The hub lost events (restored from a backup): resend from where it is.
                log.warning("hub holds %s only up to seq %s; resending from there", node_id,
                            response.acked_seq)
            elif response.acked_seq == acked:
                raise HubUnreachable("The hub acknowledges nothing past sequence %(seq)s of "
                                     "%(node)s", seq=acked, node=node_id)
            self._save(acked_seq=str(response.acked_seq), hub_head=str(response.hub_head))

    def _record_refusals(self, refused: list, batch: dict[str, dict]) -> None:
        if not refused:
            return
        with self.store.transaction() as tx:
            for result in refused:
                event = batch.get(result.id or "", {})
                tx.conn.execute(
                    "INSERT OR REPLACE INTO sync_refusals (event_id, seq, type, code, reason,"
                    " refused_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (result.id or "?", event.get("seq", 0), event.get("type", "?"),
                     result.code, result.reason, to_instant(utc_now())))
        log.warning("the hub refused %s event(s) of this node", len(refused))

    def _note_clock(self, refused: list, accepted: int) -> None:
        """Remember that the hub refused events of this node for a clock far ahead (every
        screen says so until a push goes through without such a refusal)."""
        if any(r.code == CLOCK_AHEAD for r in refused):
            log.warning("the hub refused events of this node: its clock is ahead")
            self._save(clock_refused_at=to_instant(utc_now()))
        elif accepted and self.store.state("sync_clock_refused_at"):
            self._save(clock_refused_at="")

    def _pull(self, report: dict) -> None:
        """Pull and apply pages until the hub's head. The pages after the one being applied
        are fetched and read (each event's envelope, payload schema and hash checked once) on
        other threads meanwhile (edge_node.sync.read_ahead). Only a page applied and
        committed with its cursor counts, so a sync cut anywhere resumes from the cursor."""
        cursor = int(self.store.state("sync_cursor") or 0)
        pages = self._read_ahead(cursor)
        try:
            while True:
                try:
                    response, read = pages.next_page()
                except CursorAhead:
                    # Start over: events already held are recognised by id and skipped.
                    log.warning("pull cursor %s is ahead of the hub; pulling from the start",
                                cursor)
                    pages.close()
                    self._save(cursor="0")
                    cursor = 0
                    pages = self._read_ahead(cursor)
                    continue
                node_id = self.store.node_id  # one read per page, not per event
                theirs = [(event, text) for event, _size, text in read if event.origin != node_id]
                with self.store.transaction() as tx:
                    tx.receive_page([event for event, _ in theirs], [text for _, text in theirs])
                    self.store.set_state(tx.conn, "sync_cursor", str(response.next))
                    self.store.set_state(tx.conn, "sync_hub_head", str(response.head))
                report["pulled"] += len(read)
                if not response.more:
                    return
                cursor = response.next
        finally:
            pages.close()

    def _read_ahead(self, cursor: int) -> ReadAhead[list[tuple[Event, int, str]]]:
        def fetch(after: int) -> wire.PullResponse:
            return self.client.pull(wire.PullQuery(after=after, limit=self.batch.max_events,
                                                   max_bytes=self.batch.max_bytes))

        # The whole page is read before any of it is applied: an event this node cannot read
        # stops the pull with nothing of its page applied, and the cursor stays put. Each
        # payload's canonical text (made for the hash check) is what is stored.
        return ReadAhead(fetch, lambda response: [read_event_text(p.event)
                                                  for p in response.events], cursor)

    def _trust(self, report: dict) -> None:
        merged = merge_trust_list(self.store, self.credentials, self.client.trust_list())
        report["trust_added"] = merged.added_certificates + merged.added_revocations
        hub_time = self.client.last_hub_time
        if hub_time and abs((hub_time - self.clock.wall()).total_seconds()) \
                <= CLOCK_AGREEMENT_SECONDS:
            confirm_clock(self.store, "hub", self.clock)


def backoff_delay(failures: int, rng: random.Random) -> float:
    """Seconds to wait after the n-th failure in a row: doubling from the base, capped, with
    jitter that only shortens (so the cap holds)."""
    exponent = min(max(failures, 1) - 1, 16)  # 2**16 * 5 s is far past the cap already
    return min(BACKOFF_BASE_SECONDS * 2 ** exponent, BACKOFF_MAX_SECONDS) * rng.uniform(*JITTER)


def sync_status(store: NodeStore, configured: bool) -> dict:
    """What every screen shows. "Synced" only when it is provable (DESIGN 7.6)."""
    node_id = store.state("node_id")
    acked = int(store.state("sync_acked_seq") or 0)
    head = store.query("SELECT MAX(seq) AS seq FROM events WHERE origin = ?", (node_id,))[0]
    pending = max(0, (head["seq"] or 0) - acked)
    cursor = int(store.state("sync_cursor") or 0)
    hub_head = int(store.state("sync_hub_head") or 0)
    offline_since = store.state("sync_offline_since") or None
    last_success = store.state("sync_last_success_at") or None
    refused = store.query("SELECT COUNT(*) AS n FROM sync_refusals")[0]["n"]
    failures = store.query("SELECT COUNT(*) AS n FROM apply_failures")[0]["n"]
    online = configured and last_success is not None and offline_since is None
    clock_refused_at = store.state("sync_clock_refused_at") or None
    return {
        "configured": configured, "online": online, "offline_since": offline_since,
        "pending": pending, "last_success_at": last_success,
        "last_error": store.state("sync_last_error") or None,
        "cursor": cursor, "hub_head": hub_head, "refused": refused, "apply_failures": failures,
        "synced": online and pending == 0 and cursor >= hub_head,
        # The hub refused this node's events as dated too far ahead: its clock is wrong.
        "clock_ahead": clock_refused_at is not None, "clock_refused_at": clock_refused_at,
        "seconds_since_success": (int((utc_now() - from_instant(last_success)).total_seconds())
                                  if last_success else None),
    }


@contextmanager
def _process_lock(database: Path) -> Iterator[bool]:
    """Whether this process holds the node's sync lock (a file beside its database): one sync
    at a time even when several server processes share the node."""
    if str(database) == ":memory:":
        yield True
        return
    with open(f"{database}.sync-lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
