"""Who may do what on a node. Checked in the services, so every surface (API, screens, CLI)
enforces the same rules; least knowledge: a pharmacist never sees diagnoses."""

from __future__ import annotations

from dataclasses import dataclass

from sync_protocol.rights import ROLE_PERMISSIONS, STAFF_ROLES

from ..errors import Forbidden

# The table is shared with the hub (sync_protocol.rights): one rule set for node and hub.
ROLES = STAFF_ROLES
PERMISSIONS = ROLE_PERMISSIONS


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
