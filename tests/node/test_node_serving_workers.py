"""`dmed-node serve --workers N`: worker processes share the port, the background jobs run
beside them (once, in the serving process), and they all stop together."""

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from helpers.processes import children_of, gone, wait_for
from helpers.servers import free_port

HOST = "127.0.0.1"
NODE = Path(sys.executable).parent / "dmed-node"


def unsent_sms(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT COUNT(*) FROM sms_outbox WHERE sent_at IS NULL").fetchone()[0]


@pytest.fixture
def node(tmp_path):
    database = tmp_path / "node.db"
    for command in (["init", "--node-id", "tas-pol-099"], ["seed-demo"]):
        subprocess.run([str(NODE), command[0], "--db", str(database), *command[1:]],
                       check=True, capture_output=True, cwd=tmp_path)
    queued = unsent_sms(database)
    assert queued > 0  # the demo patients' codes wait for the SMS job
    port = free_port()
    env = {**os.environ, "DMED_SECRET_KEY": "test", "DMED_SMS_INTERVAL_SECONDS": "1"}
    proc = subprocess.Popen([str(NODE), "serve", "--db", str(database), "--host", HOST,
                             "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://{HOST}:{port}"

    def up() -> bool:
        assert proc.poll() is None, "the node stopped"
        try:
            return requests.get(url + "/ui/kiosk/identify", timeout=1).ok and len(
                children_of(proc.pid)) == 2
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, "the node's workers")
        yield proc, url, database, queued
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for child in children_of(proc.pid):
            os.kill(child, signal.SIGKILL)
        proc.stdout.close()


def test_workers_serve_the_screens_and_the_jobs_run_once_beside_them(node):
    proc, url, database, queued = node
    workers = children_of(proc.pid)
    pages = [requests.get(url + "/ui/kiosk/identify", timeout=5) for _ in range(20)]
    assert all(p.status_code == 200 and "csrf_token" in p.text for p in pages)
    wait_for(lambda: unsent_sms(database) == 0, "the SMS job")  # jobs run beside the workers
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert gone(workers)
    log = proc.stdout.read()
    assert "(2 workers)" in log and "stopping the others" not in log
    assert log.count("SMS to ") == queued  # each code sent once, by one job, not per worker


def test_a_worker_that_dies_stops_the_node_rather_than_serving_half(node):
    proc, _url, _database, _queued = node
    first, second = children_of(proc.pid)
    os.kill(first, signal.SIGKILL)
    proc.wait(15)
    assert gone([second])
    assert "stopping the others" in proc.stdout.read()


def test_workers_end_with_a_supervisor_killed_outright(node):
    proc, _url, _database, _queued = node
    workers = children_of(proc.pid)
    proc.kill()  # SIGKILL: no handler runs; orphans would keep the port
    proc.wait(10)
    wait_for(lambda: gone(workers), "the workers to end")


def test_metrics_add_up_every_worker(node):
    """Page latencies live in per-process files (multiprocess mode): any worker's scrape
    counts the pages of both, here the 20 kiosk pages plus those the start-up check made."""
    from prometheus_client.parser import text_string_to_metric_families
    _proc, url, _database, _queued = node

    def kiosk_pages() -> float:
        text = requests.get(url + "/metrics", timeout=5).text
        [family] = [f for f in text_string_to_metric_families(text)
                    if f.name == "dmed_node_request_duration_seconds"]
        return sum(s.value for s in family.samples
                   if s.name.endswith("_count") and s.labels.get("group") == "kiosk")

    before = kiosk_pages()
    for _ in range(20):
        assert requests.get(url + "/ui/kiosk/identify", timeout=5).ok
    assert all(kiosk_pages() == before + 20 for _ in range(4))
