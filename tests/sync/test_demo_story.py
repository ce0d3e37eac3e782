"""`make demo` tells the whole story (issue 12, point 14): built as deploy/demo.py builds it,
with the hub as a process of its own, the demo has a queue today, a paper pad at the clinic,
a call-centre request waiting, two pharmacies with their own names and addresses holding the
clinic's e-prescription, and the hub alone stops and starts (the outage tried by hand)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from edge_node.services import remote_requests, scheduling, staff
from edge_node.sync.agent import sync_status
from sync_protocol.timeutil import local_date, utc_now

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
import demo  # noqa: E402

pytestmark = pytest.mark.slow


def free_base_port() -> int:
    """A base port whose demo offsets (0, 80, 81, 82) are free now (each is re-checked)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1] % 20000 + 30000


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "demo"
    result = demo.build(root, free_base_port())
    yield root, result
    demo.hub_stop(root)
    for node in result["nodes"].values():
        node["store"].close()


def test_the_clinic_has_a_queue_today(built):
    _root, result = built
    store = result["nodes"]["clinic"]["store"]
    today = local_date(utc_now())
    holiday = today in scheduling.public_holidays(today, today)
    numbers = [q["queue_number"] for q in result["story"]["queue"]["queue"]
               if q["queue_number"]]
    assert len(numbers) == (0 if holiday else 3) and all(n >= 1 for n in numbers)
    rows = store.query("SELECT status FROM appointments")
    assert sorted(r["status"] for r in rows) == ([] if holiday else
                                                 ["booked", "checked_in", "checked_in",
                                                  "checked_in"])
    assert "Today at the clinic" in demo.console_text(result)


def test_the_clinic_holds_a_paper_pad_and_a_waiting_call_centre_request(built):
    _root, result = built
    store = result["nodes"]["clinic"]["store"]
    pads = store.query("SELECT series, first_serial, last_serial FROM paper_pads")
    assert [(p["series"], p["first_serial"], p["last_serial"]) for p in pads] == [
        ("TAS", 100, 149)]
    doctor = staff.actor_for_token(store, staff.sign_in(store, "doctor", "2222")["token"])
    waiting = remote_requests.list_requests(store, doctor)
    assert len(waiting) == 1
    assert "metformin" in waiting[0]["request_text"]


def test_two_pharmacies_with_their_own_names_and_addresses_hold_the_prescription(built):
    _root, result = built
    number = result["story"]["prescription"]["number"]
    seen = []
    for name in ("pharmacy", "pharmacy2"):
        store = result["nodes"][name]["store"]
        facility = store.one("SELECT f.name, f.address FROM facilities f WHERE f.facility_id ="
                             " ?", (store.state("facility_id"),))
        seen.append((facility["name"], facility["address"]))
        assert store.one("SELECT number FROM prescriptions WHERE number = ?", (number,))
    assert len({n for n, _a in seen}) == 2 and len({a for _n, a in seen}) == 2


def test_the_hub_alone_stops_and_starts(built):
    root, result = built
    clinic = result["nodes"]["clinic"]
    assert demo.hub_stop(root)
    assert not clinic["agent"].run_once()["ok"]
    assert not sync_status(clinic["store"], configured=True)["online"]
    assert not demo.hub_stop(root)  # stopping twice says it was not running
    demo.hub_start(root)
    assert clinic["agent"].sync_now()["ok"]
    assert sync_status(clinic["store"], configured=True)["synced"]
