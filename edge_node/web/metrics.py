"""The node's Prometheus metrics and its /metrics endpoint (sync outcomes are counted by
the agent itself, edge_node.sync.metrics).

Latencies and sync outcomes are counted per process (multiprocess files when the node serves
with workers; the sync agent runs in the supervising process and writes there too); pending
events, the last successful sync and free disk are read at scrape time. Labels are bounded:
the screen group (a blueprint name), the verdict code, the sync outcome. Never a patient.
"""

from __future__ import annotations

import logging
import shutil
import time

from flask import Flask, Response, abort, g, request
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily

from sync_protocol import metrics_export
from sync_protocol.timeutil import from_instant

from ..sync.metrics import SYNC_OUTCOMES

log = logging.getLogger(__name__)

NS = "dmed_node"
# Endpoints where a scanned code becomes a verdict: the counter screen and the JSON API.
SCAN_ENDPOINTS = frozenset({"counter.scan", "rx.verify"})
# Scans answer in tens of milliseconds; the buckets resolve that range finely.
SCAN_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)

PAGE_LATENCY = Histogram(f"{NS}_request_duration_seconds", "Request latency by screen group "
                         "(blueprint)", ("group",), buckets=metrics_export.LATENCY_BUCKETS,
                         registry=None)
SCAN_LATENCY = Histogram(f"{NS}_scan_to_verdict_seconds", "From a scanned code's arrival to "
                         "its verdict", ("source",), buckets=SCAN_BUCKETS, registry=None)
LOCAL = (PAGE_LATENCY, SCAN_LATENCY, SYNC_OUTCOMES)


class NodeCollector:
    """Pending events, last success and free disk, read from the store at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from ..sync.agent import sync_status
        from .context import STORE_KEY, SYNC_AGENT_KEY

        store = self.app.extensions[STORE_KEY]
        status = sync_status(store, SYNC_AGENT_KEY in self.app.extensions)
        pending = GaugeMetricFamily(f"{NS}_pending_events", "Own events not yet acknowledged "
                                    "by the hub")
        pending.add_metric((), status["pending"])
        yield pending
        if status["last_success_at"]:
            last = GaugeMetricFamily(f"{NS}_last_sync_success_timestamp_seconds",
                                     "When the last full sync succeeded (Unix time)")
            last.add_metric((), from_instant(status["last_success_at"]).timestamp())
            yield last
        offline = GaugeMetricFamily(f"{NS}_hub_unreachable", "1 while the hub is unreachable")
        offline.add_metric((), int(status["offline_since"] is not None))
        yield offline
        disk = GaugeMetricFamily(f"{NS}_disk_free_bytes", "Free space where the database is")
        disk.add_metric((), shutil.disk_usage(store.path.parent).free)
        yield disk


def init_app(app: Flask) -> None:
    collector = NodeCollector(app)

    @app.get("/metrics")
    def metrics() -> Response:
        if not metrics_export.may_scrape(request.remote_addr,
                                         request.headers.get("Authorization", ""),
                                         app.config["METRICS_TOKEN"]):
            abort(403)
        return Response(metrics_export.exposition(LOCAL, (collector,)),
                        content_type=metrics_export.CONTENT_TYPE)

    @app.before_request
    def start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is None or request.endpoint == "metrics":
            return response
        elapsed = time.perf_counter() - started
        PAGE_LATENCY.labels(request.blueprint or "other").observe(elapsed)
        if request.endpoint in SCAN_ENDPOINTS and request.method == "POST":
            SCAN_LATENCY.labels(request.endpoint.split(".")[0]).observe(elapsed)
        return response
