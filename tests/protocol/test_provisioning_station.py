"""Issue 16 (c): the provisioning station: signed in, uz/ru/en, audited, approve / refuse /
revoke, and the node's side of enrolment over HTTP (Flask test client)."""

from __future__ import annotations

import html
import re
import time

import pytest
from babel.messages.pofile import read_po

from edge_node import enrolment
from provisioning import CaStore
from provisioning.enrolment_desk import EnrolmentDesk
from provisioning.facilities import add_facility
from provisioning.station import TRANSLATIONS, create_app
from provisioning.station_accounts import MAX_FAILURES, create_operator
from provisioning.station_messages import station_messages
from sync_protocol.certificates import NodeIdentity

PASSWORD = "correct horse battery"  # noqa: S105 (a test account)
PHARMACY = dict(code="TAS-APT-007", kind="pharmacy", region="TAS",
                names={"uz": "Qatortol dorixonasi", "ru": "Аптека Катартал",
                       "en": "Qatortol pharmacy"},
                address="Qatortol ko'ch. 3", district="Chilonzor")


@pytest.fixture
def station(tmp_path, monkeypatch):
    monkeypatch.delenv("DMED_CA_PASSPHRASE", raising=False)
    store = CaStore(tmp_path / "ca")
    store.init_root("Root")
    store.add_region("TAS", "Toshkent shahri")
    add_facility(store, **PHARMACY)
    create_operator(EnrolmentDesk(store), login="karimov", full_name="Karimov Aziz",
                    password=PASSWORD)
    app = create_app(store.directory, {"TESTING": True})
    return app


@pytest.fixture
def client(station):
    return station.test_client()


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def csrf(client, path="/sign-in"):
    page = text(client.get(path))
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client, password=PASSWORD):
    return client.post("/sign-in", data={"login": "karimov", "password": password,
                                         "csrf": csrf(client)})


def node_request(client, tmp_path, node_id="tas-apt-007-a"):
    pending = enrolment.start(tmp_path / node_id,
                              NodeIdentity(node_id, "TAS-APT-007", "TAS", "pharmacy"))
    response = client.post("/enrol/requests", json=pending.request)
    assert response.status_code == 202, response.get_json()
    return pending


def test_pages_need_sign_in_and_actions_need_it_too(client, tmp_path, station):
    assert client.get("/").status_code == 302
    pending = node_request(client, tmp_path)
    response = client.post(f"/requests/{pending.request_id}/approve",
                           data={"code": pending.code, "facility": "TAS-APT-007"})
    assert response.status_code == 302  # to the sign-in page; nothing issued
    assert station.extensions["dmed_station"].decision(pending.request_id).state == "pending"


def test_wrong_password_is_refused_audited_and_locks(client, station):
    for _ in range(MAX_FAILURES):
        response = sign_in(client, "wrong password")
        assert response.status_code == 403
        assert "Login yoki parol noto'g'ri." in text(response)
    locked = sign_in(client)  # the right password, but locked now
    assert locked.status_code == 403 and "daqiqadan" in text(locked)
    trail = station.extensions["dmed_station"].audit_trail()
    assert [a["outcome"] for a in trail if a["action"] == "sign_in"] == ["refused"] * (
        MAX_FAILURES + 1)


def test_operator_approves_with_the_code_and_the_node_fetches_its_answer(client, tmp_path,
                                                                         station):
    pending = node_request(client, tmp_path)
    assert sign_in(client).status_code == 302
    page = text(client.get("/"))
    assert pending.fingerprint in page and "tas-apt-007-a" in page
    assert "Kutilayotgan ro'yxatga olishlar" in page  # Uzbek first
    token = csrf(client, "/")
    wrong = client.post(f"/requests/{pending.request_id}/approve",
                        data={"code": "0000-0000", "facility": "TAS-APT-007", "csrf": token})
    assert wrong.status_code == 400
    assert "Kod tugunda ko'rsatilgan kodga mos kelmaydi." in text(wrong)
    assert client.get(f"/enrol/requests/{pending.request_id}").get_json()["state"] == "pending"
    ok = client.post(f"/requests/{pending.request_id}/approve?lang=ru",
                     data={"code": pending.code, "facility": "TAS-APT-007", "csrf": token})
    assert ok.status_code == 200 and "Подтверждено" in text(ok)
    state = client.get(f"/enrol/requests/{pending.request_id}").get_json()
    assert state["state"] == "approved"
    installed = enrolment.install_answer(tmp_path / "tas-apt-007-a", state["answer"])
    assert installed.identity.facility_code == "TAS-APT-007"
    trail = station.extensions["dmed_station"].audit_trail()
    assert {(a["action"], a["outcome"], a["actor"]) for a in trail} >= {
        ("approve", "refused", "karimov"), ("approve", "approved", "karimov"),
        ("receive", "pending", "node"), ("sign_in", "done", "karimov")}


