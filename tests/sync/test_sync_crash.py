"""Crash safety (DESIGN 4.1): a node process or the hub process killed with SIGKILL in the
middle of a sync loses nothing and duplicates nothing once restarted and synced.

- The node is the real `dmed-node serve` (its agent runs on its own schedule); it is killed
  from outside once the hub has acknowledged its first batch (push) or once it has applied
  its first page (pull), with more still to go.
- The hub is killed from inside its ingest transaction, before the commit: a hub process
  that SIGKILLs itself from an ingest hook at a chosen event (helpers.processes, using only
  create_app(on_accepted=...)); it is restarted as the real `dmed-hub serve`. Both backends.
"""

import pytest
from helpers.convergence import (
    check_exactly_once,
    check_hub_snapshot,
    check_same_records,
    check_synced,
    reference_store,
)
from helpers.enrolments import CLINIC, PHARMACY
from helpers.processes import hub_process, node_process, node_state, wait_until
from helpers.servers import free_port
from helpers.sync_world import Hub, Node
from helpers.workload import add_backlog, add_doctors

from central_hub.composition import open_storage
from central_hub.ingest import projected_through
from edge_node.store import NodeStore
from sync_protocol.wire import MAX_BATCH_EVENTS, split_batches

# Several batches (MAX_BATCH_EVENTS each) of backlog: the kill lands with more to go.
BACKLOG = 3 * MAX_BATCH_EVENTS
# Generous bounds for a busy 2-core machine; a healthy run takes a few seconds.
START_SECONDS = 30
SYNC_SECONDS = 60


def open_node(role, database, enrolments, hub_url) -> Node:
    """The node's database opened in the test process (its agent is not used)."""
    return Node(role, NodeStore(database), enrolments.credentials(role), hub_url, web=False)


def synced_since_start(database) -> bool:
    return bool(node_state(database, "sync_last_success_at"))


@pytest.fixture
def hub(tmp_path, sync_pki):
    hub = Hub.start(tmp_path, sync_pki)
    yield hub
    hub.close()


def test_a_node_killed_mid_push_resends_and_the_hub_keeps_each_event_once(
        tmp_path, hub, sync_pki, node_templates):
    database = node_templates.copy(CLINIC, tmp_path / "clinic" / "node.db")
    node = open_node(CLINIC, database, sync_pki, hub.url)
    add_backlog(node, BACKLOG)
    total = node.head_seq()
    node.close()

    def acked() -> int:
        return (hub.node_row(CLINIC.node_id) or {}).get("acked_seq", 0)

    process = node_process(database, sync_pki.bundle(CLINIC), hub.url, tmp_path, free_port())
    try:
        process.start(START_SECONDS)
        at_kill = wait_until(lambda: 0 < acked() < total and acked(), SYNC_SECONDS,
                             "the hub to acknowledge a first batch")
        process.kill()
        assert at_kill < total and acked() < total, "the kill came after the whole push"
        node_acked = int(node_state(database, "sync_acked_seq") or 0)
        assert node_acked <= acked()  # the node never believes more than the hub holds
        process.start(START_SECONDS)
        wait_until(lambda: synced_since_start(database), SYNC_SECONDS, "the resumed sync")
    finally:
        process.stop()

    node = open_node(CLINIC, database, sync_pki, hub.url)
    try:
        assert acked() == total == node.head_seq()
        check_exactly_once(hub, [node])
        check_synced(hub, node)
        assert node.store.query("SELECT * FROM sync_refusals") == []
    finally:
        node.close()


