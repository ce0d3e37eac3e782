"""Prometheus plumbing the hub and the node share: multiprocess mode for servers that fork
workers, the exposition of one scrape, and who may read it.

Both servers fork worker processes (sync_protocol.workers); a counter kept in one worker's
memory would show a different value on every scrape. In multiprocess mode prometheus-client
keeps each process's values in files under PROMETHEUS_MULTIPROC_DIR and a scrape adds them
up. The directory belongs to one server run: it is emptied when the server starts, or the
counts of a previous run would be added to this one's.

Gauges that describe the database (a node's acknowledged sequence, open conflicts) are read
from it at scrape time by a collector, never kept in process memory: every worker then
reports the same truth.
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# `_created` series say when a process made a counter: noise across workers, and absent in
# multiprocess mode anyway; one shape in both modes.
disable_created_metrics()

ENV = "PROMETHEUS_MULTIPROC_DIR"
LOOPBACK = ("127.0.0.1", "::1")
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Request latency buckets in seconds: pages and syncs take milliseconds to a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)


def enable_multiprocess(directory: str | Path) -> Path:
    """Empty `directory` and make metrics created from now on (and in processes forked from
    this one) write their values there. Call before forking the workers."""
    path = Path(directory)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    os.environ[ENV] = str(path)
    # prometheus-client chooses its value class when imported; labelled metrics create their
    # values on first use, so choosing again here covers every child made after this call.
    values.ValueClass = values.get_value_class()
    log.info("prometheus multiprocess directory %s", path)
    return path


def metrics_dir(server: str, port: int) -> Path:
    """This run's directory: PROMETHEUS_MULTIPROC_DIR if the operator set one, else one per
    server and port under the system's temporary directory (two servers never share one)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return Path(tempfile.gettempdir()) / f"dmed-{server}-metrics-{port}-{os.getuid()}"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(ENV)) and Path(os.environ[ENV]).is_dir()


def exposition(local: Iterable[Collector], database: Iterable[Collector]) -> bytes:
    """One scrape: the process metrics (`local`, or every worker's files in multiprocess
    mode) and the database collectors."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        MultiProcessCollector(registry)
    else:
        for collector in local:
            registry.register(collector)
    for collector in database:
        registry.register(collector)
    return generate_latest(registry)


def may_scrape(remote_addr: str | None, authorization: str, token: str) -> bool:
    """Loopback clients may scrape; others only with the configured bearer token."""
    if token:
        given = authorization.removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return remote_addr in LOOPBACK


class CallbackCollector(Collector):
    """A collector whose metric families come from a function (a database read)."""

    def __init__(self, produce: Callable[[], Iterable]) -> None:
        self.produce = produce

    def collect(self) -> Iterator[Any]:
        yield from self.produce()