def test_forms_without_the_csrf_token_change_nothing(client, tmp_path, station):
    pending = node_request(client, tmp_path)
    sign_in(client)
    response = client.post(f"/requests/{pending.request_id}/approve",
                           data={"code": pending.code, "facility": "TAS-APT-007"})
    assert response.status_code == 400
    assert station.extensions["dmed_station"].decision(pending.request_id).state == "pending"


def test_refuse_and_revoke_need_a_reason_and_revoke_reaches_the_trust_list(client, tmp_path,
                                                                          station):
    first = node_request(client, tmp_path)
    second = node_request(client, tmp_path, "tas-apt-007-b")
    sign_in(client)
    token = csrf(client, "/")
    client.post(f"/requests/{first.request_id}/approve",
                data={"code": first.code, "facility": "TAS-APT-007", "csrf": token})
    assert client.post(f"/requests/{second.request_id}/refuse",
                       data={"reason": " ", "csrf": token}).status_code == 400
    refused = client.post(f"/requests/{second.request_id}/refuse?lang=en",
                          data={"reason": "not ours", "csrf": token})
    assert refused.status_code == 200 and "Request refused." in text(refused)
    assert client.post("/nodes/tas-apt-007-a/revoke",
                       data={"reason": "", "csrf": token}).status_code == 400
    revoked = client.post("/nodes/tas-apt-007-a/revoke?lang=en",
                          data={"reason": "stolen", "csrf": token})
    assert revoked.status_code == 200
    trust = client.get("/trust-list.json").get_json()
    assert [r["reason"] for r in trust["revocations"]] == ["stolen"]
    assert "stolen" in text(client.get("/"))
    trail = station.extensions["dmed_station"].audit_trail()
    assert ("revoke", "tas-apt-007-a", "done", "stolen") in {
        (a["action"], a["target"], a["outcome"], a["detail"]) for a in trail}
    assert ("refuse", "refused", "not ours") in {
        (a["action"], a["outcome"], a["detail"]) for a in trail}


def test_node_request_errors_are_clear_json(client):
    response = client.post("/enrol/requests", json={"format": "something else"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "enrolment_request_invalid"
    assert client.get("/enrol/requests/01HZZZZZZZZZZZZZZZZZZZZZZZ").status_code == 404


@pytest.mark.parametrize("locale", ["uz", "ru"])
def test_every_station_message_is_translated(locale):
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    missing = [m for m in station_messages() if not (catalog.get(m) and catalog.get(m).string)]
    assert missing == []
    for message in catalog:
        if message.id:
            assert sorted(re.findall(r"%\(\w+\)s", message.id)) == sorted(
                re.findall(r"%\(\w+\)s", message.string)), message.id


def test_station_lists_a_node_waiting_for_enrolment_found_on_the_lan(tmp_path, station):
    from edge_node.announce import announcement_for
    from sync_protocol.lan_discovery import Announcer, NodeBrowser, new_zeroconf
    pending = enrolment.start(tmp_path / "new", NodeIdentity("tas-apt-007-a", "TAS-APT-007",
                                                             "TAS", "pharmacy"))
    node_zc, station_zc = new_zeroconf(["127.0.0.1"]), new_zeroconf(["127.0.0.1"])
    announcer = Announcer(node_zc, announcement_for(tmp_path / "new", None, ["127.0.0.1"], 8080))
    announcer.start()
    browser = NodeBrowser(station_zc)
    try:
        station.config["LAN_NODES"] = browser.announcements
        client = station.test_client()
        sign_in(client)
        for _ in range(80):
            if browser.announcements():
                break
            time.sleep(0.1)
        page = text(client.get("/?lang=en"))
    finally:
        browser.close()
        announcer.stop()
        node_zc.close()
        station_zc.close()
    lan = page.split('id="lan"')[1]
    assert "not enrolled" in lan and "127.0.0.1:8080" in lan
    assert pending.fingerprint.replace(" ", "") in lan
