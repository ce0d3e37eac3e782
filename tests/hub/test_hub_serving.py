"""`dmed-hub serve --workers N`: worker processes share the port and stop together."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from helpers.hub import SimNode
from helpers.processes import children_of, gone, wait_for
from helpers.servers import free_port

from central_hub.composition import open_storage
from central_hub.ingest import Ingestor
from central_hub.projector import lag, wait_projected

HOST = "127.0.0.1"
HUB = Path(sys.executable).parent / "dmed-hub"


@pytest.fixture
def hub(tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(HUB), "serve", "--db", f"sqlite:///{tmp_path / 'hub.db'}",
                             "--host", HOST, "--port", str(port), "--workers", "2",
                             "--threads", "4"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://{HOST}:{port}"
    proc.database = tmp_path / "hub.db"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/healthz", timeout=1).ok and len(children_of(proc.pid)) == 2:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "the hub did not start"
        time.sleep(0.1)
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    proc.stdout.close()


def test_workers_answer_on_one_port_and_stop_with_the_hub(hub):
    proc, url = hub
    workers = children_of(proc.pid)
    assert all(requests.get(url + "/healthz", timeout=5).ok for _ in range(20))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert gone(workers)
    assert "stopping the others" not in proc.stdout.read()  # an orderly stop, not a failure


def test_a_worker_that_dies_takes_the_hub_down_rather_than_serving_half(hub):
    proc, _url = hub
    first, second = children_of(proc.pid)
    os.kill(first, signal.SIGKILL)
    proc.wait(15)
    assert gone([second])
    assert "stopping the others" in proc.stdout.read()


def test_workers_end_with_a_hub_killed_outright(hub):
    proc, _url = hub
    workers = children_of(proc.pid)
    proc.kill()  # SIGKILL: no handler runs; orphans would keep the port
    proc.wait(10)
    wait_for(lambda: gone(workers), "the workers to end")


def test_metrics_add_up_every_worker(hub):
    """Counters live in per-process files (multiprocess mode): any worker's scrape gives the
    total of all, here 20 unsigned pushes (refused) spread over both workers."""
    from prometheus_client.parser import text_string_to_metric_families
    _proc, url = hub
    for _ in range(20):
        assert requests.post(url + "/sync/v1/push", data=b"{}", timeout=5).status_code >= 400
    for _ in range(4):
        text = requests.get(url + "/metrics", timeout=5).text
        [family] = [f for f in text_string_to_metric_families(text)
                    if f.name == "dmed_hub_sync_requests"]
        assert sum(s.value for s in family.samples if s.name.endswith("_total")) == 20


def test_the_supervisors_projector_projects_what_was_stored(hub, world):
    """With workers, the background projector is a thread of the supervisor: events stored
    (here by an ingest beside the hub, as a worker stores them) are projected by it."""
    proc, url = hub
    clinic = SimNode(world.pki.clinic, None)
    clinic.register_facility()
    clinic.register_patient()
    with open_storage(f"sqlite:///{proc.database}") as storage:
        stored = Ingestor(storage, background=True).push(clinic.identity, clinic.log)
        assert [r.status for r in stored.results] == ["accepted", "accepted"]
        assert wait_projected(storage, timeout=30) == 2
        assert lag(storage).events == 0
        with storage.reader() as tx:
            assert tx.scalar("SELECT COUNT(*) AS n FROM hub_patients") == 1
    assert requests.get(url + "/healthz", timeout=5).json()["projection_lag"]["events"] == 0
