"""The pharmacy counter: a verdict for every kind of code, dispensing fully and partly."""

from datetime import timedelta

import pytest
from helpers.node import AMLODIPINE, snapshot

from edge_node.errors import Conflict, NotFound, ValidationFailed
from edge_node.services import dispensing, prescribing
from edge_node.services.clock import SystemClock, confirm_clock
from sync_protocol import qr
from sync_protocol.timeutil import from_instant, utc_now
from sync_protocol.trust_list import TrustList


def check(store, actor_for, trust_list, code, **kw):
    return dispensing.record_scan(store, actor_for("pharmacist"), trust_list, code, **kw)


def give(store, actor_for, rx, item_no, quantity, **kw):
    return dispensing.dispense(store, actor_for("pharmacist"),
                               facility_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
                               prescription_id=rx["prescription_id"], item_no=item_no,
                               quantity=quantity, product=kw.pop("product", "Amoksiklav"),
                               batch="B2311", expiry="2030-01-31", **kw)


def test_valid_code(store, actor_for, pki, rx):
    verdict = check(store, actor_for, pki.trust_list, rx["qr"] + "\r\n", typed_pinfl=rx["pinfl"])
    assert (verdict.code, verdict.may_dispense) == ("valid", True)
    assert [i["remaining_total"] for i in verdict.items] == [20, 30]
    assert verdict.prescription["number"] == rx["number"]


def test_partial_dispense_leaves_the_right_remainder(store, actor_for, pki, rx):
    give(store, actor_for, rx, 1, 12)
    verdict = check(store, actor_for, pki.trust_list, rx["qr"])
    assert verdict.code == "partly_dispensed"
    first = verdict.items[0]
    assert (first["dispensed"], first["remaining_in_fill"], first["remaining_total"]) == (
        12, 8, 8)
    before = snapshot(store)
    with pytest.raises(Conflict) as caught:
        give(store, actor_for, rx, 1, 9)
    assert caught.value.code == "more_than_remains"
    assert snapshot(store) == before
    give(store, actor_for, rx, 1, 8)
    give(store, actor_for, rx, 2, 30)
    assert check(store, actor_for, pki.trust_list, rx["qr"]).code == "already_dispensed"
    events = [e for e in store.events() if e.type == "MedicationDispensed"]
    assert [e.payload["quantity"] for e in events] == [12, 8, 30]
    assert {e.payload["mode"] for e in events} == {"offline"}


def test_wrong_patient(store, actor_for, pki, rx, seeded):
    other = seeded["patients"][1]["pinfl"]
    assert check(store, actor_for, pki.trust_list, rx["qr"], typed_pinfl=other).code == \
        "wrong_patient"


def test_cancelled(store, actor_for, pki, rx):
    prescribing.cancel_prescription(store, actor_for("doctor"), rx["prescription_id"], "xato")
    verdict = check(store, actor_for, pki.trust_list, rx["qr"])
    assert verdict.code == "cancelled" and not verdict.may_dispense
    with pytest.raises(Conflict):
        give(store, actor_for, rx, 1, 1)


def test_expired_and_not_yet_valid(store, actor_for, pki, rx):
    expires = from_instant(rx["expires_at"])
    late = check(store, actor_for, pki.trust_list, rx["qr"], now=expires + timedelta(hours=1))
    assert late.code == "expired"
    early = check(store, actor_for, pki.trust_list, rx["qr"], now=utc_now() - timedelta(days=2))
    assert early.code == "not_yet_valid"


def test_revoked_key(store, actor_for, pki, rx):
    revoked = TrustList.from_dict(pki.trust_list.to_dict())
    revoked.revoke(pki.clinic.cert, utc_now(), "stolen Raspberry Pi")
    assert check(store, actor_for, revoked, rx["qr"]).code == "revoked_key"


def test_unknown_key(store, actor_for, rx, pki):
    from helpers.pki import make_pki
    foreign = make_pki()
    assert check(store, actor_for, foreign.trust_list, rx["qr"]).code == "untrusted_key"


def test_signed_by_a_pharmacy_key(store, actor_for, pki, rx):
    claims = qr.verify(rx["qr"], pki.trust_list.nodes).prescription
    forged = qr.issue(claims, pki.pharmacy.key, pki.pharmacy.cert)
    assert check(store, actor_for, pki.trust_list, forged).code == "untrusted_key"


