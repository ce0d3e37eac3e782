"""The facts a list of conflicts refers to, read at once for the words of the fleet pages:
prescription numbers and dispenses, facility names (also of the nodes that did things),
patients by their MED-ID, doctors by name and the appointments of double bookings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sync_protocol.event_names import PRACTITIONER_REGISTERED

from .fleet import facility_names
from .storage import Tx

log = logging.getLogger(__name__)


@dataclass
class Facts:
    numbers: dict[str, str] = field(default_factory=dict)  # prescription id -> number
    dispenses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by rx, in order
    places: dict[str, str] = field(default_factory=dict)  # facility id -> name
    node_places: dict[str, str] = field(default_factory=dict)  # node id -> its facility's name
    patients: dict[str, str] = field(default_factory=dict)  # patient id -> MED-ID
    doctors: dict[str, str] = field(default_factory=dict)  # practitioner id -> full name
    appointments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, tx: Tx, conflicts: list[dict[str, Any]]) -> Facts:
        facts = cls()
        details = [c["details"] for c in conflicts]
        rx_ids = {d[k] for d in details for k in ("prescription_id",) if d.get(k)}
        rx_ids |= {p for d in details for p in d.get("prescription_ids") or []}
        for row in tx.query_in("SELECT prescription_id, number FROM hub_prescriptions WHERE "
                               "prescription_id IN ({ids})", rx_ids):
            facts.numbers[row["prescription_id"]] = row["number"]
        for row in tx.query_in("SELECT prescription_id, dispense_id, quantity, product, "
                               "facility_id, dispensed_at, hlc FROM hub_dispenses WHERE "
                               "prescription_id IN ({ids}) ORDER BY hlc", rx_ids):
            facts.dispenses.setdefault(row["prescription_id"], []).append(row)
        claims = [d[k] for d in details for k in ("winner", "loser")
                  if isinstance(d.get(k), dict)]
        for row in tx.query_in("SELECT appointment_id, facility_id FROM hub_appointments "
                               "WHERE appointment_id IN ({ids})",
                               {c["appointment_id"] for c in claims if c.get("appointment_id")}):
            facts.appointments[row["appointment_id"]] = row
        patients = {d["patient_id"] for d in details if d.get("patient_id")}
        patients |= {c["patient_id"] for c in claims if c.get("patient_id")}
        for row in tx.query_in("SELECT patient_id, med_id FROM hub_patients WHERE patient_id "
                               "IN ({ids})", patients):
            facts.patients[row["patient_id"]] = row["med_id"]
        facts.doctors = _registered_names(tx, {d["practitioner_id"] for d in details
                                               if d.get("practitioner_id")})
        origins = {d.get(k) for d in details for k in ("dispensed_by", "cancelled_by",
                                                        "signer_node")}
        origins |= {d[k].get("origin") for d in details for k in ("earlier", "later")
                    if isinstance(d.get(k), dict)}
        origins |= {c.get("origin") for c in claims}
        codes = {r["node_id"]: r["facility_code"] for r in tx.query_in(
            "SELECT node_id, facility_code FROM nodes WHERE node_id IN ({ids})",
            {o for o in origins if o})}
        by_code = facility_names(tx, list(codes.values()), by="code")
        facts.node_places = {n: by_code.get(code, code) for n, code in codes.items()}
        places = {f for c in conflicts for f in c["facility_ids"] if f}
        places |= {d["facility_id"] for rows in facts.dispenses.values() for d in rows}
        places |= {a["facility_id"] for a in facts.appointments.values()}
        places |= {d["facility_id"] for d in details if d.get("facility_id")}
        places |= {d["later"]["value"] for d in details if d.get("field") == "facility_id"
                   and isinstance(d.get("later"), dict) and d["later"].get("value")}
        places |= {d["earlier"]["value"] for d in details if d.get("field") == "facility_id"
                   and isinstance(d.get("earlier"), dict) and d["earlier"].get("value")}
        facts.places = facility_names(tx, list(places), by="id")
        return facts

    def place(self, facility_id: str | None) -> str:
        return self.places.get(facility_id or "", facility_id or "—")

    def node_place(self, node_id: str | None) -> str:
        return self.node_places.get(node_id or "", node_id or "—")

    def patient(self, patient_id: str | None) -> str:
        return self.patients.get(patient_id or "") or patient_id or "—"

    def doctor(self, practitioner_id: str | None) -> str:
        return self.doctors.get(practitioner_id or "", practitioner_id or "—")

    def dispense(self, dispense_id: str | None) -> dict[str, Any] | None:
        return next((d for rows in self.dispenses.values() for d in rows
                     if d["dispense_id"] == dispense_id), None) if dispense_id else None


def _registered_names(tx: Tx, practitioner_ids: set[str]) -> dict[str, str]:
    """Doctors' names as registered (PractitionerRegistered, by its subject)."""
    names: dict[str, str] = {}
    for row in tx.query_in("SELECT subject_id, payload FROM events WHERE subject_id IN ({ids}) "  # noqa: S608 - event-type constants
                           f"AND type = '{PRACTITIONER_REGISTERED}' ORDER BY position",
                           practitioner_ids):
        payload = row["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        names[row["subject_id"]] = payload.get("full_name") or row["subject_id"]
    return names
