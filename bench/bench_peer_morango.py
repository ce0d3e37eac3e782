"""Morango, the closest open peer, side by side with our sync (issue 17), in one run.

    .venv/bin/python bench/bench_peer_morango.py [--records 20000[,100000]]
        [--chunk-sizes default,5000] [--venv /tmp/dmed-morango-venv] [--skip-ours]

Morango (learningequality; the sync engine of Kolibri, PyPI `morango`) runs in a virtual
environment of its own, never the project's: the first run creates it at --venv and installs
`morango==MORANGO_VERSION` from PyPI (that needs the network once; later runs reuse it). So
this bench is not part of `make bench`.

What is timed, for each --records count N, all in the same run:

- Morango: two instances, each a Django process with its own SQLite file, one serving Morango's
  sync API over loopback HTTP (Django's threaded development server), the other the client.
  One syncable model, `Dispense` (bench/morango_peer/dmedpeer/models.py), shaped like our
  MedicationDispensed payload and filled with text to the size of our dispense event's JSON.
  N records are made and serialized into Morango's store before the clock starts (its best
  case: nothing left to serialize, as our events are in the log already); then the client
  runs one sync session (certificate request untimed; session, transfer and dequeue timed),
  `push` from the client to the server and, on fresh instances, `pull` from the server, with
  Morango's default chunk size (500 records a request, with its polling between chunks) and
  with each larger --chunk-sizes (`create_network_connection(chunk_size=...)`, its best case).
- Ours: a pharmacy node's N MedicationDispensed events pushed to `dmed-hub serve` (SQLite) as
  signed batches over loopback HTTP, as the agent cuts them; and a fresh pharmacy node's
  catch-up of N events of its region (bench_sync's catch-up: prescriptions, dispenses and
  cancellations, one SyncAgent run against `dmed-hub serve`).

Figures: records/s, peak resident memory (client and server for Morango; the hub for our push,
the node for our catch-up) and the ratio of ours to Morango's best in each direction. Goal:
>= GOAL_RATIO x in both directions. Prints JSON, then a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sync import (  # noqa: E402
    Chain,
    HubProcess,
    Region,
    backend,
    batches,
    bench_catchup,
    hub_peak_mb,
    init_hub,
    peak_rss_mb,
    push_all,
)
from common import report  # noqa: E402
from helpers.servers import free_port  # noqa: E402

from sync_protocol.certificates import NodeKind  # noqa: E402
from sync_protocol.events import canonical_json  # noqa: E402
from sync_protocol.identifiers import new_ulid  # noqa: E402
from sync_protocol.timeutil import to_instant, utc_now  # noqa: E402

MORANGO_VERSION = "0.8.15"  # the version the reference figures come from
GOAL_RATIO = 20  # issue 17: ours >= 20x Morango's best, in both directions
SIDE = Path(__file__).resolve().parent / "morango_peer" / "side.py"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "dmed-morango-venv"
SERVER_START_S = 60  # Django's first start on a loaded machine takes a few seconds
SYNC_DEADLINE_S = 3600  # Morango's default chunking moves a few hundred records a second


# -- Morango's venv and instances ----------------------------------------------------------

def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv and installing Morango on first use."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import morango, sys; print(morango.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == MORANGO_VERSION:
            return python
    base = getattr(sys, "_base_executable", sys.executable)  # not the project's venv python
    print(f"creating {venv} with morango=={MORANGO_VERSION} (needs PyPI once)", file=sys.stderr)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                    f"morango=={MORANGO_VERSION}"], check=True)
    subprocess.run(probe, check=True, capture_output=True)
    return python


class Instance:
    """One Morango instance: its SQLite file and system id, driven through side.py."""

    def __init__(self, python: Path, directory: Path, name: str) -> None:
        self.python, self.db, self.name = python, directory / f"{name}.db", name
        self.log = directory / f"{name}.log"

    def run(self, *args: str, timeout: float = 600) -> dict:
        with open(self.log, "ab") as log:
            done = subprocess.run([str(self.python), str(SIDE), str(self.db), self.name, *args],
                                  stdout=subprocess.PIPE, stderr=log, timeout=timeout,
                                  check=False)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"morango {self.name} {args[0]} failed:\n{tail}")
        return json.loads(done.stdout.decode().strip().splitlines()[-1])

    def serve(self) -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([str(self.python), str(SIDE), str(self.db), self.name, "serve",
                                 str(port)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "api/morango/v1/morangoinfo/1/", timeout=5).ok:
                    return proc, url
            except requests.RequestException:
                time.sleep(0.2)
        proc.kill()
        raise SystemExit(f"the morango server did not start; see {self.log}")


def morango_sync(python: Path, directory: Path, records: int, note_chars: int, direction: str,
                 chunk: str) -> dict:
    """Fresh server and client; N records on the sending side; one timed sync session."""
    work = directory / f"m-{direction}-{chunk}-{records}"
    work.mkdir()
    server, client = Instance(python, work, "server"), Instance(python, work, "client")
    dataset = server.run("setup", "server")["dataset"]
    client.run("setup", "client")
    source = client if direction == "push" else server
    filled = source.run("fill", dataset, str(records), str(note_chars), timeout=SYNC_DEADLINE_S)
    proc, url = server.serve()
    try:
        result = client.run("sync", url, dataset, direction, chunk, timeout=SYNC_DEADLINE_S)
        server_peak = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    arrived = (server.run("count")["records"] if direction == "push"
               else result["client_records"])
    if arrived != records:
        raise SystemExit(f"morango {direction} (chunk {chunk}) moved {arrived} of {records}")
    seconds = result["seconds"]
    return {"system": "morango " + MORANGO_VERSION, "direction": direction,
            "chunk_size": result["chunk_size"], "records": records,
            "seconds": round(seconds, 2), "records_per_s": round(records / seconds, 1),
            "peak_mb_client": result["peak_mb"], "peak_mb_server": server_peak,
            "record_bytes": filled["record_bytes"]}


def record_size_probe(python: Path, directory: Path) -> int:
    """The size of a Morango record of our model with an empty note (its store's JSON)."""
    work = directory / "probe"
    work.mkdir()
    server = Instance(python, work, "server")
    dataset = server.run("setup", "server")["dataset"]
    return server.run("fill", dataset, "1", "0")["record_bytes"]


# -- ours ----------------------------------------------------------------------------------

def dispenses(region: Region, count: int) -> Chain:
    """One pharmacy's chain of `count` MedicationDispensed events (after its facility)."""
    chain = Chain(region.node("tas-pharmacy-0002", "TAS-APT-2", NodeKind.PHARMACY))
    now = to_instant(utc_now())
    for _ in range(count):
        chain.emit("MedicationDispensed", {
            "dispense_id": new_ulid(), "prescription_id": new_ulid(), "item_no": 1,
            "quantity": 5, "product": "Amoksitsillin 500", "batch": "B-1",
            "expiry": "2028-01-31", "dispensed_at": now, "facility_id": chain.facility_id,
            "mode": "offline", "pharmacist": "Karimova Nilufar"})
    return chain


def event_bytes(chain: Chain) -> int:
    return len(canonical_json(chain.events[-1]))


def our_push(records: int, directory: Path) -> dict:
    region = Region()
    chain = dispenses(region, records)
    work = [(chain, batches(chain))]
    with backend("sqlite", directory) as url:
        _app, storage = init_hub(url, region.trust_list())
        storage.close()
        hub = HubProcess(url, directory, admit=8)
        try:
            tally = push_all(hub.url, work)
            peak = hub_peak_mb(hub)
        finally:
            hub.stop()
    if tally["errors"] or tally["accepted"] != len(chain.events):
        raise SystemExit(f"our push: {tally['accepted']} of {len(chain.events)} accepted; "
                         f"{tally['errors'][:3]}")
    return {"system": "ours", "direction": "push", "chunk_size": "agent batches",
            "records": len(chain.events), "seconds": round(tally["seconds"], 2),
            "records_per_s": round(len(chain.events) / tally["seconds"], 1),
            "peak_mb_client": "-", "peak_mb_server": peak, "record_bytes": event_bytes(chain)}


def our_catchup(records: int, directory: Path) -> dict:
    args = argparse.Namespace(events=records, catchup_backend="sqlite",
                              catchup_deadline=SYNC_DEADLINE_S, catchup_profile=False)
    row, _notes = bench_catchup(args, directory)
    return {"system": "ours", "direction": "pull (catch-up)", "chunk_size": "agent pages",
            "records": row["events"], "seconds": row["seconds"],
            "records_per_s": row["events_per_s"], "peak_mb_client": row["peak_mb"],
            "peak_mb_server": "-", "record_bytes": "-"}


# -- the comparison ------------------------------------------------------------------------

def compare(rows: list[dict]) -> list[dict]:
    verdicts = []
    for direction, ours_name in (("push", "push"), ("pull", "pull (catch-up)")):
        theirs = [r for r in rows if r["system"] != "ours" and r["direction"] == direction]
        ours = [r for r in rows if r["system"] == "ours" and r["direction"] == ours_name]
        for count in sorted({r["records"] for r in theirs}):
            best = max((r for r in theirs if r["records"] == count),
                       key=lambda r: r["records_per_s"])
            mine = [r for r in ours if abs(r["records"] - count) <= count * 0.01]
            if not mine:
                continue
            ratio = mine[0]["records_per_s"] / best["records_per_s"]
            verdicts.append({"direction": direction, "records": count,
                             "ours_per_s": mine[0]["records_per_s"],
                             "morango_best_per_s": best["records_per_s"],
                             "morango_best_chunk": best["chunk_size"],
                             "ratio": round(ratio, 1), "goal": f">= {GOAL_RATIO}x",
                             "met": ratio >= GOAL_RATIO})
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="20000",
                        help="comma-separated record counts, e.g. 20000,100000")
    parser.add_argument("--chunk-sizes", default="default,5000",
                        help="Morango chunk sizes: 'default' (500) and larger ones")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="Morango's own virtual environment (made on first use)")
    parser.add_argument("--skip-ours", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.records.split(",")]
    chunks = [c.strip() for c in args.chunk_sizes.split(",")]
    python = ensure_venv(args.venv)
    rows: list[dict] = []
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        target_bytes = event_bytes(dispenses(Region(), 1))
        note_chars = max(0, target_bytes - record_size_probe(python, directory))
        for count in counts:
            if not args.skip_ours:
                rows.append(our_push(count, directory))
                rows.append(our_catchup(count, directory))
            for chunk in chunks:
                for direction in ("push", "pull"):
                    rows.append(morango_sync(python, directory, count, note_chars, direction,
                                             chunk))
    report("peer_morango", rows, {
        "started": started, "options": {k: str(v) for k, v in vars(args).items()},
        "our_dispense_event_bytes": target_bytes, "morango_note_chars": note_chars,
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "comparison": (verdicts := compare(rows))})
    if verdicts:
        print()
        report_table(verdicts)


def report_table(verdicts: list[dict]) -> None:
    columns = list(verdicts[0])
    widths = [max(len(c), *(len(str(v[c])) for v in verdicts)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for verdict in verdicts:
        print("  ".join(str(verdict[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


if __name__ == "__main__":
    main()
