"""The region's backup key: nodes seal their backups to its public half (edge_node.backup).

regions/<CODE>/backup-key.pem (0600, encrypted with the store's passphrase when set) and
backup-key.pub.pem. The public half rides with every enrolment answer; the private half
opens a node's backup at restore and never goes to a node.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning.errors import AlreadyExists
from provisioning.keystore import CaStore, write_private_key, write_public

log = logging.getLogger(__name__)

PRIVATE_FILE = "backup-key.pem"
PUBLIC_FILE = "backup-key.pub.pem"


def _dir(store: CaStore, region: str) -> Path:
    store.region(region)  # NotFound for a region not in the store
    return store.directory / "regions" / region


def add_backup_key(store: CaStore, region: str) -> bytes:
    """Make the region's backup key pair; returns the public key (PEM)."""
    directory = _dir(store, region)
    if (directory / PRIVATE_FILE).exists():
        raise AlreadyExists("Region %(region)s has a backup key already.", region=region)
    key = ec.generate_private_key(ec.SECP256R1())
    write_private_key(directory / PRIVATE_FILE, key, password=store._password)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    write_public(directory / PUBLIC_FILE, public)
    log.info("made the backup key of region %s", region)
    return public


def public_backup_key(store: CaStore, region: str) -> bytes | None:
    path = store.directory / "regions" / region / PUBLIC_FILE
    return path.read_bytes() if path.exists() else None
