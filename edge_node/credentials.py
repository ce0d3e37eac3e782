"""The node's own key, certificate and trust list, from its enrolment bundle.

Identity is made at provisioning (dmed-provision add-node), never baked into an SD image: the
bundle is copied onto the node and named by DMED_NODE_BUNDLE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from sync_protocol.enrolment import read_enrolment
from sync_protocol.trust import TrustList, identity_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeCredentials:
    key: Any  # never logged, never serialised by this class
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    trust_list: TrustList

    def __repr__(self) -> str:
        return f"NodeCredentials(node={identity_of(self.cert).node_id!r})"

    @property
    def identity(self):
        return identity_of(self.cert)

    @classmethod
    def load(cls, path: str | Path) -> NodeCredentials:
        enrolment = read_enrolment(path)
        log.info("loaded enrolment of node %s", identity_of(enrolment.cert).node_id)
        return cls(enrolment.key, enrolment.cert, tuple(enrolment.chain), enrolment.trust_list)
