"""Per-node pending counters (central_hub.pending): after any mix of pushes, pulls, repeated
batches, refused events, late facility registrations, transfers and late prescriptions, each
node's stored counter equals the events counted against the delivery feed, the events a
pull from its cursor would hand it, and the migration's back-fill.
"""

import tempfile
import threading
from datetime import UTC, datetime

import pytest
from helpers.hub import SimNode, body_of
from helpers.hub_app import hub_app_for
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from central_hub import pending
from central_hub.composition import open_storage
from central_hub.scope import pending_count
from sync_protocol.identifiers import new_ulid

NAMES = ("clinic", "pharmacy", "clinic2", "sam_pharmacy")
CLINICS = ("clinic", "clinic2")
# What a node does between syncs: clinics register, transfer and prescribe; pharmacies
# dispense what they heard of (possibly before the hub has the prescription).
ACTS = ("register_patient", "transfer", "practitioner", "prescribe", "dispense")


def _nodes(world, app) -> dict[str, SimNode]:
    creds = {"clinic": world.pki.clinic, "pharmacy": world.pki.pharmacy,
             "clinic2": world.clinic2, "sam_pharmacy": world.sam_pharmacy}
    nodes = {name: SimNode(cred, app.test_client()) for name, cred in creds.items()}
    for node in nodes.values():  # facility ids known from the start, registered when pushed
        node.register_facility()
        node.sent = 0
    return nodes


class Scenario:
    def __init__(self, nodes: dict[str, SimNode], storage, note=lambda _: None) -> None:
        self.nodes, self.storage, self.note = nodes, storage, note
        self.patients: list[str] = []
        self.prescriptions: list[str] = []
        self.practitioner: dict[str, str] = {}

    def act(self, name: str, what: str, pick: int) -> None:
        node = self.nodes[name if what != "dispense" else
                          ("pharmacy", "sam_pharmacy")[pick % 2]]
        if what == "dispense":
            if self.prescriptions:
                node.dispense(self.prescriptions[pick % len(self.prescriptions)])
            return
        if name not in CLINICS:
            return
        if what == "register_patient":
            self.patients.append(node.register_patient())
        elif what == "transfer" and self.patients:
            # to any other facility, a pharmacy's too: the hub routes by facility, so the
            # pharmacy then holds prescription events twice over (region and facility)
            others = [n for n in NAMES if n != name]
            node.change_patient(self.patients[pick % len(self.patients)], "facility_id",
                                self.nodes[others[pick % len(others)]].facility_id)
        elif what == "practitioner":
            self.practitioner[name] = node.register_practitioner()
        elif what == "prescribe" and self.patients:
            doctor = self.practitioner.get(name) or node.register_practitioner()
            self.practitioner[name] = doctor
            self.prescriptions.append(
                node.prescribe(self.patients[pick % len(self.patients)], doctor))

    def push(self, name: str, repeat: int) -> None:
        node = self.nodes[name]
        start = max(0, node.sent - repeat)  # repeat > 0: the hub has some of these already
        if start < len(node.log):
            answer = node.push(node.log[start:])
            assert answer.status_code == 200, body_of(answer)
            node.sent = len(node.log)

    def refused(self, name: str) -> None:
        """An event whose chain link is wrong: quarantined, nothing routed."""
        node = self.nodes[name]
        bad = node.emit("PatientFieldChanged", {"patient_id": new_ulid(),
                                                "field": "phone", "value": "+998901234567"},
                        seq=len(node.log) + 1, prev_hash="f" * 64)
        assert node.push([bad]).status_code == 200
        self.note("refused")

    def pull(self, name: str, limit: int, after: int | None = None) -> None:
        node = self.nodes[name]
        answer = node.pull(after=after, limit=limit)
        if answer.status_code == 200:  # a node not yet known pulls after its first push
            node.cursor = body_of(answer)["next"]

    def check(self) -> None:
        now = datetime.now(UTC)
        with self.storage.reader() as tx:
            rows = tx.query("SELECT * FROM nodes")
            stored = pending.counts(tx, [r["node_id"] for r in rows])
            for row in rows:
                node_id = row["node_id"]
                expected = pending.recount(tx, node_id)
                pulled, _ = pending_count(tx, row, now, 10**6)  # what a pull would hand over
                assert stored.get(node_id) == expected == pulled, (node_id, stored, expected)
                if expected:
                    self.note(f"{row['kind']} with events waiting")


