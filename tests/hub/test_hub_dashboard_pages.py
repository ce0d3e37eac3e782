"""The hub dashboard pages for central staff (central_hub.web.dashboard_pages): staff sign-in,
every node's sync state, and conflict review through the browser, in Uzbek, Russian and
English. A real over-dispensing conflict is raised by signed pushes of simulated nodes."""

import ast
import inspect
import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.pofile import read_po
from helpers.hub import SimNode
from helpers.hub_app import PASSWORD, csrf_of, sign_in

from central_hub import conflict_review, staff
from central_hub.composition import open_storage
from central_hub.conflict_review import get_conflict
from central_hub.web import dashboard_pages, i18n
from central_hub.web.app import create_app
from sync_protocol.identifiers import new_ulid

WHO = "Karimova Nilufar (karimova)"
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


@pytest.fixture
def app(make_hub, clock, central_staff):
    return make_hub(clock=clock)


@pytest.fixture
def conflict_id(app, world, storage):
    """One over-dispensing conflict: a pharmacy dispensed a 20-capsule prescription twice."""
    clinic = SimNode(world.pki.clinic, app.test_client())
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    clinic.register_facility()
    pharmacy.register_facility()
    doctor = clinic.register_practitioner()
    rx = clinic.prescribe(clinic.register_patient(), doctor)
    pharmacy.dispense(rx)
    pharmacy.dispense(rx)
    assert clinic.push().status_code == 200
    assert pharmacy.push().status_code == 200
    [item] = conflict_review.list_conflicts(storage)
    assert item["kind"] == "over_dispensing" and item["state"] == "open"
    return item["conflict_id"]


@pytest.fixture
def client(app):
    client = app.test_client()
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    return client


def page(response) -> str:
    return response.get_data(as_text=True)


def review_events(storage):
    with storage.reader() as tx:
        rows = tx.query("SELECT payload FROM events WHERE type = 'ConflictStateChanged' "
                        "ORDER BY position")
    return [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
            for r in rows]


# -- sign-in ------------------------------------------------------------------------------

def test_signed_in_staff_see_their_name_and_a_sign_out_button(client, conflict_id):
    body = page(client.get("/dashboard?lang=en"))
    assert WHO in body and 'action="/staff/sign-out' in body
    # pages other than the staff pages keep their layout without it
    other = page(client.get("/reconciliation?lang=en"))
    assert "Paper reconciliation" in other and "Sign out" not in other and WHO not in other


def test_a_wrong_password_is_refused_with_a_translated_error(app):
    client = app.test_client()
    client.get("/staff/sign-in?lang=uz")
    response = sign_in(client, "wrong password!")
    assert response.status_code == 401
    assert "Login yoki parol noto‘g‘ri" in page(response)
    assert PASSWORD not in page(response)
    assert client.get("/dashboard").status_code == 302


def test_the_fifth_wrong_password_locks_the_login_and_a_sign_in_resets_the_count(app,
                                                                                 storage):
    client = app.test_client()
    for _ in range(staff.MAX_FAILURES - 1):
        assert sign_in(client, "wrong password!").status_code == 401
    assert sign_in(client).status_code == 303  # resets the count
    for _ in range(staff.MAX_FAILURES - 1):
        assert sign_in(client, "wrong password!").status_code == 401
    locked = sign_in(client, "wrong password!", lang="en")
    assert locked.status_code == 429
    assert "Too many wrong passwords; this login is locked for 15 minutes" in page(locked)
    client.post("/staff/sign-out", data={"csrf": csrf_of(client)})
    assert sign_in(client).status_code == 429  # the right password too, while locked
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("token", [None, "", "forged-token", "токен"])
def test_a_sign_in_without_the_csrf_token_is_refused(app, token):
    client = app.test_client()
    client.get("/staff/sign-in")
    form = {"login": "karimova", "password": PASSWORD}
    if token is not None:
        form["csrf"] = token
    response = client.post("/staff/sign-in?lang=en", data=form)
    assert response.status_code == 400
    assert "The form expired; reload the page and send it again" in page(response)
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize(("target", "expected"), [
    ("/dashboard/conflicts?state=open", "/dashboard/conflicts?state=open"),
    ("https://evil.example/dashboard", "/dashboard"), ("//evil.example", "/dashboard"),
    ("/dashboard//evil.example", "/dashboard"), ("/dashboardx", "/dashboard"),
    ("/dashboard/../staff", "/dashboard"), ("javascript:alert(1)", "/dashboard"),
    ("/staff/sign-out", "/dashboard"), ("/dashboard\\@evil.example", "/dashboard")])
