"""One sync at a time per node, even when several server processes share the node: the lock
is a file beside the database, so another process holding it makes a sync stand aside."""

import fcntl

import pytest
from helpers.enrolments import CLINIC
from helpers.processes import node_state
from helpers.sync_world import Hub, Node
from helpers.transports import FaultyTransport

HUB_URL = "http://hub.test"


@pytest.fixture
def clinic(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki, serve=False)
    node = Node.start(CLINIC, tmp_path, sync_pki, node_templates, HUB_URL, web=False,
                      transport=FaultyTransport(hub.app))
    yield node
    node.close()
    hub.close()


def test_a_sync_stands_aside_while_another_process_holds_the_nodes_sync_lock(clinic):
    before = node_state(clinic.store.path, "last_attempt_at")
    with open(f"{clinic.store.path}.sync-lock", "a+b") as other:  # another open file: as a
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)        # second process would hold it
        report = clinic.sync()
        assert not report["ok"] and report["error"] == "A sync is already running"
        assert node_state(clinic.store.path, "last_attempt_at") == before  # nothing was tried
    assert clinic.sync()["ok"]  # released: the next sync runs
