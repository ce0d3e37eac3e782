"""The rules node and hub share (sync_protocol.rules): who keeps a slot, what an item allows.

Both sides call the same functions; the property test checks that the node's projection
(applied in whatever order events arrive) and the hub's replay (in clock order) agree on
who holds each slot, for any set of concurrent bookings and any arrival order.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_hub.appointment_replay import replay_appointments
from edge_node import projections as node_projections
from edge_node.migrations import migrate
from sync_protocol import claims
from sync_protocol.event_names import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_RESCHEDULED,
)
from sync_protocol.events import Event
from sync_protocol.rules import BOOKED, BUMPED, HOLDING_STATUSES, claim_slot, fill_total, fills

EARLY, LATE = ("0001700000000000-0000", "node-b"), ("0001700000000001-0000", "node-a")


@pytest.mark.parametrize("holder, claimant, expected", [
    (None, LATE, (BOOKED, None)),
    (EARLY, LATE, (BUMPED, None)),
    (LATE, EARLY, (BOOKED, BUMPED)),
    # same instant on two nodes: the origin decides, the same way on both sides
    ((EARLY[0], "node-a"), (EARLY[0], "node-b"), (BUMPED, None)),
    ((EARLY[0], "node-b"), (EARLY[0], "node-a"), (BOOKED, BUMPED)),
])
def test_claim_slot_earlier_clock_keeps_the_slot(holder, claimant, expected):
    assert claim_slot(holder, claimant) == expected


def test_bumped_does_not_hold_a_slot():
    assert BOOKED in HOLDING_STATUSES and BUMPED not in HOLDING_STATUSES
    assert "cancelled" not in HOLDING_STATUSES and "moving" not in HOLDING_STATUSES


@pytest.mark.parametrize("quantity, repeats, total", [(10, 0, 10), (10, 2, 30), (1, 12, 13)])
def test_fill_total(quantity, repeats, total):
    assert fills(repeats) == repeats + 1
    assert fill_total(quantity, repeats) == total
    # the claim arithmetic counts down from the same total
    assert claims.remaining_total(quantity, fills(repeats), 0) == total
    assert claims.remaining_total(quantity, fills(repeats), total) == 0


# -- node and hub agree --------------------------------------------------------------------

DOCTORS = ("01HDOCTOR00000000000000001", "01HDOCTOR00000000000000002")
STARTS = ("2026-12-07T05:00:00Z", "2026-12-07T05:10:00Z")
ORIGINS = ("node-a", "node-b", "node-c")
PATIENT = "01HPATIENT0000000000000001"
FACILITY = "01HFAC0000000000000000001A"

booking = st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 5),
                    st.sampled_from(ORIGINS))
bookings = st.lists(booking, min_size=1, max_size=8,
                    unique_by=lambda b: (b[2], b[3]))  # one clock per (instant, origin)
# What happens to a booking afterwards, each step later than the one before: a cancellation
# (releases the slot) or a move to a slot (releases the old one, claims the new one).
step = st.one_of(
    st.tuples(st.just("cancel"), st.integers(0, 3), st.sampled_from(ORIGINS)),
    st.tuples(st.just("move"), st.integers(0, 3), st.sampled_from(ORIGINS),
              st.integers(0, 1), st.integers(0, 1)))
histories = st.lists(st.lists(step, max_size=2), min_size=8, max_size=8)
@pytest.fixture(scope="module")
def node_db():
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    migrate(conn, "2026-12-06T00:00:00Z")
    yield conn
    conn.close()


def _hlc(wall: int, logical: int = 0) -> str:
    return f"{1_700_000_000_000 + wall:016d}-{logical:04d}"


def _row(event):
    p = event.payload
    return {"event_id": event.id, "appointment_id": p["appointment_id"], "type": event.type,
            "hlc": event.hlc, "origin": event.origin, "patient_id": p.get("patient_id"),
            "practitioner_id": p.get("practitioner_id"), "facility_id": p.get("facility_id"),
            "starts_at": p.get("starts_at"), "channel": p.get("channel"),
            "queue_number": p.get("queue_number"), "reason": p.get("reason")}


def _events(plan, later=()):
    """The bookings of `plan` and, for the n-th booking, the steps later[n] after it (each
    later than the last: a follow-up is made by a node that has seen what it follows)."""
    events = []
    for n, (doctor, start, wall, origin) in enumerate(plan):
        payload = {"appointment_id": f"01HAPPT{n:019d}", "patient_id": PATIENT,
                   "practitioner_id": DOCTORS[doctor], "facility_id": FACILITY,
                   "starts_at": STARTS[start], "channel": "kiosk"}
        events.append(Event(id=f"01HEVENT{n:018d}", origin=origin, seq=len(events) + 1,
                            hlc=_hlc(wall), type=APPOINTMENT_BOOKED, version=1,
                            payload=payload))
    for n, steps in enumerate(later[:len(plan)]):
        wall = plan[n][2]
        for kind, delay, origin, *slot in steps:
            wall += delay
            appointment = {"appointment_id": f"01HAPPT{n:019d}"}
            if kind == "cancel":
                event_type, payload = APPOINTMENT_CANCELLED, {**appointment, "reason": "ill"}
            else:
                event_type, payload = APPOINTMENT_RESCHEDULED, {
                    **appointment, "practitioner_id": DOCTORS[slot[0]],
                    "starts_at": STARTS[slot[1]]}
            # logical part = position: unique, and after the step before at the same instant
            events.append(Event(id=f"01HEVENT{len(events):018d}", origin=origin,
                                seq=len(events) + 1, hlc=_hlc(wall, len(events)),
                                type=event_type, version=1, payload=payload))
    return events, [_row(event) for event in events]


def _node_statuses(conn, events):
    """Each event recorded in the node's log and applied, in this order (as NodeStore does)."""
    conn.execute("SAVEPOINT example")
    try:
        for event in events:
            conn.execute(
                "INSERT INTO events (id, origin, seq, hlc, type, version, payload, prev_hash,"
                " hash, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '')",
                (event.id, event.origin, event.seq, event.hlc, event.type, event.version,
                 json.dumps(event.payload, sort_keys=True)))
            node_projections.apply(conn, event)
        return {row["appointment_id"]: row["status"] for row in conn.execute(
            "SELECT appointment_id, status FROM appointments")}
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT example")
        conn.execute("RELEASE SAVEPOINT example")


