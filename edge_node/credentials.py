"""The node's own key, certificate and trust list, from its enrolment bundle.

Identity is made at provisioning (dmed-provision add-node), never baked into an SD image: the
bundle is copied onto the node by `dmed-node init --bundle` or named by DMED_NODE_BUNDLE.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sync_protocol.enrolment import Enrolment, read_enrolment

log = logging.getLogger(__name__)

# The node's credentials are exactly an enrolment: key, certificate, chain, trust list.
NodeCredentials = Enrolment
BUNDLE_NAME = "enrolment"


def load_credentials(path: str | Path) -> NodeCredentials:
    return read_enrolment(path)


def install_bundle(source: str | Path, data_dir: Path) -> Path:
    """Copy an enrolment bundle beside the node database, keeping its private permissions."""
    source = Path(source)
    read_enrolment(source)  # refuse a broken bundle before copying anything
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
    log.info("installed enrolment bundle at %s", target)
    return target
