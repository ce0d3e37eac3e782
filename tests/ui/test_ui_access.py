"""Screens: every route for every role, CSRF on every form, and the security headers."""

from __future__ import annotations

import re

import pytest
from helpers.ui import escaped, event_count, kiosk_sign_in, post, staff_sign_in, translated

from edge_node.services import appointments
from edge_node.services.access import PERMISSIONS
from kiosk_ui.security import CSRF_SESSION_KEY

pytestmark = pytest.mark.usefixtures("catalogues")

STAFF = ("registrar", "doctor", "pharmacist", "admin")
WHO = ("anonymous", "patient", *STAFF)

# (method, url, what allows it): a permission of access.PERMISSIONS, "staff" (anyone signed in
# at the workstation), "practitioner" (a doctor's own list) or "patient" (the kiosk).
DESK_ROUTES = [
    ("GET", "/ui/desk/", "staff"),
    ("GET", "/ui/desk/patients", "view_patient"),
    ("GET", "/ui/desk/patients?q={pinfl}", "view_patient"),
    ("GET", "/ui/desk/patients/new", "register_patient"),
    ("POST", "/ui/desk/patients/new", "register_patient"),
    ("GET", "/ui/desk/patients/{patient}", "view_patient"),
    ("POST", "/ui/desk/patients/{patient}/phone", "edit_patient"),
    ("GET", "/ui/desk/patients/{patient}/book", "book"),
    ("GET", "/ui/desk/patients/{patient}/book?practitioner_id={doctor}", "book"),
    ("POST", "/ui/desk/patients/{patient}/book?practitioner_id={doctor}", "book"),
    ("GET", "/ui/desk/queue", "view_schedule"),
    ("POST", "/ui/desk/appointments/{appointment}/check-in", "check_in"),
    ("GET", "/ui/desk/appointments/{appointment}/cancel", "book"),
    ("POST", "/ui/desk/appointments/{appointment}/cancel", "book"),
    ("GET", "/ui/desk/appointments/{appointment}/move", "book"),
    ("POST", "/ui/desk/appointments/{appointment}/move", "book"),
    ("GET", "/ui/desk/appointments/{appointment}/slip", "view_schedule"),
    ("GET", "/ui/desk/today", "practitioner"),
    ("GET", "/ui/desk/patients/{patient}/card", "read_card"),
    ("POST", "/ui/desk/patients/{patient}/card", "read_card"),
    ("GET", "/ui/desk/patients/{patient}/visit", "write_clinical"),
    ("POST", "/ui/desk/patients/{patient}/visit", "write_clinical"),
    ("POST", "/ui/desk/patients/{patient}/orders", "write_clinical"),
    ("GET", "/ui/desk/patients/{patient}/lab-results", "write_clinical"),
    ("POST", "/ui/desk/patients/{patient}/lab-results", "write_clinical"),
    ("GET", "/ui/icd10?q=I10", "write_clinical"),
]
KIOSK_ROUTES = [
    ("GET", "/ui/kiosk/home"),
    ("GET", "/ui/kiosk/book"),
    ("GET", "/ui/kiosk/book/{doctor}"),
    ("POST", "/ui/kiosk/book/{doctor}"),
    ("GET", "/ui/kiosk/appointments/{appointment}"),
    ("GET", "/ui/kiosk/appointments/{appointment}/move"),
    ("POST", "/ui/kiosk/appointments/{appointment}/move"),
    ("GET", "/ui/kiosk/appointments/{appointment}/cancel"),
    ("POST", "/ui/kiosk/appointments/{appointment}/check-in"),
    ("GET", "/ui/kiosk/appointments/{appointment}/slip"),
]
PUBLIC_ROUTES = ["/", "/ui/", "/ui/kiosk/", "/ui/kiosk/identify", "/ui/desk/sign-in"]


