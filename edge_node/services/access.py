"""Who may do what on a node. Checked in the services, so every surface (API, screens, CLI)
enforces the same rules; least knowledge: a pharmacist never sees diagnoses."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Forbidden

ROLES = ("registrar", "doctor", "pharmacist", "admin")

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"manage_facility", "manage_staff", "manage_schedule", "view_patient",
                        "view_schedule", "export_log"}),
    "registrar": frozenset({"register_patient", "edit_patient", "view_patient", "book",
                            "check_in", "view_schedule"}),
    "doctor": frozenset({"register_patient", "edit_patient", "view_patient", "book",
                         "check_in", "complete_visit", "view_schedule", "read_card",
                         "write_clinical", "prescribe"}),
    "pharmacist": frozenset({"find_patient_for_dispensing", "verify_prescription", "dispense"}),
    # A patient at the kiosk acts on their own record only; the services check whose.
    "patient": frozenset({"book_own", "read_own_card", "view_schedule"}),
}


@dataclass(frozen=True)
class Actor:
    """The signed-in person a service acts for; its id goes into audit records."""

    actor_id: str
    role: str
    display_name: str = ""
    practitioner_id: str | None = None
    patient_id: str | None = None

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden("Your role (%(role)s) may not do this: %(permission)s",
                            role=self.role, permission=permission)


SYSTEM = Actor(actor_id="system", role="admin", display_name="system")
