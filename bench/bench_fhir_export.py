"""FHIR bulk export benchmark (issue 18): resources per second and peak memory of the hub's
NDJSON export from PostgreSQL, against a bare `COPY (...) TO STDOUT` of the same rows.

    .venv/bin/python bench/bench_fhir_export.py [--size 1000000]

The rows are generated in bulk inside PostgreSQL (generate_series into the projection tables,
not through the API): one prescription item (MedicationRequest) per four dispenses
(MedicationDispense), --size resources in all, in a schema of database `test` dropped after.

- export: central_hub.fhir.export.write_ndjson, as `$export` and `dmed-hub fhir-export` run
  it (server-side cursor, mapping, JSON, one line per resource), in a child process whose
  peak resident set (ru_maxrss) is its peak memory. It also runs at a tenth of --size: a
  bounded export has the same peak at both sizes.
- reference: `COPY (SELECT * FROM (<the same source query>) r) TO STDOUT` of the same rows
  to a file: what the database does at all with them. ratio = export time / COPY time.

Prints JSON, then a table (bench/common.report).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import report  # noqa: E402
from helpers.hub import postgres_base_url, temporary_schema  # noqa: E402

from central_hub.composition import open_storage  # noqa: E402
from central_hub.fhir.access import Access  # noqa: E402
from central_hub.fhir.export import write_ndjson  # noqa: E402
from central_hub.fhir.sources import SOURCES  # noqa: E402
from sync_protocol.timeutil import utc_now  # noqa: E402

DEFAULT_SIZE = 20_000  # small enough for `make bench`; --size 1000000 for the figure
DISPENSES_PER_ITEM = 4
TYPES = ["MedicationRequest", "MedicationDispense"]
HLC_BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

GENERATE = """
INSERT INTO scope_facilities (facility_id, code, kind, region, origin) VALUES
    ('BENCHCLINIC', 'TAS-POL-1', 'clinic', 'TAS', 'bench'),
    ('BENCHPHARMACY', 'TAS-APT-1', 'pharmacy', 'TAS', 'bench');
INSERT INTO hub_prescriptions (prescription_id, event_id, hlc, origin, number, kind, patient_id,
    pinfl, facility_id, practitioner_id, issued_at, not_before, expires_at, chronic, status)
SELECT 'RX' || lpad(g::text, 24, '0'), 'EI' || lpad(g::text, 24, '0'),
    lpad(({base} + g)::text, 15, '0') || '-00000', 'tas-clinic-0001', 'RX-' || g, 'e',
    'PT' || lpad((g % 50000)::text, 24, '0'), '31204901234567', 'BENCHCLINIC', 'DOCTOR1',
    '2026-01-01T08:00:00Z', '2026-01-01T08:00:00Z', '2026-03-01T08:00:00Z', 0, 'active'
FROM generate_series(1, {items}) g;
INSERT INTO hub_prescription_items (prescription_id, item_no, inn, form, strength, unit,
    quantity, dosage, repeats, min_days_between_fills)
SELECT 'RX' || lpad(g::text, 24, '0'), 1, 'Amoxicillin', 'capsule', '500 mg', 'capsule', 20,
    '1 x 3', 0, 0 FROM generate_series(1, {items}) g;
INSERT INTO hub_dispenses (event_id, dispense_id, hlc, origin, prescription_id, item_no,
    quantity, product, batch, expiry, dispensed_at, facility_id, mode)
SELECT 'ED' || lpad(g::text, 24, '0'), 'DI' || lpad(g::text, 24, '0'),
    lpad(({base} + g)::text, 15, '0') || '-00001', 'tas-pharmacy-0001',
    'RX' || lpad((1 + (g - 1) % {items})::text, 24, '0'), 1, 5, 'Amoksitsillin 500', 'B-7',
    '2028-01-31', '2026-01-02T10:00:00Z', 'BENCHPHARMACY', 'offline'
FROM generate_series(1, {dispenses}) g;
ANALYZE hub_prescriptions;
ANALYZE hub_prescription_items;
ANALYZE hub_dispenses
"""


def generate(url: str, size: int) -> dict[str, int]:
    items = max(1, size // (DISPENSES_PER_ITEM + 1))
    counts = {"MedicationRequest": items, "MedicationDispense": size - items}
    storage = open_storage(url)
    with storage.transaction() as tx:
        for statement in GENERATE.format(base=HLC_BASE_MS, items=items,
                                         dispenses=counts["MedicationDispense"]).split(";"):
            tx.execute(statement)
    storage.close()
    return counts


def child_export(url: str, out: str) -> None:
    """Run in a child process: export, print seconds, counts and peak RSS as JSON."""
    storage = open_storage(url)
    start = time.perf_counter()
    access = Access("bench", frozenset(TYPES), frozenset(), all_regions=True)
    written = write_ndjson(storage, access, TYPES, None, Path(out), utc_now)
    seconds = time.perf_counter() - start
    storage.close()
    print(json.dumps({"seconds": seconds, "counts": {w.resource_type: w.count for w in written},
                      "bytes": sum(w.path.stat().st_size for w in written),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def export(url: str, out: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", url, str(out)], check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bare_copy(url: str, out: Path) -> float:
    """COPY of the rows the export reads (its own source queries), to a file."""
    storage = open_storage(url)
    start = time.perf_counter()
    with storage.reader() as tx, out.open("wb") as sink:
        for resource_type in TYPES:
            select = SOURCES[resource_type].select(tx.dialect)
            with tx.conn.cursor() as cursor, cursor.copy(  # type: ignore[attr-defined]
                    f"COPY (SELECT * FROM ({select}) r) TO STDOUT") as copy:
                for block in copy:
                    sink.write(block)
    seconds = time.perf_counter() - start
    storage.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE,
                        help=f"resources to export (default {DEFAULT_SIZE:,})")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_export(*args.child)
        return 0
    base = postgres_base_url()
    if base is None:
        print("PostgreSQL is not reachable on 127.0.0.1:5432 (database test); skipped")
        return 0
    rows, extra = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted({max(10, args.size // 10), args.size}):
            with temporary_schema(base, "benchfhir") as url:
                counts = generate(url, size)
                result = export(url, Path(tmp) / f"export-{size}")
                copy_seconds = bare_copy(url, Path(tmp) / f"copy-{size}.tsv")
            assert result["counts"] == counts, (result["counts"], counts)
            rate = size / result["seconds"]
            rows.append({"resources": size, "export_s": round(result["seconds"], 2),
                         "resources_per_s": round(rate), "peak_rss_mb":
                         round(result["peak_rss_mb"], 1),
                         "ndjson_mb": round(result["bytes"] / 1e6, 1),
                         "copy_s": round(copy_seconds, 2),
                         "copy_rows_per_s": round(size / copy_seconds),
                         "export_vs_copy": round(result["seconds"] / copy_seconds, 1)})
        extra["note"] = ("export_vs_copy: times slower than a bare COPY of the same rows; "
                         "peak_rss_mb of the exporting process at both sizes shows whether "
                         "memory grows with the data")
    report("fhir_export", rows, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