def test_after_sign_in_only_local_dashboard_pages_are_next(app, target, expected):
    response = sign_in(app.test_client(), next=target)
    assert response.status_code == 303 and response.headers["Location"] == expected


def test_not_signed_in_pages_redirect_and_forms_are_forbidden(app, storage, conflict_id):
    client = app.test_client()
    for path in ("/dashboard", "/dashboard/conflicts?state=open&kind=over_dispensing",
                 f"/dashboard/conflicts/{conflict_id}"):
        response = client.get(path)
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert location.path == "/staff/sign-in"
        assert parse_qs(location.query)["next"] == [path]
    csrf = csrf_of(client)
    refused = client.post(f"/dashboard/conflicts/{conflict_id}/resolve?lang=ru",
                          data={"csrf": csrf, "note": "done"})
    assert refused.status_code == 403
    assert "Войдите, чтобы пользоваться этой страницей" in page(refused)
    assert get_conflict(storage, conflict_id)["state"] == "open"
    assert review_events(storage) == []
    # where the sign-in then leads
    follow = sign_in(client, next="/dashboard/conflicts?state=open&kind=over_dispensing")
    assert follow.headers["Location"] == "/dashboard/conflicts?state=open&kind=over_dispensing"


def test_signing_out_ends_the_session(client):
    assert client.get("/dashboard").status_code == 200
    assert client.post("/staff/sign-out", data={"csrf": "forged"}).status_code == 400
    assert client.get("/dashboard").status_code == 200
    response = client.post("/staff/sign-out", data={"csrf": csrf_of(client)})
    assert response.status_code == 303
    assert "/staff/sign-in" in response.headers["Location"]
    assert client.get("/dashboard").status_code == 302
    assert "You have signed out" in page(client.get("/staff/sign-in?signed_out=1&lang=en"))


def test_a_session_ends_eight_hours_after_sign_in(client, clock, conflict_id, storage):
    clock.now += dashboard_pages.SESSION_LIFETIME - timedelta(seconds=1)
    assert client.get("/dashboard").status_code == 200
    clock.now += timedelta(seconds=1)
    response = client.get("/dashboard")
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["expired"] == ["1"]
    refused = client.post(f"/dashboard/conflicts/{conflict_id}/acknowledge",
                          data={"csrf": csrf_of(client), "note": "late"})
    assert refused.status_code == 403
    assert get_conflict(storage, conflict_id)["state"] == "open"
    assert sign_in(client).status_code == 303  # a new sign-in starts a new session
    assert client.get("/dashboard").status_code == 200


def test_a_disabled_account_loses_its_session(client, storage):
    with storage.transaction(exclusive=False) as tx:
        tx.execute("UPDATE hub_staff SET disabled = 1 WHERE login = 'karimova'")
    assert client.get("/dashboard").status_code == 302


def test_a_new_password_ends_open_sessions(client, app, storage):
    other = app.test_client()  # the same account, signed in on another desk
    assert sign_in(other).status_code == 303
    staff.set_password(storage, "karimova", "a brand new passphrase")
    assert client.get("/dashboard").status_code == 302
    assert other.get("/dashboard").status_code == 302
    assert sign_in(client).status_code == 401  # the old password no longer works
    assert sign_in(client, password="a brand new passphrase").status_code == 303
    assert client.get("/dashboard").status_code == 200


def test_a_disabled_then_enabled_account_signs_in_anew(client, storage):
    staff.set_disabled(storage, "karimova", True)
    staff.set_disabled(storage, "karimova", False)
    assert client.get("/dashboard").status_code == 302  # the old session stays ended
    assert sign_in(client).status_code == 303
    assert client.get("/dashboard").status_code == 200


