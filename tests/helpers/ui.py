"""Shared helpers and fixtures of the screen tests (views through the test client, browser).

The fixtures built on them (`catalogues`, `pinned`) are in tests/conftest.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from edge_node.seed import DEMO_PIN
from kiosk_ui.security import CSRF_SESSION_KEY
from sync_protocol.timeutil import to_instant

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_DIRS = (ROOT / "edge_node" / "translations", ROOT / "kiosk_ui" / "translations")
SCREENSHOTS = ROOT / "screenshots"
TOKEN = "test-csrf-token"
# Every staff role of the node's screens.
STAFF = ("registrar", "doctor", "pharmacist", "admin")


def compile_catalogues() -> None:
    """What `make translations` does, for a run of pytest without make: .po -> .mo when stale."""
    for directory in CATALOGUE_DIRS:
        for po in directory.glob("*/LC_MESSAGES/messages.po"):
            mo = po.with_suffix(".mo")
            if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
                continue
            with po.open("rb") as handle:
                catalog = read_po(handle)
            with mo.open("wb") as handle:
                write_mo(handle, catalog)


def translated(locale: str, msgid: str, **params) -> str:
    """The message as a screen in ``locale`` must show it (from the .po file itself)."""
    for folder in reversed(CATALOGUE_DIRS):  # the screens' catalogue wins, as at run time
        with (folder / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            entry = read_po(handle).get(msgid)
        if entry is not None and entry.string:
            return entry.string % params if params else entry.string
    return msgid % params if params else msgid


def text_of(html: str) -> str:
    """Visible text of a page, entities decoded, whitespace collapsed."""
    import html as html_module

    body = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def escaped(text: str) -> str:
    import html as html_module

    return html_module.escape(text, quote=True)


# -- acting through the test client ----------------------------------------------------------

def post(client, url: str, data: dict | None = None, **kwargs):
    """A form POST carrying the session's CSRF token, as the page's form would."""
    with client.session_transaction() as session:
        session.setdefault(CSRF_SESSION_KEY, TOKEN)
        token = session[CSRF_SESSION_KEY]
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def kiosk_sign_in(client, patient: dict):
    """Identify at the kiosk with the PINFL and the document's last four digits."""
    client.get("/ui/kiosk/identify")
    response = post(client, "/ui/kiosk/identify", {"pinfl": patient["pinfl"]})
    assert response.status_code == 302, response.text
    response = post(client, "/ui/kiosk/verify",
                    {"document_digits": patient["document"][-4:]})
    assert response.headers["Location"].endswith("/ui/kiosk/home"), response.text
    return response


def staff_sign_in(client, username: str):
    role = {"doctor2": "doctor"}.get(username, username)
    response = post(client, "/ui/desk/sign-in", {"username": username, "pin": DEMO_PIN[role]})
    assert response.status_code == 302, response.text
    return response


def event_count(store) -> int:
    return store.one("SELECT COUNT(*) AS n FROM events")["n"]


# -- a day on which "today" has a visit ------------------------------------------------------

def first_slot_after(store, practitioner_id: str, after) -> str:
    row = store.one("SELECT starts_at FROM slots WHERE practitioner_id = ? AND starts_at > ?"
                    " ORDER BY starts_at LIMIT 1", (practitioner_id, to_instant(after)))
    return row["starts_at"]


