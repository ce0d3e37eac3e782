"""Services in processes of their own, so a test can SIGKILL them at a chosen moment:
`dmed-hub serve` and `dmed-node serve`, a hub that crashes itself mid-transaction, and waiting
on their state. bench/ uses the same `free_port` and `HubProcess`.

Run as a script (`python processes.py crashing-hub ...`) it is the crashing hub; it then
imports only product code and the standard library beside helpers.servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from central_hub.web.app import create_app as create_hub_app
from helpers.servers import HOST, free_port

# The crashing hub runs this file as a script: it finds `helpers` through PYTHONPATH.
TESTS_DIR = Path(__file__).resolve().parents[1]


# -- services as processes (for SIGKILL) ---------------------------------------------------

def cli(name: str, module: str) -> list[str]:
    """The console script installed beside this interpreter (dmed-hub, dmed-node)."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


class Process:
    """A service in a process of its own, so a test can SIGKILL it at a chosen moment.

    Output goes to a log file (a full pipe would block the service). stop() and kill()
    only ever signal the process this object started.
    """

    def __init__(self, args: list[str], *, ready_url: str, directory: Path,
                 env: dict[str, str] | None = None, name: str | None = None) -> None:
        self.args, self.ready_url, self.directory = args, ready_url, directory
        self.name = name or Path(args[0]).name  # of its log files
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DMED_")}
        self.env.update(env or {})
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> Process:
        self.starts += 1
        log_file = self.directory / f"{self.name}-{self.starts}.log"
        with open(log_file, "wb") as out:
            self.popen = subprocess.Popen(self.args, cwd=self.directory, env=self.env,
                                          stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args} exited: {log_file.read_text()[-2000:]}")
            try:
                if requests.get(self.ready_url, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or slow on a busy machine
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.args} not ready in {timeout} s")

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.args} was never started")
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, exactly like a power cut of the process."""
        if self.running:
            os.kill(self.popen.pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.running:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def hub_process(db_url: str, directory: Path, port: int, *,
                crash_after_events: int | None = None, crash_in: str = "store") -> Process:
    """`dmed-hub serve`, or with `crash_after_events` this module's crashing hub (crashing
    in the transaction that stores a batch, with crash_in="project" in the one that
    projects it, with "projector" in a background projector's step)."""
    if crash_after_events is None:
        args = [*cli("dmed-hub", "central_hub.cli"), "serve", "--db", db_url, "--host", HOST,
                "--port", str(port)]
    else:
        args = [sys.executable, __file__, "crashing-hub", db_url, str(port),
                str(crash_after_events), crash_in]
    path = os.pathsep.join(filter(None, (str(TESTS_DIR), os.environ.get("PYTHONPATH"))))
    return Process(args, ready_url=f"http://{HOST}:{port}/healthz", directory=directory,
                   env={"PYTHONPATH": path})


class HubProcess(Process):
    """`dmed-hub serve` started on a free loopback port, admitting `admit` syncs at once, with
    `workers` worker processes (bench/ measures the hub this way)."""

    def __init__(self, db_url: str, directory: Path, *, admit: int = 8, workers: int = 1,
                 extra: tuple[str, ...] = (), timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        super().__init__([*cli("dmed-hub", "central_hub.cli"), "serve", "--db", db_url,
                          "--host", HOST, "--port", str(self.port), "--threads",
                          str(admit + 4), "--workers", str(workers), *extra],
                         ready_url=f"{self.url}/healthz", directory=directory,
                         env={"DMED_HUB_MAX_CONCURRENT_SYNCS": str(admit)},
                         name=f"hub-{self.port}")
        self.start(timeout)


def node_process(database: Path, bundle: Path, hub_url: str, directory: Path,
                 port: int) -> Process:
    """`dmed-node serve` configured by DMED_ variables; its agent syncs every second tick."""
    env = {"DMED_DATABASE": str(database), "DMED_HUB_URL": hub_url,
           "DMED_NODE_BUNDLE": str(bundle), "DMED_SECRET_KEY": "sync-harness",
           "DMED_BACKGROUND_JOBS": "1", "DMED_SMS_INTERVAL_SECONDS": "3600"}
    return Process([*cli("dmed-node", "edge_node.cli"), "serve", "--host", HOST, "--port",
                    str(port)], ready_url=f"http://{HOST}:{port}/api/v1/node/status",
                   directory=directory, env=env)


def node_state(database: Path, key: str) -> str | None:
    """One node_state value, read beside a running node process (WAL lets us)."""
    conn = sqlite3.connect(database, timeout=10)
    try:
        row = conn.execute("SELECT value FROM node_state WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def wait_until(condition, timeout: float, what: str, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _serve_crashing_hub(db_url: str, port: int, crash_after: int, crash_in: str) -> None:
    """A hub that SIGKILLs its own process once it has taken `crash_after` events, before
    the commit of either the transaction that stores them (crash_in="store": its rows are
    written, not committed) or the one that projects them ("project": they are stored and
    committed, their projections written, not committed). The projecting crash uses only
    the hub's public hook (create_app(on_accepted=...)); the hub's own hooks run first."""
    from waitress import serve

    from central_hub.ingest import Ingestor
    from central_hub.projector import Projector

    accepted = [0]

    def count(events: int) -> None:
        accepted[0] += events
        if accepted[0] >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    hooks, config = [], {"DATABASE": db_url}
    if crash_in == "store":
        store = Ingestor._store

        def storing(self, tx, batch, *args) -> None:  # noqa: ANN001 - the method's own
            store(self, tx, batch, *args)
            count(len(batch.stored))
        Ingestor._store = storing
    else:
        hooks.append(lambda _tx, stored: count(len(stored)))
    if crash_in == "projector":  # the push answers once stored; the projector thread dies
        config["PROJECTOR"] = "background"
    app = create_hub_app(config, on_accepted=hooks)
    ingestor = app.extensions["dmed_hub"].ingestor
    with Projector(ingestor) if ingestor.background else contextlib.nullcontext():
        serve(app, host=HOST, port=port, threads=4)


# -- watching processes ---------------------------------------------------------------------

def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def wait_for(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() and "zombie" not in
                   Path(f"/proc/{pid}/status").read_text() for pid in pids)


if __name__ == "__main__":
    if sys.argv[1:2] == ["crashing-hub"]:
        _serve_crashing_hub(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