def test_a_node_killed_mid_pull_resumes_from_its_cursor_and_holds_each_event_once(
        tmp_path, hub, sync_pki, node_templates):
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, hub.url, web=False)
    add_doctors(clinic, BACKLOG)  # region-wide: the pharmacy pulls every one
    assert clinic.sync()["ok"]
    database = node_templates.copy(PHARMACY, tmp_path / "pharmacy" / "node.db")
    head = hub.feed_head()

    def cursor() -> int:
        return int(node_state(database, "sync_cursor") or 0)

    process = node_process(database, sync_pki.bundle(PHARMACY), hub.url, tmp_path,
                           free_port())
    try:
        process.start(START_SECONDS)
        at_kill = wait_until(lambda: 0 < cursor() < head and cursor(), SYNC_SECONDS,
                             "the pharmacy to apply a first page")
        process.kill()
        assert at_kill < head and cursor() < head, "the kill came after the whole pull"
        process.start(START_SECONDS)
        wait_until(lambda: synced_since_start(database), SYNC_SECONDS, "the resumed pull")
    finally:
        process.stop()
    assert clinic.sync()["ok"]  # it learns the pharmacy's registration

    pharmacy = open_node(PHARMACY, database, sync_pki, hub.url)
    try:
        assert cursor() == hub.feed_head()
        check_exactly_once(hub, [clinic, pharmacy])
        doctors = pharmacy.store.one("SELECT COUNT(*) AS n FROM practitioners")["n"]
        assert doctors == clinic.store.one("SELECT COUNT(*) AS n FROM practitioners")["n"]
        reference = reference_store(hub, tmp_path / "reference.db")
        check_same_records(reference, [clinic, pharmacy])
        reference.close()
    finally:
        pharmacy.close()
        clinic.close()


def test_the_hub_killed_mid_ingest_keeps_nothing_half_stored_and_takes_the_resend(
        tmp_path, storage_url, sync_pki, node_templates):
    port, node, batches = clinic_with_backlog(tmp_path, storage_url, sync_pki, node_templates)
    total, first = node.head_seq(), batches[0]
    # the hub dies halfway through storing the second batch, inside its transaction
    crash_at = first + batches[1] // 2
    crashing = hub_process(storage_url, tmp_path, port, crash_after_events=crash_at)
    restarted = hub_process(storage_url, tmp_path, port)
    reader = None
    try:
        crashing.start(START_SECONDS)
        report = node.sync()
        crashing.kill()  # it is gone already; this reaps it
        assert not report["ok"] and report["pushed"] == first, report
        assert node.status()["pending"] == total - first
        reader = Hub(storage_url, serve=False)
        held = reader.events(CLINIC.node_id)
        assert [r["seq"] for r in held] == list(range(1, first + 1))
        assert reader.node_row(CLINIC.node_id)["acked_seq"] == first
        restarted.start(START_SECONDS)
        report = node.sync()
        assert report["ok"] and report["pushed"] == total - first, report
        assert node.sync()["pushed"] == 0
        check_exactly_once(reader, [node])
        check_synced(reader, node)
        check_hub_snapshot(reader, [node])
    finally:
        restarted.stop()
        crashing.kill()
        node.close()
        if reader is not None:
            reader.close()


def test_the_hub_killed_while_projecting_projects_at_restart_exactly_once(
        tmp_path, storage_url, sync_pki, node_templates):
    """The hub dies projecting the second batch. On PostgreSQL it was stored and committed
    before: the events are kept, the node (never answered) resends them as duplicates, and
    the restarted hub projects what waited, once. On SQLite the hooks run in the storing
    transaction: nothing of the batch was kept, and the resend stores it."""
    port, node, batches = clinic_with_backlog(tmp_path, storage_url, sync_pki, node_templates)
    total, first = node.head_seq(), batches[0]
    crashing = hub_process(storage_url, tmp_path, port, crash_after_events=first + 1,
                           crash_in="project")
    restarted = hub_process(storage_url, tmp_path, port)
    reader = None
    try:
        crashing.start(START_SECONDS)
        report = node.sync()
        crashing.kill()
        assert not report["ok"] and report["pushed"] == first, report
        # the database as the crash left it (a hub app would catch up as it opens)
        acked, through, patients, head = projector_state(storage_url)
        if storage_url.startswith("postgresql"):
            assert acked == first + batches[1]  # the second batch: stored and committed,
            assert through < head  # not projected
        else:
            assert acked == first and through == head
        assert patients <= first
        restarted.start(START_SECONDS)  # its projector projects what waited as it starts
        wait_until(lambda: projector_state(storage_url)[1] == head, SYNC_SECONDS,
                   "the restarted hub's projector to project what waited")
        report = node.sync()
        assert report["ok"], report
        assert node.status()["pending"] == 0
        reader = Hub(storage_url, serve=False)
        check_exactly_once(reader, [node])
        check_synced(reader, node)
        check_hub_snapshot(reader, [node])
        acked, through, _, head = projector_state(storage_url)
        assert acked == total and through == head
    finally:
        restarted.stop()
        crashing.kill()
        node.close()
        if reader is not None:
            reader.close()


