"""Convergence (DESIGN 4.3), as a property: a clinic and two pharmacies work through random
partitions, with random sync orders, batches sent twice and answers lost after the hub
committed; once all have synced, the hub and every node hold the same shared records and
every event exactly once.

The nodes are the real node and agent; their HubClient reaches the hub app in-process
(helpers.transports.FlaskTransport) for speed, through the same signing and encoding as on the
network. Small batch and page bounds make one sync many requests, so faults land mid-way.
"""

import json
import random
import tempfile
from collections import Counter
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

from helpers.convergence import (
    check_exactly_once,
    check_hub_snapshot,
    check_same_records,
    check_synced,
    conflict_signature,
    reference_store,
)
from helpers.enrolments import CLINIC, PHARMACY, PHARMACY2
from helpers.node import AMOXICILLIN
from helpers.sync_world import Hub, Node
from helpers.transports import FaultyTransport, RepeatingClient
from helpers.workload import free_slot, next_second, pack_expiry
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_node.services import appointments, dispensing, patients, prescribing
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import make_pinfl
from sync_protocol.timeutil import utc_now
from sync_protocol.wire import AdaptiveBatch

ROLES = (CLINIC, PHARMACY, PHARMACY2)
NAMES = tuple(r.name for r in ROLES)
HUB_URL = "http://hub.invalid"  # never resolved: the transport carries it in-process
CLINIC_OPS = ("register", "book", "cancel_booking", "edit_phone", "prescribe", "prescribe",
              "cancel_prescription", "cancel_prescription")
PHONES = ("+998901234500", "+998935550011", "+998977001122")
PRESCRIBE, CANCEL_RX = CLINIC_OPS.index("prescribe"), CLINIC_OPS.index("cancel_prescription")
# Throw-away databases on tmpfs when there is one: every node commit is an fsync.
FAST_DIR = "/dev/shm" if Path("/dev/shm").is_dir() else None
# Rounds of syncing after the partitions heal before we call it a failure to converge.
MAX_HEALING_ROUNDS = 6

operation = st.tuples(st.sampled_from(NAMES), st.integers(0, len(CLINIC_OPS) - 1),
                      st.integers(0, 40), st.integers(3, 20))
partition_round = st.fixed_dictionaries({
    "offline": st.sets(st.sampled_from(NAMES)),
    "ops": st.lists(operation, max_size=8),
    "order": st.permutations(NAMES),
    "drops": st.fixed_dictionaries({n: st.lists(st.booleans(), max_size=4) for n in NAMES}),
    "repeats": st.fixed_dictionaries({n: st.integers(0, 2) for n in NAMES}),
})
scenario = st.fixed_dictionaries({
    "rounds": st.lists(partition_round, min_size=1, max_size=4),
    "batch": st.sampled_from([2, 5, 1000]),
})


