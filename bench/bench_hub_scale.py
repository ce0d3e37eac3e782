"""A hub holding years of events (issue 17): ingest and pull rates on an empty, partitioned
PostgreSQL hub and on the same hub once it holds --bulk more events, in the same run.

    .venv/bin/python bench/bench_hub_scale.py [--bulk 500000] [--events 10000] [--nodes 10]
        [--workers 2]

1. empty hub (migrated: `events` and `deliveries` partitioned by position,
   central_hub.storage.partitions): --nodes clinics push --events in total over loopback HTTP
   to `dmed-hub serve` (signed batches, background projector, waited for); then a pharmacy
   pulls everything in its scope (signed pages of 1,000) from its cursor, PULL_REPEATS
   times (the fastest counts).
2. --bulk events are generated in bulk by the server (INSERT ... SELECT generate_series,
   three deliveries each, none in the pharmacy's scope), not through the API, in chunks of
   BULK_CHUNK under the writer lock, the partitions made as the ingest makes them; the
   projector's cursor is moved past them (they carry no projections), then ANALYZE, as
   autovacuum would.
3. the same as 1 with fresh clinics; the pharmacy pulls from where it stopped.

Each round first pushes a warm-up set of other clinics (--warmup events, untimed) through the
same hub process, so both rounds are timed on a hub whose working set is in memory, as a
serving hub's is: a bulk fill and VACUUM of tens of GB (more than this machine's memory)
push the hot pages of every table out of PostgreSQL's buffers and the kernel's cache, and a
short round would pay for reading them back first (run O in docs/scaling.md).

The figures are the rates of 3 as a ratio to those of 1 (target: >= UNCHANGED, i.e. the size
of the log does not slow the sync path), with the hub's CPU per event, which depends less
than wall time on what else the shared machine runs, and PostgreSQL's (every server process
of the machine: it is shared with whatever else runs there); the JSON also gives the part of
PostgreSQL's spent by its background processes (checkpoints, WAL, autovacuum) during the
ingest. Prints JSON, then a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_projector import spread  # noqa: E402
from bench_sync import (  # noqa: E402
    Chain,
    CpuMeter,
    HubProcess,
    Region,
    backend,
    clinic_workload,
    init_hub,
)
from common import report  # noqa: E402

from central_hub.composition import open_storage  # noqa: E402
from central_hub.ingest import PROJECTED_THROUGH  # noqa: E402
from central_hub.projector import wait_projected  # noqa: E402
from central_hub.storage.partitions import ensure_room, partitions  # noqa: E402
from central_hub.storage.postgres import split_url  # noqa: E402
from sync_protocol.certificates import NodeKind  # noqa: E402
from sync_protocol.request_signing import sign_request  # noqa: E402
from sync_protocol.timeutil import utc_now  # noqa: E402
from sync_protocol.wire import PULL_PATH, PullQuery  # noqa: E402

# The full hub's rates as a share of the empty hub's: "unchanged" on a shared machine whose
# speed moves by a few per cent between two parts of one run.
UNCHANGED = 0.90
# Rows generated per statement (and transaction) of the bulk fill.
BULK_CHUNK = 500_000
PULL_LIMIT = 1000
# The same pull is timed this many times and the fastest kept, in both rounds alike: a pull of
# a few thousand events takes a fraction of a second, and one spike of the shared machine's
# load would otherwise decide the ratio.
PULL_REPEATS = 3
# Distinct patients, facilities and origins of the bulk events (plausible index cardinality).
BULK_PATIENTS, BULK_FACILITIES, BULK_ORIGINS = 2_000_000, 1000, 500

BULK_EVENTS = """
INSERT INTO events (position, id, origin, seq, hlc, type, version, payload, prev_hash, hash,
                    received_at, facility_id, region, patient_id, subject_id)
SELECT p, 'BULK' || lpad(p::text, 22, '0'), 'bulk-node-' || (p % {origins}), p / {origins},
       '2026-01-01T00:00:00.000Z-0000-bulk', 'PrescriptionIssued', 1,
       jsonb_build_object('prescription_id', 'BRX' || p, 'patient_id', 'BP' || (p % {patients}),
           'facility_id', 'bulk-fac-' || (p % {facilities}), 'number', 'RX' || p, 'kind', 'e',
           'issued_at', '2026-01-01T00:00:00Z', 'expires_at', '2026-01-11T00:00:00Z',
           'items', jsonb_build_array(jsonb_build_object('item_no', 1, 'inn', 'amoxicillin',
               'form', 'capsule', 'strength', '500 mg', 'quantity', 20))),
       md5(p::text) || md5((p - 1)::text), md5(p::text) || md5((p + 1)::text),
       '2026-01-01T00:00:00Z', 'bulk-fac-' || (p % {facilities}), 'BLK',
       'BP' || (p % {patients}), 'BRX' || p
