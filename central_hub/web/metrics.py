"""The hub's Prometheus metrics and its /metrics endpoint.

Counters and histograms of requests are kept per process (multiprocess files when serving
with workers, sync_protocol.metrics_export); everything about nodes, conflicts, quarantine
and the projector is read from the database at scrape time, so every worker tells the same.
Labels are bounded: node, region, kind, outcome, reason codes; never a PINFL or patient id.

The sync API's views call `count_push` and `note_pulled` (one line each); timing, outcomes,
refused unauthenticated requests and the history rows come from hooks on the app.
"""

from __future__ import annotations

import collections
import logging
import time
from datetime import datetime
from typing import Any

from flask import Flask, Response, abort, g, request
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from sync_protocol import metrics_export
from sync_protocol.request_signing import HEADER_TIME
from sync_protocol.wire import ACCEPTED, REFUSED

from .. import monitoring
from ..ingest import projected_through

log = logging.getLogger(__name__)

NS = "dmed_hub"
SYNC_KINDS = {"sync.push": "push", "sync.pull": "pull", "sync.trust": "trust"}
# Refusals of a request whose signer was not established (sync_protocol.request_signing).
AUTH_CODES = frozenset({"untrusted", "malformed_auth", "clock_skew", "unknown_key", "revoked",
                        "bad_signature", "replayed"})
# Refusal codes become label values; anything else is counted as "other" (bounded labels).
MAX_REASON_LENGTH = 40

REQUESTS = Counter(f"{NS}_sync_requests_total", "Sync requests by kind and outcome",
                   ("kind", "outcome"), registry=None)
LATENCY = Histogram(f"{NS}_sync_request_duration_seconds", "Sync request latency by kind",
                    ("kind",), buckets=metrics_export.LATENCY_BUCKETS, registry=None)
EVENTS = Counter(f"{NS}_events_total", "Pushed events by verdict: accepted, duplicate, "
                 "refused (with the reason code)", ("status", "reason"), registry=None)
UNAUTHENTICATED = Counter(f"{NS}_unauthenticated_refusals_total", "Sync requests refused "
                          "before a node was authenticated, by reason", ("reason",),
                          registry=None)
LOCAL = (REQUESTS, LATENCY, EVENTS, UNAUTHENTICATED)


def _reason(code: str | None) -> str:
    code = (code or "other")[:MAX_REASON_LENGTH]
    return code if code.replace("_", "").isalnum() else "other"


def count_push(result: Any) -> None:
    """Count a push's verdicts (called by the push view with the ingest result)."""
    verdicts = collections.Counter(
        (item.status, _reason(item.code) if item.status == REFUSED else "")
        for item in result.results)
    for (status, reason), count in verdicts.items():  # a label look-up per kind, not per event
        EVENTS.labels(status, reason).inc(count)
    g.monitor_events = verdicts[(ACCEPTED, "")]


def note_pulled(count: int) -> None:
    g.monitor_events = count


# -- the scrape --------------------------------------------------------------------------

def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NS}_{name}", doc, labels=list(labels))