@pytest.fixture
def world(client, store, seeded, pinned, actor_for):  # noqa: F811
    """A booked visit of the first patient, today in the pinned clock."""
    appointment = appointments.book(store, actor_for("registrar"),
                                    patient_id=pinned["patient"]["patient_id"],
                                    practitioner_id=pinned["doctor_id"],
                                    starts_at=pinned["slot"], channel="registry",
                                    now=pinned["now"])
    return {"patient": pinned["patient"]["patient_id"], "pinfl": pinned["patient"]["pinfl"],
            "doctor": pinned["doctor_id"], "appointment": appointment,
            "person": pinned["patient"]}


def _become(client, who: str, world: dict) -> None:
    if who == "patient":
        kiosk_sign_in(client, world["person"])
    elif who != "anonymous":
        staff_sign_in(client, who)


def _allowed(who: str, rule: str) -> bool:
    if who in ("anonymous", "patient"):
        return False
    if rule == "staff":
        return True
    if rule == "practitioner":
        return who == "doctor"
    return rule in PERMISSIONS[who]


def _request(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return post(client, url, {})


@pytest.mark.parametrize("who", WHO)
def test_every_desk_route_for_each_role(client, world, who):
    # One session per role walks every route (a sign-in per route would cost an argon2 hash).
    _become(client, who, world)
    for method, url, rule in DESK_ROUTES:
        response = _request(client, method, url.format(**world))
        location = response.headers.get("Location", "")
        where = f"{who}: {method} {url}"
        if who in ("anonymous", "patient"):
            assert response.status_code == 302 and "/ui/desk/sign-in" in location, where
        elif _allowed(who, rule):
            assert response.status_code in (200, 302, 422), (where, response.status_code)
            assert "/sign-in" not in location, where
        else:
            assert response.status_code == 403, (where, response.status_code, location)
            assert "<html" in response.text and "Traceback" not in response.text, where


@pytest.mark.parametrize("who", WHO)
def test_every_kiosk_route_for_each_role(client, world, who):
    _become(client, who, world)
    for method, url in KIOSK_ROUTES:
        response = _request(client, method, url.format(**world))
        location = response.headers.get("Location", "")
        where = f"{who}: {method} {url}"
        if who == "patient":
            assert response.status_code in (200, 302, 409, 422), (where, response.status_code)
            assert not location.endswith("/ui/kiosk/"), where
        else:  # a staff session is no patient's session: the kiosk starts over
            assert response.status_code == 302 and location.endswith("/ui/kiosk/"), where


def test_a_patient_cannot_reach_another_patients_visit(client, store, world, seeded, actor_for):
    other = seeded["patient_rows"][1]
    theirs = appointments.book(store, actor_for("registrar"), patient_id=other["patient_id"],
                               practitioner_id=other["family_doctor_id"],
                               starts_at=world_slot(store, other["family_doctor_id"]),
                               channel="registry")
    kiosk_sign_in(client, world["person"])
    before = event_count(store)
    for method, url in KIOSK_ROUTES:
        if "{appointment}" in url:
            response = _request(client, method, url.format(**{**world, "appointment": theirs}))
            assert response.status_code == 404, url
    assert event_count(store) == before


def world_slot(store, doctor_id: str) -> str:
    return store.one("SELECT starts_at FROM slots WHERE practitioner_id = ? ORDER BY starts_at"
                     " DESC LIMIT 1", (doctor_id,))["starts_at"]


def _post_rules(app) -> list[str]:
    rules = []
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.endpoint.split(".")[0] in (
                "kiosk", "desk", "desk_visits", "doctor"):
            rules.append(rule.rule)
    return sorted(rules)


def test_every_form_route_is_covered_by_the_csrf_test(app):
    assert len(_post_rules(app)) >= 15


@pytest.mark.parametrize("token", [None, "forged-token"], ids=["missing", "wrong"])
def test_a_post_without_the_sessions_csrf_token_is_refused(app, client, world, store, token):
    staff_sign_in(client, "doctor")
    before = event_count(store)
    for rule in _post_rules(app):
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {
            "patient_id": world["patient"], "appointment_id": world["appointment"],
            "practitioner_id": world["doctor"], "action": "cancel"}.get(m.group(1), "x"), rule)
        data = {"starts_at": world_slot(store, world["doctor"]), "reason": "visit",
                "username": "doctor", "pin": "2222"}
        if token:
            data["csrf_token"] = token
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "<html" in response.text
    assert event_count(store) == before


