"""Property: for any mix of operations, the tables rebuilt from the log alone are identical,
the log is gap-free and chained, and a refused operation changes nothing."""

from datetime import time, timedelta

from helpers.node import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_node.errors import NodeError
from edge_node.services import appointments, clinical, facilities, patients, scheduling
from edge_node.services.access import SYSTEM, Actor
from edge_node.store import NodeStore
from sync_protocol.errors import ProtocolError
from sync_protocol.events import verify_chain
from sync_protocol.identifiers import make_pinfl
from sync_protocol.timeutil import local_date, utc_now

REGISTRAR = Actor("staff-registrar", "registrar")

operation = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 2), st.integers(0, 1), st.integers(0, 11)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("reschedule"), st.integers(0, 9), st.integers(0, 11)),
    st.tuples(st.just("phone"), st.integers(0, 2), st.sampled_from(
        ["+998901112233", "+998935550000", "12345"])),
    st.tuples(st.just("name"), st.integers(0, 2), st.sampled_from(["Ali Valiyev", "X", ""])),
    st.tuples(st.just("visit"), st.integers(0, 2), st.sampled_from(["J06.9", "I10", "ZZ9"])),
    st.tuples(st.just("lab"), st.integers(0, 2), st.sampled_from(["5.4", ""])),
)


def build(tmp_path_factory):
    store = NodeStore(tmp_path_factory.mktemp("prop") / "node.db")
    store.initialise("node-prop")
    facility = facilities.register_facility(store, SYSTEM, code="P1", name="Poliklinika",
                                            kind="clinic", region="TAS")
    doctors = [facilities.register_practitioner(store, SYSTEM, facility_id=facility,
                                                full_name=f"Doctor {i}", specialty="therapy")
               for i in range(2)]
    first = local_date(utc_now()) + timedelta(days=2)
    for doctor in doctors:
        scheduling.publish_schedule(store, SYSTEM, practitioner_id=doctor, first_day=first,
                                    days=5, weekdays=tuple(range(7)), start=time(9),
                                    end=time(11), slot_minutes=10)
    people = [patients.register_patient(
        store, REGISTRAR, full_name=f"Patient {i}", phone=f"+99890000000{i}",
        facility_id=facility, pinfl=make_pinfl(first.replace(year=1990), "female",
                                               serial=f"{i + 1:03d}"))["patient_id"]
        for i in range(3)]
    return store, doctors, people


def run(store, doctors, people, op) -> bool:
    slots = {d: [r["starts_at"] for r in store.query(
        "SELECT starts_at FROM slots WHERE practitioner_id = ? ORDER BY starts_at", (d,))]
        for d in doctors}
    booked = [r["appointment_id"] for r in store.query(
        "SELECT appointment_id FROM appointments ORDER BY appointment_id")]
    doctor = Actor("staff-doctor", "doctor", practitioner_id=doctors[0])
    kind = op[0]
    if kind == "book":
        d = doctors[op[2]]
        appointments.book(store, REGISTRAR, patient_id=people[op[1]], practitioner_id=d,
                          starts_at=slots[d][op[3]], channel="kiosk")
    elif kind == "cancel":
        appointments.cancel(store, REGISTRAR, booked[op[1] % len(booked)] if booked else "x")
    elif kind == "reschedule":
        if not booked:
            return False
        target = booked[op[1] % len(booked)]
        row = store.one("SELECT practitioner_id FROM appointments WHERE appointment_id = ?",
                        (target,))
        appointments.reschedule(store, REGISTRAR, target,
                                starts_at=slots[row["practitioner_id"]][op[2]])
    elif kind in ("phone", "name"):
        field = "phone" if kind == "phone" else "full_name"
        patients.change_patient_field(store, REGISTRAR, people[op[1]], field, op[2])
    elif kind == "visit":
        clinical.record_visit(store, doctor, patient_id=people[op[1]],
                              diagnoses=[{"code": op[2]}])
    elif kind == "lab":
        clinical.record_lab_result(store, doctor, patient_id=people[op[1]], test="Glucose",
                                   value=op[2], unit="mmol/L")
    return True


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_rebuild_from_log_equals_live_state(tmp_path_factory, ops):
    store, doctors, people = build(tmp_path_factory)
    try:
        for op in ops:
            before = snapshot(store)
            count = len(store.events())
            try:
                run(store, doctors, people, op)
            except (NodeError, ProtocolError):
                # Refused: not one row anywhere changed.
                assert snapshot(store) == before, op
                continue
            assert len(store.events()) >= count
        live = snapshot(store)
        events = store.events(origin="node-prop")
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        verify_chain(events)
        assert len({e.id for e in events}) == len(events)
        store.rebuild_projections()
        assert snapshot(store) == live
    finally:
        store.close()