step = st.one_of(
    st.tuples(st.just("act"), st.sampled_from(NAMES), st.sampled_from(ACTS),
              st.integers(0, 50)),
    st.tuples(st.just("push"), st.sampled_from(NAMES), st.integers(0, 3)),
    st.tuples(st.just("pull"), st.sampled_from(NAMES), st.integers(1, 4)),
    st.tuples(st.just("repull"), st.sampled_from(NAMES), st.integers(1, 4)),
    st.tuples(st.just("refuse"), st.sampled_from(NAMES)),
)


def _play(scenario: Scenario, steps) -> None:
    for op, name, *rest in steps:
        if op == "act":
            scenario.act(name, *rest)
        elif op == "push":
            scenario.push(name, rest[0])
        elif op == "pull":
            scenario.pull(name, rest[0])
        elif op == "repull":  # a restored node pulls again from the start
            scenario.pull(name, rest[0], after=0)
        elif scenario.nodes[name].sent:
            scenario.refused(name)
        scenario.check()


def run(scenario: Scenario, steps) -> None:
    """The steps, then everyone syncs: every counter comes down to zero."""
    _play(scenario, steps)
    for name in NAMES:
        scenario.push(name, 0)
    for name in NAMES:
        scenario.nodes[name].sync_down(limit=3)
    scenario.check()
    with scenario.storage.reader() as tx:
        assert set(pending.counts(tx, _ids(scenario)).values()) == {0}


def _ids(scenario: Scenario) -> list[str]:
    return [node.node_id for node in scenario.nodes.values()]


def _backfilled_equals_counters(storage) -> None:
    with storage.reader() as tx:
        before = {r["node_id"]: r["pending"] for r in tx.query("SELECT * FROM monitor_pending")}
    with storage.transaction() as tx:
        pending.rebuild_all(tx)
    with storage.reader() as tx:
        after = {r["node_id"]: r["pending"] for r in tx.query("SELECT * FROM monitor_pending")}
    assert before == after


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=40))
def test_counters_equal_the_recount_after_any_sync_history(world, steps):
    with tempfile.TemporaryDirectory() as directory:
        storage = open_storage(f"sqlite:///{directory}/hub.db")
        try:
            app = hub_app_for(storage, world)
            scenario = Scenario(_nodes(world, app), storage, event)
            half = len(steps) // 2
            _play(scenario, steps[:half])
            _backfilled_equals_counters(storage)  # the migration's count agrees mid-way
            run(scenario, steps[half:])
        finally:
            storage.close()


def test_counters_follow_a_sync_day_on_each_backend(world, hub_app, storage):
    """The same bookkeeping on SQLite and PostgreSQL. A transfer to the pharmacy's facility
    re-routes the patient's prescription there, which the pharmacy already waits for through
    its region: counted once; its pull then stops between the two rows: still waiting."""
    scenario = Scenario(_nodes(world, hub_app), storage)
    steps = [("act", "clinic", "register_patient", 0), ("act", "clinic", "prescribe", 0),
             ("push", "clinic", 0), ("push", "pharmacy", 0), ("push", "clinic2", 0),
             ("act", "clinic", "transfer", 0), ("push", "clinic", 1), ("pull", "pharmacy", 3),
             ("pull", "clinic2", 2), ("act", "pharmacy", "dispense", 0),
             ("push", "pharmacy", 0), ("push", "sam_pharmacy", 0), ("refuse", "clinic"),
             ("repull", "clinic2", 2)]
    _play(scenario, steps)
    with storage.reader() as tx:
        counts = pending.counts(tx, _ids(scenario))
    # the pharmacy waits for the clinic's facility, patient, practitioner and prescription;
    # clinic2 (the patient's new facility) for the patient's history
    assert counts[scenario.nodes["pharmacy"].node_id] > 0
    assert counts[scenario.nodes["clinic2"].node_id] > 0
    listed = {r["node_id"]: r["pending"] for r in body_of(
        hub_app.test_client().get("/api/v1/nodes"))["nodes"]}
    assert listed == counts
    _backfilled_equals_counters(storage)
    run(scenario, [])


