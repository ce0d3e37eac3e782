"""Call-centre (1003) requests on the screens: the doctor's list with its count in the
navigation, approving by writing the prescription on the prescribing screen, declining with a
required note, who may do it; and the pharmacy's pickup by document (or PINFL) and the code
from the SMS, which opens the verdict and the dispense form as a scan does."""

from __future__ import annotations

import re

import pytest
from helpers.node import AMOXICILLIN, RemoteNode, receive
from helpers.ui import (
    STAFF,
    escaped,
    event_count,
    post,
    staff_sign_in,
    text_of,
    translated,
)

from edge_node.services import remote_requests
from sync_protocol.identifiers import new_ulid

pytestmark = pytest.mark.usefixtures("catalogues")

REQUEST_TEXT = "Qon bosimi dorisi tugadi, bemor yotoqda"
PACK = {"product": "Amoksil", "batch": "B2311", "expiry": "2031-01-31"}


@pytest.fixture
def hub():
    return RemoteNode("hub:central")


def ask(store, seeded, hub, patient: int = 0, **extra) -> str:
    """A call-centre request as the hub sends it to this clinic by sync."""
    event = hub.event("RemotePrescriptionRequested", {
        "request_id": new_ulid(), "patient_id": seeded["patient_rows"][patient]["patient_id"],
        "facility_id": seeded["facility_id"], "requested_by": "Operator 1003-17",
        "request_text": REQUEST_TEXT, **extra})
    assert receive(store, [event]) == ["applied"]
    return event.payload["request_id"]


@pytest.fixture
def request_id(store, seeded, hub):
    return ask(store, seeded, hub, phone="+998901112233")


def rx_form(note: str = "", **item) -> dict:
    row = {**AMOXICILLIN, **item}
    return {"rows": "1", "action": "sign", "note": note,
            **{f"{name}_0": str(row.get(name, "")) for name in (
                "inn", "form", "strength", "quantity", "dosage", "repeats",
                "min_days_between_fills")}}


def status_of(store, request_id: str) -> dict:
    return dict(store.one("SELECT status, note, prescription_id FROM remote_requests WHERE"
                          " request_id = ?", (request_id,)))


def nav_count(html: str, name: str) -> int | None:
    match = re.search(rf'data-count="{name}">(\d+)<', html)
    return int(match.group(1)) if match else None


# -- who may use these screens ----------------------------------------------------------------

DOCTOR_ROUTES = [("GET", "/ui/desk/requests/"), ("GET", "/ui/desk/requests/?status=all"),
                 ("GET", "/ui/desk/requests/{id}"), ("POST", "/ui/desk/requests/{id}/decline"),
                 ("GET", "/ui/desk/requests/{id}/prescribe"),
                 ("POST", "/ui/desk/requests/{id}/prescribe")]
COUNTER_ROUTES = [("GET", "/ui/counter/pickup"), ("POST", "/ui/counter/pickup")]


@pytest.mark.parametrize("who", ("anonymous", *STAFF))
def test_every_route_for_each_role(client, store, request_id, who):
    if who != "anonymous":
        staff_sign_in(client, who)
    for routes, allowed in ((DOCTOR_ROUTES, "doctor"), (COUNTER_ROUTES, "pharmacist")):
        for method, url in routes:
            url = url.format(id=request_id)
            response = client.get(url) if method == "GET" else post(client, url, {})
            where = f"{who}: {method} {url}"
            location = response.headers.get("Location", "")
            if who == "anonymous":
                assert response.status_code == 302 and "/ui/desk/sign-in" in location, where
            elif who == allowed:
                assert response.status_code in (200, 302, 404, 409, 422), (
                    where, response.status_code)
                assert "/sign-in" not in location, where
                assert response.headers["Cache-Control"] == "no-store", where
            else:
                assert response.status_code == 403, (where, response.status_code)
    assert status_of(store, request_id)["status"] == "requested"


@pytest.mark.parametrize("url", ["/ui/desk/requests/{id}/decline",
                                 "/ui/desk/requests/{id}/prescribe",
                                 "/ui/counter/pickup"])
def test_forms_without_the_csrf_token_are_refused(client, store, request_id, url):
    staff_sign_in(client, "pharmacist" if "counter" in url else "doctor")
    before = event_count(store)
    response = client.post(url.format(id=request_id), data={"note": "x", "action": "sign"})
    assert response.status_code == 400
    assert event_count(store) == before


# -- the doctor --------------------------------------------------------------------------------

