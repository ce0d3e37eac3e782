"""Sync status tracks reality (issue 12, point 4), on a fake clock.

A clinic node syncs with an in-process hub through a transport that can be cut: the hub
"stops" and "starts" without a process. The agent's scheduler (``tick``, once a second in a
running node) is driven by a fake monotonic clock, so an hour of outage takes a second. Must
hold: a failed contact shows within one sync interval of the hub's stop; whatever the outage's
length, the node is back (status online and synced) within 60 s of the hub's return; "Sync
now" resets the back-off.
"""

from __future__ import annotations

import random

import pytest
import requests
from helpers.enrolments import CLINIC
from helpers.sync_world import Hub, Node
from helpers.transports import FlaskTransport

from edge_node.sync import agent as agent_module
from edge_node.sync.agent import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_MAX_SECONDS,
    INTERVAL_SECONDS,
    backoff_delay,
    sync_status,
)

HUB_URL = "http://hub.test"
BACK_WITHIN_SECONDS = 60  # the promise: a node is back a minute after the hub


class SwitchedTransport(FlaskTransport):
    """The hub on a switch: while `up` is False every request fails as a refused connection."""

    up = True

    def send(self, request, **kwargs) -> requests.Response:
        if not self.up:
            raise requests.ConnectionError("connection refused (the hub is stopped)")
        return super().send(request, **kwargs)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki, serve=False)
    transport = SwitchedTransport(hub.app)
    node = Node.start(CLINIC, tmp_path, sync_pki, node_templates, HUB_URL, web=False,
                      transport=transport)
    clock = FakeClock()
    node.agent.monotonic = clock
    node.agent.rng = random.Random(12)
    yield node, transport, clock
    node.close()
    hub.close()


def online(node) -> bool:
    return sync_status(node.store, configured=True)["online"]


def run_until(node, clock, condition, limit: float) -> float:
    """Tick once a second (as BackgroundJobs does) until `condition()`; the seconds it took."""
    start = clock.now
    while not condition():
        assert clock.now - start <= limit, f"not within {limit} s"
        clock.now += 1
        node.agent.tick()
    return clock.now - start


def test_a_failed_contact_shows_within_one_sync_interval(world):
    node, transport, clock = world
    node.agent.tick()
    assert online(node)
    for offset in (0, 7, INTERVAL_SECONDS - 1):  # the hub stops at any point of the interval
        run_until(node, clock, lambda: online(node), INTERVAL_SECONDS + 1)
        clock.now += offset
        node.agent.tick()
        transport.up = False
        took = run_until(node, clock, lambda: not online(node), INTERVAL_SECONDS + 1)
        assert took <= INTERVAL_SECONDS
        status = sync_status(node.store, configured=True)
        assert status["offline_since"] and status["last_error"] and not status["synced"]
        transport.up = True


@pytest.mark.parametrize("outage_seconds", [45, 200, 3600])
def test_the_node_is_back_within_a_minute_of_the_hubs_return(world, outage_seconds):
    node, transport, clock = world
    node.agent.tick()
    assert online(node)
    transport.up = False
    clock.now += 1
    stop = clock.now
    run_until(node, clock, lambda: clock.now >= stop + outage_seconds, outage_seconds + 1)
    assert not online(node)  # longer than an interval: the outage shows
    transport.up = True
    took = run_until(node, clock, lambda: online(node), BACK_WITHIN_SECONDS)
    assert took <= BACK_WITHIN_SECONDS, took
    assert sync_status(node.store, configured=True)["synced"]


def test_backoff_doubles_and_never_passes_the_cap():
    rng = random.Random(1)
    delays = [backoff_delay(n, rng) for n in range(1, 200)]
    assert max(delays) <= BACKOFF_MAX_SECONDS < BACK_WITHIN_SECONDS
    assert delays[0] <= BACKOFF_BASE_SECONDS
    assert min(delays[10:]) >= BACKOFF_MAX_SECONDS * agent_module.JITTER[0]


def test_sync_now_resets_the_backoff(world):
    node, transport, clock = world
    node.agent.tick()
    transport.up = False
    clock.now += 1
    run_until(node, clock, lambda: int(node.store.state("sync_failures") or 0) >= 8, 3600)
    reached = node.agent.next_attempt - clock.now
    assert reached > BACKOFF_BASE_SECONDS  # the outage pushed the retries apart
    report = node.agent.sync_now()  # the hub is still down: retried soon, not in a minute
    assert not report["ok"]
    assert report["retry_in_seconds"] <= BACKOFF_BASE_SECONDS
    assert node.store.state("sync_failures") == "1"
    assert node.agent.next_attempt - clock.now <= BACKOFF_BASE_SECONDS
    transport.up = True
    assert node.agent.sync_now()["ok"] and online(node)
    assert node.agent.next_attempt == clock.now + INTERVAL_SECONDS


def test_the_sync_now_button_resets_the_backoff(tmp_path, sync_pki, node_templates):
    from helpers.ui import post, staff_sign_in

    hub = Hub.start(tmp_path, sync_pki, serve=False)
    transport = SwitchedTransport(hub.app)
    node = Node.start(CLINIC, tmp_path, sync_pki, node_templates, HUB_URL, transport=transport)
    try:
        clock = FakeClock()
        node.agent.monotonic = clock
        transport.up = False
        run_until(node, clock, lambda: int(node.store.state("sync_failures") or 0) >= 8, 3600)
        client = node.app.test_client()
        staff_sign_in(client, "registrar")
        response = post(client, "/ui/sync/run", {"next": "/ui/desk/queue"})
        assert response.status_code == 302
        assert node.store.state("sync_failures") == "1"
        assert node.agent.next_attempt - clock.now <= BACKOFF_BASE_SECONDS
    finally:
        node.close()
        hub.close()
