"""The hub's /metrics (central_hub.web.metrics): Prometheus text read back with
prometheus_client's parser after real signed pushes, pulls and refusals; a node that stops
syncing is flagged within two sync intervals (a hand-moved clock); access is restricted."""

from datetime import timedelta

import pytest
from helpers.hub import SimNode
from helpers.hub_app import hub_app_for
from prometheus_client.parser import text_string_to_metric_families

from central_hub.monitoring import node_attempts
from central_hub.web.app import create_app

INTERVAL = 30


@pytest.fixture
def app(make_hub, clock):
    return make_hub(clock=clock, SYNC_INTERVAL_SECONDS=INTERVAL)


def scrape(app, **headers) -> dict[tuple[str, tuple], float]:
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def node_labels(node: SimNode, kind: str) -> dict[str, str]:
    return {"node": node.node_id, "region": "TAS", "kind": kind}


def test_a_push_is_counted_by_verdict_and_the_node_gauges_follow(app, world, clock):
    before = scrape(app)
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    clinic.register_patient()
    assert clinic.push(now=clock.now).status_code == 200
    assert clinic.push(now=clock.now).status_code == 200  # the same two again: duplicates
    after = scrape(app)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dmed_hub_events_total", status="accepted", reason="") == 2
    assert delta("dmed_hub_events_total", status="duplicate", reason="") == 2
    assert delta("dmed_hub_sync_requests_total", kind="push", outcome="ok") == 2
    assert delta("dmed_hub_sync_request_duration_seconds_count", kind="push") == 2
    labels = node_labels(clinic, "clinic")
    assert value(after, "dmed_hub_node_acked_sequence", **labels) == 2
    assert value(after, "dmed_hub_node_last_push_timestamp_seconds", **labels) == pytest.approx(
        clock.now.timestamp(), abs=1)
    assert value(after, "dmed_hub_node_silent", **labels) == 0
    assert value(after, "dmed_hub_node_state", state="healthy", **labels) in (0, 1)
    expiry = world.pki.clinic.cert.not_valid_after_utc.timestamp()
    assert value(after, "dmed_hub_node_certificate_expiry_timestamp_seconds",
                 **labels) == expiry
    assert abs(value(after, "dmed_hub_node_clock_offset_seconds", **labels)) < 5
    assert value(after, "dmed_hub_log_head_position") == 2
    # No label of any sample names a patient.
    patient = clinic.log[1]["payload"]
    for (_name, sample_labels) in after:
        for _key, label_value in sample_labels:
            assert label_value not in (patient.get("pinfl"), patient.get("patient_id"))


def test_a_refused_event_is_counted_with_its_reason(app, world, clock):
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    clinic.log[0]["hash"] = "0" * 64  # breaks the chain: refused, quarantined
    before = scrape(app)
    assert clinic.push(now=clock.now).status_code == 200
    after = scrape(app)
    refused = {labels: v - value(before, name, **dict(labels)) for (name, labels), v
               in after.items() if name == "dmed_hub_events_total"
               and dict(labels)["status"] == "refused"}
    assert sum(refused.values()) == 1
    [(labels, _)] = [(labels, v) for labels, v in refused.items() if v]
    assert dict(labels)["reason"] not in ("", "other")
    assert value(after, "dmed_hub_quarantined_events") == 1


def test_an_unauthenticated_push_is_counted_and_leaves_no_history(app, world, clock, storage):
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    before = scrape(app)
    stale = clock.now - timedelta(hours=2)
    assert clinic.push(now=stale).status_code == 401
    after = scrape(app)
    assert value(after, "dmed_hub_unauthenticated_refusals_total", reason="clock_skew") - \
        value(before, "dmed_hub_unauthenticated_refusals_total", reason="clock_skew") == 1
    assert node_attempts(storage, clinic.node_id, 10) == []


