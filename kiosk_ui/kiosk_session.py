"""The kiosk's patient session: who is identified, and the 60-second idle rule on the server.

The browser's idle timer clears the screen; the server refuses a session idle for longer than
KIOSK_IDLE_SECONDS on its own, so a patient's data is gone even if the page's script is not
running. The cookie names a session recorded on the server: ``end()`` ends that record as well, so
a replayed copy of the cookie gets the start page.
"""

from __future__ import annotations

import logging
import time

from flask import current_app, redirect, request, session, url_for

from edge_node.errors import NotSignedIn
from edge_node.services import kiosk_sessions
from edge_node.services.access import Actor
from edge_node.services.kiosk_identity import patient_actor
from edge_node.web.context import store

log = logging.getLogger(__name__)

PATIENT = "k_patient"
NAME = "k_name"
SEEN = "k_seen"
PINFL = "k_pinfl"
SMS = "k_sms"
SESSION_ID = "k_sid"  # the server's record of this session (edge_node.services.kiosk_sessions)
KIOSK_KEYS = (PATIENT, NAME, SEEN, PINFL, SMS, SESSION_ID)
TOUCH_SHARE = 10


class KioskSessionEnded(NotSignedIn):
    code = "kiosk_session_ended"


def idle_seconds() -> int:
    return int(current_app.config["KIOSK_IDLE_SECONDS"])


def kiosk_id() -> str:
    """Kiosks are throttled by their LAN address: each stands at a fixed place in the hall."""
    return request.remote_addr or "unknown"


def active() -> bool:
    return any(key in session for key in KIOSK_KEYS)


def touch() -> None:
    session[SEEN] = time.time()


def enforce_idle_limit() -> None:
    """Before every kiosk request: an idle session is ended, then the request goes on."""
    seen = session.get(SEEN)
    if seen is None:
        return
    idle = time.time() - float(seen)
    if idle > idle_seconds():
        log.info("kiosk session ended after %s s idle", idle_seconds())
        end()
        raise KioskSessionEnded("The kiosk session ended after a time without a touch",
                                code="kiosk_idle")
    # Re-signing the cookie on every page costs time under load; a tenth of the limit is
    # precision enough (the page's timer and its pings keep an active session alive).
    if idle > idle_seconds() / TOUCH_SHARE:
        touch()
    patient_id = session.get(PATIENT)
    # The cookie alone is no proof: Finish, the idle rule or a sign-out may have ended this
    # session already, and a copy of the cookie must not bring it back.
    if not patient_id:
        return
    state = kiosk_sessions.state(store(), session.get(SESSION_ID), patient_id, idle_seconds())
    if state != kiosk_sessions.OPEN:
        session.clear()
        raise KioskSessionEnded("The kiosk session has ended",
                                code="kiosk_idle" if state == kiosk_sessions.IDLE else None)


def end() -> None:
    kiosk_sessions.end(store(), session.get(SESSION_ID))
    session.clear()


def sign_in(actor: Actor) -> None:
    # A fresh session for the identified patient: nothing of the steps before carries over,
    # and a previous patient's session still named by this cookie ends on the server too.
    kiosk_sessions.end(store(), session.get(SESSION_ID))
    session.clear()
    session[PATIENT] = actor.patient_id
    session[NAME] = actor.display_name
    session[SESSION_ID] = kiosk_sessions.start(store(), actor.patient_id)
    touch()


def patient() -> Actor:
    patient_id = session.get(PATIENT)
    if not patient_id:
        raise KioskSessionEnded("Please identify yourself first")
    return patient_actor(patient_id, session.get(NAME, ""))


def to_start(error: NotSignedIn):
    ended = error.code == "kiosk_idle"
    return redirect(url_for("kiosk.start", ended=1 if ended else None))
