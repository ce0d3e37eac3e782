"""The trust chain, verification side: national root -> region -> node (X.509).

One import for everything trust: the certificate profile (sync_protocol.certificates: node
identity, key ids, chain verdicts) and the trust list (sync_protocol.trust_list). Both live in
their own modules; this one only gathers them, so `from sync_protocol.trust import TrustList,
kid_of` keeps working. Reading a node's enrolment bundle is sync_protocol.enrolment.
"""

from __future__ import annotations

import logging

from sync_protocol.certificates import (
    BAD_CHAIN_SIGNATURE,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    DMED_ARC,
    EKU_PRESCRIBE,
    EKU_SYNC,
    FACILITY_CODE_OID,
    FACILITY_CODE_RE,
    ISSUER_NOT_A_CA,
    KID_LENGTH,
    MISSING_EKU,
    NODE_ID_RE,
    NODE_KIND_OID,
    NOT_A_NODE_CERT,
    REASON_MESSAGES,
    REGION_CODE_OID,
    REGION_CODE_RE,
    REGION_MISMATCH,
    REVOKED,
    UNKNOWN_CERT,
    UNKNOWN_ISSUER,
    ChainRefused,
    ChainVerdict,
    InvalidNodeIdentity,
    NodeIdentity,
    NodeKind,
    NotANodeCert,
    extended_key_usages,
    identity_of,
    is_ca,
    kid_of,
    region_code_of,
)
from sync_protocol.errors import TrustError
from sync_protocol.trust_list import (
    CHAIN_CACHE_SIZE,
    MAX_REASON_LENGTH,
    PRESCRIPTION_ID_RE,
    TRUST_LIST_FORMAT,
    TRUST_LIST_VERSION,
    Cancellation,
    MergeResult,
    Revocation,
    TrustList,
    TrustListInvalid,
    utc_seconds,
)

log = logging.getLogger(__name__)

__all__ = [
    # certificate profile
    "BAD_CHAIN_SIGNATURE", "CERT_EXPIRED", "CERT_NOT_YET_VALID", "DMED_ARC", "EKU_PRESCRIBE",
    "EKU_SYNC", "FACILITY_CODE_OID", "FACILITY_CODE_RE", "ISSUER_NOT_A_CA", "KID_LENGTH",
    "MISSING_EKU", "NODE_ID_RE", "NODE_KIND_OID", "NOT_A_NODE_CERT", "REASON_MESSAGES",
    "REGION_CODE_OID", "REGION_CODE_RE", "REGION_MISMATCH", "REVOKED", "UNKNOWN_CERT",
    "UNKNOWN_ISSUER", "ChainRefused", "ChainVerdict", "InvalidNodeIdentity", "NodeIdentity",
    "NodeKind", "NotANodeCert", "TrustError", "extended_key_usages", "identity_of", "is_ca",
    "kid_of", "region_code_of",
    # trust list
    "CHAIN_CACHE_SIZE", "MAX_REASON_LENGTH", "PRESCRIPTION_ID_RE", "TRUST_LIST_FORMAT",
    "TRUST_LIST_VERSION", "Cancellation", "MergeResult", "Revocation", "TrustList",
    "TrustListInvalid", "utc_seconds",
]
