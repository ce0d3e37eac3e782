"""Sync benchmarks (issue 4): a node's catch-up after an outage, and hub ingest with many
nodes pushing at once, on SQLite and PostgreSQL, against a naive one-event-per-request
baseline.

    .venv/bin/python bench/bench_sync.py [--events 100000] [--nodes 20]
                                         [--backends sqlite,postgresql] [--naive-events 2000]

- catch-up: the hub holds --events prescription events of the pharmacy's region (issued,
  dispensed, cancelled by other nodes); a freshly enrolled pharmacy node runs one sync
  (SyncAgent.run_once: push, pull and apply every page, trust list) against `dmed-hub serve`
  over loopback HTTP, in a process of its own. Target: < 10 s for 100,000 events, read as
  a rate (>= 10,000 events/s) so that a smaller --events is judged fairly.
- ingest: --nodes clinic identities push their --events in total at once, each from its own
  thread, signed batches as the agent cuts them, to `dmed-hub serve`; the hub validates,
  stores, routes, projects and checks conflicts; it admits all --nodes at once (with the
  default 8, the rest would get 503 and Retry-After 5 s, and we would time the back-off).
  Baseline: one event per request. Also the same ingest in-process (Ingestor.push, no HTTP,
  no signatures) to separate the costs. Target: >= 10,000 events/s on PostgreSQL.

- reference: the same event rows appended bare to the same backend (bulk append with and
  without the events table's indexes, and batched INSERT), so the ingest rates can be read
  against what this machine's database does at all. The issue's target assumes about 100,000
  rows/s by COPY; the machines we run on differ by more than 2x from day to day.

Prints JSON, then a table (bench/common.report). Peak memory is the peak resident set of the
process doing the work (VmHWM of the hub or node process). CPU columns are microseconds per
event spent by the hub (its processes), the PostgreSQL server (all its processes) and this
process (the pushing clients, or the in-process hub): steadier than wall time on a shared
machine. Everything runs on 127.0.0.1;
PostgreSQL is the test server (127.0.0.1:5432, database test), in a schema dropped after.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import report  # noqa: E402
from helpers.processes import HubProcess  # noqa: E402
from helpers.sync_world import hub_database  # noqa: E402

from central_hub.composition import open_storage  # noqa: E402
from central_hub.ingest import EVENT_COLUMNS  # noqa: E402
from central_hub.web.app import create_app  # noqa: E402
from edge_node.credentials import load_credentials  # noqa: E402
from edge_node.seed import seed_pharmacy  # noqa: E402
from edge_node.store import NodeStore  # noqa: E402
from edge_node.sync.agent import SyncAgent  # noqa: E402
from edge_node.sync.client import HubClient  # noqa: E402
from provisioning.keystore import write_bundle  # noqa: E402
from provisioning.pki import create_node, create_region, create_root, make_bundle  # noqa: E402
from sync_protocol.certificates import NodeIdentity, NodeKind  # noqa: E402
from sync_protocol.event_types import latest_version  # noqa: E402
from sync_protocol.events import GENESIS_HASH, payload_json, seal  # noqa: E402
from sync_protocol.hlc import HybridLogicalClock  # noqa: E402
from sync_protocol.identifiers import make_pinfl, new_ulid  # noqa: E402
from sync_protocol.request_signing import sign_request  # noqa: E402
from sync_protocol.timeutil import to_instant, utc_now  # noqa: E402
from sync_protocol.trust_list import TrustList  # noqa: E402
from sync_protocol.wire import PUSH_PATH, PushRequest, encode_body, split_batches  # noqa: E402

HOST = "127.0.0.1"
REGION = "TAS"
CATCHUP_TARGET_PER_S = 10_000  # issue 4: 100,000 events in under 10 s
INGEST_TARGET_PER_S = 10_000


# -- identities and events -----------------------------------------------------------------

class Region:
    """A root, region TAS and node credentials under it (in memory)."""

    def __init__(self) -> None:
        self.root = create_root("DMED Bench Root")
        self.region = create_region(self.root, REGION, "Toshkent shahri")
        self.nodes = {}

    def node(self, node_id: str, code: str, kind: NodeKind):
        if node_id not in self.nodes:
            self.nodes[node_id] = create_node(self.region, node_id, code, kind)
        return self.nodes[node_id]

    def trust_list(self) -> TrustList:
        return TrustList([self.root.cert],
                         [self.region.cert, *(c.cert for c in self.nodes.values())])


class Chain:
    """One node's own chain of sealed events, as its store would append them."""

    def __init__(self, cred) -> None:
        self.cred = cred
        self.identity: NodeIdentity = cred.identity
        self.seq, self.prev, self.clock = 0, GENESIS_HASH, HybridLogicalClock()
        self.events: list[dict] = []
        self.facility_id = new_ulid()
        self.emit("FacilityRegistered", {
            "facility_id": self.facility_id, "code": self.identity.facility_code,
            "name": f"Facility {self.identity.facility_code}", "kind": str(self.identity.kind),
            "region": REGION})

    def emit(self, event_type: str, payload: dict) -> dict:
        self.seq += 1
        event = seal(id=new_ulid(), origin=self.identity.node_id, seq=self.seq,
                     hlc=self.clock.now(), type=event_type, version=latest_version(event_type),
                     payload=payload, prev_hash=self.prev)
        self.prev = event.hash
        self.events.append(event.to_dict())
        return self.events[-1]


