"""Serving the hub: waitress threads in one process, or in several worker processes that
share one listening socket.

One Python process runs one thread at a time, so a hub in one process parses, checks
signatures and decodes batches in turn with its ingest. Worker processes do that work side by
side; their ingests still take the hub's writer lock (PostgreSQL advisory lock, SQLite's
write lock) one at a time, so positions stay gap-free and in commit order. Everything a worker
keeps in memory is a cache of the database (trust list, contact times) or a per-worker bound
(the concurrent sync limit applies to each worker).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def serve(make_app: Callable[[], Flask], *, host: str, port: int, threads: int,
          workers: int = 1) -> None:
    """Serve until terminated; with workers > 1, fork them and wait for them."""
    from waitress import serve as waitress_serve

    if workers <= 1:
        waitress_serve(make_app(), host=host, port=port, threads=threads)
        return
    # Migrate once, here, before any worker opens the database; the workers start clean.
    make_app().extensions["dmed_hub"].storage.close()
    listener = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
    children = [_fork_worker(make_app, listener, threads) for _ in range(workers)]
    listener.close()
    _supervise(children)


def _fork_worker(make_app: Callable[[], Flask], listener: socket.socket, threads: int) -> int:
    from waitress import serve as waitress_serve

    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _end_with(parent)
        waitress_serve(make_app(), sockets=[listener], threads=threads)
        code = 0
    except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
        log.exception("hub worker %s stopped", os.getpid())
    finally:
        os._exit(code)


def _end_with(parent: int) -> None:
    """A worker ends when its supervisor does, even one killed outright (SIGKILL, OOM):
    orphans would hold the port and answer with nobody watching them (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _supervise(children: list[int]) -> None:
    """Wait for the workers; a signal, or one worker ending, stops them all."""
    running = set(children)
    stopping = False

    def stop(_signum: int = 0, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in running:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while running:
        pid, status = os.wait()
        running.discard(pid)
        if not stopping:
            log.warning("hub worker %s ended (status %s); stopping the others", pid, status)
            stop()