class FleetCollector:
    """What the database says, read at each scrape (Prometheus scrapes every 15-30 s)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        current = self.app.extensions["dmed_hub"]
        yield from self._read(current, current.now())

    def _read(self, current: Any, now: datetime) -> list:
        from ..nodes import list_nodes

        settings = monitoring.HistorySettings.from_config(current.config)
        rows = list_nodes(current.storage, now)
        reports = monitoring.node_reports(current.storage)
        trust = current.trust.trust_list if current.trust.initialised else None
        labels = ("node", "region", "kind")
        fam = {name: _gauge(name, doc, labels) for name, doc in (
            ("node_acked_sequence", "Highest sequence of the node's own log the hub holds"),
            ("node_pending_events", "Events waiting at the hub for the node to pull"),
            ("node_last_push_timestamp_seconds", "When the node last pushed (Unix time)"),
            ("node_last_pull_timestamp_seconds", "When the node last pulled (Unix time)"),
            ("node_seconds_since_contact", "Seconds since the hub last heard from the node"),
            ("node_silent", "1 when the node missed two sync intervals"),
            ("node_clock_offset_seconds", "The node's clock minus the hub's, last request"),
            ("node_certificate_expiry_timestamp_seconds", "When the node's certificate "
             "expires (Unix time)"),
        )}
        fam["node_state"] = _gauge("node_state", "1 for the node's current state",
                                   (*labels, "state"))
        for row in rows:
            key = (row["node_id"], row["region"], row["kind"])
            state = monitoring.node_state(row, now, settings)
            fam["node_acked_sequence"].add_metric(key, row["acked_seq"])
            fam["node_pending_events"].add_metric(key, row["pending"])
            for column, name in (("last_push_at", "node_last_push_timestamp_seconds"),
                                 ("last_pull_at", "node_last_pull_timestamp_seconds")):
                if row[column]:
                    fam[name].add_metric(key, _unix(row[column]))
            fam["node_seconds_since_contact"].add_metric(key, state["silent_seconds"])
            fam["node_silent"].add_metric(key, int(state["state"] == monitoring.OFFLINE))
            for each in monitoring.STATES:
                fam["node_state"].add_metric((*key, each), int(state["state"] == each))
            report = reports.get(row["node_id"])
            if report and report["clock_offset_s"] is not None:
                fam["node_clock_offset_seconds"].add_metric(key, report["clock_offset_s"])
            cert = trust.get(bytes.fromhex(row["cert_kid"])) if trust else None
            if cert is not None:
                fam["node_certificate_expiry_timestamp_seconds"].add_metric(
                    key, cert.not_valid_after_utc.timestamp())
        return [*fam.values(), *self._hub_families(current, now)]

    def _hub_families(self, current: Any, now: datetime) -> list:
        with current.storage.reader() as tx:
            head = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))
            through = projected_through(tx)
            oldest = tx.scalar("SELECT MIN(received_at) AS t FROM events WHERE position > ?",
                               (through,))
            conflicts = tx.query("SELECT kind, COUNT(*) AS n, MIN(detected_at) AS oldest "
                                 "FROM hub_conflicts WHERE state = 'open' GROUP BY kind")
            quarantined = int(tx.scalar("SELECT COUNT(*) AS n FROM quarantine WHERE "
                                        "resolved_at IS NULL"))
        lag_events = _gauge("projection_lag_events", "Stored events not yet projected")
        lag_events.add_metric((), head - through)
        lag_seconds = _gauge("projection_lag_seconds", "Age of the oldest unprojected event")
        lag_seconds.add_metric((), max(0.0, (now.timestamp() - _unix(oldest))) if oldest else 0)
        open_conflicts = _gauge("open_conflicts", "Conflicts waiting for review", ("kind",))
        oldest_open = _gauge("oldest_open_conflict_age_seconds", "Age of the oldest open "
                             "conflict", ("kind",))
        for row in conflicts:
            open_conflicts.add_metric((row["kind"],), row["n"])
            oldest_open.add_metric((row["kind"],),
                                   max(0.0, now.timestamp() - _unix(row["oldest"])))
        quarantine = _gauge("quarantined_events", "Refused events kept in quarantine, "
                            "not yet resolved")
        quarantine.add_metric((), quarantined)
        log_head = _gauge("log_head_position", "Position of the newest event in the hub's log")
        log_head.add_metric((), head)
        return [lag_events, lag_seconds, open_conflicts, oldest_open, quarantine, log_head]


def _unix(instant: str) -> float:
    from sync_protocol.timeutil import from_instant
    return from_instant(instant).timestamp()


# -- wiring ------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    collector = FleetCollector(app)
    sampler = app.extensions[monitoring.SAMPLER] = monitoring.Sampler()

    @app.get("/metrics")
    def metrics() -> Response:
        current = app.extensions["dmed_hub"]
        if not metrics_export.may_scrape(request.remote_addr,
                                         request.headers.get("Authorization", ""),
                                         current.config["METRICS_TOKEN"]):
            abort(403)
        body = metrics_export.exposition(LOCAL, (collector,))
        return Response(body, content_type=metrics_export.CONTENT_TYPE)

    @app.before_request
    def start_timer() -> None:
        if request.endpoint in SYNC_KINDS:
            g.monitor_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        kind = SYNC_KINDS.get(request.endpoint or "")
        if kind is None or "monitor_started" not in g:
            return response
        elapsed = time.perf_counter() - g.monitor_started
        outcome = "ok" if response.status_code < 400 else _error_code(response)
        REQUESTS.labels(kind, outcome).inc()
        LATENCY.labels(kind).observe(elapsed)
        if outcome in AUTH_CODES:  # nobody established: counted, no node's history
            UNAUTHENTICATED.labels(outcome).inc()
            return response
        if response.status_code == 503:  # turned away before reading: no node to note
            return response
        _record(app, sampler, kind, outcome, elapsed, response)
        return response


def _record(app: Flask, sampler: monitoring.Sampler, kind: str, outcome: str,
            elapsed: float, response: Response) -> None:
    current = app.extensions["dmed_hub"]
    # Only a request whose signature proved its node goes into that node's history: a stranger
    # naming a node in a header (a 413 or a junk body answered before any check) writes nothing.
    node_id = g.get("authenticated_node")
    if not node_id:
        return
    now = current.now()
    offset = None
    try:
        offset = round(float(request.headers.get(HEADER_TIME, "")) - now.timestamp(), 3)
    except ValueError:
        pass
    settings = monitoring.HistorySettings.from_config(current.config)
    try:
        monitoring.record_attempt(
            current.storage, node_id=node_id, kind=kind, outcome=outcome,
            events=int(g.get("monitor_events", 0)), duration_ms=int(elapsed * 1000),
            clock_offset=offset if response.status_code < 400 else None,
            user_agent=request.headers.get("User-Agent", ""), now=now)
        sampler.sample_if_due(current.storage, now, settings)
    except Exception:  # noqa: BLE001 - history must never fail a sync that succeeded
        log.exception("could not record the sync attempt of %s", node_id)


def _error_code(response: Response) -> str:
    body = response.get_json(silent=True) or {}
    error = body.get("error") if isinstance(body, dict) else None
    return _reason(error.get("code") if isinstance(error, dict) else None)
