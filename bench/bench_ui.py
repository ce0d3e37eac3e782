"""Kiosk and counter pages under load: pages per second and latency with 20 concurrent clients.

    .venv/bin/python bench/bench_ui.py [--clients 20] [--requests 1000]

A seeded demo node is served on 127.0.0.1 as `dmed-node serve` serves it (edge_node.web.
serving: waitress's options, two worker processes), apart from the 20 client threads (in
this process); they do share the machine's two cores, as a kiosk's browser would not, and
that cost stays in the figures (the timed loop uses keep-alive http.client connections,
which cost far less CPU than requests).
Each kiosk client is an identified patient (its own session cookie) walking the kiosk's read
pages: home (upcoming visits), the doctor list, a doctor's free times, the start page (which
sends an identified patient on to home: two requests, timed together) and the PINFL keypad;
a quarter as many pharmacists reload the counter's verdict page for a scanned prescription
(verified, chain checked and dispensing state read again on every load).

Two runs of the same pages and clients, both held to the target (p95 < 100 ms):

* "paced": each client loads a page after a random pause averaging --think-ms (250 ms, a
  touch every quarter second, faster than any person at a kiosk);
* "saturated": the clients never pause. The loop is closed, so the mean latency is about
  clients / pages per second: meeting the target here means serving about 250 pages a
  second or more with a short tail.

Also reported per run: CPU milliseconds per page of the node's process and of the clients
(Linux /proc), which say where the time went. Prints JSON, then a readable table.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from itertools import cycle
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report  # noqa: E402
from edge_node.seed import DEMO_PIN, seed_demo  # noqa: E402
from edge_node.store import NodeStore  # noqa: E402
from edge_node.web import create_app  # noqa: E402
from edge_node.web.serving import serve_workers, server_options  # noqa: E402

P95_TARGET_MS = 100.0  # the issue's target on this machine
TIMEOUT_SECONDS = 10
MAX_REDIRECTS = 5
SERVER_WORKERS = 2  # as `dmed-node serve` runs by default


def _serve(database: str, ready) -> None:
    """The node: `dmed-node serve`'s worker processes, each with its store and app, until
    terminated."""
    config = {"DATABASE": database, "SECRET_KEY": "bench", "BACKGROUND_JOBS": False}
    serve_workers(lambda: create_app(config, store=NodeStore(database)), "127.0.0.1", 0,
                  SERVER_WORKERS, on_listening=ready.send)


def start_node(database: str) -> tuple[multiprocessing.Process, str]:
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(database, send), name="bench-ui-node", daemon=True)
    process.start()
    if not receive.poll(60):
        process.terminate()
        raise SystemExit("the node did not start")
    return process, f"http://127.0.0.1:{receive.recv()}"


def kiosk_session(base: str, person: dict) -> requests.Session:
    """A browser-like session identified at the kiosk (PINFL + the document's last digits)."""
    http = requests.Session()
    page = http.get(f"{base}/ui/kiosk/identify", timeout=TIMEOUT_SECONDS).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    http.post(f"{base}/ui/kiosk/identify", data={"csrf_token": token, "pinfl": person["pinfl"]},
              timeout=TIMEOUT_SECONDS)
    done = http.post(f"{base}/ui/kiosk/verify", timeout=TIMEOUT_SECONDS,
                     data={"csrf_token": token, "document_digits": person["document"][-4:]})
    if not done.url.endswith("/ui/kiosk/home"):
        raise SystemExit(f"kiosk identification failed: {done.status_code} {done.url}")
    return http


def counter_session(base: str, code: str) -> requests.Session:
    """A pharmacist signed in at the counter who has just scanned ``code``."""
    http = requests.Session()
    page = http.get(f"{base}/ui/desk/sign-in", timeout=TIMEOUT_SECONDS).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    http.post(f"{base}/ui/desk/sign-in", timeout=TIMEOUT_SECONDS, data={
        "csrf_token": token, "username": "pharmacist", "pin": DEMO_PIN["pharmacist"]})
    page = http.get(f"{base}/ui/counter/", timeout=TIMEOUT_SECONDS).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    shown = http.post(f"{base}/ui/counter/scan", timeout=TIMEOUT_SECONDS,
                      data={"csrf_token": token, "code": code})
    if "verdict" not in shown.text:
        raise SystemExit("the counter did not show a verdict")
    return http


def pages(base: str, doctor_id: str) -> dict[str, str]:
    return {"home": f"{base}/ui/kiosk/home", "doctors": f"{base}/ui/kiosk/book",
            "free times": f"{base}/ui/kiosk/book/{doctor_id}",
            "start": f"{base}/ui/kiosk/", "PINFL keypad": f"{base}/ui/kiosk/identify"}


class Browser:
    """One client's keep-alive connection for the timed loop, with its session's cookies.

    A kiosk's browser runs on its own machine; here the clients share the node's two cores,
    so they should cost little: http.client takes a fraction of the CPU per page that
    requests takes. Like a browser it keeps the cookies it is sent and follows redirects.
    """

    def __init__(self, base: str, session: requests.Session) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port
        self.cookies = session.cookies.get_dict()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)

    def get(self, url: str) -> tuple[int, int]:
        """(status, body bytes) of the page at `url`, after its redirects."""
        path = _path(url)
        for _ in range(MAX_REDIRECTS):
            response = self._request(path)
            body = response.read()
            for header in response.headers.get_all("Set-Cookie") or ():
                for name, morsel in SimpleCookie(header).items():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.coded_value
            if response.status not in (301, 302, 303, 307, 308):
                return response.status, len(body)
            path = _path(response.headers["Location"])
        return 0, 0

    def _request(self, path: str) -> http.client.HTTPResponse:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        try:
            self.conn.request("GET", path, headers=headers)
            return self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # the server closed an idle connection: open a new one
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
            self.conn.request("GET", path, headers=headers)
            return self.conn.getresponse()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _run(clients: list[dict[str, Browser]], urls: dict[str, str], args,
         think: float) -> tuple[list, float]:
    """Load ``args.requests`` pages, each client (a thread with its own kiosk and counter
    sessions) loading its share in turn; (results, seconds)."""
    plan = list(zip(range(args.requests), cycle(urls.items()), strict=False))

    def client(number: int) -> list:
        pauses = random.Random(7 + number)  # the same pauses every run
        own, results = clients[number], []
        for _index, (name, url) in plan[number::len(clients)]:
            if think:
                time.sleep(pauses.expovariate(1 / think))
            browser = own["counter" if name.startswith("counter") else "kiosk"]
            start = time.perf_counter()
            status, size = browser.get(url)
            results.append((name, time.perf_counter() - start, status == 200 and size > 0))
        return results

    wall = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        results = [item for lane in pool.map(client, range(len(clients))) for item in lane]
    return results, time.perf_counter() - wall


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def enrol_and_prescribe(store: NodeStore, tmp: Path) -> str:
    """Enrol the node from a bundle (so the served app can sign and verify) and write one
    prescription for the counter to scan; returns its code."""
    from datetime import timedelta

    from edge_node.credentials import install_bundle, load_credentials
    from edge_node.services import prescribing, staff
    from edge_node.services.clock import confirm_clock
    from sync_protocol.timeutil import utc_now
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers.pki import make_pki
    pki = make_pki(tmp / "pki", now=utc_now() - timedelta(days=1))
    installed = install_bundle(pki.paths["clinic_bundle"], tmp)
    with store.transaction() as tx:
        store.set_state(tx.conn, "bundle_path", str(installed))
    confirm_clock(store, "bench")
    doctor = staff.actor_for_staff(store.one("SELECT * FROM staff WHERE username = 'doctor'"))
    patient = store.one("SELECT patient_id FROM patients")["patient_id"]
    return prescribing.issue_prescription(
        store, doctor, load_credentials(installed), patient_id=patient,
        items=[{"inn": "amoxicillin", "form": "capsule", "strength": "500 mg",
                "quantity": 20, "dosage": "1 x 3"}])["qr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000, help="page loads per run")
    parser.add_argument("--think-ms", type=float, default=250.0,
                        help="mean pause of a paced client between pages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = str(Path(tmp) / "bench.db")
        store = NodeStore(database)
        store.initialise("bench-ui")
        demo = seed_demo(store)
        doctor = store.one("SELECT family_doctor_id FROM patients WHERE pinfl = ?",
                           (demo["patients"][0]["pinfl"],))["family_doctor_id"]
        code = enrol_and_prescribe(store, Path(tmp))
        store.close()
        process, base = start_node(database)
        try:
            urls = pages(base, doctor)
            # Each client: an identified kiosk patient, and a pharmacist whose counter shows
            # a verdict (verify, chain, dispensing state, render on every load).
            clients = [{"kiosk": Browser(base, kiosk_session(
                            base, demo["patients"][i % len(demo["patients"])])),
                        "counter": Browser(base, counter_session(base, code))}
                       for i in range(args.clients)]
            urls["counter verdict"] = f"{base}/ui/counter/"
            for own in clients:  # warm up: templates compiled, connections open
                for name, url in urls.items():
                    own["counter" if name.startswith("counter") else "kiosk"].get(url)
            runs = {"paced": args.think_ms / 1000, "saturated": 0.0}
            results, walls, cpu = {}, {}, {}
            for run, think in runs.items():
                node_cpu, client_cpu = process_cpu_seconds(process.pid), time.process_time()
                results[run], walls[run] = _run(clients, urls, args, think)
                cpu[run] = (process_cpu_seconds(process.pid) - node_cpu,
                            time.process_time() - client_cpu)
        finally:
            process.terminate()
            process.join(timeout=10)

    rows, summary = [], {}
    for run, items in results.items():
        for name in [*urls, "all"]:
            times = [t * 1000 for n, t, _ in items if name in ("all", n)]
            rows.append({"run": run, "page": name, "count": len(times),
                         "p50_ms": statistics.median(times),
                         "p95_ms": percentile(times, 0.95),
                         "p99_ms": percentile(times, 0.99), "max_ms": max(times)})
        every = rows[-1]
        summary[run] = {"pages_per_second": round(len(items) / walls[run], 1),
                        "p50_ms": round(every["p50_ms"], 1), "p95_ms": round(every["p95_ms"], 1),
                        "p99_ms": round(every["p99_ms"], 1),
                        "failures": sum(1 for _, _, ok in items if not ok),
                        "node_cpu_ms_per_page": round(cpu[run][0] * 1000 / len(items), 2),
                        "client_cpu_ms_per_page": round(cpu[run][1] * 1000 / len(items), 2)}
        summary[run]["meets_target"] = (summary[run]["p95_ms"] < P95_TARGET_MS
                                        and summary[run]["failures"] == 0)
    report("kiosk_and_counter_pages_under_load", rows, {
        "clients": args.clients, "requests_per_run": args.requests,
        "think_ms": args.think_ms, "runs": summary, "p95_target_ms": P95_TARGET_MS,
        "meets_target": all(run["meets_target"] for run in summary.values()),
        "server": f"waitress {server_options()}, {SERVER_WORKERS} worker processes, loopback",
        # Other work on the machine shows up in the latencies: say how busy it was.
        "load_average_1min": round(os.getloadavg()[0], 2)})


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds so far of a process and its live children (Linux; 0
    elsewhere): the node's supervisor and its workers."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(c) for c in handle.read().split()]
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu_seconds(child) for child in children)


if __name__ == "__main__":
    main()
