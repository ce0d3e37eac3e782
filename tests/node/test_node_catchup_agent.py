"""The agent's catch-up fetches the next page while it applies one: a page counts only once it
is applied and committed with its cursor, whatever happens to the page fetched ahead."""

import pytest
from helpers.convergence import check_exactly_once
from helpers.enrolments import CLINIC, PHARMACY
from helpers.processes import node_state
from helpers.sync_world import Hub, Node
from helpers.transports import FaultyTransport
from helpers.workload import add_doctors

from sync_protocol.wire import MAX_BATCH_EVENTS

HUB_URL = "http://hub.test"
BACKLOG = 2 * MAX_BATCH_EVENTS + 100  # three pages for the pharmacy


@pytest.fixture
def world(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki, serve=False)
    nodes = [Node.start(role, tmp_path, sync_pki, node_templates, HUB_URL, web=False,
                        transport=FaultyTransport(hub.app)) for role in (CLINIC, PHARMACY)]
    clinic, pharmacy = nodes
    assert pharmacy.sync()["ok"]
    add_doctors(clinic, BACKLOG)
    assert clinic.sync()["ok"]
    yield hub, clinic, pharmacy
    for node in nodes:
        node.close()
    hub.close()


def cursor(node) -> int:
    return int(node_state(node.store.path, "sync_cursor") or 0)


def transport(node) -> FaultyTransport:
    return node.client.session.get_adapter(HUB_URL)


def test_a_lost_page_stops_the_pull_after_the_pages_before_it(world):
    hub, clinic, pharmacy = world
    start, held = cursor(pharmacy), len(pharmacy.foreign_ids())
    transport(pharmacy).faults = [None, FaultyTransport.DROP]  # the second page is lost
    failed = pharmacy.sync()
    assert not failed["ok"] and failed["stage"] == "pull"
    assert failed["pulled"] == MAX_BATCH_EVENTS  # the first page, applied and committed
    assert len(pharmacy.foreign_ids()) == held + MAX_BATCH_EVENTS
    assert start < cursor(pharmacy) < hub.feed_head()
    assert pharmacy.sync()["ok"]
    assert cursor(pharmacy) == hub.feed_head()
    check_exactly_once(hub, [clinic, pharmacy])


def test_a_cursor_ahead_of_a_restored_hub_pulls_again_from_the_start(world):
    hub, clinic, pharmacy = world
    assert pharmacy.sync()["ok"]
    before = pharmacy.foreign_ids()
    with pharmacy.store.transaction() as tx:
        pharmacy.store.set_state(tx.conn, "sync_cursor", str(hub.feed_head() + 500))
    again = pharmacy.sync()
    assert again["ok"] and again["pulled"] >= BACKLOG
    assert cursor(pharmacy) == hub.feed_head()
    assert pharmacy.foreign_ids() == before  # everything again, each held once
    check_exactly_once(hub, [clinic, pharmacy])
