"""The hub's web app as the hub tests make it: over a test storage, trusting the world's list,
with a clock moved by hand, and central staff signed in to its dashboard.

The fixtures built on it (`hub_app` in tests/conftest.py; `clock`, `make_hub`,
`central_staff` in tests/hub/conftest.py) keep these in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from central_hub import staff
from central_hub.ingest import Hook
from central_hub.storage import Storage
from central_hub.web import dashboard_pages
from central_hub.web.app import create_app
from helpers.hub import World
from sync_protocol.timeutil import utc_now

# The central staff account the dashboard tests sign in with.
CENTRAL_LOGIN = "karimova"
CENTRAL_NAME = "Karimova Nilufar"
PASSWORD = "correct horse battery"


class Clock:
    """The hub's clock, moved by hand (`clock.now += ...`): expiry and lag without waiting."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or utc_now()

    def __call__(self) -> datetime:
        return self.now


def hub_app_for(storage: Storage, world: World, *, clock: Clock | None = None,
                on_accepted: Iterable[Hook] = (), **settings: Any) -> Flask:
    """The hub app over `storage` with the test's settings, trusting the world's nodes."""
    app = create_app({"TESTING": True, **settings}, storage=storage,
                     clock=clock or utc_now, on_accepted=on_accepted)
    app.extensions["dmed_hub"].trust.import_list(world.fresh_trust_list(), accept_roots=True)
    return app


def add_central_staff(storage: Storage) -> dict[str, Any]:
    return staff.create_staff(storage, login=CENTRAL_LOGIN, full_name=CENTRAL_NAME,
                              role="central", password=PASSWORD)


def csrf_of(client: FlaskClient) -> str:
    """The dashboard's CSRF token, fetching the sign-in page for its cookie if need be."""
    cookie = client.get_cookie(dashboard_pages.CSRF_COOKIE)
    if cookie is None:
        client.get("/staff/sign-in")
        cookie = client.get_cookie(dashboard_pages.CSRF_COOKIE)
    assert cookie is not None, "the sign-in page set no CSRF cookie"
    return cookie.value


def sign_in(client: FlaskClient, password: str = PASSWORD, lang: str | None = None,
            **form: str):
    """Post the sign-in form as the central staff account; the response as it came."""
    path = f"/staff/sign-in?lang={lang}" if lang else "/staff/sign-in"
    return client.post(path, data={"login": CENTRAL_LOGIN, "password": password,
                                   "csrf": csrf_of(client), **form})


def signed_in(app: Flask, lang: str | None = None) -> FlaskClient:
    """A client of `app` signed in as the central staff account (created beforehand)."""
    client = app.test_client()
    response = sign_in(client, lang=lang)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return client