def test_csrf_refusal_is_explained_in_the_readers_language(client, seeded):
    client.get("/ui/kiosk/?lang=ru")
    response = client.post("/ui/kiosk/end", data={})
    assert response.status_code == 400
    assert escaped(translated("ru", "This form has expired or was sent from elsewhere. Go back,"
                                    " reload the page and try again.")) in response.text


@pytest.mark.parametrize("url", PUBLIC_ROUTES)
def test_public_pages_answer_without_sign_in(client, seeded, url):
    response = client.get(url)
    assert response.status_code in (200, 302)


def _pages(world) -> list[str]:
    return [*PUBLIC_ROUTES[1:], "/ui/desk/patients/{patient}".format(**world),
            "/ui/desk/queue", "/ui/nowhere", "/ui/kiosk/home"]


def test_every_page_has_csp_and_no_store(client, world):
    staff_sign_in(client, "registrar")
    for url in _pages(world):
        response = client.get(url)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "default-src 'self'" in csp, url
        assert "frame-ancestors 'none'" in csp, url
        assert response.headers.get("Cache-Control") == "no-store", url
        assert response.headers.get("X-Content-Type-Options") == "nosniff", url


def test_pages_have_no_inline_script_and_no_outside_assets(client, world):
    staff_sign_in(client, "doctor")
    for url in [*_pages(world), "/ui/desk/patients/{patient}/visit".format(**world)]:
        html = client.get(url).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son\w+\s*=", html), url  # no inline event handlers
        assert not re.search(r"(src|href)=\"(https?:)?//", html), url


def test_the_api_keeps_its_json_errors(client, seeded):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.is_json
    missing = client.get("/api/v1/auth/me")
    assert missing.status_code == 401 and missing.json["error"]["code"] == "not_signed_in"


def test_unknown_ui_page_is_a_translated_html_404(client, seeded):
    response = client.get("/ui/kiosk/nowhere?lang=ru")
    assert response.status_code == 404
    assert translated("ru", "This page does not exist.") in response.text


def test_session_cookie_is_http_only_and_strict(client, world):
    response = staff_sign_in(client, "registrar")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_secure_cookie_when_configured(app, client, world):
    app.config["SESSION_COOKIE_SECURE"] = True
    response = staff_sign_in(client, "registrar")
    assert "Secure" in response.headers["Set-Cookie"]


def test_sign_out_clears_the_session_and_the_token(client, store, world):
    staff_sign_in(client, "registrar")
    with client.session_transaction() as session:
        token = session["staff_token"]
    post(client, "/ui/desk/sign-out")
    with client.session_transaction() as session:
        assert "staff_token" not in session and CSRF_SESSION_KEY not in session
    assert store.one("SELECT COUNT(*) AS n FROM api_tokens")["n"] == 0
    with client.session_transaction() as session:  # a stolen copy of the old cookie
        session["staff_token"] = token
    response = client.get("/ui/desk/queue")
    assert response.status_code == 302 and "/ui/desk/sign-in" in response.headers["Location"]


@pytest.mark.parametrize(("hub", "state"), [("", "standalone"), ("https://hub.invalid", "offline")])
def test_every_screen_shows_the_node_banner(app, client, world, store, hub, state):
    app.config["HUB_URL"] = hub
    staff_sign_in(client, "registrar")
    for url in ("/ui/kiosk/", "/ui/desk/queue", "/ui/desk/sign-in?lang=ru"):
        html = client.get(url).text
        assert f'data-node-state="{state}"' in html, url
    if state == "offline":  # nothing acknowledged by a hub: every local change still waits
        head = store.one("SELECT MAX(seq) AS n FROM events")["n"]
        assert translated("ru", "Changes waiting to sync: %(count)s", count=head) in html
