"""The DMED certificate profile, read side: what a node certificate says and what a chain
check concludes. Shared by sync_protocol.trust_list and sync_protocol.enrolment.

How a node certificate carries its identity (read by identity_of):

    subject CN                            node id
    subject attribute FACILITY_CODE_OID   facility code     (UTF8String, private OIDs below)
    subject attribute REGION_CODE_OID     region code; the region certificate's subject has
                                          the same attribute and the two must be equal
    subject attribute NODE_KIND_OID       "clinic" or "pharmacy"
    extended key usage clientAuth         may sign sync requests (every node)
    extended key usage EKU_PRESCRIBE      may sign prescriptions (clinic nodes only)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync_protocol.errors import TrustError

log = logging.getLogger(__name__)

# Our private arc: OID 2.25.<UUID as integer> (ITU-T X.667) needs no registration and cannot
# collide with anyone's. UUID e9036635-1cc9-40e5-844b-ddacd022622d, generated once for DMED Edge.
DMED_ARC = "2.25.309727772922242069425898227307515109933"
EKU_PRESCRIBE = x509.ObjectIdentifier(DMED_ARC + ".1.1")  # "may sign prescriptions"
EKU_SYNC = ExtendedKeyUsageOID.CLIENT_AUTH  # signs sync requests to the hub
FACILITY_CODE_OID = x509.ObjectIdentifier(DMED_ARC + ".2.1")
REGION_CODE_OID = x509.ObjectIdentifier(DMED_ARC + ".2.2")
NODE_KIND_OID = x509.ObjectIdentifier(DMED_ARC + ".2.3")

# 8 bytes keep the QR code short; among 10^4 node certs a random collision has odds ~1e-12.
KID_LENGTH = 8

# CN is at most 64 characters (RFC 5280 ub-common-name); ids travel in URLs and file names.
NODE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FACILITY_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
REGION_CODE_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,15}")  # e.g. TAS or UZ-TK

_SHA256 = hashes.SHA256()

# Reasons a chain is refused (ChainVerdict.reason and ChainRefused.code).
UNKNOWN_CERT = "unknown_cert"
UNKNOWN_ISSUER = "unknown_issuer"
BAD_CHAIN_SIGNATURE = "bad_chain_signature"
ISSUER_NOT_A_CA = "issuer_not_a_ca"
REGION_MISMATCH = "region_mismatch"
NOT_A_NODE_CERT = "not_a_node_cert"
REVOKED = "revoked"
CERT_EXPIRED = "cert_expired"
CERT_NOT_YET_VALID = "cert_not_yet_valid"
MISSING_EKU = "missing_eku"

REASON_MESSAGES = {
    UNKNOWN_CERT: "No certificate with key id %(kid)s is in the trust list.",
    UNKNOWN_ISSUER: "Certificate %(kid)s was not issued by a region and root in the trust list.",
    BAD_CHAIN_SIGNATURE: "A signature in the chain of certificate %(kid)s does not verify.",
    ISSUER_NOT_A_CA: "An issuer in the chain of certificate %(kid)s may not issue certificates.",
    REGION_MISMATCH: "Certificate %(kid)s names a region other than the region that issued it.",
    NOT_A_NODE_CERT: "Certificate %(kid)s is not a DMED node certificate.",
    REVOKED: "The %(which)s certificate in the chain of %(kid)s has been revoked.",
    CERT_EXPIRED: "The %(which)s certificate in the chain of %(kid)s has expired.",
    CERT_NOT_YET_VALID: "The %(which)s certificate in the chain of %(kid)s is not yet valid.",
    MISSING_EKU: "Certificate %(kid)s is not allowed to do this.",
}


class NodeKind(StrEnum):
    CLINIC = "clinic"
    PHARMACY = "pharmacy"


class NotANodeCert(TrustError, ValueError):
    code = NOT_A_NODE_CERT


class InvalidNodeIdentity(TrustError, ValueError):
    code = "invalid_node_identity"


class ChainRefused(TrustError):
    """Raised by the require_* methods; the verdict says why."""

    def __init__(self, verdict: ChainVerdict) -> None:
        self.verdict = verdict
        super().__init__(REASON_MESSAGES[verdict.reason or ""], code=verdict.reason,
                         kid=verdict.kid.hex(), which=verdict.which or "node")


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    facility_code: str
    region_code: str
    kind: NodeKind

    def __post_init__(self) -> None:
        for field, pattern in (("node_id", NODE_ID_RE), ("facility_code", FACILITY_CODE_RE),
                               ("region_code", REGION_CODE_RE)):
            value = getattr(self, field)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise InvalidNodeIdentity("%(name)s %(value)r does not match %(pattern)s.",
                                          field=field, name=field, value=value,
                                          pattern=pattern.pattern)
        try:
            object.__setattr__(self, "kind", NodeKind(self.kind))
        except ValueError as e:
            raise InvalidNodeIdentity("Node kind %(value)r is neither clinic nor pharmacy.",
                                      field="kind", value=self.kind) from e

    def subject(self) -> x509.Name:
        """The subject name a node certificate for this identity carries."""
        return x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, self.node_id),
            x509.NameAttribute(FACILITY_CODE_OID, self.facility_code),
            x509.NameAttribute(REGION_CODE_OID, self.region_code),
            x509.NameAttribute(NODE_KIND_OID, str(self.kind)),
        ])


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    kid: bytes
    reason: str | None = None  # one of the reason codes above when not ok
    which: str | None = None  # "node", "region" or "root": where the chain failed
    identity: NodeIdentity | None = None
    certificate: x509.Certificate | None = None
    public_key: CertificatePublicKeyTypes | None = None  # parsed once, for signatures

    @property
    def message(self) -> str:
        return "" if self.ok else ChainRefused(self).text

    def raise_if_refused(self) -> ChainVerdict:
        if not self.ok:
            raise ChainRefused(self)
        return self


def kid_of(cert: x509.Certificate) -> bytes:
    """Key id: the first 8 bytes of SHA-256 of the certificate's DER (as in the QR code)."""
    return cert_digest(cert)[:KID_LENGTH]


