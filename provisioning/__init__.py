"""Keys and certificates for DMED Edge: national root, regions, nodes, enrolment bundles.

Library first (pki issues in memory, keystore puts things on disk); `dmed-provision` is a
thin CLI on top. Verification lives in sync_protocol.certificates and sync_protocol.trust_list,
shared with nodes and the hub; the bundle format and its readers live in
sync_protocol.enrolment, which nodes use too.
"""

from provisioning.errors import (
    AlreadyExists,
    InvalidRequest,
    KeystoreError,
    NotFound,
    ProvisioningError,
)
from provisioning.keystore import (
    CaStore,
    read_bundle,
    read_certificates,
    read_private_key,
    write_bundle,
    write_certificates,
    write_private_key,
)
from provisioning.pki import (
    NODE_VALIDITY,
    REGION_VALIDITY,
    ROOT_VALIDITY,
    Credential,
    EnrolmentBundle,
    KeyAlgorithm,
    create_node,
    create_region,
    create_root,
    make_bundle,
    revoke,
)

__all__ = [
    "NODE_VALIDITY", "REGION_VALIDITY", "ROOT_VALIDITY", "AlreadyExists", "CaStore",
    "Credential", "EnrolmentBundle", "InvalidRequest", "KeyAlgorithm", "KeystoreError",
    "NotFound", "ProvisioningError", "create_node", "create_region", "create_root",
    "make_bundle", "read_bundle", "read_certificates", "read_private_key", "revoke",
    "write_bundle", "write_certificates", "write_private_key",
]
