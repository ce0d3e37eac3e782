"""Hub staff accounts: central staff sign in to the dashboard pages with a password.

Accounts live in the hub database (table hub_staff), never sync to nodes, and are managed
with `dmed-hub create-staff`, `list-staff`, `staff-password`, `disable-staff` and
`enable-staff`. Passwords are hashed with argon2id. Failed sign-ins are counted in
the row itself, so every hub worker process agrees: after MAX_FAILURES wrong passwords the
login is locked for LOCK_DURATION, and a successful sign-in resets the count. An unknown
login is checked against a dummy hash, so it takes as long as a wrong password.

The pages' session cookies are signed with one secret kept in hub_state, created once by
whichever worker asks first and then shared by all of them (`session_secret`).
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import from_instant, to_instant, utc_now

from .errors import HubError
from .storage import Migration, Storage

log = logging.getLogger(__name__)

COMPONENT = "staff"
STAFF_V1 = """
-- Central staff who sign in to the hub's dashboard pages. Hub-local: never synced.
-- failed_count and locked_until throttle password guessing across every worker process.
CREATE TABLE hub_staff (
    staff_id TEXT PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_count INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
)
"""
# session_epoch: part of every session cookie; a new password or disabling the account moves it
# on, which ends the account's open sessions on every worker.
STAFF_V2 = """
ALTER TABLE hub_staff ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0
"""
# listed by central_hub.composition
MIGRATIONS = (Migration(COMPONENT, 1, STAFF_V1), Migration(COMPONENT, 2, STAFF_V2))

ROLES = ("central",)
# Same parameters as the nodes' PINs (OWASP's argon2id minimum: 19 MiB, 2 passes).
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
LOGIN_RE = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
# A review names its reviewer as "Full Name (login)" in ConflictStateChanged.by, a NAME of
# at most 200 characters: 120 + 64 + 4 fits.
MAX_FULL_NAME = 120
MIN_FULL_NAME = 2
MIN_PASSWORD = 10
# Longer input is no better password, only more work for the hasher per request.
MAX_PASSWORD = 1024
# Five wrong passwords lock the login for a quarter hour (the nodes' PIN rule).
MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
SECRET_KEY = "staff_session_secret"  # noqa: S105 - its hub_state key, not the secret
SECRET_BYTES = 48  # 384 bits for the HMAC key of the session cookies


class StaffError(HubError):
    code = "staff_invalid"


class LoginTaken(StaffError):
    code = "login_taken"
    http_status = 409


class UnknownLogin(StaffError):
    code = "unknown_login"
    http_status = 404


class SignInFailed(HubError):
    code = "sign_in_failed"
    http_status = 401


class LoginLocked(SignInFailed):
    code = "login_locked"
    http_status = 429


# -- accounts -------------------------------------------------------------------------------

def normalise_login(login: Any) -> str:
    return str(login or "").strip().lower()


def check_password(password: Any) -> str:
    text = password if isinstance(password, str) else ""
    if not MIN_PASSWORD <= len(text) <= MAX_PASSWORD:
        raise StaffError("The password must have %(min)s to %(max)s characters",
                         field="password", min=MIN_PASSWORD, max=MAX_PASSWORD)
    return text


def create_staff(storage: Storage, *, login: str, full_name: str, role: str, password: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """Add a staff account; return it (without the hash)."""
    login = normalise_login(login)
    if not LOGIN_RE.fullmatch(login):
        raise StaffError("The login must be 3 to 64 characters: small Latin letters, digits, "
                         "dots, hyphens or underscores, starting with a letter or digit",
                         field="login")
    name = " ".join(str(full_name or "").split())
    if not MIN_FULL_NAME <= len(name) <= MAX_FULL_NAME:
        raise StaffError("The full name must have %(min)s to %(max)s characters",
                         field="full_name", min=MIN_FULL_NAME, max=MAX_FULL_NAME)
    if role not in ROLES:
        raise StaffError("The role must be one of %(roles)s", field="role",
                         roles=", ".join(ROLES))
    password_hash = HASHER.hash(check_password(password))
    staff_id = new_ulid()
    with storage.transaction(exclusive=False) as tx:
        inserted = tx.execute(
            "INSERT INTO hub_staff (staff_id, login, full_name, role, password_hash, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (login) DO NOTHING",
            (staff_id, login, name, role, password_hash, to_instant(now or utc_now())))
        if inserted != 1:
            raise LoginTaken("The login %(login)s is taken", field="login", login=login)
    log.info("hub staff account %s created (%s)", login, role)
    return get_staff(storage, staff_id) or {}


PUBLIC_COLUMNS = ("staff_id", "login", "full_name", "role", "created_at", "session_epoch")


def get_staff(storage: Storage, staff_id: str) -> dict[str, Any] | None:
    """An enabled account by id, without its hash; None when unknown or disabled."""
    with storage.reader() as tx:
        row = tx.one(f"SELECT {', '.join(PUBLIC_COLUMNS)} FROM hub_staff "  # noqa: S608 - constants
                     "WHERE staff_id = ? AND disabled = 0", (str(staff_id or ""),))
    return row


def list_staff(storage: Storage, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every account by login, with whether it is disabled or locked now."""
    now = now or utc_now()
    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM hub_staff ORDER BY login")
    return [{**{k: row[k] for k in PUBLIC_COLUMNS}, "disabled": bool(row["disabled"]),
             "locked": _locked(row, now)} for row in rows]


