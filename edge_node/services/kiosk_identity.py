"""Identifying a patient at a reception kiosk: the PINFL plus a second factor.

The PINFL alone is no proof: it is printed on documents, prescriptions and forms, and the birth
date inside it is no secret either. The second factor must work with the node offline, so it is
what the registry already holds: the last four digits of the patient's identity document
(passport or ID card). The SMS code is offered as well, but only while texts actually get out.

Attempts are reserved before the check and stay as failures in ``sign_in_failures``
(node-local, never synced) per kiosk and per PINFL, so neither one kiosk nor a walk between
kiosks can guess through the 10,000 values.
A failure never says whether the PINFL is registered: both cases read the same.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from sync_protocol.identifiers import parse_pinfl
from sync_protocol.timeutil import from_instant, to_instant, utc_now

from ..errors import NotSignedIn, TooManyAttempts, ValidationFailed
from ..store import NodeStore
from . import sign_in_guard as guard
from .access import Actor
from .sms import queue_sms

log = logging.getLogger(__name__)

DOCUMENT_DIGITS = 4  # the last digits of the document number the patient is asked for
FAILURE_WINDOW = timedelta(minutes=15)
DAY = timedelta(hours=24)
# A hall kiosk sees many honest typos from many people; twenty in a quarter hour is probing.
MAX_FAILURES_PER_KIOSK = 20
# Five tries in a quarter hour and ten a day against a 1-in-10,000 secret: a stranger's chance
# of guessing one patient's digits stays near 1 in 1,000 per day, with the desk alerted by calls.
MAX_FAILURES_PER_PINFL = 5
MAX_DAILY_FAILURES_PER_PINFL = 10
SMS_CODE_DIGITS = 6
SMS_CODE_TTL = timedelta(minutes=5)
SMS_TEXT = "DMED: kiosk kodi %(code)s (5 daqiqa). Код для киоска %(code)s (5 минут)."


class IdentityNotConfirmed(NotSignedIn):
    code = "kiosk_identity_not_confirmed"


def patient_actor(patient_id: str, display_name: str = "") -> Actor:
    return Actor(actor_id=f"kiosk:{patient_id}", role="patient", display_name=display_name,
                 patient_id=patient_id)


def _pinfl_subject(pinfl: str) -> str:
    # A node-local counter needs no readable PINFL: keep a digest (least knowledge).
    return "kiosk-pinfl:" + hashlib.sha256(pinfl.encode()).hexdigest()[:32]


def _kiosk_subject(kiosk_id: str) -> str:
    return f"kiosk:{str(kiosk_id)[:64]}"


def _failures(store: NodeStore, subject: str, since: datetime) -> int:
    row = store.one("SELECT COUNT(*) AS n FROM sign_in_failures WHERE subject = ? AND"
                    " failed_at > ?", (subject, to_instant(since)))
    return row["n"] if row else 0


def check_allowed(store: NodeStore, kiosk_id: str, pinfl: str | None = None,
                  now: datetime | None = None) -> None:
    """Raise TooManyAttempts when this kiosk, or this PINFL anywhere, failed too often."""
    now = now or utc_now()
    if _failures(store, _kiosk_subject(kiosk_id), now - FAILURE_WINDOW) >= MAX_FAILURES_PER_KIOSK:
        raise TooManyAttempts("Too many wrong attempts at this kiosk; please ask at the registry"
                              " desk or try again in 15 minutes", field="pinfl",
                              code="kiosk_locked")
    if pinfl is None:
        return
    subject = _pinfl_subject(pinfl)
    if (_failures(store, subject, now - FAILURE_WINDOW) >= MAX_FAILURES_PER_PINFL
            or _failures(store, subject, now - DAY) >= MAX_DAILY_FAILURES_PER_PINFL):
        raise TooManyAttempts("Too many wrong attempts for this PINFL; please ask at the"
                              " registry desk", field="pinfl", code="pinfl_locked")


def _limits(kiosk_id: str, pinfl: str) -> list[guard.Limit]:
    pinfl_subject = _pinfl_subject(pinfl)
    return [guard.Limit(_kiosk_subject(kiosk_id), MAX_FAILURES_PER_KIOSK, FAILURE_WINDOW),
            guard.Limit(pinfl_subject, MAX_FAILURES_PER_PINFL, FAILURE_WINDOW),
            guard.Limit(pinfl_subject, MAX_DAILY_FAILURES_PER_PINFL, DAY)]


def _reserve(store: NodeStore, kiosk_id: str, pinfl: str, now: datetime) -> list[int]:
    """Reserve this attempt against the kiosk's and the PINFL's limits before any check, in
    one write transaction: parallel attempts cannot all slip past the count."""
    reserved = guard.reserve(store, _limits(kiosk_id, pinfl), now)
    if reserved is None:
        check_allowed(store, kiosk_id, pinfl, now)  # raises, saying which limit was reached
        raise TooManyAttempts("Too many wrong attempts for this PINFL; please ask at the"
                              " registry desk", field="pinfl", code="pinfl_locked")
    return reserved


def _record_failure(store: NodeStore, kiosk_id: str, now: datetime) -> None:
    # The reserved rows are the failure's record; only old history goes.
    with store.transaction() as tx:
        # Bounded history: nothing older than the longest window is ever consulted.
        tx.conn.execute("DELETE FROM sign_in_failures WHERE (subject LIKE 'kiosk:%' OR subject"
                        " LIKE 'kiosk-pinfl:%') AND failed_at < ?", (to_instant(now - DAY),))
    log.info("kiosk %s: identification failed", kiosk_id)


def _succeeded(store: NodeStore, pinfl: str, reserved: list[int]) -> None:
    guard.release(store, reserved, (_pinfl_subject(pinfl),))


def _not_confirmed() -> IdentityNotConfirmed:
    return IdentityNotConfirmed(
        "The PINFL and the document digits do not match a patient registered here. If you"
        " registered without an identity document, please ask at the registry desk.",
        field="document_digits")


def identify(store: NodeStore, *, kiosk_id: str, pinfl: str, document_digits: str,
             now: datetime | None = None) -> Actor:
    """The patient Actor for a PINFL and the last digits of their identity document."""
    now = now or utc_now()
    digits = parse_pinfl(pinfl).digits  # a mistyped PINFL is a typo, not a guess: not counted
    answer = str(document_digits or "").strip()
    if not (answer.isascii() and answer.isdigit() and len(answer) == DOCUMENT_DIGITS):
        raise ValidationFailed("Enter the last %(count)s digits of your identity document",
                               field="document_digits", count=DOCUMENT_DIGITS)
    reserved = _reserve(store, kiosk_id, digits, now)
    row = store.one("SELECT patient_id, full_name, document FROM patients WHERE pinfl = ?",
                    (digits,))
    expected = (row["document"] or "")[-DOCUMENT_DIGITS:] if row else ""
    # Compare even when there is no patient, so timing does not tell the two cases apart.
    matches = hmac.compare_digest(expected.rjust(DOCUMENT_DIGITS, "x"), answer)
    if row is None or not matches:
        _record_failure(store, kiosk_id, now)
        raise _not_confirmed()
    _succeeded(store, digits, reserved)
    return patient_actor(row["patient_id"], row["full_name"])


def sms_reachable(store: NodeStore) -> bool:
    """Texts get out: no queued SMS is failing. Offline, the SMS choice is not offered."""
    row = store.one("SELECT COUNT(*) AS n FROM sms_outbox WHERE sent_at IS NULL AND"
                    " last_error IS NOT NULL")
    return not (row and row["n"])


def _mac(secret: bytes, patient_id: str, code: str, expires: str) -> str:
    return hmac.new(secret, f"{patient_id}|{code}|{expires}".encode(), hashlib.sha256).hexdigest()


def start_sms(store: NodeStore, *, kiosk_id: str, pinfl: str, secret: bytes,
              now: datetime | None = None) -> dict:
    """Text a one-time code to the patient's confirmed phone; returns the challenge to keep.

    The challenge (kept in the signed session) holds no code, only a keyed digest of it. An
    unknown PINFL gets a challenge no code can meet, so the screen reads the same either way.
    """
    now = now or utc_now()
    digits = parse_pinfl(pinfl).digits
    check_allowed(store, kiosk_id, digits, now)
    expires = to_instant(now + SMS_CODE_TTL)
    code = f"{secrets.randbelow(10**SMS_CODE_DIGITS):0{SMS_CODE_DIGITS}d}"
    row = store.one("SELECT patient_id, phone FROM patients WHERE pinfl = ? AND"
                    " phone_confirmed = 1", (digits,))
    if row is None:
        return {"pinfl": digits, "patient_id": "", "expires": expires,
                "mac": secrets.token_hex(32)}
    with store.transaction() as tx:
        queue_sms(tx.conn, row["phone"], SMS_TEXT % {"code": code}, "kiosk_code")
    return {"pinfl": digits, "patient_id": row["patient_id"], "expires": expires,
            "mac": _mac(secret, row["patient_id"], code, expires)}


def verify_sms(store: NodeStore, *, kiosk_id: str, challenge: dict, code: str, secret: bytes,
               now: datetime | None = None) -> Actor:
    now = now or utc_now()
    digits = str(challenge.get("pinfl", ""))
    check_allowed(store, kiosk_id, digits, now)
    answer = str(code or "").strip()
    if not (answer.isascii() and answer.isdigit() and len(answer) == SMS_CODE_DIGITS):
        raise ValidationFailed("Enter the %(count)s-digit code from the SMS", field="sms_code",
                               count=SMS_CODE_DIGITS)
    if from_instant(str(challenge.get("expires"))) < now:
        raise ValidationFailed("The code has expired; ask for a new one", field="sms_code",
                               code="code_expired")
    patient_id = str(challenge.get("patient_id", ""))
    reserved = _reserve(store, kiosk_id, digits, now)
    expected = _mac(secret, patient_id, answer, str(challenge.get("expires")))
    if not (patient_id and hmac.compare_digest(expected, str(challenge.get("mac", "")))):
        _record_failure(store, kiosk_id, now)
        raise IdentityNotConfirmed("The code is wrong", field="sms_code", code="code_wrong")
    _succeeded(store, digits, reserved)
    row = store.one("SELECT full_name FROM patients WHERE patient_id = ?", (patient_id,))
    return patient_actor(patient_id, row["full_name"] if row else "")