def test_the_list_shows_who_what_and_when_and_the_navigation_counts_it(client, store, seeded,
                                                                        hub, request_id):
    ask(store, seeded, hub, patient=1)
    staff_sign_in(client, "doctor")
    page = client.get("/ui/desk/requests/")
    assert page.status_code == 200
    assert nav_count(page.text, "requests") == 2
    rows = re.findall(r'data-request="(\w+)"', page.text)
    assert request_id in rows and len(rows) == 2
    text = text_of(page.text)
    assert seeded["patient_rows"][0]["full_name"] in text
    assert REQUEST_TEXT in text and "Operator 1003-17" in text
    # Every desk page carries the count; a registrar (no prescribing) has no such link.
    assert nav_count(client.get("/ui/desk/patients").text, "requests") == 2
    client.post("/ui/desk/sign-out", data={})
    staff_sign_in(client, "registrar")
    assert 'data-nav="requests"' not in client.get("/ui/desk/patients").text


def test_approving_through_the_screen_issues_the_prescription_and_records_the_decision(
        client, store, seeded, request_id):
    staff_sign_in(client, "doctor")
    page = client.get(f"/ui/desk/requests/{request_id}")
    assert f'href="/ui/desk/requests/{request_id}/prescribe"' in page.text
    form = client.get(f"/ui/desk/requests/{request_id}/prescribe")
    assert form.status_code == 200
    assert f'data-remote-request="{request_id}"' in form.text and REQUEST_TEXT in form.text
    assert "data-drug-suggest" in form.text  # the same prescribing form, INN autocomplete
    # Picking the drug on the way works as on the ordinary screen (no decision yet).
    found = post(client, f"/ui/desk/requests/{request_id}/prescribe",
                 {"rows": "1", "find": "0", "inn_0": "amoxi"})
    assert found.status_code == 200 and 'value="0:amoxicillin"' in found.text
    assert status_of(store, request_id)["status"] == "requested"
    signed = post(client, f"/ui/desk/requests/{request_id}/prescribe", rx_form(note="7 kun"))
    assert signed.status_code == 302, signed.text
    decided = status_of(store, request_id)
    assert (decided["status"], decided["note"]) == ("approved", "7 kun")
    issued, decision = store.events()[-2:]
    assert (issued.type, decision.type) == ("PrescriptionIssued", "RemotePrescriptionDecided")
    assert issued.payload["remote_request_id"] == request_id
    assert issued.payload["prescription_id"] == decided["prescription_id"]
    assert decision.payload["decision"] == "approved"
    assert signed.headers["Location"].endswith(
        f"/ui/desk/prescriptions/{decided['prescription_id']}")
    shown = client.get(signed.headers["Location"])
    assert issued.payload["number"] in shown.text
    # No longer waiting: the count is gone, the approved filter lists it, signing again fails.
    assert nav_count(shown.text, "requests") is None
    assert request_id not in client.get("/ui/desk/requests/").text
    assert request_id in client.get("/ui/desk/requests/?status=approved").text
    again = client.get(f"/ui/desk/requests/{request_id}/prescribe")
    assert again.status_code == 302
    before = event_count(store)
    twice = post(client, f"/ui/desk/requests/{request_id}/prescribe", rx_form())
    assert twice.status_code == 302 and event_count(store) == before


@pytest.mark.parametrize(("lang", "change", "msgid"), [
    ("ru", {"quantity": "0"}, "The quantity must be at least 1"),
    ("uz", {"quantity": "many"}, "The quantity must be a whole number"),
    ("uz", {"inn": "morphine", "form": "injection", "strength": "10 mg/ml"}, None),
    ("en", {"inn": "nosuchdrug"}, None),
])
def test_approval_form_errors_are_translated_and_change_nothing(client, store, request_id,
                                                                lang, change, msgid):
    staff_sign_in(client, "doctor")
    before = event_count(store)
    response = post(client, f"/ui/desk/requests/{request_id}/prescribe?lang={lang}",
                    rx_form(note="x", **change))
    assert response.status_code in (409, 422), response.status_code
    assert "data-row-error" in response.text or "data-error" in response.text
    if msgid:
        assert escaped(translated(lang, msgid)) in response.text
    assert f'data-remote-request="{request_id}"' in response.text  # still the request's form
    assert event_count(store) == before
    assert status_of(store, request_id)["status"] == "requested"


@pytest.mark.parametrize("lang", ("uz", "ru", "en"))
def test_declining_needs_a_note_then_records_it(client, store, request_id, lang):
    staff_sign_in(client, "doctor")
    before = event_count(store)
    for empty in ("", "   "):
        refused = post(client, f"/ui/desk/requests/{request_id}/decline?lang={lang}",
                       {"note": empty})
        assert refused.status_code == 422
        assert escaped(translated(
            lang, "Say why the request is declined: the patient is told")) in refused.text
        assert 'aria-invalid="true"' in refused.text
    assert event_count(store) == before and status_of(store, request_id)["status"] == "requested"
    done = post(client, f"/ui/desk/requests/{request_id}/decline", {"note": "Avval ko'rik"})
    assert done.status_code == 302
    assert status_of(store, request_id) == {"status": "declined", "note": "Avval ko'rik",
                                            "prescription_id": None}
    assert store.events()[-1].payload["decision"] == "declined"
    listed = client.get("/ui/desk/requests/?status=declined")
    assert request_id in listed.text and "Avval ko'rik" in text_of(
        client.get(f"/ui/desk/requests/{request_id}").text)
    assert request_id not in client.get("/ui/desk/requests/?status=approved").text
    # Decided: no decline form any more, and a second decline is refused with no change.
    assert "data-decline" not in client.get(f"/ui/desk/requests/{request_id}").text
    before = event_count(store)
    again = post(client, f"/ui/desk/requests/{request_id}/decline?lang={lang}", {"note": "x"})
    assert again.status_code == 409
    assert escaped(translated(lang, "This request has already been decided")) in again.text
    assert event_count(store) == before


