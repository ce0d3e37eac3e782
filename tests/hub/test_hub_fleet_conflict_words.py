"""Every conflict kind told in words on the fleet conflicts page, in uz / ru / en: which
prescription (number), appointment or patient (MED-ID), which facilities by name, what
happened where and when, the rule and what to do; never the details' raw keys.

Conflicts that nodes cause are made through signed pushes (a slot booked at two clinics, a
phone changed at two, dispenses after cancellation and after expiry); paper mismatches and
a revoked signer are raised through the detector's own library call with their details.
"""

import csv
import html
import io
import re

import pytest
from helpers.hub import SimNode, instant
from helpers.hub_app import signed_in

from central_hub import conflict_words
from central_hub.conflicts import Candidate, raise_conflict
from central_hub.web import dashboard_fleet
from sync_protocol.identifiers import new_ulid

# The details' keys and JSON, as the page must not show them.
RAW_KEYS = ("dispense_id", "paper_serial", "_reason", "event_id", "practitioner_id",
            "patient_id", "suggested_starts_at", "_by", "{", "}")


@pytest.fixture
def app(make_hub, central_staff):
    return make_hub(CHART_CACHE_SECONDS=0)


@pytest.fixture
def client(app):
    return signed_in(app)


@pytest.fixture
def made(app, world, storage):
    """Two TAS clinics and a TAS pharmacy cause four conflicts; three more are raised."""
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic2 = SimNode(world.clinic2, app.test_client())
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    for sim in (clinic, clinic2, pharmacy):
        sim.register_facility()
    patient, other = clinic.register_patient(), clinic.register_patient()
    doctor = clinic.register_practitioner()
    cancelled = clinic.prescribe(patient, doctor)
    clinic.cancel_prescription(cancelled)
    expired = clinic.prescribe(patient, doctor, days_valid=-1)
    starts = instant(2)
    for sim, who in ((clinic, patient), (clinic2, other)):  # one slot, two clinics offline
        sim.emit("AppointmentBooked", {"appointment_id": new_ulid(), "patient_id": who,
                                       "practitioner_id": doctor, "facility_id": sim.facility_id,
                                       "starts_at": starts, "channel": "registry"})
    assert clinic.push().status_code == 200
    assert clinic2.push().status_code == 200
    clinic.change_patient(patient, "phone", "+998901110011")
    clinic2.change_patient(patient, "phone", "+998935550022")
    pharmacy.dispense(cancelled)
    pharmacy.dispense(expired)
    for sim in (clinic, clinic2, pharmacy):
        assert sim.push().status_code == 200
    with storage.transaction() as tx:
        number = tx.scalar("SELECT number FROM hub_prescriptions WHERE prescription_id = ?",
                           (expired,))
        hlc = tx.scalar("SELECT MAX(hlc) FROM events")
        # key events of the pharmacy's (the page finds a conflict's region through them)
        keys = [r["id"] for r in tx.query("SELECT id FROM events WHERE origin = ? ORDER BY "
                                          "position", (pharmacy.node_id,))]
        for key, (reason, details) in zip(keys, (
                ("serial_used_twice", {"paper_serial": "AB-0042",
                                       "prescription_ids": [cancelled, expired]}),
                ("never_matched", {"paper_serial": "AB-0077", "prescription_number": "P-9",
                                   "dispensed_at": instant(-3), "entered_at": instant(-3),
                                   "days_unmatched": 3})), strict=False):
            raise_conflict(tx, Candidate("paper_mismatch", reason, [key], [hlc],
                                         [pharmacy.facility_id], {"reason": reason, **details}))
        raise_conflict(tx, Candidate(
            "dispense_after_revocation", expired, [keys[-1]], [hlc],
            [clinic.facility_id, pharmacy.facility_id],
            {"prescription_id": expired, "item_no": 1, "quantity": 20, "dispense_id": "x",
             "dispensed_at": instant(), "signer_node": clinic.node_id, "kid": "00",
             "revoked_at": instant(-1), "revocation_reason": "key_compromise"}))
    return {"number": number, "clinic": clinic, "clinic2": clinic2, "pharmacy": pharmacy,
            "patient": patient}


def sections(page: str) -> dict[str, str]:
    """Each conflict's section, by its kind's title (and the paper reason's serial)."""
    out = {}
    for section in re.findall(r'<section class="conflict.*?</section>', page, re.S):
        section = html.unescape(section)
        text = re.sub(r"<[^>]+>", " ", section)
        serial = re.search(r"AB-00\d\d", text)
        out[re.search(r"<h3>(.*?)[<·]", section, re.S).group(1).strip()
            + (f" {serial.group(0)}" if serial else "")] = " ".join(text.split())
    return out


