"""The node's own key, certificate and trust list, from its enrolment bundle.

Identity is made at provisioning (dmed-provision add-node), never baked into an SD image: the
bundle is copied onto the node by `dmed-node init --bundle` or named by DMED_NODE_BUNDLE.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TypeAlias

from sync_protocol.enrolment import Enrolment, read_enrolment

log = logging.getLogger(__name__)

# The node's credentials are exactly an enrolment: key, certificate, chain, trust list.
NodeCredentials: TypeAlias = Enrolment
BUNDLE_NAME = "enrolment"


def load_credentials(path: str | Path, password: bytes | None = None) -> NodeCredentials:
    return read_enrolment(path, password)


def install_bundle(source: str | Path, data_dir: Path, password: bytes | None = None) -> Path:
    """Copy an enrolment bundle beside the node database, keeping its private permissions.

    An encrypted key (issue 16) is decrypted with `password` and stored on the node as
    before: unencrypted, mode 0600."""
    source = Path(source)
    credentials = read_enrolment(source, password)  # refuse a broken bundle before copying
    target = data_dir / (BUNDLE_NAME + (".json" if source.is_file() else ""))
    if target.exists():
        raise FileExistsError(f"{target} exists: this node is already enrolled")
    if source.is_dir():
        shutil.copytree(source, target)
        target.chmod(0o700)
    else:
        shutil.copy2(source, target)
    for file in [target, *target.rglob("*")] if target.is_dir() else [target]:
        if file.is_file():
            file.chmod(0o600)
    if password is not None:
        _store_key_in_clear(target, credentials)
    log.info("installed enrolment bundle at %s", target)
    return target


def _store_key_in_clear(target: Path, credentials: NodeCredentials) -> None:
    """Replace the copied, encrypted key by the decrypted one (0600), as nodes keep it."""
    import json
    import os

    from cryptography.hazmat.primitives import serialization

    from sync_protocol.enrolment import BUNDLE_FILES
    pem = credentials.key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    if target.is_dir():
        path, data = target / BUNDLE_FILES["key"], pem
    else:
        doc = json.loads(target.read_text(encoding="utf-8"))
        doc["key"] = pem.decode("ascii")
        path, data = target, json.dumps(doc, sort_keys=True, indent=2).encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