def test_marking_chronic_while_answering_returns_to_the_request(client, store, seeded,
                                                               request_id):
    staff_sign_in(client, "doctor")
    patient_id = seeded["patient_rows"][0]["patient_id"]
    form = client.get(f"/ui/desk/requests/{request_id}/prescribe").text
    assert f'name="request_id" value="{request_id}"' in form
    before = event_count(store)
    refused = post(client, f"/ui/desk/patients/{patient_id}/chronic",
                   {"code": "ZZZ", "request_id": request_id})
    assert refused.status_code in (404, 422) and "data-error" in refused.text
    assert f'data-remote-request="{request_id}"' in refused.text
    assert event_count(store) == before
    marked = post(client, f"/ui/desk/patients/{patient_id}/chronic",
                  {"code": "I10", "request_id": request_id})
    assert marked.headers["Location"].endswith(f"/ui/desk/requests/{request_id}/prescribe")
    assert status_of(store, request_id)["status"] == "requested"


def test_an_unknown_request_is_a_clear_404(client, seeded):
    staff_sign_in(client, "doctor")
    response = client.get("/ui/desk/requests/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert response.status_code == 404 and "Traceback" not in response.text


# -- the pharmacy counter ----------------------------------------------------------------------

@pytest.fixture
def approved(store, seeded, request_id, actor_for, clinic_credentials):
    result = remote_requests.approve(store, actor_for("doctor"), clinic_credentials,
                                     request_id, items=[AMOXICILLIN])
    patient = seeded["patient_rows"][0]
    return {**result, "document": patient["document"], "pinfl": patient["pinfl"]}


@pytest.mark.parametrize("by", ("document", "pinfl"))
def test_pickup_by_identity_and_code_opens_the_verdict_and_dispenses(client, store, approved,
                                                                     by):
    staff_sign_in(client, "pharmacist")
    assert client.get("/ui/counter/").text.count('href="/ui/counter/pickup"') == 1
    found = post(client, "/ui/counter/pickup", {"identity": approved[by],
                                                "code": approved["pickup_code"]})
    assert found.status_code == 302 and found.headers["Location"].endswith("/ui/counter/#verdict")
    page = client.get("/ui/counter/")
    assert 'data-verdict="valid"' in page.text
    assert approved["number"] in page.text and approved["pinfl"] in page.text
    assert 'data-dispense="1"' in page.text  # the counter's own dispense form
    done = post(client, "/ui/counter/dispense", {
        "prescription_id": approved["prescription_id"], "item_no": "1", "remaining": "20",
        "quantity": "20", **PACK})
    assert done.status_code == 302
    assert store.events()[-1].type == "MedicationDispensed"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.mark.parametrize("lang", ("uz", "ru", "en"))
@pytest.mark.parametrize(("case", "msgid", "status"), [
    ("wrong_code", "No active prescription matches this document and pickup code", 404),
    ("wrong_document", "No active prescription matches this document and pickup code", 404),
    ("short_code", "The pickup code has %(digits)s digits", 422),
    ("no_identity", "Give the patient's identity document or PINFL", 422),
])
def test_pickup_errors_are_clear_and_open_nothing(client, store, approved, lang, case, msgid,
                                                  status):
    staff_sign_in(client, "pharmacist")
    form = {"identity": approved["document"], "code": approved["pickup_code"]}
    form.update({"wrong_code": {"code": wrong(approved["pickup_code"])},
                 "wrong_document": {"identity": "AB9999999"},
                 "short_code": {"code": "12345"},
                 "no_identity": {"identity": " "}}[case])
    before = event_count(store)
    response = post(client, f"/ui/counter/pickup?lang={lang}", form)
    assert response.status_code == status
    params = {"digits": 6} if "%(digits)s" in msgid else {}
    assert translated(lang, msgid, **params) in text_of(response.text)
    assert 'aria-invalid="true"' in response.text
    assert "data-verdict" not in client.get("/ui/counter/").text  # nothing opened
    assert event_count(store) == before


def test_a_declined_request_has_nothing_to_pick_up(client, store, request_id, actor_for):
    remote_requests.decline(store, actor_for("doctor"), request_id, note="band")
    staff_sign_in(client, "pharmacist")
    response = post(client, "/ui/counter/pickup", {"identity": "AA1234567", "code": "123456"})
    assert response.status_code == 404
