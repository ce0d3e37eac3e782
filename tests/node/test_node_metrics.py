"""The node's /metrics (edge_node.web.metrics): page and scan-to-verdict latencies, sync outcomes,
pending events and free disk, parsed back with prometheus_client's parser after real actions;
and the multiprocess directory a server run starts with."""

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_node.web import create_app
from sync_protocol import metrics_export


def scrape(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_scan_is_timed_to_its_verdict_and_pages_by_group(client, auth):
    headers = auth("pharmacist")
    before = scrape(client)
    answer = client.post("/api/v1/pharmacy/verify", headers=headers, json={"code": "12345"})
    assert answer.status_code == 200 and answer.json["verdict"] == "not_a_prescription"
    after = scrape(client)
    name = "dmed_node_scan_to_verdict_seconds_count"
    assert value(after, name, source="rx") - value(before, name, source="rx") == 1
    page = "dmed_node_request_duration_seconds_count"
    assert value(after, page, group="rx") - value(before, page, group="rx") == 1
    assert value(after, "dmed_node_disk_free_bytes") > 0


def test_a_failed_sync_is_counted_and_pending_events_shown(store, seeded, tmp_path,
                                                           clinic_credentials):
    app = create_app({"DATABASE": str(tmp_path / "node.db"), "TESTING": True,
                      "SECRET_KEY": "t", "BACKGROUND_JOBS": False,
                      "HUB_URL": "http://127.0.0.1:9"}, store=store,
                     credentials=clinic_credentials)
    client = app.test_client()
    before = scrape(client)
    report = app.extensions["dmed_sync_agent"].run_once()
    assert not report["ok"] and report["stage"] == "push"
    after = scrape(client)
    runs = "dmed_node_sync_runs_total"
    assert value(after, runs, outcome="failed_push") - value(before, runs,
                                                             outcome="failed_push") == 1
    node_id = store.state("node_id")
    own = store.one("SELECT COUNT(*) AS n FROM events WHERE origin = ?", (node_id,))["n"]
    assert own > 0 and value(after, "dmed_node_pending_events") == own
    assert value(after, "dmed_node_hub_unreachable") == 1


@pytest.mark.parametrize(("token", "headers", "remote", "status"), [
    ("", {}, "127.0.0.1", 200),
    ("", {}, "192.168.1.20", 403),
    ("tok-1234567890", {"Authorization": "Bearer tok-1234567890"}, "192.168.1.20", 200),
    ("tok-1234567890", {}, "127.0.0.1", 403),
])
def test_metrics_answer_loopback_or_the_bearer_token(store, tmp_path, token, headers, remote,
                                                     status):
    app = create_app({"DATABASE": str(tmp_path / "node.db"), "TESTING": True,
                      "SECRET_KEY": "t", "BACKGROUND_JOBS": False, "METRICS_TOKEN": token},
                     store=store)
    answer = app.test_client().get("/metrics", headers=headers,
                                   environ_base={"REMOTE_ADDR": remote})
    assert answer.status_code == status


def test_a_server_run_starts_with_an_empty_multiprocess_directory(tmp_path, monkeypatch):
    from prometheus_client import values
    before = values.ValueClass
    target = tmp_path / "prom"
    target.mkdir()
    (target / "counter_999.db").write_bytes(b"stale counts of a previous run")
    monkeypatch.delenv(metrics_export.ENV, raising=False)
    try:
        path = metrics_export.enable_multiprocess(target)
        assert path == target and list(target.iterdir()) == []
        assert os.environ[metrics_export.ENV] == str(target)
        assert metrics_export.multiprocess_enabled()
    finally:
        values.ValueClass = before