def test_every_kind_is_told_with_its_facts(client, made, storage):
    with storage.reader() as tx:
        med_id = tx.scalar("SELECT med_id FROM hub_patients WHERE patient_id = ?",
                           (made["patient"],))
    page = client.get("/dashboard/fleet/conflicts?lang=en&state=open")
    assert page.status_code == 200
    found = sections(page.get_data(as_text=True))
    clinic, clinic2, pharmacy = (f"Facility {made[n].identity.facility_code}"
                                 for n in ("clinic", "clinic2", "pharmacy"))
    booking = found["Double-booked slot"]
    assert "Two patients were booked with Aliyeva Dilnoza" in booking
    keeps = re.search(r"Keeps the time: patient (MED-\w+), booked at (.*?) on ", booking)
    moves = re.search(r"Must move: patient (MED-\w+), booked at (.*?) on ", booking)
    assert {keeps.group(2), moves.group(2)} == {clinic, clinic2}  # the clocks decide which
    assert med_id in (keeps.group(1), moves.group(1))
    edit = found["Concurrent edit of patient data"]
    assert f"The phone of patient {med_id} was changed at two places" in edit
    assert f"Earlier: +998901110011, entered at {clinic}" in edit
    assert f"Later, now in force: +998935550022, entered at {clinic2}" in edit
    cancel = found["Dispensed after cancellation"]
    assert f"dispensed at {pharmacy}" in cancel and f"after {clinic} had cancelled it" in cancel
    assert "(reason: allergy)" in cancel
    expiry = found["Dispensed outside the validity period"]
    assert f"prescription No. {made['number']}" in expiry and "after it expired on" in expiry
    revoked = found["Dispensed after the signer's key was revoked"]
    assert f"the key of {clinic} that signed it had been revoked" in revoked
    twice = found["Paper record mismatch AB-0042"]
    assert "Two paper prescriptions carry the serial AB-0042: No. RX-" in twice
    never = found["Paper record mismatch AB-0077"]
    assert f"entered at {pharmacy}" in never and "for 3 days" in never
    assert len(found) == 7
    for kind, text in found.items():
        assert "Rule:" in text and "What to do:" in text, kind
        assert not any(key in text for key in RAW_KEYS), (kind, text)


@pytest.mark.parametrize(("lang", "phrases"), [
    ("ru", ("Два пациента записаны к врачу Aliyeva Dilnoza", "Нужно перенести: пациент",
            "изменено в двух местах", "после того как", "после окончания срока действия",
            "был отозван", "Два бумажных рецепта с одной серией AB-0042",
            "уже 3 дн. не совпадает")),
    ("uz", ("Ikki bemor Aliyeva Dilnoza qabuliga", "Ko‘chirish kerak: bemor",
            "ikki joyda o‘zgartirilgan", "bekor qilganidan keyin", "muddati",
            "kaliti", "Ikki qog‘oz retseptda bir xil AB-0042 seriya",
            "3 kundan beri")),
])
def test_every_kind_is_told_in_each_language(client, made, lang, phrases):
    text = " ".join(sections(client.get(f"/dashboard/fleet/conflicts?lang={lang}")
                             .get_data(as_text=True)).values())
    for phrase in phrases:
        assert phrase in text, phrase
    english = {s.split("%")[0].strip() for triple in conflict_words.RULES.values()
               for s in triple if len(s.split("%")[0].strip()) > 20}
    assert not [s for s in english if s in text]


def test_the_csv_exports_stream_every_conflict_in_chunks(client, made, monkeypatch):
    monkeypatch.setattr(conflict_words, "CSV_CHUNK", 2)  # 7 conflicts: four chunks
    monkeypatch.setattr(dashboard_fleet, "CSV_FLUSH_BYTES", 10)  # a piece per row
    answer = client.get("/dashboard/fleet/conflicts.csv?lang=en")
    assert answer.is_streamed and answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert tuple(rows[0]) == dashboard_fleet.CONFLICT_COLUMNS
    page = client.get("/dashboard/fleet/conflicts?lang=en").get_data(as_text=True)
    assert [r[0] for r in rows[1:]] == re.findall(r'id="conflict-(\w+)"', page)
    serials = [r for r in rows[1:] if "AB-0042" in r[7]]
    assert len(serials) == 1 and serials[0][1] == "paper_mismatch"
    nodes = client.get("/dashboard/fleet/nodes.csv")
    assert nodes.is_streamed
    listed = list(csv.reader(io.StringIO(nodes.get_data(as_text=True))))
    assert sorted(r[0] for r in listed[1:]) == sorted(
        made[n].node_id for n in ("clinic", "clinic2", "pharmacy"))