@settings(max_examples=300, deadline=None)
@given(plan=bookings, later=histories, data=st.data())
def test_node_in_any_arrival_order_and_hub_replay_agree_on_slots(node_db, plan, later, data):
    """Bookings of the same slots, cancelled or moved later (releasing their slot), arriving
    at a node in any order: the node ends where the hub's clock-order replay does."""
    events, rows = _events(plan, later)
    arrival = data.draw(st.permutations(events), label="arrival order")
    hub, _ = replay_appointments(rows)
    node = _node_statuses(node_db, arrival)
    assert node == {a: state["status"] for a, state in hub.items()}
    if any(later[:len(plan)]):
        return
    # bookings only: exactly one holder per booked slot, the booking with the earliest clock
    for doctor in DOCTORS:
        for start in STARTS:
            same = [e for e in events if e.payload["practitioner_id"] == doctor
                    and e.payload["starts_at"] == start]
            if same:
                first = min(same, key=lambda e: (e.hlc, e.origin))
                assert [e.payload["appointment_id"] for e in same
                        if node[e.payload["appointment_id"]] == BOOKED] == [
                    first.payload["appointment_id"]]


def test_cancel_before_a_later_booking_arrives_out_of_order(node_db):
    """A books (t1), cancels (t2), B books (t3): B holds the slot at the hub; a node that gets
    B's booking, then A's, then A's cancellation gives B the slot back too."""
    events, rows = _events([(0, 0, 1, "node-a"), (0, 0, 3, "node-b")])
    first, later = events
    cancel = Event(id="01HEVENT000000000000000099", origin="node-a", seq=2, hlc=_hlc(2),
                   type=APPOINTMENT_CANCELLED, version=1,
                   payload={"appointment_id": first.payload["appointment_id"]})
    rows.append({"event_id": cancel.id, "appointment_id": first.payload["appointment_id"],
                 "type": cancel.type, "hlc": cancel.hlc, "origin": cancel.origin,
                 "patient_id": None, "practitioner_id": None, "facility_id": None,
                 "starts_at": None, "channel": None, "queue_number": None, "reason": None})
    hub, _ = replay_appointments(rows)
    assert _node_statuses(node_db, [later, first, cancel]) == {
        a: state["status"] for a, state in hub.items()}
