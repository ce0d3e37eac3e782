"""Putting a facility's people on its node (`dmed-node staff add`): the supported path after
enrolment, so a clinic put into service by the README's commands can prescribe.

Everything is checked before anything is written: the node has its provisioned facility; the
role is a staff role its kind has (sync_protocol.rights.ROLES_BY_KIND: a pharmacy has no
doctors); the name; the username (free, letters, digits, dots, underscores); the PIN (4 to 8
digits, and not one of the first guesses: one digit repeated or a straight run). A doctor also
gets a practitioner record of the node's own facility (a signed PractitionerRegistered event,
which reaches the hub and the kiosk's booking) and an account linked to it. The PIN is kept as
an argon2id hash only (services.staff). Every addition and every refusal is written to
staff_audit (node-local, never synced) with who did it; the PIN never is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sync_protocol.errors import ProtocolError
from sync_protocol.rights import STAFF_ROLES, role_allowed
from sync_protocol.timeutil import to_instant, utc_now

from ..errors import Conflict, NodeNotInitialised, ValidationFailed
from ..rights import own_facility
from ..store import NodeStore
from .access import SYSTEM
from .facilities import SPECIALTIES, register_practitioner
from .staff import USERNAME_LENGTH, check_pin, check_username, create_staff

log = logging.getLogger(__name__)

NAME_LENGTH = (3, 200)  # as patients' names (services.patients), and at least two letters
DIGIT_RUN = "0123456789"
MAX_AUDIT_DETAIL = 500


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    username: str
    role: str
    practitioner_id: str | None


def add_staff_member(store: NodeStore, *, username: str, full_name: str, role: str, pin: str,
                     by: str, specialty: str | None = None,
                     family_doctor: bool = False) -> StaffMember:
    """Add an account (and, for a doctor, their practitioner record); audited either way."""
    username = str(username or "").strip().lower()
    try:
        facility = own_facility(store.reader())
        if facility is None:
            raise NodeNotInitialised("This node has no facility yet: enrol it and run "
                                     "`dmed-node init` first")
        name = _check_name(full_name)
        _check_role(role, str(facility.kind), specialty, family_doctor)
        _check_username(store, username)
        check_new_pin(pin)
        practitioner_id = None
        if role == "doctor":
            practitioner_id = register_practitioner(
                store, SYSTEM, facility_id=facility.facility_id, full_name=name,
                specialty=specialty or "", is_family_doctor=family_doctor)
        staff_id = create_staff(store, SYSTEM, username=username, full_name=name, role=role,
                                pin=pin, practitioner_id=practitioner_id)
    except ProtocolError as e:
        _audit(store, by, "add", username, role, "refused", e.text)
        raise
    _audit(store, by, "add", username, role, "done",
           f"practitioner {practitioner_id}" if practitioner_id else "")
    log.info("staff account %s (%s) added by %s", username, role, by)
    return StaffMember(staff_id, username, role, practitioner_id)


def check_new_pin(pin: str) -> str:
    """A new PIN: 4 to 8 digits and not among the first guesses of anyone at the counter."""
    pin = check_pin(pin)
    if len(set(pin)) == 1 or pin in DIGIT_RUN or pin in DIGIT_RUN[::-1]:
        raise ValidationFailed("This PIN is too easy to guess (one digit repeated or a run "
                               "like 1234); choose another", field="pin", code="weak_pin")
    return pin


def staff_audit(store: NodeStore, limit: int = 200) -> list[dict]:
    rows = store.query("SELECT * FROM staff_audit ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def _check_name(full_name: str) -> str:
    name = " ".join(str(full_name or "").split())
    low, high = NAME_LENGTH
    if not low <= len(name) <= high or sum(c.isalpha() for c in name) < 2 or not all(
            c.isalpha() or c in " .-'ʻʼ‘’" for c in name):
        raise ValidationFailed("Full name must be %(low)s to %(high)s characters: letters, "
                               "spaces, dots, hyphens and apostrophes", field="full_name",
                               low=low, high=high)
    return name


def _check_role(role: str, kind: str, specialty: str | None, family_doctor: bool) -> None:
    if role not in STAFF_ROLES:
        raise ValidationFailed("Role must be one of %(roles)s", field="role",
                               roles=", ".join(STAFF_ROLES))
    if not role_allowed(role, kind):
        allowed = ", ".join(r for r in STAFF_ROLES if role_allowed(r, kind))
        raise ValidationFailed("A %(kind)s node has no %(role)s accounts; its roles are "
                               "%(allowed)s", field="role", code="not_permitted", kind=kind,
                               role=role, allowed=allowed)
    if role == "doctor" and specialty not in SPECIALTIES:
        raise ValidationFailed("A doctor needs a specialty, one of %(specialties)s",
                               field="specialty", specialties=", ".join(SPECIALTIES))
    if role != "doctor" and (specialty or family_doctor):
        raise ValidationFailed("Only a doctor has a specialty", field="specialty")


def _check_username(store: NodeStore, username: str) -> None:
    check_username(username)
    if store.one("SELECT 1 FROM staff WHERE username = ?", (username,)):
        raise Conflict("Username %(username)s is taken", field="username", username=username)


def _audit(store: NodeStore, by: str, action: str, username: str, role: str, outcome: str,
           detail: str) -> None:
    with store.transaction() as tx:
        tx.conn.execute(
            "INSERT INTO staff_audit (at, actor, action, username, role, outcome, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (to_instant(utc_now()), str(by)[:200], action, username[:USERNAME_LENGTH],
             str(role or "")[:32], outcome, detail[:MAX_AUDIT_DETAIL]))