def test_a_changed_digit_is_forged(store, actor_for, pki, rx):
    code = rx["qr"]
    # The last chunk (17 digits) can carry deflate padding bits that change nothing signed.
    for position in range(4, len(code) - 17, max(1, len(code) // 25)):
        flipped = code[:position] + str((int(code[position]) + 1) % 10) + code[position + 1:]
        verdict = check(store, actor_for, pki.trust_list, flipped)
        assert verdict.code == "forged", position
        assert verdict.prescription is None and not verdict.may_dispense


@pytest.mark.parametrize("text", ["", "12345", "HC1:NOTBASE45!!", "x" * 100_000,
                                  "0" * 7089, "https://example.org"],
                         ids=["empty", "short", "bad-hc1", "100kB", "zeros", "url"])
def test_garbage_is_not_a_prescription(store, seeded, actor_for, pki, text):
    verdict = check(store, actor_for, pki.trust_list, text)
    assert verdict.code in ("not_a_prescription", "forged")
    assert not verdict.may_dispense


def test_unverified_clock_never_says_valid(store, actor_for, pki, rx):
    class Rebooted(SystemClock):
        def boot_id(self):
            return "another-boot"
    verdict = check(store, actor_for, pki.trust_list, rx["qr"], clock=Rebooted())
    assert verdict.code == "clock_unverified" and not verdict.may_dispense
    assert verdict.clock["reason"] == "restarted"
    confirm_clock(store, "staff:test", Rebooted())
    assert check(store, actor_for, pki.trust_list, rx["qr"], clock=Rebooted()).code == "valid"


def test_dispense_before_the_code_reached_the_pharmacy_by_sync(store, actor_for, pki, rx):
    """A scanned code is enough: the prescription row may not be in the replica yet."""
    with store.transaction() as tx:
        tx.conn.execute("DELETE FROM prescription_items")
        tx.conn.execute("DELETE FROM prescriptions")
    with pytest.raises(NotFound):
        give(store, actor_for, rx, 1, 5)
    assert check(store, actor_for, pki.trust_list, rx["qr"]).code == "valid"
    assert give(store, actor_for, rx, 1, 5)["remaining_in_fill"] == 15


@pytest.mark.parametrize(("kw", "field"), [({"product": ""}, "product"),
                                           ({"expiry": "2020-01-01"}, "expiry"),
                                           ({"expiry": "soon"}, "expiry")])
def test_dispense_input_is_checked(store, actor_for, rx, kw, field):
    check_kw = {"product": kw.pop("product", "Amoksil")}
    before = snapshot(store)
    with pytest.raises(ValidationFailed) as caught:
        dispensing.dispense(store, actor_for("pharmacist"), facility_id="x",
                            prescription_id=rx["prescription_id"], item_no=1, quantity=1,
                            batch="B1", expiry=kw.get("expiry", "2030-01-01"), **check_kw)
    assert caught.value.field == field
    assert snapshot(store) == before


def test_drugs_needing_a_prescription_cannot_be_sold_without_one():
    with pytest.raises(Conflict) as caught:
        dispensing.sale_without_prescription("amoxicillin")
    assert caught.value.code == "e_prescription_required"
    dispensing.sale_without_prescription("paracetamol")


def test_lookup_by_document_when_there_is_no_phone(store, actor_for, rx, seeded):
    found = dispensing.find_by_identity(store, actor_for("pharmacist"),
                                        document=seeded["patients"][0]["document"])
    assert [p["number"] for p in found["prescriptions"]] == [rx["number"]]
    assert found["pinfl"] == rx["pinfl"]
    with store.transaction() as tx:  # a pharmacy holds no patient records, only prescriptions
        tx.conn.execute("DELETE FROM patients")
    again = dispensing.find_by_identity(store, actor_for("pharmacist"), pinfl=rx["pinfl"])
    assert [p["number"] for p in again["prescriptions"]] == [rx["number"]]
    with pytest.raises(NotFound):
        dispensing.find_by_identity(store, actor_for("pharmacist"),
                                    document=seeded["patients"][1]["document"])


def test_repeat_fill_waits_for_the_interval(store, seeded, actor_for, clinic_credentials, pki):
    patient = seeded["patient_rows"][2]["patient_id"]
    prescribing.set_chronic_condition(store, actor_for("doctor"), patient, "I10")
    rx = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials, patient_id=patient,
        items=[{**AMLODIPINE, "repeats": 2, "min_days_between_fills": 28}])
    give(store, actor_for, rx, 1, 30)
    verdict = check(store, actor_for, pki.trust_list, rx["qr"])
    assert verdict.code == "fill_too_early"
    assert verdict.items[0]["fill_number"] == 2
    with pytest.raises(Conflict) as caught:
        give(store, actor_for, rx, 1, 30)
    assert caught.value.code == "fill_too_early"
    assert "next_fill" in caught.value.params
    later = utc_now() + timedelta(days=29)
    assert give(store, actor_for, rx, 1, 30, now=later)["fill_number"] == 2


def test_api_verify_and_dispense(client, auth, rx):
    verdict = client.post("/api/v1/pharmacy/verify", headers=auth("pharmacist"),
                          json={"code": rx["qr"], "pinfl": rx["pinfl"]})
    assert verdict.status_code == 200 and verdict.json["verdict"] == "valid"
    done = client.post("/api/v1/pharmacy/dispense", headers=auth("pharmacist"), json={
        "prescription_id": rx["prescription_id"], "item_no": 1, "quantity": 20,
        "product": "Amoksil", "batch": "A1", "expiry": "2030-05-01"})
    assert done.status_code == 201, done.json
    doctor = client.post("/api/v1/pharmacy/verify", headers=auth("doctor"),
                         json={"code": rx["qr"]})
    assert doctor.status_code == 403
