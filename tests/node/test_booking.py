"""Booking rules: free future slots only, own bookings only, one winner per slot."""

import threading
from datetime import timedelta

import pytest
from helpers.node import future_slot, snapshot

from edge_node.errors import Conflict, Forbidden, NodeError, NotFound, ValidationFailed
from edge_node.services import appointments
from edge_node.services.access import Actor
from edge_node.store import NodeStore
from sync_protocol.timeutil import from_instant, to_instant, utc_now


@pytest.fixture
def ctx(store, seeded, actor_for):
    doctor = seeded["doctors"][0]["practitioner_id"]
    people = [p["patient_id"] for p in seeded["patient_rows"]]
    return {"doctor": doctor, "people": people, "registrar": actor_for("registrar"),
            "slot": future_slot(store, doctor)}


def book(store, ctx, patient=0, slot=None, actor=None, **kw):
    return appointments.book(store, actor or ctx["registrar"], patient_id=ctx["people"][patient],
                             practitioner_id=ctx["doctor"], starts_at=slot or ctx["slot"],
                             channel=kw.pop("channel", "registry"), **kw)


def test_booking_a_taken_slot_is_refused_and_changes_nothing(store, ctx):
    book(store, ctx, patient=0)
    before = snapshot(store)
    with pytest.raises(Conflict) as caught:
        book(store, ctx, patient=1)
    assert caught.value.code == "slot_taken"
    assert snapshot(store) == before


def test_booking_a_past_slot_is_refused(store, ctx):
    before = snapshot(store)
    late = from_instant(ctx["slot"]) + timedelta(minutes=1)
    with pytest.raises(ValidationFailed) as caught:
        book(store, ctx, now=late)
    assert caught.value.code == "slot_in_past"
    assert snapshot(store) == before


def test_booking_a_time_with_no_slot_is_refused(store, ctx):
    odd = to_instant(from_instant(ctx["slot"]) + timedelta(minutes=7))
    with pytest.raises(NotFound):
        book(store, ctx, slot=odd)


def test_a_cancelled_slot_can_be_booked_again(store, ctx):
    first = book(store, ctx, patient=0)
    appointments.cancel(store, ctx["registrar"], first, "patient called")
    second = book(store, ctx, patient=1)
    assert second != first


def test_a_patient_cannot_cancel_someone_elses_booking(store, ctx):
    theirs = book(store, ctx, patient=0)
    intruder = Actor("kiosk-session", "patient", patient_id=ctx["people"][1])
    before = snapshot(store)
    with pytest.raises(Forbidden):
        appointments.cancel(store, intruder, theirs)
    with pytest.raises(Forbidden):
        appointments.reschedule(store, intruder, theirs,
                                starts_at=future_slot(store, ctx["doctor"], index=2))
    assert snapshot(store) == before


def test_a_patient_books_and_cancels_their_own(store, ctx):
    me = Actor("kiosk-session", "patient", patient_id=ctx["people"][2])
    mine = book(store, ctx, patient=2, actor=me, channel="kiosk")
    with pytest.raises(Forbidden):
        book(store, ctx, patient=0, actor=me, slot=future_slot(store, ctx["doctor"], index=1))
    appointments.cancel(store, me, mine)
    assert store.one("SELECT status FROM appointments WHERE appointment_id = ?",
                     (mine,))["status"] == "cancelled"


def test_cancelling_twice_is_refused(store, ctx):
    appointment = book(store, ctx)
    appointments.cancel(store, ctx["registrar"], appointment)
    with pytest.raises(Conflict):
        appointments.cancel(store, ctx["registrar"], appointment)


def test_reschedule_frees_the_old_slot(store, ctx):
    appointment = book(store, ctx, patient=0)
    later = future_slot(store, ctx["doctor"], index=4)
    appointments.reschedule(store, ctx["registrar"], appointment, starts_at=later)
    assert book(store, ctx, patient=1)  # the old slot is free again
    with pytest.raises(Conflict):
        book(store, ctx, patient=2, slot=later)


def test_one_booking_per_doctor_per_day(store, ctx):
    book(store, ctx, patient=0)
    with pytest.raises(Conflict) as caught:
        book(store, ctx, patient=0, slot=future_slot(store, ctx["doctor"], index=1))
    assert caught.value.code == "already_booked_that_day"


def test_check_in_gives_queue_numbers_on_the_day(store, ctx):
    first = book(store, ctx, patient=0)
    second = book(store, ctx, patient=1, slot=future_slot(store, ctx["doctor"], index=1))
    with pytest.raises(ValidationFailed):
        appointments.check_in(store, ctx["registrar"], first)  # not today
    day_of = from_instant(ctx["slot"]) - timedelta(minutes=30)
    assert appointments.check_in(store, ctx["registrar"], second, now=day_of) == 1
    assert appointments.check_in(store, ctx["registrar"], first, now=day_of) == 2
    with pytest.raises(Conflict):
        appointments.check_in(store, ctx["registrar"], first, now=day_of)


def test_no_show_only_after_the_time(store, ctx, actor_for):
    appointment = book(store, ctx)
    with pytest.raises(ValidationFailed):
        appointments.mark_no_show(store, ctx["registrar"], appointment)
    appointments.mark_no_show(store, ctx["registrar"], appointment,
                              now=from_instant(ctx["slot"]) + timedelta(minutes=40))
    with pytest.raises(Forbidden):
        appointments.complete(store, ctx["registrar"], appointment)


def test_unknown_channel_is_refused(store, ctx):
    with pytest.raises(ValidationFailed):
        book(store, ctx, channel="carrier pigeon")


@pytest.mark.parametrize("separate_connections", [False, True])
def test_concurrent_bookings_of_one_slot_exactly_one_wins(store, ctx, separate_connections):
    """Eight clients race for one slot, through one store or through separate processes'
    connections to the same file; exactly one booking is recorded."""
    stores = [NodeStore(store.path) if separate_connections else store for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results: list[object] = []

    def attempt(i):
        barrier.wait()
        try:
            results.append(appointments.book(
                stores[i], ctx["registrar"], patient_id=ctx["people"][i % 4],
                practitioner_id=ctx["doctor"], starts_at=ctx["slot"], channel="kiosk"))
        except NodeError as e:
            results.append(e)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if isinstance(r, str)]
    losses = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(losses) == len(stores) - 1
    assert store.one("SELECT COUNT(*) AS n FROM appointments WHERE starts_at = ? AND"
                     " practitioner_id = ?", (ctx["slot"], ctx["doctor"]))["n"] == 1
    booked = [e for e in store.events() if e.type == "AppointmentBooked"]
    assert len(booked) == 1
    if separate_connections:
        for other in stores:
            other.close()


def test_slots_listing_excludes_booked_and_past(store, ctx):
    from edge_node.services.scheduling import free_slots
    free_before = {s["starts_at"] for s in free_slots(store, ctx["doctor"])}
    assert ctx["slot"] in free_before
    assert all(from_instant(s) > utc_now() for s in free_before)
    book(store, ctx)
    assert ctx["slot"] not in {s["starts_at"] for s in free_slots(store, ctx["doctor"])}
