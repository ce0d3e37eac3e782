"""Which screens the chooser at /ui/ offers: only those that fit this node's kind and, once a
person has signed in, their role (issue 12, point 8). A tile that would end in "may not do
this" is not shown at all."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from edge_node.services.access import PERMISSIONS

log = logging.getLogger(__name__)

CLINIC, PHARMACY = "clinic", "pharmacy"


@dataclass(frozen=True)
class Screen:
    name: str
    endpoint: str
    title: object  # lazy translated text
    blurb: object


SCREENS = (
    Screen("kiosk", "kiosk.start", _l("Reception kiosk"),
           _l("For patients: book, check in, see your visits")),
    Screen("desk", "desk.home", _l("Staff workstation"),
           _l("For registrars and doctors: sign in with your PIN")),
    Screen("counter", "counter.home", _l("Pharmacy counter"),
           _l("For pharmacists: scan, check and dispense")),
)


def _fits_kind(screen: str, kind: str | None, roles_present: frozenset[str]) -> bool:
    if kind is None:  # not seeded yet: nothing to judge by
        return True
    if screen in ("kiosk", "desk"):  # patients, schedules and cards live on clinics
        return kind == CLINIC
    # The counter: every pharmacy; a clinic only when it has its own pharmacist (a
    # stand-alone clinic that dispenses; beside a hub, dispensing is the pharmacies').
    return kind == PHARMACY or "pharmacist" in roles_present


def _fits_role(screen: str, role: str | None) -> bool:
    if role is None:  # nobody signed in yet: the screen asks who
        return True
    allowed = PERMISSIONS.get(role, frozenset())
    if screen == "counter":
        return "verify_prescription" in allowed
    if screen == "desk":
        return role != "pharmacist"  # a pharmacist's workstation is the counter
    return role in ("registrar", "admin")  # who sets a kiosk terminal up


def offered(kind: str | None, role: str | None, roles_present: frozenset[str]) -> list[Screen]:
    """The screens to offer, in the chooser's order. An administrator keeps the workstation on
    any node (it is where they sign in)."""
    return [s for s in SCREENS
            if (_fits_kind(s.name, kind, roles_present) or (s.name == "desk" and role == "admin"))
            and _fits_role(s.name, role)]
