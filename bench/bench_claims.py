"""Claim round trip at the hub (issue 13: p99 under 50 ms on loopback at 50 claims/s).

A pharmacy's signed HubClient claims one full prescription after another from a real
`dmed-hub serve` process on loopback, paced at --rate claims per second; between two claims
it sends the bare reference: a signed no-op request (POST /sync/v1/ping, authenticated and
answered, nothing else). Both are measured in the same run, so the ratio says what the claim
itself costs (the decision under the writer lock, the stored claim and its hub event).
Run: .venv/bin/python bench/bench_claims.py [--claims 300] [--rate 50] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers.hub import SimNode  # noqa: E402
from helpers.pki import make_pki  # noqa: E402
from helpers.servers import HOST, free_port  # noqa: E402

from bench.common import report  # noqa: E402
from central_hub.composition import open_storage  # noqa: E402
from central_hub.web.app import create_app  # noqa: E402
from edge_node.sync.client import HubClient, HubUnreachable  # noqa: E402
from sync_protocol.claims import ClaimRequest  # noqa: E402

TARGET_P99_MS = 50.0
START_SECONDS = 60


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def prepare(db_url: str, pki, count: int) -> tuple[list[str], str]:
    """A hub database holding `count` prescriptions and a registered pharmacy."""
    storage = open_storage(db_url)
    app = create_app({"TESTING": True}, storage=storage)
    app.extensions["dmed_hub"].trust.import_list(pki.trust_list, accept_roots=True)
    clinic = SimNode(pki.clinic, app.test_client())
    pharmacy = SimNode(pki.pharmacy, app.test_client())
    clinic.register_facility()
    patient, doctor = clinic.register_patient(), clinic.register_practitioner()
    prescriptions = [clinic.prescribe(patient, doctor) for _ in range(count)]
    facility = pharmacy.register_facility(name="Bench dorixona")
    for node in (clinic, pharmacy):
        for start in range(0, len(node.log), 500):
            response = node.push(node.log[start:start + 500])
            if response.status_code != 200:
                raise RuntimeError(f"push failed: {response.status_code}")
    storage.close()
    return prescriptions, facility


def serve(db_url: str, directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    script = Path(sys.executable).parent / "dmed-hub"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "central_hub.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMED_")}
    log = open(directory / "hub.log", "wb")  # noqa: SIM115 - the process owns it
    process = subprocess.Popen([*command, "serve", "--db", db_url, "--host", HOST, "--port",
                                str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the hub did not start")


def measure(client: HubClient, prescriptions: list[str], facility: str,
            rate: float) -> tuple[list[float], list[float], int]:
    claims_ms, pings_ms, granted = [], [], 0
    client.ping()  # connection made and the hub's first-contact bookkeeping done
    start = time.perf_counter()
    for index, prescription in enumerate(prescriptions):
        due = start + index / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        began = time.perf_counter()
        try:
            answer = client.claim(ClaimRequest(prescription, facility, ((1, 20),)))
        except HubUnreachable:  # past the counter's timeout: counted at the time waited
            answer = {"granted": False}
        claims_ms.append((time.perf_counter() - began) * 1000)
        granted += bool(answer["granted"])
        began = time.perf_counter()
        client.ping()
        pings_ms.append((time.perf_counter() - began) * 1000)
    return claims_ms, pings_ms, granted


def row(name: str, values: list[float]) -> dict:
    return {"request": name, "count": len(values), "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99), "mean_ms": statistics.fmean(values),
            "max_ms": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="claims per second")
    parser.add_argument("--db", default="", help="hub database URL (default: SQLite in tmp)")
    args = parser.parse_args()
    pki = make_pki()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'hub.db'}"
        prescriptions, facility = prepare(db_url, pki, args.claims)
        process, url = serve(db_url, Path(tmp))
        try:
            client = HubClient(url, pki.pharmacy, pki.pharmacy.identity.node_id)
            claims_ms, pings_ms, granted = measure(client, prescriptions, facility, args.rate)
        finally:
            process.terminate()
            process.wait(timeout=10)
    claim, ping = row("claim", claims_ms), row("signed_no_op", pings_ms)
    report("claim_round_trip", [claim, ping], {
        "rate_per_s": args.rate, "granted": granted, "backend": db_url.split(":")[0],
        "ratio_p50": round(claim["p50_ms"] / ping["p50_ms"], 2),
        "ratio_p99": round(claim["p99_ms"] / ping["p99_ms"], 2),
        "target": f"claim p99 < {TARGET_P99_MS} ms",
        "met": claim["p99_ms"] < TARGET_P99_MS and granted == len(prescriptions)})


if __name__ == "__main__":
    main()
