"""A catch-up page writes runs of prescriptions and dispenses with one statement per table
(projections.apply_all): the state is the one event-by-event application gives, whatever the
mix, repeats and cancellations arriving before or after their prescription."""

import shutil
from datetime import UTC, datetime, timedelta

from helpers.node import RemoteNode, snapshot
from test_node_catchup import receive_page

from edge_node import projections
from edge_node.store import NodeStore
from sync_protocol.identifiers import make_pinfl, new_ulid
from sync_protocol.timeutil import to_instant

TABLES = ("prescriptions", "prescription_items", "dispenses", "apply_failures")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def issued(node, facility_id, doctor, items=1):
    rx = new_ulid()
    return node.event("PrescriptionIssued", {
        "prescription_id": rx, "number": f"RX{rx[-12:]}", "kind": "e", "patient_id": new_ulid(),
        "pinfl": make_pinfl(NOW.date() - timedelta(days=15000), "male"),
        "facility_id": facility_id, "practitioner_id": doctor, "issued_at": to_instant(NOW),
        "not_before": to_instant(NOW), "expires_at": to_instant(NOW + timedelta(days=10)),
        "chronic": False,
        "items": [{"item_no": n, "inn": "amoxicillin", "form": "capsule", "strength": "500 mg",
                   "quantity": 20, "repeats": 0, "min_days_between_fills": 0}
                  for n in range(1, items + 1)]})


def cancelled(node, rx, reason):
    return node.event("PrescriptionCancelled", {
        "prescription_id": rx.payload["prescription_id"], "reason": reason})


def dispensed(node, facility_id, rx, quantity=5):
    return node.event("MedicationDispensed", {
        "dispense_id": new_ulid(), "prescription_id": rx.payload["prescription_id"],
        "item_no": 1, "quantity": quantity, "product": "Amoksiklav", "batch": "B1",
        "expiry": "2027-01-01", "dispensed_at": to_instant(NOW), "facility_id": facility_id,
        "mode": "offline"})


def tables(store):
    shot = snapshot(store)
    rows = {name: shot.get(name) for name in TABLES}
    rows["apply_failures"] = [row[0] for row in rows["apply_failures"] or []]  # event ids
    return rows


def test_a_mixed_page_gives_the_state_of_one_event_at_a_time(tmp_path, seeded_template,
                                                             seeded):
    clinic, pharmacy = RemoteNode("clinic-a"), RemoteNode("pharmacy-b")
    facility, doctor = seeded["facility_id"], seeded["doctors"][0]["practitioner_id"]
    early_cancel_rx = issued(clinic, facility, doctor)
    rxs = [issued(clinic, facility, doctor, items=1 + i % 3) for i in range(6)]
    twin = issued(clinic, facility, doctor)
    page = [
        cancelled(clinic, early_cancel_rx, "first cancellation, before the prescription"),
        *rxs[:3], dispensed(pharmacy, facility, rxs[0]), early_cancel_rx,
        dispensed(pharmacy, facility, rxs[1]), rxs[0],  # a repeat inside a run
        cancelled(clinic, rxs[1], "cancelled between two runs"),
        *rxs[3:], dispensed(pharmacy, facility, rxs[3], 7), twin,
        cancelled(clinic, rxs[4], "cancelled after its run"),
        cancelled(clinic, early_cancel_rx, "a later second cancellation"),
    ]
    stores = []
    for name in ("one", "page"):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(seeded_template[0], path)
        stores.append(NodeStore(path))
    one, paged = stores
    try:
        with one.transaction() as tx:
            singly = [tx.receive(event) for event in page]
        assert receive_page(paged, page) == singly
        assert tables(paged) == tables(one)
        # and the batch path really ran: the page's rows are there, with the cancellations
        rows = {r["prescription_id"]: r for r in paged.query("SELECT * FROM prescriptions")}
        for rx in rxs + [early_cancel_rx, twin]:
            assert rx.payload["prescription_id"] in rows
        status = [rows[rx.payload["prescription_id"]]["status"]
                  for rx in (early_cancel_rx, rxs[1], rxs[4], rxs[5])]
        assert [s == "cancelled" for s in status] == [True, True, True, False]
        # the earliest cancellation by clock is in force, as at the hub, though a later one
        # came after the prescription
        assert rows[early_cancel_rx.payload["prescription_id"]]["cancel_reason"] == \
            "first cancellation, before the prescription"
        assert paged.one("SELECT COUNT(*) AS n FROM dispenses")["n"] == 3
        assert paged.one("SELECT COUNT(*) AS n FROM prescription_items")["n"] == \
            sum(len(rx.payload["items"]) for rx in rxs) + 2
        paged.rebuild_projections()
        assert tables(paged) == tables(one)
    finally:
        one.close()
        paged.close()


def test_the_earliest_cancellation_wins_in_any_order_of_arrival(tmp_path, seeded_template,
                                                                  seeded):
    """Two cancellations of one prescription (two desks, offline): whatever order they and the
    prescription arrive in, one by one or in a page, the earliest by clock is in force, as the
    hub decides it (central_hub.projections), so node and hub show the same reason."""
    clinic = RemoteNode("clinic-a")
    facility, doctor = seeded["facility_id"], seeded["doctors"][0]["practitioner_id"]
    rx = issued(clinic, facility, doctor)
    first = cancelled(clinic, rx, "the earlier cancellation")
    second = cancelled(clinic, rx, "the later cancellation")
    orders = {"issued first": [rx, first, second], "later one first": [rx, second, first],
              "both before": [second, first, rx], "around it": [second, rx, first]}
    for name, events in orders.items():
        for mode in ("one by one", "page"):
            path = tmp_path / f"{name}-{mode}.db"
            shutil.copyfile(seeded_template[0], path)
            store = NodeStore(path)
            try:
                if mode == "page":
                    receive_page(store, events)
                else:
                    with store.transaction() as tx:
                        for event in events:
                            tx.receive(event)
                row = store.one("SELECT status, cancel_reason, cancelled_at FROM prescriptions")
                assert (row["status"], row["cancel_reason"]) == (
                    "cancelled", "the earlier cancellation"), (name, mode)
                assert row["cancelled_at"] == first.timestamp.to_instant(), (name, mode)
            finally:
                store.close()


def test_apply_all_hands_runs_to_batch_handlers_in_order(monkeypatch):
    """Runs of batch-handled types are cut by any other event, which applies between them."""
    calls = []
    monkeypatch.setattr(projections, "BATCH_HANDLERS", {
        "A": lambda conn, events: calls.append(("A", [e.id for e in events])),
        "B": lambda conn, events: calls.append(("B", [e.id for e in events]))})
    monkeypatch.setattr(projections, "apply", lambda conn, event: calls.append(("one", event.id)))

    class E:
        def __init__(self, id, type):
            self.id, self.type = id, type

    projections.apply_all(None, [E(1, "A"), E(2, "B"), E(3, "A"), E(4, "C"), E(5, "B"),
                                 E(6, "B")])
    assert calls == [("A", [1, 3]), ("B", [2]), ("one", 4), ("B", [5, 6])]
