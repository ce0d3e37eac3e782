"""The provisioning station's operators: regional IT staff who sign in to approve and revoke.

Kept in station.db beside the enrolment desk's tables. Passwords are argon2id hashes; after
MAX_FAILURES wrong passwords a login is locked for LOCK_DURATION. Every sign-in, good or
bad, is in the desk's audit trail.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from provisioning.enrolment_desk import EnrolmentDesk, _iso
from provisioning.errors import AlreadyExists, InvalidRequest, ProvisioningError

log = logging.getLogger(__name__)

# OWASP's argon2id minimum (19 MiB, 2 passes), as for the hub's staff.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
MIN_PASSWORD = 10
MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
LOGIN_RE = re.compile(r"[a-z][a-z0-9._-]{1,63}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    login TEXT PRIMARY KEY, full_name TEXT NOT NULL, password_hash TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, locked_until TEXT);
"""


class SignInRefused(ProvisioningError):
    code = "sign_in_refused"


@dataclass(frozen=True)
class Operator:
    login: str
    full_name: str


def _ensure(desk: EnrolmentDesk) -> None:
    db = sqlite3.connect(desk.path, timeout=10)
    try:
        db.executescript(SCHEMA)
    finally:
        db.close()


def create_operator(desk: EnrolmentDesk, *, login: str, full_name: str, password: str) -> None:
    if not LOGIN_RE.fullmatch(login or ""):
        raise InvalidRequest("A login is 2 to 64 small letters, digits, dots or dashes.",
                             field="login")
    if not full_name or not full_name.strip() or len(full_name) > 200:
        raise InvalidRequest("A name is 1 to 200 characters.", field="full_name")
    if len(password or "") < MIN_PASSWORD:
        raise InvalidRequest("A password has at least %(min)s characters.", field="password",
                             min=MIN_PASSWORD)
    _ensure(desk)
    with desk._db() as db:
        if db.execute("SELECT 1 FROM operators WHERE login = ?", (login,)).fetchone():
            raise AlreadyExists("Operator %(login)s exists already.", field="login",
                                login=login)
        db.execute("INSERT INTO operators (login, full_name, password_hash) VALUES (?, ?, ?)",
                   (login, full_name.strip(), HASHER.hash(password)))
        desk._audit(db, "cli", "create_operator", login, "done")


def sign_in(desk: EnrolmentDesk, login: str, password: str, seen_from: str, *,
            now: datetime | None = None) -> Operator:
    """The operator, or SignInRefused (the same message for a wrong login and password)."""
    now = datetime.now(UTC) if now is None else now
    _ensure(desk)
    with desk._db() as db:
        row = db.execute("SELECT * FROM operators WHERE login = ?", (login,)).fetchone()
        if row is not None and row["locked_until"] and row["locked_until"] > _iso(now):
            desk._audit(db, login, "sign_in", seen_from, "refused", "locked", now)
            error = SignInRefused("Too many wrong passwords; try again in %(minutes)s minutes.",
                                  code="locked", minutes=int(LOCK_DURATION.total_seconds() // 60))
        else:
            ok = row is not None and _verify(row["password_hash"], password)
            if ok:
                db.execute("UPDATE operators SET failures = 0, locked_until = NULL "
                           "WHERE login = ?", (login,))
                desk._audit(db, login, "sign_in", seen_from, "done", "", now)
                return Operator(row["login"], row["full_name"])
            if row is not None:
                failures = row["failures"] + 1
                locked = _iso(now + LOCK_DURATION) if failures >= MAX_FAILURES else None
                db.execute("UPDATE operators SET failures = ?, locked_until = ? WHERE login = ?",
                           (0 if locked else failures, locked, login))
            desk._audit(db, login[:64], "sign_in", seen_from, "refused", "wrong password", now)
            error = SignInRefused("Wrong login or password.", code="wrong_password")
    raise error


def get_operator(desk: EnrolmentDesk, login: str) -> Operator | None:
    _ensure(desk)
    with desk._db() as db:
        row = db.execute("SELECT login, full_name FROM operators WHERE login = ?",
                         (login,)).fetchone()
    return Operator(row["login"], row["full_name"]) if row else None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False
