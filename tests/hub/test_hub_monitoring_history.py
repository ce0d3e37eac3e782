"""The hub's compact monitoring history (central_hub.monitoring): hourly counts become daily
after the hourly window, sums add up and worst values stay the worst, nothing outlives the
retention, and each node keeps at most its bound of attempts. Retention and bound are
settings."""

from datetime import timedelta

import pytest

from central_hub import monitoring
from central_hub.config import load_config
from sync_protocol.timeutil import to_instant, utc_now

SETTINGS = monitoring.HistorySettings(sync_interval=30, retention_days=90, hourly_days=7,
                                      max_attempts=5)


@pytest.fixture
def hub_storage(storage):
    storage.migrate()
    return storage


def counts(storage, name):
    with storage.reader() as tx:
        return {(r["bucket"], r["region"]): r["value"] for r in tx.query(
            "SELECT * FROM monitor_counts WHERE name = ? ORDER BY bucket", (name,))}


def add(storage, when, region, name, value):
    with storage.transaction(exclusive=False) as tx:
        monitoring.add_count(tx, when.strftime(monitoring.HOUR_FORMAT), region, name, value)


def test_old_hours_become_days_with_sums_and_worst_values(hub_storage):
    now = utc_now().replace(hour=12)
    old_day = now - timedelta(days=10)
    for hour, (events, lag) in enumerate([(5, 40), (7, 900), (3, 60)]):
        moment = old_day.replace(hour=hour)
        add(hub_storage, moment, "TAS", "events_ingested", events)
        add(hub_storage, moment, "TAS", "lag_seconds_max", lag)
    add(hub_storage, now - timedelta(hours=3), "TAS", "events_ingested", 11)
    monitoring.compact(hub_storage, now, SETTINGS)
    day = old_day.strftime(monitoring.DAY_FORMAT)
    recent = (now - timedelta(hours=3)).strftime(monitoring.HOUR_FORMAT)
    assert counts(hub_storage, "events_ingested") == {(day, "TAS"): 15, (recent, "TAS"): 11}
    assert counts(hub_storage, "lag_seconds_max") == {(day, "TAS"): 900}


def test_nothing_outlives_the_retention(hub_storage):
    now = utc_now()
    add(hub_storage, now - timedelta(days=95), "SAM", "attempts", 4)
    add(hub_storage, now - timedelta(days=80), "SAM", "attempts", 2)
    for days in (100, 1):
        monitoring.record_attempt(hub_storage, node_id="n1", kind="push", outcome="ok",
                                  events=1, duration_ms=5, clock_offset=0.1, user_agent="t",
                                  now=now - timedelta(days=days), region="SAM")
    monitoring.compact(hub_storage, now, SETTINGS)
    assert list(counts(hub_storage, "attempts").values()) == [2, 1]
    assert [a["at"][:10] for a in monitoring.node_attempts(hub_storage, "n1", 10)] == [
        (now - timedelta(days=1)).strftime("%Y-%m-%d")]


def test_each_node_keeps_at_most_its_bound_of_attempts(hub_storage):
    now = utc_now()
    for i in range(8):
        for node in ("n1", "n2"):
            monitoring.record_attempt(hub_storage, node_id=node, kind="pull", outcome="ok",
                                      events=i, duration_ms=1, clock_offset=None,
                                      user_agent="", now=now, region="TAS")
    monitoring.record_attempt(hub_storage, node_id="n3", kind="pull", outcome="ok", events=0,
                              duration_ms=1, clock_offset=None, user_agent="", now=now,
                              region="TAS")
    monitoring.compact(hub_storage, now, SETTINGS)
    kept = monitoring.node_attempts(hub_storage, "n1", 100)
    assert [a["events"] for a in kept] == [7, 6, 5, 4, 3]  # the newest five
    assert len(monitoring.node_attempts(hub_storage, "n2", 100)) == 5
    assert len(monitoring.node_attempts(hub_storage, "n3", 100)) == 1


def test_an_attempt_of_an_unknown_node_leaves_no_row(hub_storage):
    monitoring.record_attempt(hub_storage, node_id="stranger", kind="push", outcome="ok",
                              events=3, duration_ms=1, clock_offset=0.0, user_agent="",
                              now=utc_now())
    assert monitoring.node_attempts(hub_storage, "stranger", 10) == []
    assert counts(hub_storage, "attempts") == {}


def test_retention_and_bound_are_settings(monkeypatch):
    monkeypatch.setenv("DMED_HUB_HISTORY_RETENTION_DAYS", "30")
    monkeypatch.setenv("DMED_HUB_HISTORY_MAX_ATTEMPTS", "200")
    settings = monitoring.HistorySettings.from_config(load_config())
    assert (settings.retention_days, settings.max_attempts, settings.hourly_days) == (30, 200, 7)


def test_node_states_follow_the_sync_interval():
    now = utc_now()

    def state(**ago):
        row = {"last_seen": None, "synced_at": None, "last_error_at": None}
        for key, seconds in ago.items():
            row[key] = to_instant(now - timedelta(seconds=seconds))
        return monitoring.node_state(row, now, SETTINGS)["state"]

    assert state(last_seen=5, synced_at=5) == monitoring.HEALTHY
    assert state(last_seen=59, synced_at=59) == monitoring.HEALTHY
    assert state(last_seen=61, synced_at=61) == monitoring.OFFLINE
    assert state(last_seen=5, synced_at=300) == monitoring.LAGGING
    assert state(last_seen=5, synced_at=30, last_error_at=4) == monitoring.FAILING