def test_a_stranger_naming_a_node_writes_nothing_into_its_history(world, clock, storage):
    """Answered before any signature check (413 here), a request names a node only by a header
    anyone can set: the node's history must not grow (issue 11: nothing about a node changes
    until its request is authenticated)."""
    app = hub_app_for(storage, world, clock=clock, MAX_BODY_BYTES=2048)
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    assert clinic.push(now=clock.now).status_code == 200
    known = node_attempts(storage, clinic.node_id, 10)
    response = app.test_client().post("/sync/v1/push", data=b"[" * 10_000, headers={
        "X-DMED-Node": clinic.node_id, "Content-Type": "application/json"})
    assert response.status_code in (400, 401, 413)
    assert node_attempts(storage, clinic.node_id, 10) == known


def test_a_node_that_stops_syncing_is_flagged_within_two_intervals(app, world, clock):
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    pharmacy.register_facility()
    assert pharmacy.push(now=clock.now).status_code == 200
    assert pharmacy.pull(now=clock.now).status_code == 200
    labels = node_labels(pharmacy, "pharmacy")
    start = clock.now
    clock.now = start + timedelta(seconds=2 * INTERVAL - 1)
    samples = scrape(app)
    assert value(samples, "dmed_hub_node_silent", **labels) == 0
    assert value(samples, "dmed_hub_node_seconds_since_contact", **labels) == 2 * INTERVAL - 1
    clock.now = start + timedelta(seconds=2 * INTERVAL + 1)
    samples = scrape(app)
    assert value(samples, "dmed_hub_node_silent", **labels) == 1
    assert value(samples, "dmed_hub_node_state", state="offline", **labels) == 1
    assert value(samples, "dmed_hub_node_state", state="healthy", **labels) == 0


def test_the_sync_history_records_each_attempt(app, world, clock, storage):
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    clinic.register_patient()
    assert clinic.push(now=clock.now).status_code == 200
    assert clinic.pull(now=clock.now).status_code == 200
    pull, push = node_attempts(storage, clinic.node_id, 10)
    assert (push["kind"], push["outcome"], push["events"]) == ("push", "ok", 2)
    assert (pull["kind"], pull["outcome"]) == ("pull", "ok")
    assert pull["events"] >= 0 and push["duration_ms"] >= 0


@pytest.mark.parametrize(("token", "headers", "remote", "status"), [
    ("", {}, "127.0.0.1", 200),
    ("", {}, "10.0.0.7", 403),
    ("s3cret-token", {}, "127.0.0.1", 403),
    ("s3cret-token", {"Authorization": "Bearer wrong"}, "10.0.0.7", 403),
    ("s3cret-token", {"Authorization": "Bearer s3cret-token"}, "10.0.0.7", 200),
])
def test_metrics_answer_loopback_or_the_bearer_token(storage, token, headers, remote, status):
    app = create_app({"TESTING": True, "METRICS_TOKEN": token}, storage=storage)
    response = app.test_client().get("/metrics", headers=headers,
                                     environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == status


def test_every_metric_the_alert_rules_use_is_in_a_real_scrape(app, world, clock):
    """deploy/alerts.yml names metrics; a renamed one would leave an alert that never fires.
    A hub with an over-dispensing conflict and a quarantined event exports them all."""
    import re
    from pathlib import Path

    rules = (Path(__file__).resolve().parents[2] / "deploy" / "alerts.yml").read_text()
    used = set(re.findall(r"dmed_hub_\w+", rules))
    clinic = SimNode(world.pki.clinic, app.test_client())
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    clinic.register_facility()
    pharmacy.register_facility()
    rx = clinic.prescribe(clinic.register_patient(), clinic.register_practitioner())
    pharmacy.dispense(rx)
    pharmacy.dispense(rx)
    assert clinic.push(now=clock.now).status_code == 200
    assert pharmacy.push(now=clock.now).status_code == 200
    samples = scrape(app)
    names = {name for name, _labels in samples}
    assert used and used <= names, used - names
    assert value(samples, "dmed_hub_open_conflicts", kind="over_dispensing") == 1
    clock.now += timedelta(days=2)  # a day later: the alert's condition holds
    age = value(scrape(app), "dmed_hub_oldest_open_conflict_age_seconds", kind="over_dispensing")
    assert 86400 < age < 2 * 86400 + 60