class World:
    """A hub and three nodes in one temporary directory, and what people do at the nodes."""

    def __init__(self, directory: Path, enrolments, templates, batch: int) -> None:
        self.hub = Hub.start(directory, enrolments, serve=False)
        self.transports: dict[str, FaultyTransport] = {}
        self.nodes: dict[str, Node] = {}
        for role in ROLES:
            self.transports[role.name] = FaultyTransport(self.hub.app)
            node = Node.start(role, directory, enrolments, templates, HUB_URL, web=False,
                              transport=self.transports[role.name],
                              client_class=RepeatingClient)
            node.agent.batch = AdaptiveBatch(max_events=batch, ceiling_events=batch)
            node.agent.rng = random.Random(0)
            self.nodes[role.name] = node
        self.registered = 0

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        self.hub.close()

    def sync_all(self, order=NAMES) -> list[dict]:
        return [self.nodes[name].sync() for name in order]

    def heal(self) -> list[dict]:
        """Every link up, no faults; sync until a whole round moves nothing."""
        for name, node in self.nodes.items():
            node.go_online()
            self.transports[name].faults.clear()
            node.client.repeats = 0
        for _ in range(MAX_HEALING_ROUNDS):
            reports = self.sync_all()
            assert all(r["ok"] for r in reports), reports
            if all(r["pushed"] == r["pulled"] == 0 for r in reports):
                return reports
        raise AssertionError(f"no fixed point after {MAX_HEALING_ROUNDS} rounds: {reports}")

    def play(self, plan: dict) -> None:
        for name, node in self.nodes.items():
            (node.go_offline if name in plan["offline"] else node.go_online)()
            self.transports[name].faults[:] = [
                FaultyTransport.DROP if drop else None for drop in plan["drops"].get(name, [])]
            node.client.repeats = plan["repeats"].get(name, 0)
        for name, kind, pick, quantity in plan["ops"]:
            try:
                self.operate(self.nodes[name], kind, pick, quantity)
            except ProtocolError:
                pass  # refused by the node's own rules (slot taken, nothing left): no event
        self.sync_all(plan["order"])

    # -- what people do -------------------------------------------------------------------
    def operate(self, node: Node, kind: int, pick: int, quantity: int) -> None:
        if node.role.kind == "pharmacy":
            self.dispense(node, pick, quantity)
            return
        op = CLINIC_OPS[kind]
        people = [r["patient_id"] for r in node.store.query(
            "SELECT patient_id FROM patients ORDER BY patient_id")]
        patient = people[pick % len(people)]
        if op == "register":
            self.registered += 1
            patients.register_patient(
                node.store, node.actor("registrar"), full_name=f"Bemor {self.registered}",
                phone=PHONES[pick % len(PHONES)], facility_id=node.facility_id,
                pinfl=make_pinfl(date(1960, 1, 1) + timedelta(days=400 * pick), "female",
                                 "263", f"{self.registered:03d}"))
        elif op == "book":
            doctor, start = free_slot(node, index=pick)
            appointments.book(node.store, node.actor("registrar"), patient_id=patient,
                              practitioner_id=doctor, starts_at=start, channel="kiosk")
        elif op == "cancel_booking":
            booked = node.store.query("SELECT appointment_id FROM appointments WHERE status = "
                                      "'booked' ORDER BY appointment_id")
            if booked:
                appointments.cancel(node.store, node.actor("registrar"),
                                    booked[pick % len(booked)]["appointment_id"], "kasal")
        elif op == "edit_phone":
            patients.change_patient_field(node.store, node.actor("registrar"), patient,
                                          "phone", PHONES[quantity % len(PHONES)])
        elif op == "prescribe":
            prescribing.issue_prescription(node.store, node.actor("doctor"), node.credentials,
                                           patient_id=patient, items=[AMOXICILLIN])
        else:
            active = node.store.query("SELECT prescription_id FROM prescriptions WHERE status"
                                      " = 'active' ORDER BY prescription_id")
            if active:
                prescribing.cancel_prescription(node.store, node.actor("doctor"),
                                                active[pick % len(active)]["prescription_id"],
                                                reason="Boshqa dori")

    @staticmethod
    def dispense(node: Node, pick: int, quantity: int) -> None:
        known = node.store.query("SELECT prescription_id FROM prescriptions WHERE status = "
                                 "'active' ORDER BY prescription_id")
        if not known:
            return
        rx = known[pick % len(known)]["prescription_id"]
        state = dispensing.item_states(node.store.reader(), rx, utc_now())[0]
        if state["remaining_in_fill"]:
            dispensing.dispense(node.store, node.actor("pharmacist"),
                                facility_id=node.facility_id, prescription_id=rx, item_no=1,
                                quantity=min(quantity, state["remaining_in_fill"]),
                                product="Amoksitsillin 500", batch="B-7",
                                expiry=pack_expiry())


def converge(world: World, plan: dict) -> None:
    """Everyone starts synced, the pharmacies knowing two prescriptions to dispense, then
    plays the rounds and heals."""
    clinic = world.nodes[CLINIC.name]
    for pick in (0, 1):
        world.operate(clinic, PRESCRIBE, pick, 1)
    world.heal()
    for partition in plan["rounds"]:
        world.play(partition)
    world.heal()


def check_converged(world: World, directory: Path) -> dict[str, int]:
    nodes = list(world.nodes.values())
    check_exactly_once(world.hub, nodes)
    for node in nodes:
        check_synced(world.hub, node)
    reference = reference_store(world.hub, directory / "reference.db")
    try:
        check_same_records(reference, nodes)
        reached = situations(world, reference)
    finally:
        reference.close()
    # The hub's own records must agree too.
    check_hub_snapshot(world.hub, nodes)
    return reached


def situations(world: World, reference) -> dict[str, int]:
    """What an example reached: the property is only as good as the situations it makes."""
    over = reference.one(
        "SELECT COUNT(*) AS n FROM (SELECT i.prescription_id FROM prescription_items i JOIN "
        "dispenses d USING (prescription_id, item_no) GROUP BY i.prescription_id, i.item_no "
        "HAVING SUM(d.quantity) > MAX(i.quantity))")["n"]
    late = reference.one(
        "SELECT COUNT(*) AS n FROM events d JOIN events c ON c.type = 'PrescriptionCancelled' "
        "AND json_extract(c.payload, '$.prescription_id') = json_extract(d.payload, "
        "'$.prescription_id') WHERE d.type = 'MedicationDispensed' AND d.hlc > c.hlc")["n"]
    return {"over-dispensed prescriptions": over, "dispenses after a cancellation": late,
            "events at the hub": reference.one("SELECT COUNT(*) AS n FROM events")["n"],
            "answers lost after the hub acted": sum(t.dropped
                                                    for t in world.transports.values()),
            "batches pushed twice": sum(n.client.repeated for n in world.nodes.values()),
            **{f"hub conflicts {kind}": n for kind, n in Counter(
                c["kind"] for c in world.hub.conflicts()).items()}}