def set_password(storage: Storage, login: str, password: str) -> None:
    """Give an account a new password: lifts a lock and ends its open sessions."""
    password_hash = HASHER.hash(check_password(password))
    _update(storage, login, "password_hash = ?, failed_count = 0, locked_until = NULL",
            (password_hash,))
    log.info("hub staff %s has a new password; open sessions ended", normalise_login(login))


def set_disabled(storage: Storage, login: str, disabled: bool) -> None:
    """Disable an account (its sessions end at once) or enable it again."""
    _update(storage, login, "disabled = ?", (int(disabled),))
    log.info("hub staff %s %s", normalise_login(login), "disabled" if disabled else "enabled")


def _update(storage: Storage, login: str, assignments: str, params: tuple) -> None:
    with storage.transaction(exclusive=False) as tx:
        changed = tx.execute(f"UPDATE hub_staff SET {assignments}, "  # noqa: S608 - constants
                             "session_epoch = session_epoch + 1 WHERE login = ?",
                             (*params, normalise_login(login)))
    if changed != 1:
        raise UnknownLogin("No staff account has the login %(login)s", field="login",
                           login=normalise_login(login)[:64])


def display_name(staff: dict[str, Any]) -> str:
    """How a staff member signs a review: "Full Name (login)"."""
    return f"{staff['full_name']} ({staff['login']})"


# -- sign-in --------------------------------------------------------------------------------

@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def _matches(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(storage: Storage, login: str, password: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """The account whose password this is; raises SignInFailed or LoginLocked."""
    now = now or utc_now()
    login = normalise_login(login)
    password = password if isinstance(password, str) else ""
    with storage.reader() as tx:
        row = tx.one("SELECT * FROM hub_staff WHERE login = ?", (login,))
    # The attempt is counted before the password is checked (atomic across workers), so
    # parallel guesses cannot all pass a count taken before any of them failed.
    if row is not None and not _reserve_attempt(storage, row["staff_id"], now):
        raise _locked_error()
    account = row if row is not None and not row["disabled"] else None
    # Unknown logins cost one verification too, so timing does not tell which logins exist.
    matched = _matches(account["password_hash"] if account else _dummy_hash(),
                       password[:MAX_PASSWORD]) and len(password) <= MAX_PASSWORD
    if account is None or not matched:
        log.warning("hub staff sign-in failed for login %r", login[:64])
        if row is not None and _settle_failure(storage, row["staff_id"], now):
            raise _locked_error()
        raise SignInFailed("Wrong login or password", field="password")
    rehashed = (HASHER.hash(password) if HASHER.check_needs_rehash(account["password_hash"])
                else account["password_hash"])
    with storage.transaction(exclusive=False) as tx:
        # A lock set by another worker meanwhile still wins over this correct password.
        reset = tx.execute("UPDATE hub_staff SET failed_count = 0, locked_until = NULL, "
                           "password_hash = ? WHERE staff_id = ? AND (locked_until IS NULL OR "
                           "locked_until <= ?)",
                           (rehashed, account["staff_id"], to_instant(now)))
    if reset != 1:
        raise _locked_error()
    log.info("hub staff %s signed in", login)
    return {k: account[k] for k in PUBLIC_COLUMNS}


def _locked(row: dict[str, Any], now: datetime) -> bool:
    return bool(row["locked_until"]) and from_instant(row["locked_until"]) > now


def _locked_error() -> LoginLocked:
    return LoginLocked("Too many wrong passwords; this login is locked for %(minutes)s "
                       "minutes", field="password",
                       minutes=int(LOCK_DURATION.total_seconds() // 60))


def _reserve_attempt(storage: Storage, staff_id: str, now: datetime) -> bool:
    """Count one attempt, unless the login is locked or MAX_FAILURES attempts are counted
    already (then False). A success resets the count; a failure leaves it counted."""
    with storage.transaction(exclusive=False) as tx:
        return tx.execute("UPDATE hub_staff SET failed_count = failed_count + 1 WHERE "
                          "staff_id = ? AND failed_count < ? AND (locked_until IS NULL OR "
                          "locked_until <= ?)", (staff_id, MAX_FAILURES, to_instant(now))) == 1


def _settle_failure(storage: Storage, staff_id: str, now: datetime) -> bool:
    """A counted attempt failed; at MAX_FAILURES the login locks (True)."""
    with storage.transaction(exclusive=False) as tx:
        locked = tx.execute("UPDATE hub_staff SET failed_count = 0, locked_until = ? WHERE "
                            "staff_id = ? AND failed_count >= ?",
                            (to_instant(now + LOCK_DURATION), staff_id, MAX_FAILURES)) == 1
    if locked:
        log.warning("hub staff account %s locked after %s failed sign-ins", staff_id,
                    MAX_FAILURES)
    return locked


# -- the session secret ---------------------------------------------------------------------

def session_secret(storage: Storage, now: datetime | None = None) -> str:
    """The key that signs staff session cookies: made once, shared by every worker."""
    with storage.transaction(exclusive=False) as tx:
        tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (key) DO NOTHING",
                   (SECRET_KEY, secrets.token_urlsafe(SECRET_BYTES),
                    to_instant(now or utc_now())))
        return str(tx.scalar("SELECT value FROM hub_state WHERE key = ?", (SECRET_KEY,)))
