"""Fleet dashboard pages: p50/p95 latency with many nodes and events in the hub, on SQLite and
PostgreSQL.

    python bench/bench_dashboard.py [--size 20000] [--nodes 50] [--requests 30]
                                    [--backends sqlite,postgresql]
    python bench/bench_dashboard.py --size 1000000 --nodes 500      # the issue's target

The hub is bulk-filled (the database's own COPY / batched INSERT, not ingest): `size` events
spread over the nodes with one delivery each, a FacilityRegistered per node, 7 days of hourly
counts per region, each node's recent sync attempts, open conflicts and quarantined events;
the nodes' pending counters are then back-filled as the monitoring migration does. A
signed-in staff member's test client requests each fleet page and both CSV exports (read to
their last byte: they stream) `requests` times.
The reference is /healthz (a database read and a small JSON answer) in the same run: the
ratio says what the page costs beyond a bare request. Target: p95 < 200 ms.
PostgreSQL is the test server (127.0.0.1:5432, database test), in a schema dropped after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import report  # noqa: E402
from helpers.hub import postgres_base_url, temporary_schema  # noqa: E402

from central_hub import pending, staff  # noqa: E402
from central_hub.composition import open_storage  # noqa: E402
from central_hub.web import dashboard_pages  # noqa: E402
from central_hub.web.app import create_app  # noqa: E402
from sync_protocol.identifiers import new_ulid  # noqa: E402
from sync_protocol.timeutil import to_instant  # noqa: E402

REGIONS = ("TAS", "TOS", "SAM", "BUX", "AND", "FAR", "NAM", "QAS", "SUR", "JIZ", "SIR", "NAV",
           "XOR", "QQR")
TARGET_P95_MS = 200.0
CHUNK = 20_000
PASSWORD = "bench password 123"
ATTEMPTS_PER_NODE = 100
CONFLICTS = 300


def fill(storage, size: int, nodes: int, now: datetime) -> dict:
    """Bulk rows; returns the ids the pages will be asked about."""
    started = time.perf_counter()
    node_rows, facilities = [], []
    for i in range(nodes):
        region = REGIONS[i % len(REGIONS)]
        kind = "pharmacy" if i % 3 else "clinic"
        node_id = f"{region.lower()}-{kind}-{i:04d}"
        seen = now - timedelta(seconds=(i * 37) % 3600)
        node_rows.append((node_id, f"{region}-F{i:04d}", region, kind, "00" * 20,
                          to_instant(seen), to_instant(seen), to_instant(seen),
                          to_instant(seen - timedelta(seconds=i % 120)), size // nodes,
                          "0" * 64, 0))
        facilities.append((new_ulid(), f"{region}-F{i:04d}", kind, region, node_id))
    with storage.transaction() as tx:
        tx.append_rows("nodes", ("node_id", "facility_code", "region", "kind", "cert_kid",
                                 "first_seen", "last_seen", "last_pull_at", "synced_at",
                                 "acked_seq", "head_hash", "last_cursor"), node_rows)
        tx.append_rows("scope_facilities", ("facility_id", "code", "kind", "region", "origin"),
                       facilities)
    position = 0
    registered = []
    for facility_id, code, kind, region, origin in facilities:
        position += 1
        registered.append(_event(position, origin, 1, "FacilityRegistered", region, facility_id,
                                 {"facility_id": facility_id, "code": code, "kind": kind,
                                  "region": region, "name": f"Facility {code}"}, now))
    _append_events(storage, registered, facilities)
    seqs = dict.fromkeys((f[4] for f in facilities), 1)
    while position < size:
        batch = []
        for _ in range(min(CHUNK, size - position)):
            position += 1
            facility = facilities[position % len(facilities)]
            seqs[facility[4]] += 1
            batch.append(_event(position, facility[4], seqs[facility[4]], "PatientRegistered",
                                facility[3], new_ulid(), {"n": position}, now))
        _append_events(storage, batch, facilities)
    _history(storage, node_rows, now)
    conflict_ids = _conflicts(storage, registered, now)
    with storage.transaction() as tx:
        tx.execute("UPDATE hub_state SET value = ? WHERE key = 'projected_through'",
                   (str(position),))
        pending.rebuild_all(tx)  # what the monitoring migration's back-fill does
    return {"node": node_rows[0][0], "region": node_rows[0][2], "conflicts": conflict_ids,
            "fill_seconds": round(time.perf_counter() - started, 1)}


def _event(position, origin, seq, kind, region, subject, payload, now):
    return (position, new_ulid(), origin, seq, f"{int(now.timestamp() * 1000):015d}-00000",
            kind, 1, json.dumps(payload), "0" * 64, "0" * 64, to_instant(now), None, region,
            None, subject)


def _append_events(storage, rows, facilities) -> None:
    by_origin = {f[4]: f[0] for f in facilities}
    with storage.transaction() as tx:
        tx.append_rows("events", ("position", "id", "origin", "seq", "hlc", "type", "version",
                                  "payload", "prev_hash", "hash", "received_at", "facility_id",
                                  "region", "patient_id", "subject_id"), rows)
        tx.append_rows("deliveries", ("id", "position", "target_kind", "target", "origin"),
                       [(r[0], r[0], "facility", by_origin[r[2]], r[2]) for r in rows])


def _history(storage, node_rows, now) -> None:
    counts, attempts = [], []
    for hour in range(7 * 24):
        bucket = (now - timedelta(hours=hour)).strftime("%Y-%m-%dT%H")
        for i, region in enumerate(REGIONS):
            for name, value in (("events_ingested", 100 + hour + i), ("attempts", 120),
                                ("failed_attempts", hour % 5), ("lag_seconds_max", 30 + hour),
                                ("nodes_offline", hour % 3)):
                counts.append((bucket, region, name, value))
    for row in node_rows:
        for k in range(ATTEMPTS_PER_NODE):
            attempts.append((row[0], to_instant(now - timedelta(seconds=30 * k)),
                             "push" if k % 2 else "pull", "ok" if k % 17 else "clock_skew",
                             k % 7, 40 + k % 30, 0.5))
    with storage.transaction() as tx:
        tx.append_rows("monitor_counts", ("bucket", "region", "name", "value"), counts)
        tx.append_rows("monitor_attempts", ("node_id", "at", "kind", "outcome", "events",
                                            "duration_ms", "clock_offset_s"), attempts)


def _conflicts(storage, registered, now) -> list[str]:
    conflicts, links = [], []
    for i in range(CONFLICTS):
        event = registered[i % len(registered)]
        conflict_id = new_ulid()
        conflicts.append((conflict_id, f"bench-{i}", "patient_field", f"p{i}:phone",
                          json.dumps([event[1]]), json.dumps([event[14]]),
                          json.dumps({"patient_id": f"p{i}", "field": "phone"}),
                          "open" if i % 4 else "resolved", event[1], event[0], event[4],
                          to_instant(now - timedelta(days=i % 30)),
                          to_instant(now - timedelta(days=i % 30))))
        links.append((conflict_id, event[1], "key"))
    with storage.transaction() as tx:
        tx.append_rows("hub_conflicts", ("conflict_id", "conflict_key", "kind", "subject_id",
                                         "event_ids", "facility_ids", "details", "state",
                                         "raised_event_id", "raised_position", "raised_hlc",
                                         "raised_at", "detected_at"), conflicts)
        tx.append_rows("hub_conflict_events", ("conflict_id", "event_id", "role"), links)
    return [c[0] for c in conflicts[:5]]


def measure(client, path: str, requests: int) -> dict:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        answer.get_data()  # a streamed export is timed to its last byte
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code}")
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1)}


def run(backend: str, url: str, args) -> list[dict]:
    storage = open_storage(url)
    now = datetime.now(UTC)
    app = create_app({"TESTING": False}, storage=storage)
    facts = fill(storage, args.size, args.nodes, now)
    staff.create_staff(storage, login="bench", full_name="Bench", role="central",
                       password=PASSWORD)
    client = app.test_client()
    client.get("/staff/sign-in")
    token = client.get_cookie(dashboard_pages.CSRF_COOKIE).value
    client.post("/staff/sign-in", data={"login": "bench", "password": PASSWORD, "csrf": token})
    pages = {"healthz (reference)": "/healthz", "overview": "/dashboard/fleet/?lang=ru",
             "region": f"/dashboard/fleet/region/{facts['region']}?lang=ru",
             "node": f"/dashboard/fleet/node/{facts['node']}?lang=ru",
             "conflicts": "/dashboard/fleet/conflicts?state=open&lang=ru",
             "nodes.csv": "/dashboard/fleet/nodes.csv",
             "conflicts.csv": "/dashboard/fleet/conflicts.csv"}
    results = {name: measure(client, path, args.requests) for name, path in pages.items()}
    reference = results["healthz (reference)"]["p95_ms"] or 0.1
    rows = []
    for name, figures in results.items():
        rows.append({"backend": backend, "page": name, "events": args.size,
                     "nodes": args.nodes, **figures,
                     "ratio_p95_to_reference": round(figures["p95_ms"] / reference, 1),
                     "target_met": figures["p95_ms"] < TARGET_P95_MS,
                     "fill_s": facts["fill_seconds"]})
    storage.close()
    return rows


@contextmanager
def backend_url(name: str):
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/hub.db"
        return
    base = postgres_base_url()
    if base is None:
        yield None
        return
    with temporary_schema(base, "bench_dash") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="events in the hub")
    parser.add_argument("--nodes", type=int, default=50, help="nodes in the hub")
    parser.add_argument("--requests", type=int, default=30, help="requests per page")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = []
    for name in args.backends.split(","):
        with backend_url(name) as url:
            if url is None:
                print(f"# {name}: server unreachable, skipped", file=sys.stderr)
                continue
            rows += run(name, url, args)
    report("dashboard_pages", rows, {"target_p95_ms": TARGET_P95_MS})


if __name__ == "__main__":
    main()