def test_a_node_row_without_a_counter_is_counted_against_the_feed(world, hub_app, storage):
    scenario = Scenario(_nodes(world, hub_app), storage)
    _play(scenario, [("act", "clinic", "register_patient", 0), ("push", "clinic", 0),
                     ("push", "clinic2", 0)])
    clinic2 = scenario.nodes["clinic2"].node_id
    with storage.transaction() as tx:
        tx.execute("DELETE FROM monitor_pending WHERE node_id = ?", (clinic2,))
    listed = {r["node_id"]: r["pending"] for r in body_of(
        hub_app.test_client().get("/api/v1/nodes"))["nodes"]}
    with storage.reader() as tx:
        assert listed[clinic2] == pending.recount(tx, clinic2) > 0


def test_the_monitoring_migration_back_fills_a_hub_of_the_version_before(world, hub_app,
                                                                          storage):
    """A hub that synced before the counters existed gets them from its feed on upgrade."""
    scenario = Scenario(_nodes(world, hub_app), storage)
    _play(scenario, [("act", "clinic", "register_patient", 0), ("act", "clinic", "prescribe", 0),
                     ("push", "clinic", 0), ("push", "pharmacy", 0), ("push", "clinic2", 0),
                     ("pull", "pharmacy", 2), ("push", "sam_pharmacy", 0)])
    with storage.transaction() as tx:  # back to monitoring v1
        tx.execute("DROP TABLE monitor_pending")
        tx.execute("DROP TABLE monitor_pending_stale")
        tx.execute("DROP INDEX monitor_counts_by_name")
        tx.execute("DELETE FROM schema_migrations WHERE component = 'monitoring' AND "
                   "version >= 2")
    assert ("monitoring", 2) in storage.migrate()
    with storage.reader() as tx:
        stored = pending.counts(tx, _ids(scenario))
        assert stored == {n: pending.recount(tx, n) for n in _ids(scenario)}
    assert stored[scenario.nodes["pharmacy"].node_id] > 0
    assert stored[scenario.nodes["clinic2"].node_id] > 0
    scenario.check()


@pytest.mark.postgres
@pytest.mark.parametrize("storage_url", ["postgres"], indirect=True)
def test_a_pull_never_waits_for_a_held_counter_and_the_next_append_recounts(
        world, hub_app, storage):
    """A push or a projection step holds the counters it counts up until it commits; a pull
    then marks its node stale instead of waiting, its count is read from the feed, and the
    next append under the writer lock recounts it."""
    scenario = Scenario(_nodes(world, hub_app), storage)
    _play(scenario, [("act", "clinic", "register_patient", 0), ("act", "clinic", "prescribe", 0),
                     ("push", "clinic", 0), ("push", "pharmacy", 0)])
    pharmacy = scenario.nodes["pharmacy"]
    held, release = threading.Event(), threading.Event()

    def hold_the_counter() -> None:
        with storage.transaction(exclusive=False) as tx:
            tx.execute("UPDATE monitor_pending SET pending = pending WHERE node_id = ?",
                       (pharmacy.node_id,))
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_counter)
    holder.start()
    try:
        assert held.wait(10)
        puller = threading.Thread(target=scenario.pull, args=("pharmacy", 2))
        puller.start()
        puller.join(10)
        assert not puller.is_alive(), "the pull waited for the held counter"
        with storage.reader() as tx:
            assert pending.counts(tx, [pharmacy.node_id]) == {}  # stale: read from the feed
            expected = pending.recount(tx, pharmacy.node_id)
        listed = {r["node_id"]: r["pending"] for r in body_of(
            hub_app.test_client().get("/api/v1/nodes"))["nodes"]}
        assert listed[pharmacy.node_id] == expected > 0
    finally:
        release.set()
        holder.join(30)
    scenario.act("clinic", "register_patient", 0)
    scenario.push("clinic", 0)  # an append under the writer lock: the stale node is recounted
    with storage.reader() as tx:
        assert tx.query("SELECT * FROM monitor_pending_stale") == []
    scenario.check()  # every counter equals the recount again
