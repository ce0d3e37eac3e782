"""How the node's web server runs: waitress with the options every entry point shares
(``dmed-node serve``, ``make demo`` and bench/bench_ui.py), so the benchmark times what is
deployed; with ``workers`` > 1, in that many processes sharing one listening socket.

Pages are CPU-bound Python and one process runs one thread at a time, so a node with more
than one core (a Raspberry Pi has four) serves more pages, with shorter queues, from more
processes. What a worker keeps in memory is a cache of the database (the status banner, for
at most a second) or an in-process bound; the clock, throttles, clock confirmation and the
sync lock live in SQLite or beside it, so the workers agree.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager

from waitress.server import create_server

from sync_protocol.metrics_export import enable_multiprocess, metrics_dir
from sync_protocol.workers import listen, run_workers

log = logging.getLogger(__name__)

# Requests served at once. Pages are CPU-bound Python (one interpreter lock), so more threads
# add no throughput; these cover a slow client or a long sync request beside the screens.
SERVER_THREADS = 8
# Waitress sends a response's headers and its body as two writes (two TCP segments, two
# wake-ups of the browser, two interpreter-lock hand-overs in the node) unless it may buffer.
# A page is 2-6 kB: with this it leaves in one write; larger bodies go in pieces of this size.
# Deprecated in waitress 3 but present in the pinned 3.0.2 (pyproject); its warning is muted.
SEND_BYTES = 16 * 1024
# "Task queue depth is N" is logged for every request that arrives while all threads are busy:
# under load that is a log line per page. Once per this many seconds tells the operator as much.
QUEUE_WARNING_SECONDS = 60.0
QUEUE_LOGGER = "waitress.queue"


def server_options() -> dict:
    return {"threads": SERVER_THREADS, "send_bytes": SEND_BYTES}


def create_node_server(app, host: str, port: int):
    """A waitress server for the node's app (not yet running: call ``.run()``)."""
    _limit_queue_warnings()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
        return create_server(app, host=host, port=port, **server_options())


def serve(app, host: str, port: int) -> None:
    """Serve until interrupted (what waitress.serve does, with the node's options)."""
    server = create_node_server(app, host, port)
    server.print_listen("Serving on http://{}:{}")
    server.run()


def serve_workers(make_app: Callable[[], object], host: str, port: int, workers: int, *,
                  on_listening: Callable[[int], None] | None = None,
                  in_parent: Callable[[], AbstractContextManager] | None = None) -> None:
    """Serve from `workers` forked processes, each with its own app from `make_app`, on one
    socket; return when they have ended (sync_protocol.workers: a signal, or one worker
    ending, stops them all). `in_parent` (the background jobs) runs beside them."""
    listener = listen(host, port)
    port = listener.getsockname()[1]
    enable_multiprocess(metrics_dir("node", port))
    if on_listening is not None:
        on_listening(port)

    def serve_one(shared: socket.socket) -> None:
        _limit_queue_warnings()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
            server = create_server(make_app(), sockets=[shared], **server_options())
        server.run()

    log.info("serving on http://%s:%s from %s worker processes", host, port, workers)
    run_workers(listener, workers, serve_one, name="node worker", in_parent=in_parent)


class EveryNSeconds(logging.Filter):
    """Lets a record through at most once per ``seconds``, saying how many were held back."""

    def __init__(self, seconds: float, clock=time.monotonic) -> None:
        super().__init__()
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.seconds:
                self._held += 1
                return False
            if self._held:
                record.msg = f"{record.msg} (and {self._held} more since the last report)"
            self._last, self._held = now, 0
            return True


def _limit_queue_warnings() -> None:
    queue_log = logging.getLogger(QUEUE_LOGGER)
    if not any(isinstance(f, EveryNSeconds) for f in queue_log.filters):
        queue_log.addFilter(EveryNSeconds(QUEUE_WARNING_SECONDS))
