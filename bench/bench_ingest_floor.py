"""Can the ingest targets be met at all? What each event may cost at the target, against what
the steps issue 17 keeps cost on their own, measured in the same run.

    .venv/bin/python bench/bench_ingest_floor.py [--events 20000] [--nodes 20]
        [--backends postgresql,sqlite]

The ingest targets are ratios to this machine's bare append of the same event rows (COPY on
PostgreSQL, batched INSERT on SQLite; bench_projector). At the target rate, the machine's
cores give each event a budget of CPU time, shared by everything the bench runs on them: the
pushing clients, the hub, its projector and the database. And the projector is one thread, so
projecting one event must take less wall time than the target rate allows.

Each step the issue keeps is run alone here, in this process, on the workload of
bench_projector (--nodes clinics: registrations, bookings, prescriptions, cancellations), and
its CPU per event is read as this process's and the database server's:

- sign: each push request signed, as the node does (ECDSA P-256, once per batch);
- authenticate: each request's signature and certificate chain checked, as the hub does;
- read: each body decoded and each event read (envelope, payload schema, canonical hash);
- append: the bare append of the event rows (the reference itself);
- project: the hub's projections, conflict checks and reconciliation over what was stored
  (`Ingestor.project_pending`, as the projector thread runs it), the events taken from
  memory as a one-process hub does (the floor), and read back from the log as the
  supervisor of `dmed-hub serve --workers` does.

The floor is their sum: what an ingest that did nothing else (no chain look-ups, no routing,
no deliveries, no HTTP) would still spend; the budget less the floor is what the target leaves
for all of that. Also measured: the push as the hub runs it in-process (read, decide, route,
store; no projecting, no HTTP), and with the steps around it, the hub as built.

Prints JSON, then two tables: the steps, and for each backend the budget against the floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_projector import PG_INGEST_RATIO, SQLITE_INGEST_RATIO, clinics  # noqa: E402
from bench_sync import (  # noqa: E402
    CpuMeter,
    Region,
    backend,
    bare_appends,
    batches,
    init_hub,
)
from common import report  # noqa: E402

from central_hub import ingest  # noqa: E402
from central_hub.ingest import parse_item  # noqa: E402
from sync_protocol.request_signing import sign_request, verify_request  # noqa: E402
from sync_protocol.timeutil import utc_now  # noqa: E402
from sync_protocol.wire import ACCEPTED, PUSH_PATH, PushRequest, decode_body  # noqa: E402

SIGN = "sign the requests (node)"
AUTHENTICATE = "authenticate the requests"
READ = "read the events (envelope, schema, hash)"
PUSH = "push in-process: read, decide, route, store"
PROJECT_MEMORY = "project, the events taken from memory"
PROJECT_LOG = "project, the events read back from the log"
# What the floor adds up, besides the append: what issue 17 keeps, each at its cheapest.
KEPT = (SIGN, AUTHENTICATE, READ, PROJECT_MEMORY)
# The hub as built, in-process (no HTTP): the push stores what it read, so no append.
AS_BUILT = (SIGN, AUTHENTICATE, PUSH, PROJECT_MEMORY)

TARGETS = {"postgresql": (PG_INGEST_RATIO, "bare bulk append of the event rows"),
           "sqlite": (SQLITE_INGEST_RATIO, "bare batched INSERT of the event rows")}


def step_row(step: str, backend_name: str, events: int, cpu: dict, wall_us: float) -> dict:
    """One step's CPU per event (`cpu`: CpuMeter.per_event's figures; on SQLite the database
    works in this process) and wall time per event."""
    db = cpu["db_cpu_us"] if isinstance(cpu["db_cpu_us"], int) else 0
    return {"step": step, "backend": backend_name, "events": events,
            "python_cpu_us": cpu["bench_cpu_us"], "db_cpu_us": db,
            "cpu_us": cpu["bench_cpu_us"] + db, "wall_us": round(wall_us, 1)}


def measure(step: str, backend_name: str, events: int, work) -> dict:
    meter = CpuMeter(None, backend_name)
    start = time.perf_counter()
    with meter.measuring():
        work()
    wall = time.perf_counter() - start
    return step_row(step, backend_name, events, meter.per_event(events),
                    wall / max(events, 1) * 1e6)


def request_steps(backend_name: str, region: Region, bodies: list, events: int) -> list[dict]:
    """Signing and checking each push request, and reading its events: no database."""
    trust, now = region.trust_list(), utc_now()
    signed: list[tuple[bytes, dict]] = []

    def sign() -> None:
        for cred, body, headers in bodies:
            signed.append((body, {**headers, **sign_request(
                "POST", PUSH_PATH, body, cred.key, cred.cert, cred.identity.node_id, now)}))

    def authenticate() -> None:
        for body, headers in signed:
            verify_request("POST", PUSH_PATH, body, headers, trust, now,
                           lambda *_: False)

    def read() -> None:
        for body, headers in signed:
            data = decode_body(body, headers.get("Content-Encoding"))
            for item in PushRequest.from_dict(data).events:
                if parse_item(item).error is not None:
                    raise RuntimeError("the bench's own events must read cleanly")

    return [measure(SIGN, backend_name, events, sign),
            measure(AUTHENTICATE, backend_name, events, authenticate),
            measure(READ, backend_name, events, read)]


def hub_steps(backend_name: str, region: Region, chains: list, events: int,
              directory: Path, *, from_memory: bool) -> list[dict]:
    """The push in-process without projecting, then the projector over what it stored: taking
    the events from memory, as in a one-process hub (`from_memory`), or reading them back
    from the log, as the supervisor of `dmed-hub serve --workers` does."""
    with backend(backend_name, directory) as url:
        app, storage = init_hub(url, region.trust_list())
        ingestor = app.extensions["dmed_hub"].ingestor
        ingestor.background = True  # answers once stored; nothing projects until asked
        if from_memory:  # keep every stored event for the projector (no thread is woken)
            ingestor.on_stored = lambda: None
            ingest.RECENT_LIMIT = max(ingest.RECENT_LIMIT, events)
        groups = [(chain.identity, PushRequest.from_dict(decode_body(body, headers.get(
            "Content-Encoding"))).events) for chain in chains for body, headers in batches(chain)]

        def push() -> None:
            for identity, items in groups:
                answer = ingestor.push(identity, items)
                if any(r.status != ACCEPTED for r in answer.results):
                    raise RuntimeError("the bench's own events must all be accepted")

        def project() -> None:
            if ingestor.project_pending() != projected_through_now():
                raise RuntimeError("the projector stopped before the log's head")

        def projected_through_now() -> int:
            with storage.reader() as tx:
                return ingest.projected_through(tx)

        pushed = measure(PUSH, backend_name, events, push)
        projected = measure(PROJECT_MEMORY if from_memory else PROJECT_LOG, backend_name,
                            events, project)
        storage.close()
    return [pushed, projected] if from_memory else [projected]


def verdict(backend_name: str, steps: list[dict], bare: dict, events: int) -> dict:
    """The budget per event at the target, against the floor of the steps kept."""
    ratio, _label = TARGETS[backend_name]
    target_rate = ratio * bare["events_per_s"]
    cores = os.cpu_count() or 1
    budget = cores * 1e6 / target_rate
    by_step = {s["step"]: s for s in steps if s["backend"] == backend_name}
    append = next(s for s in by_step.values() if s["step"].startswith("append: "))
    floor = sum(by_step[name]["cpu_us"] for name in KEPT) + append["cpu_us"]
    as_built = sum(by_step[name]["cpu_us"] for name in AS_BUILT)
    projector_wall = by_step[PROJECT_MEMORY]["wall_us"]
    serial_budget = 1e6 / target_rate
    return {"backend": backend_name, "events": events, "bare_per_s": bare["events_per_s"],
            "target_ratio": ratio, "target_per_s": round(target_rate),
            "cores": cores, "cpu_budget_us": round(budget, 1), "floor_cpu_us": round(floor, 1),
            "floor_over_budget": round(floor / budget, 2),
            "within_cpu_budget": floor <= budget,
            # what the budget leaves for chain look-ups, routing, deliveries and HTTP
            "left_for_the_rest_us": round(budget - floor, 1),
            "as_built_cpu_us": round(as_built, 1),
            "as_built_over_budget": round(as_built / budget, 2),
            "projector_wall_us": projector_wall, "serial_budget_us": round(serial_budget, 1),
            "projector_over_serial": round(projector_wall / serial_budget, 2),
            "projector_fast_enough": projector_wall <= serial_budget}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args()
    steps, verdicts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name in (b.strip() for b in args.backends.split(",") if b.strip()):
            region = Region()
            chains = clinics(region, args.nodes, args.events)
            events = sum(len(c.events) for c in chains)
            bare = next(r for r in bare_appends(name, chains, directory, region)
                        if r["benchmark"] == TARGETS[name][1])
            steps.append(step_row(f"append: {bare['benchmark']} (reference)", name, events,
                                  bare, 1e6 / bare["events_per_s"]))
            bodies = [(chain.cred, body, headers) for chain in chains
                      for body, headers in batches(chain)]
            steps += request_steps(name, region, bodies, events)
            steps += hub_steps(name, region, chains, events, directory, from_memory=True)
            steps += hub_steps(name, region, chains, events, directory, from_memory=False)
            verdicts.append(verdict(name, steps, bare, events))
    report("ingest floor: the steps issue 17 keeps, alone, against the target's budget",
           steps, {"verdicts": verdicts, "options": vars(args)})
    print()
    report_verdicts(verdicts)


def report_verdicts(verdicts: list[dict]) -> None:
    for v in verdicts:
        print(f"{v['backend']}: target {v['target_ratio']} x {v['bare_per_s']:,.0f}/s = "
              f"{v['target_per_s']:,}/s; on {v['cores']} cores that leaves "
              f"{v['cpu_budget_us']} us of CPU per event; the steps kept cost "
              f"{v['floor_cpu_us']} us alone ({v['floor_over_budget']} x the budget: "
              f"{'within' if v['within_cpu_budget'] else 'over'}), leaving "
              f"{v['left_for_the_rest_us']} us for chain look-ups, routing, deliveries and "
              f"HTTP; the hub as built spends {v['as_built_cpu_us']} us in-process without "
              f"HTTP ({v['as_built_over_budget']} x the budget). The projector, one thread, "
              f"takes {v['projector_wall_us']} us per event alone against "
              f"{v['serial_budget_us']} us at the target rate "
              f"({v['projector_over_serial']} x: "
              f"{'fast enough' if v['projector_fast_enough'] else 'too slow'}).")


if __name__ == "__main__":
    main()
