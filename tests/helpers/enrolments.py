"""Who takes part in the sync tests: node roles as their certificates name them, the bundles a
provisioning store issues for them (as regional IT would with dmed-provision add-node), and
seeded node databases made once per session and copied for each node."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from edge_node.credentials import NodeCredentials, load_credentials
from edge_node.seed import seed_demo, seed_pharmacy
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from helpers.pki import (
    CLINIC_FACILITY,
    CLINIC_ID,
    PHARMACY_FACILITY,
    PHARMACY_ID,
    REGION_CODE,
    Pki,
    make_pki,
)
from provisioning.keystore import CaStore
from sync_protocol.certificates import NodeIdentity, NodeKind
from sync_protocol.trust_list import TrustList


@dataclass(frozen=True)
class Role:
    """A node identity: what its certificate says, and so what it seeds itself as."""

    name: str
    node_id: str
    facility_code: str
    kind: NodeKind
    region: str = REGION_CODE

    @property
    def identity(self) -> NodeIdentity:
        return NodeIdentity(self.node_id, self.facility_code, self.region, self.kind)


CLINIC = Role("clinic", CLINIC_ID, CLINIC_FACILITY, NodeKind.CLINIC)
PHARMACY = Role("pharmacy", PHARMACY_ID, PHARMACY_FACILITY, NodeKind.PHARMACY)
PHARMACY2 = Role("pharmacy2", "tas-pharmacy-0002", "TAS-APT-9", NodeKind.PHARMACY)
SAM_PHARMACY = Role("sam_pharmacy", "sam-pharmacy-0001", "SAM-APT-3", NodeKind.PHARMACY, "SAM")


class Enrolments:
    """Bundles issued by a provisioning store (helpers.pki.make_pki with a directory),
    as regional IT would issue them with dmed-provision add-node."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.ca = CaStore(pki.paths["store"])
        self.bundles: dict[str, Path] = {CLINIC.name: pki.paths["clinic_bundle"],
                                         PHARMACY.name: pki.paths["pharmacy_bundle"]}
        self._lock = threading.Lock()

    @classmethod
    def make(cls, directory: Path) -> Enrolments:
        return cls(make_pki(directory))

    def bundle(self, role: Role) -> Path:
        with self._lock:
            if role.name not in self.bundles:
                if role.region not in self.ca.region_codes():
                    self.ca.add_region(role.region, f"Region {role.region}")
                out = self.pki.paths["store"].parent / f"{role.name}-bundle.json"
                self.ca.add_node(role.region, role.node_id, role.facility_code, role.kind,
                                 out=out)
                self.bundles[role.name] = out
            return self.bundles[role.name]

    def credentials(self, role: Role) -> NodeCredentials:
        return load_credentials(self.bundle(role))

    def trust_list(self) -> TrustList:
        return self.ca.trust_list()

class NodeTemplates:
    """Seeded node databases, made once per session (seeding hashes PINs with argon2) and
    copied for each node. Each is seeded with its certificate's facility code and region,
    or the hub refuses its FacilityRegistered (central_hub.rights)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()

    def path(self, role: Role) -> Path:
        with self._lock:
            if role.name not in self._paths:
                self._paths[role.name] = self._make(role)
            return self._paths[role.name]

    def _make(self, role: Role) -> Path:
        path = self.directory / f"{role.name}.db"
        store = NodeStore(path)
        store.initialise(role.node_id)
        if role.kind is NodeKind.CLINIC:
            seed_demo(store, code=role.facility_code, region=role.region, pharmacist=False)
        else:
            seed_pharmacy(store, code=role.facility_code, region=role.region)
        confirm_clock(store, "init")
        store.reader().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        return path

    def copy(self, role: Role, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path(role), target)
        return target
