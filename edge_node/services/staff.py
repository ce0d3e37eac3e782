"""Staff accounts, PIN sign-in and API tokens. All node-local: logins never sync."""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import from_instant, to_instant, utc_now

from ..errors import Conflict, NotSignedIn, TooManyAttempts, ValidationFailed
from ..rights import check_staff_role
from ..store import NodeStore
from . import sign_in_guard as guard
from .access import ROLES, Actor

log = logging.getLogger(__name__)

# OWASP's argon2id minimum (19 MiB, 2 passes): affordable on a Raspberry Pi at sign-in.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
PIN_LENGTH = (4, 8)
USERNAME_LENGTH = 64
TOKEN_TTL = timedelta(hours=12)  # one shift
# Five wrong PINs in a quarter hour lock the account for the rest of that quarter hour.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)


def check_pin(pin: str) -> str:
    """A PIN's form: PIN_LENGTH digits (staff_admin also refuses the easiest guesses)."""
    pin = str(pin or "")
    low, high = PIN_LENGTH
    if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        raise ValidationFailed("PIN must be %(low)s to %(high)s digits", field="pin", low=low,
                               high=high)
    return pin


def check_username(username: str) -> str:
    """A username as stored: trimmed, lower case, Latin letters, digits, dots, underscores."""
    username = str(username or "").strip().lower()
    if not username or len(username) > USERNAME_LENGTH or not username.isascii() or \
            not username.replace(".", "").replace("_", "").isalnum():
        raise ValidationFailed("Username must be letters, digits, dots or underscores",
                               field="username")
    return username


def create_staff(store: NodeStore, actor: Actor, *, username: str, full_name: str, role: str,
                 pin: str, practitioner_id: str | None = None) -> str:
    actor.require("manage_staff")
    username = check_username(username)
    if role not in ROLES:
        raise ValidationFailed("Role must be one of %(roles)s", field="role",
                               roles=", ".join(ROLES))
    if store.network_rights:  # a pharmacy has no doctors: the hub would refuse their work
        check_staff_role(store.reader(), role)
    if role == "doctor" and not practitioner_id:
        raise ValidationFailed("A doctor account must be linked to a practitioner",
                               field="practitioner_id")
    pin_hash = HASHER.hash(check_pin(pin))
    staff_id = new_ulid()
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM staff WHERE username = ?", (username,)):
            raise Conflict("Username %(username)s is taken", field="username", username=username)
        if practitioner_id and not tx.one("SELECT 1 FROM practitioners WHERE practitioner_id"
                                          " = ?", (practitioner_id,)):
            raise ValidationFailed("Unknown practitioner", field="practitioner_id")
        tx.conn.execute(
            "INSERT INTO staff (staff_id, username, full_name, role, pin_hash, practitioner_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (staff_id, username, str(full_name or username)[:200], role, pin_hash,
             practitioner_id, to_instant(utc_now())))
    log.info("created staff account %s (%s)", username, role)
    return staff_id


def sign_in(store: NodeStore, username: str, pin: str, now: datetime | None = None, *,
            device_cookie: str | None = None, secret: bytes = b"", client: str = "") -> dict:
    """Check a PIN and return a bearer token (and a device cookie for this terminal).

    Throttled per account: attempts with a valid device cookie count against that device,
    all others against one counter for the account (see sign_in_guard).
    """
    now = now or utc_now()
    username = str(username or "").strip().lower()
    nonce = guard.device_nonce(secret, username, device_cookie)
    reserved = None
    if nonce is not None:
        reserved = guard.reserve(store, [guard.Limit(f"staff-device:{username}:{nonce}",
                                                     MAX_FAILURES, FAILURE_WINDOW)], now)
    trusted = reserved is not None  # a locked device falls back to the shared counter
    subject = f"staff-device:{username}:{nonce}" if trusted else f"staff:{username}"
    if reserved is None:
        reserved = guard.reserve(store, [guard.Limit(subject, MAX_FAILURES, FAILURE_WINDOW)],
                                 now)
    if reserved is None:
        guard.note(store, username=username, outcome="locked", trusted_device=False,
                   client=client, now=now)
        raise TooManyAttempts("Too many wrong PINs; try again in 15 minutes", field="pin")
    row = store.one("SELECT * FROM staff WHERE username = ? AND active = 1", (username,))
    if row is None or not _pin_matches(row["pin_hash"], str(pin or "")):
        # The reserved row stays: it is this failure's record.
        guard.note(store, username=username, outcome="wrong_pin", trusted_device=trusted,
                   client=client, now=now)
        raise NotSignedIn("Wrong username or PIN", field="pin", code="wrong_pin")
    guard.release(store, reserved, (subject,))
    token = secrets.token_urlsafe(32)
    with store.transaction() as tx:
        tx.conn.execute("DELETE FROM api_tokens WHERE expires_at < ?", (to_instant(now),))
        tx.conn.execute("INSERT INTO api_tokens (token_hash, staff_id, created_at, expires_at)"
                        " VALUES (?, ?, ?, ?)", (_token_hash(token), row["staff_id"],
                                                 to_instant(now), to_instant(now + TOKEN_TTL)))
    result = {"token": token, "role": row["role"], "full_name": row["full_name"],
              "expires_at": to_instant(now + TOKEN_TTL)}
    if secret:
        result["device_cookie"] = (device_cookie if nonce is not None
                                   else guard.new_device_cookie(secret, username))
    return result


def _pin_matches(pin_hash: str, pin: str) -> bool:
    try:
        return HASHER.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    # Tokens are 256-bit random: a fast hash is enough, and a stolen table reveals none.
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for_token(store: NodeStore, token: str, now: datetime | None = None) -> Actor:
    row = store.one(
        "SELECT s.*, t.expires_at FROM api_tokens t JOIN staff s USING (staff_id) WHERE"
        " t.token_hash = ? AND s.active = 1", (_token_hash(token or ""),))
    if row is None or from_instant(row["expires_at"]) < (now or utc_now()):
        raise NotSignedIn("Sign in first (the session may have expired)")
    return actor_for_staff(row)


def actor_for_staff(row: sqlite3.Row) -> Actor:
    return Actor(actor_id=row["staff_id"], role=row["role"], display_name=row["full_name"],
                 practitioner_id=row["practitioner_id"])


def sign_out(store: NodeStore, token: str) -> None:
    with store.transaction() as tx:
        tx.conn.execute("DELETE FROM api_tokens WHERE token_hash = ?", (_token_hash(token),))


def list_staff(store: NodeStore, actor: Actor) -> list[dict]:
    actor.require("manage_staff")
    rows = store.query("SELECT staff_id, username, full_name, role, practitioner_id, active,"
                       " created_at FROM staff ORDER BY username")
    return [dict(r) for r in rows]


def roles_present(store: NodeStore) -> frozenset[str]:
    """The roles of this node's active accounts: which screens can be used here at all."""
    return frozenset(r["role"] for r in store.query(
        "SELECT DISTINCT role FROM staff WHERE active = 1"))
