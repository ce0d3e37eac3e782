"""A scanned code is kept by the scan (a write), never by reading its verdict (a query):
dispensing.record_scan against dispensing.verdict_for, and the counter's GET page."""

from __future__ import annotations

import shutil

import pytest
from helpers.node import snapshot
from helpers.ui import post, staff_sign_in

from edge_node.services import dispensing, staff
from edge_node.store import NodeStore


def kept(store: NodeStore) -> list[str]:
    return [r["prescription_id"] for r in store.query("SELECT * FROM scanned_codes")]


@pytest.fixture
def pharmacy(tmp_path, seeded_template):
    """A node holding the seeded staff and patients but not the prescription (not synced)."""
    path = tmp_path / "pharmacy.db"
    shutil.copyfile(seeded_template[0], path)
    node = NodeStore(path)
    yield node
    node.close()


def pharmacist(node: NodeStore):
    return staff.actor_for_staff(node.one("SELECT * FROM staff WHERE username = ?",
                                          ("pharmacist",)))


def test_a_verdict_is_read_without_writing_even_for_a_code_not_synced(pharmacy, pki, rx):
    before = snapshot(pharmacy)
    verdict = dispensing.verdict_for(pharmacy, pharmacist(pharmacy), pki.trust_list, rx["qr"])
    assert (verdict.code, [i["remaining_total"] for i in verdict.items]) == ("valid", [20, 30])
    assert kept(pharmacy) == [] and snapshot(pharmacy) == before


def test_recording_the_scan_keeps_the_code_with_the_same_verdict(pharmacy, pki, rx):
    read = dispensing.verdict_for(pharmacy, pharmacist(pharmacy), pki.trust_list, rx["qr"])
    recorded = dispensing.record_scan(pharmacy, pharmacist(pharmacy), pki.trust_list, rx["qr"])
    assert (recorded.code, recorded.items) == (read.code, read.items)
    assert kept(pharmacy) == [rx["prescription_id"]]
    # Kept, it can be dispensed against before the prescription itself arrives by sync.
    dispensing.dispense(pharmacy, pharmacist(pharmacy), facility_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
                        prescription_id=rx["prescription_id"], item_no=1, quantity=5,
                        product="Amoksiklav", batch="B2311", expiry="2030-01-31")


def test_a_forged_code_is_not_kept(pharmacy, pki, rx):
    damaged = rx["qr"][:-10] + ("0" if rx["qr"][-10] != "0" else "1") + rx["qr"][-9:]
    verdict = dispensing.record_scan(pharmacy, pharmacist(pharmacy), pki.trust_list, damaged)
    assert verdict.code == "forged" and kept(pharmacy) == []


@pytest.mark.usefixtures("catalogues")
def test_the_counter_keeps_the_code_on_the_scan_not_on_showing_it(client, store, rx):
    staff_sign_in(client, "pharmacist")
    with store.transaction() as tx:  # as if nothing was scanned here yet
        tx.conn.execute("DELETE FROM scanned_codes")
    post(client, "/ui/counter/scan", {"code": rx["qr"], "pinfl": ""})
    assert kept(store) == [rx["prescription_id"]]
    with store.transaction() as tx:
        tx.conn.execute("DELETE FROM scanned_codes")
    page = client.get("/ui/counter/?lang=en")
    assert 'data-verdict="valid"' in page.text and kept(store) == []
