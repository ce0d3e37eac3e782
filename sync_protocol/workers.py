"""Worker processes sharing one listening socket: the process plumbing that the hub's and the
node's servers share. It is not part of the wire language, but it lives here because both may
import only sync_protocol (DESIGN 3), and one supervisor is better than two copies.

A supervisor forks the workers, waits for them, and stops them all when it is signalled or
when one of them ends; a worker ends with its supervisor even if that is killed outright.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def listen(host: str, port: int) -> socket.socket:
    """The socket the workers will share (port 0: a free one)."""
    return socket.create_server((host, port), backlog=LISTEN_BACKLOG)


def run_workers(listener: socket.socket, workers: int, serve: Callable[[socket.socket], None],
                *, name: str = "worker",
                in_parent: Callable[[], AbstractContextManager] | None = None) -> None:
    """Fork `workers` processes that each run `serve(listener)`; return when all have ended.

    Call before this process starts threads (fork copies only the calling one); what should
    run beside the workers is `in_parent`, entered after the fork for as long as they serve.
    """
    children = [_fork(serve, listener, name) for _ in range(workers)]
    listener.close()
    with in_parent() if in_parent is not None else nullcontext():
        _supervise(children, name)


def _fork(serve: Callable[[socket.socket], None], listener: socket.socket, name: str) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _end_with(parent)
        serve(listener)
        code = 0
    except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
        log.exception("%s %s stopped", name, os.getpid())
    finally:
        os._exit(code)


def _end_with(parent: int) -> None:
    """A worker ends when its supervisor does, even one killed outright (SIGKILL, OOM):
    orphans would hold the port and answer with nobody watching them (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _supervise(children: list[int], name: str) -> None:
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

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while running:
            pid, status = os.wait()
            running.discard(pid)
            if not stopping:
                log.warning("%s %s ended (status %s); stopping the others", name, pid, status)
                stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
