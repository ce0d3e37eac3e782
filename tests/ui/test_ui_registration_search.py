"""Registration and search at the desk (issue 12, points 5 and 11): phone optional, Cyrillic
look-alike series, search by name in either script and by birth date, every form error at
once beside its field, a link to the patient a duplicate PINFL belongs to, and the ID card's
MRZ filling the form, the desk search and the counter look-up."""

from __future__ import annotations

import re
from datetime import date

import pytest
from helpers.mrz import PINFL, garble, td1, td3
from helpers.ui import escaped, event_count, post, staff_sign_in, translated  # noqa: F401
from test_ui_counter import rx, scan, verdict_of  # noqa: F401

from sync_protocol.event_types import validate_payload
from sync_protocol.identifiers import make_pinfl
from sync_protocol.names import name_key, name_matches

pytestmark = pytest.mark.usefixtures("catalogues")


def register(client, **fields):
    staff_sign_in(client, "registrar")
    return post(client, "/ui/desk/patients/new", fields)


# -- phone optional -------------------------------------------------------------------------

def test_patient_without_phone_is_registered_and_no_sms_is_queued(client, store, seeded):
    pinfl = make_pinfl(date(1940, 2, 3), "male", district="264")
    sms_before = store.one("SELECT COUNT(*) AS n FROM sms_outbox")["n"]
    response = register(client, full_name="Telefonsiz Bobo", pinfl=pinfl, phone="")
    assert response.status_code == 302
    row = store.one("SELECT * FROM patients WHERE pinfl = ?", (pinfl,))
    event = store.one("SELECT payload FROM events WHERE type = 'PatientRegistered' ORDER BY"
                      " seq DESC LIMIT 1")
    assert '"phone"' not in event["payload"]
    assert store.one("SELECT COUNT(*) AS n FROM sms_outbox")["n"] == sms_before
    page = client.get(response.headers["Location"] + "?lang=en").text
    assert "no phone" in page and "Confirm the phone" not in page
    assert row["full_name"] == "Telefonsiz Bobo"


def test_api_registers_without_phone(client, auth, seeded, store):
    pinfl = make_pinfl(date(1950, 1, 1), "female", district="265")
    response = client.post("/api/v1/patients", headers=auth("registrar"), json={
        "full_name": "Saidova Oydin", "facility_id": seeded["facility_id"], "pinfl": pinfl})
    assert response.status_code == 201, response.json
    found = client.get(f"/api/v1/patients?pinfl={pinfl}", headers=auth("registrar")).json
    assert found["phone"] is None and found["phone_confirmed"] is False


def test_old_registration_events_with_a_phone_stay_valid():
    payload = {"patient_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "med_id": "MED-1",
               "full_name": "Eski Bemor", "birth_date": "1980-01-01", "sex": "male",
               "phone": "+998901234567", "facility_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
               "pinfl": make_pinfl(date(1980, 1, 1), "male")}
    validate_payload("PatientRegistered", 1, payload)
    validate_payload("PatientRegistered", 1, {k: v for k, v in payload.items() if k != "phone"})


# -- Cyrillic look-alike series -------------------------------------------------------------

def test_cyrillic_series_registers_and_finds(client, store, seeded):
    response = register(client, full_name="Kirill Harfli", document="АВ1112233",
                        birth_date="1990-01-01", sex="male")
    assert response.status_code == 302
    row = store.one("SELECT * FROM patients WHERE document = 'AB1112233'")
    assert row is not None
    found = client.get("/ui/desk/patients?q=ав 1112233")
    assert found.headers["Location"].endswith(row["patient_id"])


def test_counter_lookup_takes_cyrillic_series(client, rx):  # noqa: F811
    staff_sign_in(client, "pharmacist")
    cyrillic = rx["document"].translate(str.maketrans("ABEKMHOPCTYX", "АВЕКМНОРСТУХ"))
    assert cyrillic != rx["document"]
    page = client.get(f"/ui/counter/lookup?q={cyrillic}").text
    assert f'data-lookup="{rx["prescription_id"]}"' in page