FROM generate_series(?::bigint, ?::bigint) AS p
"""
BULK_DELIVERIES = """
INSERT INTO deliveries (id, position, target_kind, target, origin, until)
SELECT ? + (p - ?) * 3 + k, p, CASE k WHEN 2 THEN 'pharmacies' ELSE 'facility' END,
       CASE k WHEN 0 THEN 'bulk-fac-' || (p % {facilities})
              WHEN 1 THEN 'bulk-fac-' || ((p + 7) % {facilities}) ELSE 'BLK' END,
       'bulk-node-' || (p % {origins}), NULL
FROM generate_series(?::bigint, ?::bigint) AS p, generate_series(0, 2) AS k
"""


def clinic_set(region: Region, prefix: str, nodes: int, events: int) -> list[Chain]:
    chains = [Chain(region.node(f"tas-clinic-{prefix}{i:03d}", f"TAS-POLY-{prefix}{i}",
                                NodeKind.CLINIC)) for i in range(1, nodes + 1)]
    for number, chain in enumerate(chains):
        clinic_workload(chain, max(4, events // nodes), number)
    return chains


def pull_all(hub_url: str, cred, after: int) -> tuple[int, int, float]:
    """(events pulled, the cursor reached, seconds): signed pages until the head."""
    session, count, start = requests.Session(), 0, time.perf_counter()
    while True:
        target = f"{PULL_PATH}?{PullQuery(after, PULL_LIMIT).to_query_string()}"
        headers = sign_request("GET", target, b"", cred.key, cred.cert,
                               cred.identity.node_id, utc_now())
        answer = session.get(hub_url + target, headers=headers, timeout=300)
        if not answer.ok:
            raise SystemExit(f"pull refused: {answer.status_code} {answer.text[:200]}")
        page = answer.json()
        count += len(page["events"])
        after = page["next"]
        if not page["more"]:
            session.close()
            return count, after, time.perf_counter() - start


def round_trip(url: str, args, directory: Path, warmup: list[Chain], chains: list[Chain],
               pharmacy, after: int) -> tuple[dict, int]:
    """Push `warmup` (untimed), then `chains` (all at once), wait for the projector, pull as
    `pharmacy`."""
    hub = HubProcess(url, directory, admit=args.nodes, workers=args.workers)
    try:
        warm = sum(t["accepted"] for t in spread([hub], warmup))
        if warm != sum(len(c.events) for c in warmup):
            raise SystemExit("warm-up: not every event accepted")
        with open_storage(url, migrate=False) as storage:
            wait_projected(storage, timeout=args.drain_timeout, interval=0.05)
        meter = CpuMeter(hub.pid, "postgresql")
        with ExitStack() as measuring:
            measuring.enter_context(meter.measuring())
            start = time.perf_counter()
            tallies = spread([hub], chains)
            pushed = time.perf_counter() - start
        events = sum(len(c.events) for c in chains)
        if sum(t["accepted"] for t in tallies) != events:
            raise SystemExit(f"ingest: not every event accepted: {tallies[0]['errors'][:2]}")
        with open_storage(url, migrate=False) as storage:
            wait_projected(storage, timeout=args.drain_timeout, interval=0.05)
        pull_meter = CpuMeter(hub.pid, "postgresql")
        with pull_meter.measuring():  # the fastest of PULL_REPEATS: a pull is short and
            pulls = [pull_all(hub.url, pharmacy, after) for _ in range(PULL_REPEATS)]
        pulled, cursor, pull_s = min(pulls, key=lambda p: p[2])  # load spikes are not
    finally:
        hub.stop()
    ingest_cpu = meter.per_event(events)
    pull_cpu = pull_meter.per_event(pulled * PULL_REPEATS)
    return {"ingest_per_s": events / pushed, "events": events,
            "ingest_hub_cpu_us": ingest_cpu["hub_cpu_us"],
            "ingest_db_cpu_us": ingest_cpu["db_cpu_us"],
            # of which the server's background processes (checkpoints, WAL, autovacuum)
            "ingest_db_background_cpu_us": meter.background_per_event(events), "pulled": pulled,
            "pull_per_s": pulled / pull_s, "pull_hub_cpu_us": pull_cpu["hub_cpu_us"],
            "pull_db_cpu_us": pull_cpu["db_cpu_us"]}, cursor


def bulk_fill(url: str, count: int) -> dict:
    """`count` events and three times as many deliveries, made by the server."""
    start, made = time.perf_counter(), 0
    params = {"origins": BULK_ORIGINS, "patients": BULK_PATIENTS, "facilities": BULK_FACILITIES}
    with open_storage(url, migrate=False) as storage:
        while made < count:
            size = min(BULK_CHUNK, count - made)
            with storage.transaction() as tx:  # the writer lock, as an ingest holds it
                first = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events")) + 1
                last = first + size - 1
                delivery = int(tx.scalar("SELECT COALESCE(MAX(id), 0) AS d FROM deliveries"))
                ensure_room(tx, last)
                tx.execute(BULK_EVENTS.format(**params), (first, last))
                tx.execute(BULK_DELIVERIES.format(**params), (delivery + 1, first, first, last))
                # no projections to make of them: the projector's cursor moves past them
                tx.execute("UPDATE hub_state SET value = ? WHERE key = ?",
                           (str(last), PROJECTED_THROUGH))
            made += size
        seconds = time.perf_counter() - start
    settle(url)
    with open_storage(url, migrate=False) as storage:
        with storage.reader() as tx:
            parts = [f"{p['suffix']}: {p['first_position']}-{p['end_position'] - 1}"
                     for p in partitions(tx)]
            sizes = {t: round(int(tx.scalar(
                "SELECT SUM(pg_total_relation_size(relid)) AS s FROM pg_partition_tree(?)",
                (t,)) or 0) / 2**20) for t in ("events", "deliveries")}
            held = int(tx.scalar("SELECT COUNT(*) AS n FROM events"))
    return {"bulk_events": count, "bulk_seconds": round(seconds, 1),
            "bulk_per_s": round(count / seconds), "events_held": held, "partitions": parts,
            "size_mb": sizes}


def settle(url: str) -> None:
    """What a hub that has held these events for a while has had done: vacuumed and analysed
    (autovacuum would start on the new rows during the next round otherwise), and the bulk
    fill's WAL checkpointed."""
    base, schema = split_url(url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for table in ("events", "deliveries"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        try:
            conn.execute("CHECKPOINT")
        except psycopg.Error:  # needs pg_checkpoint; without it the server's own comes later
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk", type=int, default=500_000,
                        help="events generated in bulk between the two rounds (issue: 20 M)")
    parser.add_argument("--events", type=int, default=10_000, help="events pushed per round")
    parser.add_argument("--nodes", type=int, default=10, help="clinics pushing at once")
    parser.add_argument("--warmup", type=int, default=2_000,
                        help="events pushed untimed before each round (0: none)")
    parser.add_argument("--workers", type=int, default=2, help="dmed-hub serve --workers")
    parser.add_argument("--drain-timeout", type=float, default=600)
    args = parser.parse_args()
    region = Region()
    empty_set, full_set = (clinic_set(region, prefix, args.nodes, args.events)
                           for prefix in ("a", "b"))
    warm_sets = [clinic_set(region, prefix, args.nodes, args.warmup) if args.warmup else []
                 for prefix in ("wa", "wb")]
    pharmacy = region.node("tas-pharmacy-0001", "TAS-APT-1", NodeKind.PHARMACY)
    with tempfile.TemporaryDirectory() as tmp, backend("postgresql", Path(tmp)) as url:
        directory = Path(tmp)
        init_hub(url, region.trust_list())[1].close()
        empty, cursor = round_trip(url, args, directory, warm_sets[0], empty_set, pharmacy, 0)
        fill = bulk_fill(url, args.bulk)
        full, _ = round_trip(url, args, directory, warm_sets[1], full_set, pharmacy,
                             cursor)
    rows = []
    for figure, unit in (("ingest_per_s", "events/s, HTTP"), ("pull_per_s", "events/s, HTTP")):
        ratio = full[figure] / empty[figure]
        kind = figure.split("_")[0]
        rows.append({
            "benchmark": f"{kind}, hub holding {fill['events_held']:,} events vs empty",
            "backend": "postgresql", "unit": unit, "empty_hub": round(empty[figure], 1),
            "full_hub": round(full[figure], 1), "ratio": round(ratio, 3),
            "target": f">= {UNCHANGED} (unchanged)", "met": ratio >= UNCHANGED,
            "hub_cpu_us_empty": empty[f"{kind}_hub_cpu_us"],
            "hub_cpu_us_full": full[f"{kind}_hub_cpu_us"],
            "db_cpu_us_empty": empty[f"{kind}_db_cpu_us"],
            "db_cpu_us_full": full[f"{kind}_db_cpu_us"]})
    report("hub_scale", rows, {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                               "options": vars(args), "bulk": fill,
                               "rounds": {"empty": empty, "full": full}})


if __name__ == "__main__":
    main()