def cert_digest(cert: x509.Certificate) -> bytes:
    """SHA-256 of the DER encoding: identifies one exact certificate."""
    return cert.fingerprint(_SHA256)


def identity_of(cert: x509.Certificate) -> NodeIdentity:
    """The node identity a certificate carries; NotANodeCert if it carries none."""
    def one(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        if len(values) != 1:
            raise NotANodeCert("Certificate %(subject)s carries no DMED node identity.",
                               subject=cert.subject.rfc4514_string())
        return str(values[0].value)

    fields = [one(oid) for oid in (NameOID.COMMON_NAME, FACILITY_CODE_OID, REGION_CODE_OID,
                                   NODE_KIND_OID)]
    try:
        return NodeIdentity(*fields)  # type: ignore[arg-type]  # kind is checked there
    except InvalidNodeIdentity as e:
        raise NotANodeCert("Certificate %(subject)s carries a malformed node identity.",
                           subject=cert.subject.rfc4514_string()) from e


def region_code_of(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(REGION_CODE_OID)
    return str(values[0].value) if len(values) == 1 else None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def extended_key_usages(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Does `issuer`'s key verify `cert`'s signature (names and signature only)?"""
    try:
        cert.verify_directly_issued_by(issuer)  # ECDSA, Ed25519, RSA
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def may_issue(issuer: x509.Certificate, below: int) -> bool:
    """A CA whose path length allows `below` more CAs under it and that may sign certs."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    pathlen_ok = constraints.path_length is None or constraints.path_length >= below
    return constraints.ca and pathlen_ok and usage.key_cert_sign


def is_node_leaf(cert: x509.Certificate) -> bool:
    """Shaped like a node certificate: not a CA, and allowed to sign."""
    if is_ca(cert):
        return False
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        return True  # no key usage extension means no restriction