# -- search by name and birth date ----------------------------------------------------------

@pytest.mark.parametrize(("latin", "cyrillic"), [
    ("Karimov", "Каримов"), ("Xo'jayev", "Хўжаев"), ("Abdullayev", "Абдуллаев"),
    ("Qodirova", "Кодирова"), ("Khamidov", "Хамидов"), ("Shuhratovich", "Шуhратович"),
])
def test_name_key_is_the_same_in_both_scripts(latin, cyrillic):
    if "h" in cyrillic:  # mixed input, as typed with a half-switched layout
        cyrillic = cyrillic.replace("h", "ҳ")
    assert name_key(latin) == name_key(cyrillic)


def test_name_matching_is_partial_and_in_any_order():
    assert name_matches("naz gul", "Nazarova Gulnora Ilhomovna")
    assert name_matches("гулнора", "Nazarova Gulnora Ilhomovna")
    assert not name_matches("nazarov otabek", "Nazarova Gulnora Ilhomovna")


@pytest.mark.parametrize("query", ["Nazarova", "назарова гул", "gulnora", "ГУЛНОРА ИЛ"])
def test_desk_finds_by_name_in_latin_or_cyrillic(client, seeded, query):
    staff_sign_in(client, "registrar")
    page = client.get("/ui/desk/patients", query_string={"q": query}).text
    nazarova = next(p for p in seeded["patient_rows"] if p["full_name"].startswith("Nazarova"))
    assert f"/ui/desk/patients/{nazarova['patient_id']}" in page
    assert "Rahimov" not in page


@pytest.mark.parametrize("typed", ["1958-07-30", "30.07.1958"])
def test_desk_finds_by_birth_date(client, seeded, typed):
    staff_sign_in(client, "registrar")
    page = client.get("/ui/desk/patients", query_string={"q": typed}).text
    rows = re.findall(r'href="/ui/desk/patients/([0-9A-Z]{26})"', page)
    ismoilov = next(p for p in seeded["patient_rows"] if p["full_name"].startswith("Ismoilov"))
    assert rows == [ismoilov["patient_id"]]


def test_search_without_a_match_says_so(client, seeded):
    staff_sign_in(client, "registrar")
    page = client.get("/ui/desk/patients?q=Zzzyxov&lang=ru").text
    assert "data-no-results" in page
    assert escaped(translated("ru", "No patient found on this node.")) in page


# -- all errors at once, limits, duplicate link ---------------------------------------------

def test_every_wrong_field_is_shown_beside_it_and_nothing_changes(client, store, seeded):
    before = event_count(store)
    response = register(client, full_name="X", phone="12345", document="A1")
    assert response.status_code == 422
    page = response.text
    for field in ("full_name", "phone", "document", "birth_date", "sex"):
        assert f'id="{field}-error"' in page, field
    assert event_count(store) == before


def test_form_limits_match_the_server(client, seeded):
    from edge_node.services import patients

    staff_sign_in(client, "registrar")
    page = client.get("/ui/desk/patients/new").text
    assert re.search(rf'id="full_name"[^>]*maxlength="{patients.NAME_LENGTH[1]}"', page)
    assert re.search(rf'id="phone"[^>]*maxlength="{patients.PHONE_MAX_TYPED}"', page)
    too_long = register(client, full_name="A" * (patients.NAME_LENGTH[1] + 1),
                        pinfl=make_pinfl(date(1999, 1, 1), "male", district="266"))
    assert too_long.status_code == 422 and 'id="full_name-error"' in too_long.text


def test_duplicate_pinfl_links_to_the_existing_patient(client, seeded):
    taken = seeded["patient_rows"][1]
    response = register(client, full_name="Ikkinchi Nusxa", pinfl=taken["pinfl"])
    assert response.status_code == 409
    assert f'href="/ui/desk/patients/{taken["patient_id"]}"' in response.text
    assert "data-existing-patient" in response.text


