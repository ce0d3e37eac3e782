"""Issue 11.2: a guesser on the LAN cannot lock a staff member out of a terminal where that
account signed in before (OWASP device cookies), still gets at most the limit of guesses, and
the node's admin sees the failed and locked sign-ins."""

from __future__ import annotations

import pytest
from helpers.ui import post, staff_sign_in  # noqa: F401

from edge_node.services import sign_in_guard, staff

pytestmark = pytest.mark.usefixtures("catalogues")

SIGN_IN = "/api/v1/auth/sign-in"
COOKIE = sign_in_guard.device_cookie_name("registrar")


def sign_in(client, pin: str, username: str = "registrar"):
    return client.post(SIGN_IN, json={"username": username, "pin": pin})


def guess_until_locked(app) -> list[int]:
    """A stranger's client (no device cookie) guessing the registrar's PIN."""
    stranger = app.test_client()
    return [sign_in(stranger, f"{n:04d}").status_code
            for n in range(staff.MAX_FAILURES + 3)]


def test_a_known_terminal_signs_in_while_strangers_are_locked_out(app, client, seeded):
    assert sign_in(client, "1111").status_code == 200
    assert client.get_cookie(COOKIE) is not None  # this terminal is now known
    statuses = guess_until_locked(app)
    assert statuses.count(401) == staff.MAX_FAILURES  # at most the limit checked
    assert set(statuses[staff.MAX_FAILURES:]) == {429}
    assert sign_in(app.test_client(), "1111").status_code == 429  # any other stranger too
    assert sign_in(client, "1111").status_code == 200  # the known terminal is not locked out


def test_a_known_terminal_has_its_own_limit(app, client, seeded):
    assert sign_in(client, "1111").status_code == 200
    statuses = [sign_in(client, f"{n:04d}").status_code for n in range(staff.MAX_FAILURES)]
    assert statuses == [401] * staff.MAX_FAILURES
    # The device's own counter is spent: it falls back to the shared one (still open).
    assert sign_in(client, "0000").status_code == 401
    assert sign_in(client, "1111").status_code == 200


@pytest.mark.parametrize("cookie", ["forged.0123456789abcdef0123456789abcdef", "junk", ""])
def test_a_forged_or_foreign_device_cookie_is_a_stranger(app, seeded, cookie):
    guess_until_locked(app)
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    assert sign_in(other, "1111").status_code == 429
    # A real cookie for another account does not open this one either.
    doctor = app.test_client()
    assert sign_in(doctor, "2222", "doctor").status_code == 200
    doctor.set_cookie(COOKIE, doctor.get_cookie(
        sign_in_guard.device_cookie_name("doctor")).value)
    assert sign_in(doctor, "1111").status_code == 429


def test_the_desk_screen_sets_and_honours_the_device_cookie(app, client, seeded):
    staff_sign_in(client, "registrar")
    assert client.get_cookie(COOKIE) is not None
    post(client, "/ui/desk/sign-out")
    guess_until_locked(app)
    response = post(client, "/ui/desk/sign-in", {"username": "registrar", "pin": "1111"})
    assert response.status_code == 302


def test_the_admin_sees_failed_and_locked_sign_ins(app, client, auth, seeded):
    admin, registrar = auth("admin"), auth("registrar")  # signed in before the guessing
    guess_until_locked(app)
    listed = client.get("/api/v1/auth/failed-sign-ins", headers=admin).json["sign_ins"]
    outcomes = [r["outcome"] for r in listed if r["username"] == "registrar"]
    assert outcomes.count("wrong_pin") == staff.MAX_FAILURES
    assert outcomes.count("locked") == 3
    assert client.get("/api/v1/auth/failed-sign-ins",
                      headers=registrar).status_code == 403
    staff_sign_in(client, "admin")
    page = client.get("/ui/desk/sign-ins")
    assert page.status_code == 200
    assert page.text.count('data-sign-in="locked"') == 3
    assert page.text.count('data-sign-in="wrong_pin"') == staff.MAX_FAILURES
    uz = client.get("/ui/desk/sign-ins?lang=uz")
    assert "Failed sign-ins" not in uz.text