def test_the_background_projector_killed_mid_step_projects_at_restart_exactly_once(
        tmp_path, storage_url, sync_pki, node_templates):
    """A hub whose pushes answer once stored (PROJECTOR=background) is SIGKILLed by its
    projector thread inside a projection step, before the commit. What was stored stays
    stored; nothing of the step is kept; the restarted `dmed-hub serve` projects the rest,
    each event once, and the node ends synced."""
    port, node, batches = clinic_with_backlog(tmp_path, storage_url, sync_pki, node_templates)
    total, first = node.head_seq(), batches[0]
    crashing = hub_process(storage_url, tmp_path, port, crash_after_events=first + 1,
                           crash_in="projector")
    restarted = hub_process(storage_url, tmp_path, port)
    reader = None
    try:
        crashing.start(START_SECONDS)
        node.sync()  # answered or cut short, depending on when the projector dies
        wait_until(lambda: not crashing.running, SYNC_SECONDS, "the projector's kill")
        crashing.kill()
        acked, through, patients, head = projector_state(storage_url)
        assert acked > first  # the second batch was stored and answered before projection
        assert through < head  # the step that died left nothing
        restarted.start(START_SECONDS)
        wait_until(lambda: node.sync()["ok"] and node.status()["pending"] == 0, SYNC_SECONDS,
                   "the node to push the rest")
        wait_until(lambda: projector_state(storage_url)[1] == projector_state(storage_url)[3],
                   SYNC_SECONDS, "the restarted hub's projector to reach the head")
        assert node.sync()["ok"]  # pull what the projector may have added meanwhile
        reader = Hub(storage_url, serve=False)
        check_exactly_once(reader, [node])
        check_synced(reader, node)
        check_hub_snapshot(reader, [node])
        acked, through, patients, head = projector_state(storage_url)
        assert acked == total and through == head
    finally:
        restarted.stop()
        crashing.kill()
        node.close()
        if reader is not None:
            reader.close()


def clinic_with_backlog(tmp_path, storage_url, sync_pki, node_templates
                        ) -> tuple[int, Node, list[int]]:
    """An initialised hub database, a free port for its hub, and a clinic with two batches'
    worth of registrations waiting; returns (port, clinic, the sizes of the batches the agent
    will cut)."""
    Hub(storage_url, sync_pki.trust_list(), serve=False).close()  # dmed-hub init, in effect
    port = free_port()
    node = Node.start(CLINIC, tmp_path, sync_pki, node_templates, f"http://127.0.0.1:{port}",
                      web=False)
    add_backlog(node, 2 * MAX_BATCH_EVENTS)
    batches = [len(b) for b in split_batches(e.to_dict() for e in node.store.local_events_after(
        0, limit=node.head_seq()))]
    return port, node, batches


def projector_state(storage_url: str) -> tuple[int, int, int, int]:
    """(clinic's acked seq, projector's cursor, projected patients, log head), read without
    a hub app."""
    with open_storage(storage_url, migrate=False) as storage, storage.reader() as tx:
        return (tx.scalar("SELECT acked_seq FROM nodes WHERE node_id = ?", (CLINIC.node_id,)),
                projected_through(tx),
                tx.scalar("SELECT COUNT(*) AS n FROM hub_patients"),
                tx.scalar("SELECT MAX(position) AS p FROM events"))