# -- the MRZ read from the ID card or passport ----------------------------------------------

@pytest.mark.parametrize("zone", [td1, td3, lambda: garble(td1())])
def test_mrz_fills_the_registration_form(client, store, seeded, zone):
    before = event_count(store)
    response = register(client, mrz=zone(), action="mrz")
    assert response.status_code == 200
    page = response.text
    assert re.search(r'id="full_name"[^>]*value="Karimova Dilnoza"', page)
    assert re.search(rf'id="pinfl"[^>]*value="{PINFL}"', page)
    assert re.search(r'id="document"[^>]*value="(AD1234567|FA7654321)"', page)
    assert event_count(store) == before  # filled in, not registered until Register is pressed


def test_mrz_with_a_wrong_check_digit_is_refused_in_the_form(client, seeded):
    text = td1()
    broken = text[:14] + str((int(text[14]) + 1) % 10) + text[15:]
    response = register(client, mrz=broken, action="mrz", lang="ru")
    assert response.status_code == 422
    assert 'id="mrz-error"' in response.text


def test_desk_search_and_counter_compare_take_the_mrz(client, store, seeded, rx):  # noqa: F811
    patient = next(p for p in seeded["patient_rows"] if p["patient_id"] == rx["patient_id"])
    zone = garble(td1(document="XX0000001", pinfl=patient["pinfl"]))
    staff_sign_in(client, "registrar")
    found = client.get("/ui/desk/patients", query_string={"q": zone})
    assert found.headers["Location"].endswith(patient["patient_id"])
    staff_sign_in(client, "pharmacist")
    page = client.get("/ui/counter/lookup", query_string={"q": zone}).text
    assert f'data-lookup="{rx["prescription_id"]}"' in page
    assert verdict_of(scan(client, rx["qr"], pinfl=zone).text) == "valid/ok"
    other = td3(pinfl=make_pinfl(date(1970, 1, 1), "male", district="267"))
    assert verdict_of(scan(client, rx["qr"], pinfl=other).text) != "valid/ok"


# -- the kiosk: the ID card in the reader gives the PINFL --------------------------------------

def test_kiosk_takes_the_pinfl_from_the_id_card_mrz(client, seeded):
    patient = seeded["patient_rows"][1]
    client.get("/ui/kiosk/identify")
    zone = garble(td1(document=patient["document"], pinfl=patient["pinfl"]))
    response = post(client, "/ui/kiosk/identify", {"mrz": zone})
    assert response.status_code == 302 and response.headers["Location"].endswith("/verify")
    with client.session_transaction() as session:
        assert patient["pinfl"] in session.values()


def test_kiosk_refuses_an_mrz_with_a_wrong_check_digit(client, seeded):
    client.get("/ui/kiosk/identify?lang=ru")
    zone = td3()
    broken = zone[:-1] + str((int(zone[-1]) + 1) % 10)
    response = post(client, "/ui/kiosk/identify", {"mrz": broken})
    assert response.status_code == 422
    expected = translated("ru", "The MRZ's overall check digit is wrong; scan the document"
                                " again")
    assert escaped(expected) in response.text


def test_a_renamed_patient_is_found_by_the_new_name(client, store, seeded, actor_for):
    from edge_node.services import patients

    patient = seeded["patient_rows"][2]
    patients.change_patient_field(store, actor_for("registrar"), patient["patient_id"],
                                  "full_name", "Xo'jayeva Malika")
    staff_sign_in(client, "registrar")
    page = client.get("/ui/desk/patients", query_string={"q": "хўжаева"}).text
    assert f"/ui/desk/patients/{patient['patient_id']}" in page
    old = client.get("/ui/desk/patients", query_string={"q": "ismoilov"}).text
    assert "data-no-results" in old
