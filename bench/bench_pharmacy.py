"""Scan-to-verdict latency at the pharmacy counter, through the node's HTTP API on loopback.

A scanner types the code and Enter; the counter posts it; the node answers with a verdict.
Measures that round trip (signature, chain, revocation, local dispensing state), p50/p95/p99.
Run: .venv/bin/python bench/bench_pharmacy.py [--codes 200] [--scans 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from waitress.server import create_server

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers.pki import make_pki  # noqa: E402

from bench.common import report  # noqa: E402
from edge_node.credentials import NodeCredentials  # noqa: E402
from edge_node.seed import DEMO_PIN, seed_demo  # noqa: E402
from edge_node.services import prescribing, staff  # noqa: E402
from edge_node.services.clock import confirm_clock  # noqa: E402
from edge_node.store import NodeStore  # noqa: E402
from edge_node.web import create_app  # noqa: E402
from sync_protocol.timeutil import utc_now  # noqa: E402

ITEM = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
        "dosage": "1 x 3"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codes", type=int, default=200)
    parser.add_argument("--scans", type=int, default=2000)
    args = parser.parse_args()
    from datetime import timedelta
    pki = make_pki(now=utc_now() - timedelta(days=1))
    creds = NodeCredentials(pki.clinic.key, pki.clinic.cert, tuple(pki.clinic.chain),
                            pki.trust_list)
    with tempfile.TemporaryDirectory() as tmp:
        store = NodeStore(Path(tmp) / "node.db")
        store.initialise("bench-pharmacy")
        seed_demo(store)
        confirm_clock(store, "bench")
        doctor = staff.actor_for_staff(store.one("SELECT * FROM staff WHERE username='doctor'"))
        patients = [r["patient_id"] for r in store.query("SELECT patient_id FROM patients")]
        codes = [prescribing.issue_prescription(store, doctor, creds,
                                                patient_id=patients[i % len(patients)],
                                                items=[ITEM])["qr"]
                 for i in range(args.codes)]
        app = create_app({"DATABASE": str(Path(tmp) / "node.db"), "SECRET_KEY": "bench",
                          "BACKGROUND_JOBS": False}, store=store, credentials=creds)
        # waitress with a fixed thread pool, as `dmed-node serve` runs it
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.effective_port}/api/v1"
        session = requests.Session()
        token = session.post(f"{base}/auth/sign-in", json={
            "username": "pharmacist", "pin": DEMO_PIN["pharmacist"]}).json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        latencies = []
        verdicts: dict[str, int] = {}
        for i in range(args.scans):
            start = time.perf_counter()
            response = session.post(f"{base}/pharmacy/verify",
                                    json={"code": codes[i % len(codes)] + "\r\n"})
            latencies.append((time.perf_counter() - start) * 1000)
            verdict = response.json()["verdict"]
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
        server.close()
        store.close()
    ms = [round(x, 3) for x in latencies]
    report("scan_to_verdict_http", [{
        "scans": args.scans, "distinct_codes": args.codes,
        "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms), "per_second": args.scans / (sum(ms) / 1000),
    }], {"verdicts": verdicts, "target": "p99 < 20 ms"})


if __name__ == "__main__":
    main()