def test_a_session_is_valid_on_every_hub_worker(client, storage_url):
    """Another worker process has its own app and connections but the same database."""
    with open_storage(storage_url) as other_storage:
        other = create_app({"TESTING": True}, storage=other_storage).test_client()
        session_cookie = client.get_cookie(dashboard_pages.SESSION_COOKIE)
        assert other.get("/dashboard").status_code == 302
        other.set_cookie(dashboard_pages.SESSION_COOKIE, session_cookie.value)
        assert WHO in page(other.get("/dashboard"))


def test_other_requests_get_no_session(app, storage):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    with storage.reader() as tx:  # nor is a secret made for them
        assert tx.one("SELECT 1 AS x FROM hub_state WHERE key = ?",
                      (staff.SECRET_KEY,)) is None


@pytest.mark.parametrize("secure", [False, True])
def test_cookies_and_headers_of_the_pages(storage, world, secure):
    app = create_app({"TESTING": True, "SECURE_COOKIES": secure}, storage=storage)
    staff.create_staff(storage, login="karimova", full_name="Karimova Nilufar",
                       role="central", password=PASSWORD)
    client = app.test_client()
    form = client.get("/staff/sign-in")
    signed_in = sign_in(client)
    cookies = {c.split("=", 1)[0]: c for c in form.headers.getlist("Set-Cookie") +
               signed_in.headers.getlist("Set-Cookie")}
    for name in (dashboard_pages.SESSION_COOKIE, dashboard_pages.CSRF_COOKIE):
        assert "HttpOnly" in cookies[name] and "SameSite=Strict" in cookies[name]
        assert ("Secure" in cookies[name]) is secure
    for response in (form, signed_in, client.get("/dashboard"),
                     client.get("/dashboard/conflicts")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Security-Policy"] == CSP


# -- the pages ------------------------------------------------------------------------------

PAGES = {  # a string of each page, per language
    "/dashboard": {"uz": "Markaz paneli", "ru": "Панель центра", "en": "Hub dashboard"},
    "/dashboard/conflicts": {"uz": "Ortiqcha berilgan dori", "ru": "Отпуск сверх назначенного",
                             "en": "Over-dispensing"},
    "/dashboard/conflicts/{id}": {"uz": "Ishtirok etgan hodisalar",
                                  "ru": "Затронутые события", "en": "Events involved"},
}


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
def test_every_page_renders_in_each_language(app, client, conflict_id, lang):
    for path, expected in PAGES.items():
        response = client.get(f"{path.format(id=conflict_id)}?lang={lang}")
        assert response.status_code == 200, path
        body = page(response)
        assert f'<html lang="{lang}">' in body and expected[lang] in body, path
        # the language links stay on this page
        assert f"{path.format(id=conflict_id)}?lang=ru" in body, path
    signed_out = app.test_client().get(f"/staff/sign-in?lang={lang}")
    assert {"uz": "Xodimlar uchun kirish", "ru": "Вход для сотрудников",
            "en": "Staff sign-in"}[lang] in page(signed_out)


def test_the_dashboard_shows_each_node_and_what_waits_for_review(app, client, world, storage,
                                                               conflict_id):
    body = page(client.get("/dashboard?lang=en"))
    for cred in (world.pki.clinic, world.pki.pharmacy):
        row = re.search(rf'<tr class="(\w+)" id="node-{cred.identity.node_id}">(.*?)</tr>',
                        body, re.S)
        assert row is not None
        assert row.group(1) == "bad"  # pushed but never pulled: never fully synced
        assert "Never fully synced" in row.group(2)
        assert cred.identity.facility_code in row.group(2)
    assert re.search(r'id="kind-over_dispensing">.*?<td class="n">1</td>', body, re.S)
    assert re.search(r'id="open-conflicts"[^>]*>1<', body)
    assert re.search(r'id="quarantined">0<', body)

    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    pharmacy.sync_down()  # now it is in sync: no longer highlighted
    pattern = rf'<tr class="(\w+)" id="node-{pharmacy.node_id}">(.*?)</tr>'
    row = re.search(pattern, page(client.get("/dashboard?lang=en")), re.S)
    assert row.group(1) == "ok" and "Never fully synced" not in row.group(2)
    stray = pharmacy.emit("FacilityRegistered", {
        "facility_id": new_ulid(), "code": pharmacy.identity.facility_code, "name": "Stray",
        "kind": "pharmacy", "region": "TAS"}, seq=99)
    pharmacy.push([stray])  # a gap in its chain: refused, kept in quarantine, an error
    body = page(client.get("/dashboard?lang=en"))
    row = re.search(pattern, body, re.S)
    assert row.group(1) == "bad" and "seq_gap" in row.group(2)
    assert re.search(r'id="quarantined">1<', body)


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
def test_a_review_through_the_page_records_the_signed_in_staff_and_why(client, storage,
                                                                       conflict_id, lang):
    url = f"/dashboard/conflicts/{conflict_id}"
    response = client.post(f"{url}/acknowledge?lang={lang}", data={
        "csrf": csrf_of(client), "note": "Calling both pharmacies", "by": "Mallory"})
    assert response.status_code == 303
    shown = page(client.get(response.headers["Location"]))
    assert {"uz": "Ziddiyat ko‘rib chiqishga qabul qilindi",
            "ru": "Конфликт принят к рассмотрению", "en": "Conflict acknowledged"}[lang] in shown
    assert WHO in shown and "Calling both pharmacies" in shown and "Mallory" not in shown
    done = client.post(f"{url}/resolve", data={"csrf": csrf_of(client),
                                               "note": "Patient returned 20"})
    assert done.status_code == 303
    conflict = get_conflict(storage, conflict_id)
    assert conflict["state"] == "resolved"
    assert [(r["state"], r["by"], r["note"]) for r in conflict["reviews"]] == [
        ("acknowledged", WHO, "Calling both pharmacies"),
        ("resolved", WHO, "Patient returned 20")]
    assert review_events(storage) == [
        {"conflict_id": conflict_id, "state": "acknowledged", "by": WHO,
         "note": "Calling both pharmacies"},
        {"conflict_id": conflict_id, "state": "resolved", "by": WHO,
         "note": "Patient returned 20"}]
    resolved = page(client.get(f"{url}?lang=en"))
    assert 'name="note"' not in resolved  # resolved is final: no more review forms


def test_the_conflict_page_shows_every_event_involved_with_its_role(client, conflict_id,
                                                                    storage):
    body = page(client.get(f"/dashboard/conflicts/{conflict_id}?lang=en"))
    for event in get_conflict(storage, conflict_id)["events"]:
        row = re.search(rf'id="event-{event["id"]}">\s*<td class="role">([^<]+)</td>\s*'
                        rf'<td>{event["type"]}</td>', body)
        assert row is not None
        assert row.group(1) == {"key": "key event", "related": "related event"}[event["role"]]
    assert "Not reviewed yet" in body


@pytest.mark.parametrize(("action", "note", "status", "message"), [
    ("acknowledge", "", 400, "Нужно примечание с объяснением (от 1 до 4000 символов)"),
    ("resolve", "   ", 400, "Нужно примечание с объяснением (от 1 до 4000 символов)"),
    ("resolve", "x" * 4001, 400, "Нужно примечание с объяснением (от 1 до 4000 символов)"),
    ("acknowledge", "again", 409,
     "уже в состоянии «принято к рассмотрению»; он не может перейти в состояние "
     "«принято к рассмотрению»")])
def test_a_bad_review_shows_the_page_again_and_changes_nothing(client, storage, conflict_id,
                                                                action, note, status, message):
    url = f"/dashboard/conflicts/{conflict_id}"
    if status == 409:
        assert client.post(f"{url}/acknowledge", data={
            "csrf": csrf_of(client), "note": "first"}).status_code == 303
    before = (get_conflict(storage, conflict_id), review_events(storage))
    response = client.post(f"{url}/{action}?lang=ru", data={"csrf": csrf_of(client),
                                                            "note": note})
    assert response.status_code == status
    assert message in page(response)
    assert (get_conflict(storage, conflict_id), review_events(storage)) == before


def test_a_review_of_an_unknown_conflict_or_without_the_token_changes_nothing(client, storage,
                                                                             conflict_id):
    unknown = new_ulid()
    response = client.post(f"/dashboard/conflicts/{unknown}/resolve?lang=uz",
                           data={"csrf": csrf_of(client), "note": "done"})
    assert response.status_code == 404
    assert f"{unknown} ziddiyati topilmadi" in page(response)
    assert client.get(f"/dashboard/conflicts/{unknown}").status_code == 404
    forged = client.post(f"/dashboard/conflicts/{conflict_id}/resolve?lang=en",
                         data={"csrf": "forged", "note": "done"})
    assert forged.status_code == 400
    assert "The form expired" in page(forged)
    assert get_conflict(storage, conflict_id)["state"] == "open"
    assert review_events(storage) == []


@pytest.mark.parametrize(("query", "count"), [
    ("", 1), ("state=open", 1), ("state=resolved", 0), ("kind=over_dispensing", 1),
    ("state=open&kind=double_booking", 0)])
def test_conflicts_are_filtered(client, conflict_id, query, count):
    body = page(client.get(f"/dashboard/conflicts?{query}&lang=en"))
    assert len(re.findall(r'id="conflict-\w+"', body)) == count
    assert (f'id="conflict-{conflict_id}"' in body) is bool(count)


@pytest.mark.parametrize(("query", "message"), [
    ("state=closed", "Holat quyidagilardan biri bo‘lishi kerak"),
    ("kind=stolen", "Turi quyidagilardan biri bo‘lishi kerak")])
def test_a_bad_filter_gets_a_translated_error(client, conflict_id, query, message):
    response = client.get(f"/dashboard/conflicts?{query}&lang=uz")
    assert response.status_code == 400
    body = page(response)
    assert message in body and 'id="conflict-' not in body


# -- every string of these pages is translated ------------------------------------------

ERRORS = {"HubError", "ConflictNotFound", "ConflictStateError", "SignInFailed", "LoginLocked"}


def dashboard_msgids() -> set[str]:
    """Template strings of the staff pages and layout, codes, sentences and the errors the
    pages show (sign-in and conflict review)."""
    found = set(dashboard_pages.NAMES.values()) | set(dashboard_pages.TEXT.values())
    templates = Path(dashboard_pages.__file__).parent / "templates"
    for template in [templates / "hub_layout.html", *templates.joinpath("dashboard").glob("*")]:
        found |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    shown = (staff.authenticate, staff._locked_error, conflict_review.change_state,
             conflict_review.list_conflicts, conflict_review.get_conflict)
    for tree in (ast.parse(inspect.getsource(f)) for f in shown):
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ERRORS
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("locale", ["uz", "ru"])
def test_every_string_of_the_dashboard_pages_is_translated(locale):
    path = i18n.TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle) if m.id}
    wanted = dashboard_msgids()
    assert len(wanted) > 70
    assert {"Wrong login or password", "No conflict %(id)s", "Sign out"} <= wanted
    assert sorted(m for m in wanted if not catalog.get(m)) == []
    for msgid in wanted:
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(
            re.findall(r"%\(\w+\)s", catalog[msgid])), msgid


def test_refused_sync_requests_are_shown_apart_from_the_nodes(app, client):
    junk = {"X-DMED-Node": "tas-clinic-0001", "X-DMED-Time": "1", "X-DMED-Nonce": "n" * 22,
            "X-DMED-Certificate": "MIIB", "X-DMED-Signature": "AAAA"}
    app.test_client().get("/sync/v1/pull?after=0", headers=junk,
                          environ_base={"REMOTE_ADDR": "10.0.0.66"})
    body = page(client.get("/dashboard?lang=uz"))
    table = body[body.index('id="refused-requests"'):]
    assert "tas-clinic-0001" in table and "10.0.0.66" in table and "malformed_auth" in table
    assert "Rad etilgan sinxronlash so‘rovlari" in body