def prescription(chain: Chain, doctor: str, now: datetime) -> dict:
    rx = new_ulid()
    return chain.emit("PrescriptionIssued", {
        "prescription_id": rx, "number": f"RX{rx[-12:]}", "kind": "e",
        "patient_id": new_ulid(), "pinfl": make_pinfl(date(1980, 1, 1), "male"),
        "facility_id": chain.facility_id, "practitioner_id": doctor,
        "issued_at": to_instant(now), "not_before": to_instant(now),
        "expires_at": to_instant(now + timedelta(days=10)), "chronic": False,
        "items": [{"item_no": 1, "inn": "amoxicillin", "form": "capsule", "strength": "500 mg",
                   "quantity": 20, "repeats": 0, "min_days_between_fills": 0}]})


def doctor_of(chain: Chain) -> str:
    doctor = new_ulid()
    chain.emit("PractitionerRegistered", {
        "practitioner_id": doctor, "facility_id": chain.facility_id,
        "full_name": "Aliyeva Dilnoza", "specialty": "family_medicine",
        "is_family_doctor": True})
    return doctor


def clinic_workload(chain: Chain, count: int, number: int) -> None:
    """A clinic's day: registrations, bookings (each its own slot), prescriptions, some
    cancelled."""
    doctor, now = doctor_of(chain), utc_now()
    start = now.replace(minute=0, second=0) + timedelta(days=1)
    i = 0
    while chain.seq < count:
        i += 1
        patient, born = new_ulid(), date(1950, 1, 1) + timedelta(days=i // 999)
        chain.emit("PatientRegistered", {
            "patient_id": patient, "med_id": "MED-" + patient[-10:], "full_name": "Bemor",
            "birth_date": born.isoformat(), "sex": "female", "phone": "+998901234567",
            "facility_id": chain.facility_id,
            "pinfl": make_pinfl(born, "female", f"{100 + number:03d}", f"{1 + i % 999:03d}")})
        chain.emit("AppointmentBooked", {
            "appointment_id": new_ulid(), "patient_id": patient, "practitioner_id": doctor,
            "facility_id": chain.facility_id, "channel": "registry",
            "starts_at": to_instant(start + timedelta(minutes=20 * i))})
        rx = prescription(chain, doctor, now)
        if i % 5 == 0:
            chain.emit("PrescriptionCancelled", {
                "prescription_id": rx["payload"]["prescription_id"], "reason": "Boshqa dori"})
    del chain.events[count:]


def region_prescriptions(region: Region, total: int) -> list[Chain]:
    """What a pharmacy catches up on: prescriptions of 5 clinics, dispenses of 3 other
    pharmacies, cancellations (of prescriptions nobody dispensed)."""
    clinics = [Chain(region.node(f"tas-clinic-{i:04d}", f"TAS-POLY-{i}", NodeKind.CLINIC))
               for i in range(1, 6)]
    pharmacies = [Chain(region.node(f"tas-pharmacy-{i:04d}", f"TAS-APT-{i}", NodeKind.PHARMACY))
                  for i in range(2, 5)]
    doctors = [doctor_of(c) for c in clinics]
    now, i, made = utc_now(), 0, 13
    while made < total:
        i += 1
        clinic = clinics[i % len(clinics)]
        rx = prescription(clinic, doctors[i % len(clinics)], now)["payload"]
        made += 1
        if i % 10 == 0:
            clinic.emit("PrescriptionCancelled", {"prescription_id": rx["prescription_id"],
                                                  "reason": "Allergiya"})
            made += 1
        elif i % 2 == 0:
            for pharmacy in pharmacies[: 1 + i % 2]:
                pharmacy.emit("MedicationDispensed", {
                    "dispense_id": new_ulid(), "prescription_id": rx["prescription_id"],
                    "item_no": 1, "quantity": 5, "product": "Amoksitsillin 500",
                    "batch": "B-1", "expiry": "2028-01-31", "dispensed_at": to_instant(now),
                    "facility_id": pharmacy.facility_id, "mode": "offline"})
                made += 1
    return clinics + pharmacies


def batches(chain: Chain, one_by_one: bool = False) -> list[tuple[bytes, dict]]:
    """Encoded push bodies, cut as the agent cuts them (or one event each)."""
    groups = ([[e] for e in chain.events] if one_by_one else split_batches(chain.events))
    return [encode_body(PushRequest(chain.identity.node_id, group).to_dict())
            for group in groups]


# -- backends and processes ----------------------------------------------------------------

def backend(name: str, directory: Path):
    """A fresh, empty hub database URL (the tests' hub_database): a new SQLite file in
    `directory` each time, or a PostgreSQL schema of database `test` dropped after."""
    return hub_database(name, directory, filename=f"hub-{secrets.token_hex(4)}.db",
                        prefix="bench")


def init_hub(url: str, trust: TrustList):
    """dmed-hub init, in effect: migrations (with projections and conflicts) and trust."""
    storage = open_storage(url)
    app = create_app({"DATABASE": url}, storage=storage)
    app.extensions["dmed_hub"].trust.import_list(trust, accept_roots=True)
    return app, storage


def hub_peak_mb(hub: HubProcess) -> float:
    """The hub's peak resident set: the process, plus its workers if it forked any."""
    children = Path(f"/proc/{hub.pid}/task/{hub.pid}/children").read_text().split()
    return round(peak_rss_mb(hub.pid) + sum(peak_rss_mb(child) for child in children), 1)


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set (VmHWM) of a running process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# -- ingest --------------------------------------------------------------------------------

def push_all(hub_url: str, work: list[tuple[Chain, list[tuple[bytes, dict]]]]) -> dict:
    """Every node pushes its batches in order, all nodes at once; returns the tally."""
    tally = {"accepted": 0, "requests": 0, "busy": 0, "errors": []}
    lock = threading.Lock()

    def node(chain: Chain, bodies: list[tuple[bytes, dict]]) -> None:
        session, cred = requests.Session(), chain.cred
        for body, headers in bodies:
            while True:
                signed = sign_request("POST", PUSH_PATH, body, cred.key, cred.cert,
                                      chain.identity.node_id, utc_now())
                answer = session.post(hub_url + PUSH_PATH, data=body,
                                      headers={**headers, **signed}, timeout=300)
                if answer.status_code != 503:
                    break
                with lock:
                    tally["busy"] += 1
                time.sleep(0.02)
            results = answer.json().get("results", []) if answer.ok else []
            with lock:
                tally["requests"] += 1
                tally["accepted"] += sum(r["status"] == "accepted" for r in results)
                if not answer.ok:
                    tally["errors"].append(answer.text[:200])
        session.close()

    threads = [threading.Thread(target=node, args=item) for item in work]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally["seconds"] = time.perf_counter() - start
    return tally


def ingest_row(name: str, backend_name: str, events: int, seconds: float, peak: float,
               target: bool, extra: dict) -> dict:
    rate = events / seconds if seconds else 0.0
    return {"benchmark": name, "backend": backend_name, "events": events,
            "seconds": round(seconds, 2), "events_per_s": round(rate, 1), "peak_mb": peak,
            "target": f">= {INGEST_TARGET_PER_S:,}/s" if target else "-",
            "met": (rate >= INGEST_TARGET_PER_S) if target else "-", **extra}


def bench_ingest(backend_name: str, args, directory: Path, profile: dict) -> list[dict]:
    region = Region()
    chains = [Chain(region.node(f"tas-clinic-{i:04d}", f"TAS-POLY-{i}", NodeKind.CLINIC))
              for i in range(1, args.nodes + 1)]
    per_node = max(4, args.events // args.nodes)
    for number, chain in enumerate(chains):
        clinic_workload(chain, per_node, number)
    naive_per_node = max(4, args.naive_events // args.nodes)
    naive = [Chain(region.node(f"tas-clinic-{i:04d}", f"TAS-POLY-{i}", NodeKind.CLINIC))
             for i in range(1, args.nodes + 1)]
    for number, chain in enumerate(naive):
        clinic_workload(chain, naive_per_node, number)
    rows = []
    for label, group, one_by_one in (("ingest, batched", chains, False),
                                     ("ingest, 1 event/request", naive, True)):
        work = [(c, batches(c, one_by_one)) for c in group]
        with backend(backend_name, directory) as url:
            _app, storage = init_hub(url, region.trust_list())
            storage.close()
            hub = HubProcess(url, directory, admit=args.nodes, workers=args.hub_workers)
            try:
                meter = CpuMeter(hub.pid, backend_name)
                with meter.measuring():
                    tally = push_all(hub.url, work)
                cpu = meter.per_event(sum(len(c.events) for c in group))
                peak = hub_peak_mb(hub)
            finally:
                hub.stop()
        events = sum(len(c.events) for c in group)
        if tally["accepted"] != events or tally["errors"]:
            raise SystemExit(f"{label}: {tally['accepted']} of {events} accepted; "
                             f"{tally['errors'][:3]}")
        rows.append(ingest_row(f"{label} ({args.nodes} nodes, HTTP)", backend_name, events,
                               tally["seconds"], peak,
                               backend_name == "postgresql" and not one_by_one,
                               {"requests": tally["requests"], "busy_503": tally["busy"],
                                **cpu}))
    rows.append(ingest_in_process(backend_name, chains, directory, region, profile))
    rows.extend(bare_appends(backend_name, chains, directory, region))
    return rows


def bare_appends(backend_name: str, chains: list[Chain], directory: Path,
                 region: Region) -> list[dict]:
    """What this machine's database does with the same events as bare rows, for reading the
    ingest figures against. Each batch is appended in one transaction by the storage's bulk
    append (COPY on PostgreSQL), first to a table with the columns of `events` and no index,
    then to the hub's `events` table with its indexes; then by batched INSERT (insert_many).
    No checks, no routing, no projections. The issue's target assumes a machine where COPY
    takes about 100,000 such rows/s and batched INSERTs 30,000."""
    rows = []
    for label, method, table in (
            ("bare bulk append of the event rows, no indexes", "append_rows", "bare_events"),
            ("bare bulk append of the event rows", "append_rows", "events"),
            ("bare batched INSERT of the event rows", "insert_many", "events")):
        with backend(backend_name, directory) as url:
            _app, storage = init_hub(url, region.trust_list())
            with storage.transaction() as tx:  # the columns of `events`, none of its indexes
                tx.execute("CREATE TABLE bare_events AS SELECT * FROM events WHERE 1 = 0")
            position, groups = 0, []
            for chain in chains:
                for group in split_batches(chain.events):
                    groups.append([event_row(position := position + 1, e) for e in group])
            meter = CpuMeter(None, backend_name)
            start = time.perf_counter()
            with meter.measuring():
                for group in groups:
                    with storage.transaction() as tx:
                        getattr(tx, method)(table, EVENT_COLUMNS, group)
            seconds = time.perf_counter() - start
            cpu = meter.per_event(position)
            storage.close()
        rows.append(ingest_row(label, backend_name, position, seconds, peak_rss_mb(), False,
                               {"requests": "-", "busy_503": "-", **cpu}))
    return rows


def event_row(position: int, event: dict) -> tuple:
    """An event as the hub stores it, with plausible scope columns."""
    payload = event["payload"]
    subject = next((payload[k] for k in ("patient_id", "appointment_id", "prescription_id",
                                         "facility_id") if k in payload), None)
    return (position, event["id"], event["origin"], event["seq"], event["hlc"], event["type"],
            event["version"], payload_json(payload), event["prev_hash"], event["hash"],
            to_instant(utc_now()), payload.get("facility_id"), REGION,
            payload.get("patient_id"), subject)


def ingest_in_process(backend_name: str, chains: list[Chain], directory: Path,
                      region: Region, profile: dict) -> dict:
    """The same batches through Ingestor.push in this process: no HTTP, no signatures. One
    round of batches is profiled for the report and left out of the timing."""
    with backend(backend_name, directory) as url:
        app, storage = init_hub(url, region.trust_list())
        ingestor = app.extensions["dmed_hub"].ingestor
        work = [(c.identity, list(split_batches(c.events))) for c in chains]
        profiler = cProfile.Profile()
        rounds = max(len(b) for _, b in work)
        profiled = 1 if rounds > 1 else None  # a batch past each node's first, if any
        seconds, timed = 0.0, 0  # the profiled round runs slower: it is not timed
        meter = CpuMeter(None, backend_name)
        for round_no in range(rounds):
            for identity, groups in work:
                if round_no >= len(groups):
                    continue
                if round_no == profiled:
                    profiler.runcall(ingestor.push, identity, groups[round_no])
                    continue
                with meter.measuring():
                    start = time.perf_counter()
                    ingestor.push(identity, groups[round_no])
                    seconds += time.perf_counter() - start
                timed += len(groups[round_no])
        cpu = meter.per_event(timed)
        storage.close()
    if profiled is not None:
        profile[f"ingest in-process ({backend_name}), batch {profiled + 1} of each node"] = top(
            profiler)
    return ingest_row("ingest, batched (in-process, no HTTP)", backend_name, timed, seconds,
                      peak_rss_mb(), False, {"requests": "-", "busy_503": "-", **cpu})


# -- catch-up ------------------------------------------------------------------------------

def bench_catchup(args, directory: Path) -> tuple[dict, dict]:
    region = Region()
    chains = region_prescriptions(region, args.events)
    me = region.node("tas-pharmacy-0001", "TAS-APT-1", NodeKind.PHARMACY)
    bundle = write_bundle(make_bundle(me, region.trust_list()), directory / "pharmacy.json")
    events = sum(len(c.events) for c in chains)
    with backend(args.catchup_backend, directory) as url:
        app, storage = init_hub(url, region.trust_list())
        ingestor = app.extensions["dmed_hub"].ingestor
        fill = time.perf_counter()
        for chain in chains:
            for group in split_batches(chain.events):
                ingestor.push(chain.identity, group)
        fill = time.perf_counter() - fill
        storage.close()
        hub = HubProcess(url, directory, admit=8)
        database = directory / "catchup-node.db"
        try:
            hub_cpu = cpu_seconds(hub.pid)
            result = run_child([sys.executable, __file__, "_catchup", hub.url, str(bundle),
                                str(database), "profile" if args.catchup_profile else ""],
                               args.catchup_deadline, database)
            # CPU time, unlike wall time, does not depend on what else the machine runs.
            result["hub_cpu_s"] = round(cpu_seconds(hub.pid) - hub_cpu, 2)
        finally:
            hub.stop()
    rate = result.get("pulled", 0) / result["seconds"] if result["seconds"] else 0
    return {"benchmark": "catch-up after an outage (pharmacy, HTTP)",
            "backend": args.catchup_backend, "events": events,
            "seconds": round(result["seconds"], 2), "events_per_s": round(rate, 1),
            "peak_mb": result.get("peak_mb", "-"),
            "target": f">= {CATCHUP_TARGET_PER_S:,}/s",
            "met": not result.get("deadline_hit") and rate >= CATCHUP_TARGET_PER_S
            and result.get("pulled", 0) >= events,
            "requests": "-", "busy_503": "-", "hub_cpu_us": round(
                result["hub_cpu_s"] / max(result.get("pulled", 0), 1) * 1e6),
            "db_cpu_us": "-", "bench_cpu_us": "-"}, {
            "catch-up hub filled in-process (events/s)": round(events / fill, 1),
            "catch-up node outcome": result}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the hub's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


# Server processes that work for no one client (their titles, as ps shows them).
POSTGRES_BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum",
                       "launcher", "archiver", "walsender", "startup")


def postgres_cpu_seconds() -> tuple[float, float]:
    """CPU time of every PostgreSQL server process on this machine (the bench's backends;
    nothing else uses the server while it runs), and the part of it spent by the server's
    background processes (writing checkpoints and WAL, autovacuum)."""
    total = background = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if not text.split("(", 1)[1].startswith("postgres)"):
                continue
            title = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        fields = text.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        total += seconds
        if any(kind in title for kind in POSTGRES_BACKGROUND):
            background += seconds
    return total, background


class CpuMeter:
    """CPU microseconds per event, by who spent them: the hub, PostgreSQL, this process (the
    clients). Unlike wall time, it hardly depends on what else the machine runs."""

    def __init__(self, hub_pid: int | None, backend_name: str) -> None:
        self.hub_pid, self.postgres = hub_pid, backend_name == "postgresql"
        self.spent = [0.0, 0.0, 0.0, 0.0]

    def _read(self) -> tuple[float, float, float, float]:
        hub = tree_cpu_seconds(self.hub_pid) if self.hub_pid else 0.0
        db, background = postgres_cpu_seconds() if self.postgres else (0.0, 0.0)
        return hub, db, cpu_seconds(os.getpid()), background

    @contextmanager
    def measuring(self) -> Iterator[None]:
        start = self._read()
        yield
        for i, (a, b) in enumerate(zip(start, self._read(), strict=True)):
            self.spent[i] += b - a

    def per_event(self, events: int) -> dict:
        hub, db, me = (round(spent / max(events, 1) * 1e6) for spent in self.spent[:3])
        return {"hub_cpu_us": hub if self.hub_pid else "-",
                "db_cpu_us": db if self.postgres else "-", "bench_cpu_us": me}

    def background_per_event(self, events: int) -> int:
        """The part of db_cpu_us spent by the server's background processes."""
        return round(self.spent[3] / max(events, 1) * 1e6)


def run_child(command: list[str], deadline: float, database: Path) -> dict:
    """Run the catch-up child; at the deadline, measure how far it came, then stop it."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate(timeout=deadline)
        return json.loads(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        peak = peak_rss_mb(child.pid)
        child.kill()
        child.communicate()
        return {"seconds": float(deadline), "deadline_hit": True, "peak_mb": peak,
                **progress(database)}


def progress(database: Path) -> dict:
    """How far a catch-up killed at the deadline came (events applied)."""
    import sqlite3
    conn = sqlite3.connect(database)
    try:
        pulled = conn.execute("SELECT COUNT(*) FROM events WHERE origin <> "
                              "'tas-pharmacy-0001'").fetchone()[0]
    finally:
        conn.close()
    return {"pulled": pulled}


def run_catchup(hub_url: str, bundle: str, database: str, profile: str = "") -> None:
    """Child process: a freshly enrolled pharmacy node catches up with one sync.

    `hub_wait_s` is the time the hub's answers took (HTTP round trips: the hub building and
    sending pages; the agent fetches the next page while it applies one, so this overlaps
    the node's work); `node_cpu_s` is the node's own CPU time; with "profile", the node's
    top functions by own time are reported too."""
    credentials = load_credentials(bundle)
    store = NodeStore(database)
    store.initialise(credentials.identity.node_id)
    seed_pharmacy(store, code=credentials.identity.facility_code)
    client = HubClient(hub_url, credentials, store.node_id)
    agent = SyncAgent(store, client, credentials)
    waited = [0.0, 0]
    send = client.session.request

    def timed_request(*a, **kw):
        began = time.perf_counter()
        try:
            return send(*a, **kw)
        finally:
            waited[0] += time.perf_counter() - began
            waited[1] += 1

    client.session.request = timed_request
    profiler = cProfile.Profile() if profile else None
    cpu = time.process_time()
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    outcome = agent.run_once()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "pulled": outcome["pulled"], "ok": outcome["ok"],
              "error": outcome.get("error"), "peak_mb": peak_rss_mb(),
              "hub_wait_s": round(waited[0], 2), "requests": waited[1],
              "node_cpu_s": round(time.process_time() - cpu, 2)}
    if profiler:
        out = io.StringIO()  # built-ins too: SQLite's execute is where much of it goes
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        result["profile"] = [line.strip() for line in out.getvalue().splitlines()
                             if line.strip()[:1].isdigit()][:25]
    print(json.dumps(result))


def top(profiler: cProfile.Profile, count: int = 12) -> list[str]:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(count)
    lines = [line.strip() for line in out.getvalue().splitlines() if "(" in line and "/" in line]
    return lines[:count]


def main() -> None:
    if sys.argv[1:2] == ["_catchup"]:
        run_catchup(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000,
                        help="events to catch up on, and to ingest per backend")
    parser.add_argument("--nodes", type=int, default=20, help="nodes pushing at once")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--naive-events", type=int, default=2000,
                        help="events for the one-event-per-request baseline")
    parser.add_argument("--catchup-backend", default="sqlite", help="hub backend for catch-up")
    parser.add_argument("--catchup-deadline", type=int, default=300,
                        help="seconds before an unfinished catch-up is stopped and measured")
    parser.add_argument("--catchup-profile", action="store_true",
                        help="profile the catch-up node (cProfile; slows it down)")
    parser.add_argument("--hub-workers", type=int, default=2,
                        help="hub worker processes for ingest (dmed-hub serve --workers)")
    parser.add_argument("--skip-catchup", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    rows, profile, notes = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if not args.skip_catchup:
            row, notes = bench_catchup(args, directory)
            rows.append(row)
        if not args.skip_ingest:
            for name in args.backends.split(","):
                rows.extend(bench_ingest(name.strip(), args, directory, profile))
    report("sync", rows, {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                          "options": vars(args), "notes": notes, "profile": profile})


if __name__ == "__main__":
    main()
