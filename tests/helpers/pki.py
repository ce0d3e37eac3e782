"""A ready-made trust chain for tests: root -> region TAS -> a clinic and a pharmacy node.

    from helpers.pki import make_pki      # tests/ is on sys.path (pytest rootdir imports)
    pki = make_pki()                      # in memory
    pki = make_pki(tmp_path)              # the same, issued through a CaStore in tmp_path/ca
    pki.trust_list.verify_kid(pki.clinic.kid, pki.now, require_eku=EKU_PRESCRIBE)

Certificates are issued at `now` (default: the real time, so they verify at datetime.now(UTC)
for the next two years); pass `now` to pin it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from provisioning.keystore import CaStore
from provisioning.pki import Credential, KeyAlgorithm, create_node, create_region, create_root
from sync_protocol.certificates import NodeKind
from sync_protocol.trust_list import TrustList

REGION_CODE = "TAS"
CLINIC_ID = "tas-clinic-0001"
CLINIC_FACILITY = "TAS-POLY-12"
PHARMACY_ID = "tas-pharmacy-0001"
PHARMACY_FACILITY = "TAS-APT-7"


@dataclass
class Pki:
    now: datetime  # the time everything was issued at
    root: Credential
    region: Credential
    clinic: Credential
    pharmacy: Credential
    trust_list: TrustList
    # Only with a directory: "store" (CaStore dir), "clinic_bundle" (a directory),
    # "pharmacy_bundle" (a .json file), "trust_list" (JSON file).
    paths: dict[str, Path] = field(default_factory=dict)

    def node(self, kind: NodeKind | str) -> Credential:
        return self.clinic if NodeKind(kind) is NodeKind.CLINIC else self.pharmacy


def make_pki(tmp_path: Path | None = None, *, now: datetime | None = None,
             algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256) -> Pki:
    now = (datetime.now(UTC) if now is None else now).replace(microsecond=0)
    if tmp_path is None:
        root = create_root("DMED Test Root", algorithm=algorithm, now=now)
        region = create_region(root, REGION_CODE, "Toshkent shahri", algorithm=algorithm,
                               now=now)
        clinic = create_node(region, CLINIC_ID, CLINIC_FACILITY, NodeKind.CLINIC,
                             algorithm=algorithm, now=now)
        pharmacy = create_node(region, PHARMACY_ID, PHARMACY_FACILITY, NodeKind.PHARMACY,
                               algorithm=algorithm, now=now)
        trust_list = TrustList([root.cert], [region.cert, clinic.cert, pharmacy.cert])
        return Pki(now, root, region, clinic, pharmacy, trust_list)

    paths = {"store": tmp_path / "ca", "clinic_bundle": tmp_path / "clinic-bundle",
             "pharmacy_bundle": tmp_path / "pharmacy-bundle.json",
             "trust_list": tmp_path / "trust-list.json"}
    store = CaStore(paths["store"])
    root = store.init_root("DMED Test Root", algorithm=algorithm, now=now)
    region = store.add_region(REGION_CODE, "Toshkent shahri", algorithm=algorithm, now=now)
    clinic = store.add_node(REGION_CODE, CLINIC_ID, CLINIC_FACILITY, NodeKind.CLINIC,
                            out=paths["clinic_bundle"], algorithm=algorithm, now=now).node
    pharmacy = store.add_node(REGION_CODE, PHARMACY_ID, PHARMACY_FACILITY, NodeKind.PHARMACY,
                              out=paths["pharmacy_bundle"], algorithm=algorithm, now=now).node
    trust_list = store.trust_list()
    paths["trust_list"].write_text(trust_list.to_json(indent=2), encoding="utf-8")
    return Pki(now, root, region, clinic, pharmacy, trust_list, paths)
