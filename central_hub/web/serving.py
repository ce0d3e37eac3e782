"""Serving the hub: waitress threads in one process, or in several worker processes that
share one listening socket.

One Python process runs one thread at a time, so a hub in one process parses, checks
signatures and decodes batches in turn with its ingest. Worker processes do that work side by
side; their ingests still take the hub's writer lock (PostgreSQL advisory lock, SQLite's
write lock) one at a time, so positions stay gap-free and in commit order. Everything a worker
keeps in memory is a cache of the database (trust list, contact times) or a per-worker bound
(the concurrent sync limit applies to each worker).

With a background projector (PROJECTOR = "background") one thread projects the log: in the
serving process, or with workers in the supervisor, after the fork (central_hub.projector).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask

from sync_protocol.metrics_export import enable_multiprocess, metrics_dir
from sync_protocol.workers import listen, run_workers

from ..projector import Projector


def serve(make_app: Callable[[], Flask], *, host: str, port: int, threads: int,
          workers: int = 1) -> None:
    """Serve until terminated; with workers > 1, fork them and wait for them."""
    from waitress import serve as waitress_serve

    if workers <= 1:
        app = make_app()
        with _projecting(app):
            waitress_serve(app, host=host, port=port, threads=threads)
        return
    # Migrate once, here, before any worker opens the database; the workers start clean.
    make_app().extensions["dmed_hub"].storage.close()
    listener = listen(host, port)
    enable_multiprocess(metrics_dir("hub", listener.getsockname()[1]))
    run_workers(listener, workers, lambda listener: waitress_serve(
        make_app(), sockets=[listener], threads=threads), name="hub worker",
        in_parent=lambda: _supervisor_projector(make_app))


@contextmanager
def _projecting(app: Flask) -> Iterator[None]:
    current = app.extensions["dmed_hub"]
    if not current.ingestor.background:
        yield
        return
    with Projector(current.ingestor):
        yield


@contextmanager
def _supervisor_projector(make_app: Callable[[], Flask]) -> Iterator[None]:
    app = make_app()
    try:
        with _projecting(app):
            yield
    finally:
        app.extensions["dmed_hub"].storage.close()