def describe(reached: dict[str, int]) -> None:
    """Shown by pytest --hypothesis-show-statistics."""
    for name, count in reached.items():
        bucket = count // 10 * 10 if name == "events at the hub" else min(count, 3)
        event(f"{name}: {bucket}{'+' if name == 'events at the hub' or count > 3 else ''}")


PROPERTY = settings(max_examples=15, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(plan=scenario)
def test_hub_and_nodes_converge_whatever_the_partitions_and_faults(plan, sync_pki,
                                                                    node_templates):
    with tempfile.TemporaryDirectory(dir=FAST_DIR) as tmp, ExitStack() as stack:
        world = World(Path(tmp), sync_pki, node_templates, plan["batch"])
        stack.callback(world.close)
        converge(world, plan)
        describe(check_converged(world, Path(tmp)))


# -- conflicts do not depend on delivery order ---------------------------------------------

def replay(world: World, directory: Path, rng: random.Random, enrolments) -> Hub:
    """A fresh hub fed every node event in another interleaving (each node's own order
    kept), in random batches, some sent twice: what a different delivery would give."""
    hub = Hub.start(directory, enrolments, serve=False)
    chains = {name: [row_event(r) for r in world.hub.events(node.node_id)]
              for name, node in world.nodes.items()}
    while any(chains.values()):
        name = rng.choice([n for n, chain in chains.items() if chain])
        size = rng.randint(1, 4)
        batch, chains[name] = chains[name][:size], chains[name][size:]
        identity = world.nodes[name].role.identity
        for _ in range(2 if rng.random() < 0.3 else 1):
            results = hub.ingestor.push(identity, batch).results
            assert all(r.status != "refused" for r in results), results
    return hub


def row_event(row: dict) -> dict:
    payload = row["payload"]
    return {"id": row["id"], "origin": row["origin"], "seq": row["seq"], "hlc": row["hlc"],
            "type": row["type"], "version": row["version"],
            "payload": payload if isinstance(payload, dict) else json.loads(payload),
            "prev_hash": row["prev_hash"], "hash": row["hash"]}


conflict_scenario = st.fixed_dictionaries({
    "rounds": st.lists(partition_round, min_size=1, max_size=3),
    "batch": st.just(1000),
    "seeds": st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2),
})


def test_conflicts_found_do_not_depend_on_delivery_order(sync_pki, node_templates):
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plan=conflict_scenario)
    def prop(plan):
        with tempfile.TemporaryDirectory(dir=FAST_DIR) as tmp, ExitStack() as stack:
            world = World(Path(tmp), sync_pki, node_templates, plan["batch"])
            stack.callback(world.close)
            converge(world, plan)
            found = sorted(map(conflict_signature, world.hub.conflicts()), key=repr)
            for index, seed in enumerate(plan["seeds"]):
                other = replay(world, Path(tmp) / f"replay{index}", random.Random(seed),
                               sync_pki)
                stack.callback(other.close)
                again = sorted(map(conflict_signature, other.conflicts()), key=repr)
                assert again == found, f"delivery order {seed} found {again}, not {found}"

    prop()


def test_the_operations_reach_both_dispensing_conflicts(sync_pki, node_templates):
    """The property is only as good as its operations: two offline pharmacies dispensing
    one prescription past its quantity, one of them after the doctor cancelled it."""
    with tempfile.TemporaryDirectory(dir=FAST_DIR) as tmp, ExitStack() as stack:
        world = World(Path(tmp), sync_pki, node_templates, 1000)
        stack.callback(world.close)
        converge(world, {"rounds": []})
        nodes = world.nodes
        for node in nodes.values():
            node.go_offline()
        world.operate(nodes["pharmacy"], 0, 0, 15)
        world.operate(nodes["pharmacy2"], 0, 0, 15)
        world.operate(nodes["clinic"], CANCEL_RX, 0, 1)
        next_second()
        world.operate(nodes["pharmacy"], 0, 0, 3)
        world.heal()
        check_converged(world, Path(tmp))

        dispensed = nodes["clinic"].store.query(
            "SELECT d.prescription_id, d.origin, d.quantity, e.id FROM dispenses d JOIN events e"
            " ON e.type = 'MedicationDispensed' AND json_extract(e.payload, '$.dispense_id') ="
            " d.dispense_id ORDER BY e.hlc")
        assert [(r["origin"], r["quantity"]) for r in dispensed] == [
            (PHARMACY.node_id, 15), (PHARMACY2.node_id, 15), (PHARMACY.node_id, 3)]
        rx = dispensed[0]["prescription_id"]
        for node in nodes.values():
            row = node.store.one("SELECT status FROM prescriptions WHERE prescription_id = ?",
                                 (rx,))
            assert row["status"] == "cancelled", node.role.name
        raised = world.hub.conflicts()
        assert {(c["kind"], c["subject_id"]) for c in raised} == {
            ("over_dispensing", rx), ("dispense_after_cancellation", rx)}, raised
        late = [c for c in raised if c["kind"] == "dispense_after_cancellation"]
        assert [dispensed[2]["id"] in c["event_ids"] for c in late] == [True]
