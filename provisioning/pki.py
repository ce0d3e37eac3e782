"""Issuing: national root, regional CAs, node certificates, revocation, enrolment bundles.

Everything here works in memory; provisioning.keystore puts it on disk. The certificate
profile (what verification in sync_protocol.certificates expects):

    root    CA, pathlen 1, keyCertSign + cRLSign, 20 years, self-signed
    region  CA, pathlen 0, keyCertSign + cRLSign, 10 years, subject carries REGION_CODE_OID
    node    not a CA, digitalSignature, 2 years; subject = NodeIdentity.subject();
            EKU clientAuth (sync requests) and, for clinics only, EKU_PRESCRIBE

A node's key and identity are made here, when the node is enrolled, never baked into an image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.errors import InvalidRequest
from sync_protocol.certificates import (
    EKU_PRESCRIBE,
    EKU_SYNC,
    REGION_CODE_OID,
    REGION_CODE_RE,
    ChainVerdict,
    NodeIdentity,
    NodeKind,
    identity_of,
    is_ca,
    kid_of,
    region_code_of,
)
from sync_protocol.enrolment import PrivateKey
from sync_protocol.trust_list import Revocation, TrustList

log = logging.getLogger(__name__)

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# Validity in days, leap days included. A root outlives many regional key rotations; a node
# key lives on a device that can be stolen, so it dies on its own within two years.
ROOT_VALIDITY = timedelta(days=7305)  # 20 years
REGION_VALIDITY = timedelta(days=3653)  # 10 years
NODE_VALIDITY = timedelta(days=731)  # 2 years
# not_before is set back a little: a freshly enrolled Pi without a battery clock may lag.
CLOCK_SKEW = timedelta(minutes=10)
ROOT_PATH_LENGTH = 1  # root -> region -> node: one CA below the root
REGION_PATH_LENGTH = 0  # a region certifies nodes only
MAX_NAME_LENGTH = 64  # RFC 5280 upper bound for a common name


class KeyAlgorithm(StrEnum):
    EC_P256 = "ec-p256"  # ECDSA P-256: prescriptions are signed ES256
    ED25519 = "ed25519"


@dataclass(frozen=True)
class Credential:
    """A private key, its certificate, and the issuer chain up to the root (nearest first)."""

    key: PrivateKey = field(repr=False)
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if self.key.public_key() != self.cert.public_key():
            raise InvalidRequest("The private key does not belong to certificate %(kid)s.",
                                 kid=kid_of(self.cert).hex())

    @property
    def kid(self) -> bytes:
        return kid_of(self.cert)

    @property
    def identity(self) -> NodeIdentity:
        """The node identity (NotANodeCert for a root or region credential)."""
        return identity_of(self.cert)

    @property
    def region_code(self) -> str | None:
        return region_code_of(self.cert)

    @property
    def is_root(self) -> bool:
        return is_ca(self.cert) and self.cert.issuer == self.cert.subject


@dataclass(frozen=True)
class EnrolmentBundle:
    """What a new node receives: its key, certificate and chain, and the current trust list."""

    node: Credential
    trust_list: TrustList
    facility: dict | None = None  # the region's signed facility record, when provisioned

    @property
    def identity(self) -> NodeIdentity:
        return self.node.identity

    def verify(self, now: datetime) -> ChainVerdict:
        """The node's own check on first boot: does its certificate chain to a root it holds?"""
        return self.trust_list.verify_chain(self.node.cert, now)


def generate_key(algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256) -> PrivateKey:
    if KeyAlgorithm(algorithm) is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def create_root(name: str, *, algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
                now: datetime | None = None) -> Credential:
    """A new national root: a fresh key and its self-signed certificate."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _name(name))])
    key = generate_key(algorithm)
    cert = _issue(subject, key, None, ROOT_VALIDITY, _ca_extensions(ROOT_PATH_LENGTH), now)
    log.info("created root %s (kid %s)", name, kid_of(cert).hex())
    return Credential(key, cert)


def create_region(root: Credential, region_code: str, name: str, *,
                  algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
                  now: datetime | None = None) -> Credential:
    """A regional CA certified by the root; it may certify nodes of `region_code` only."""
    if not root.is_root:
        raise InvalidRequest("Only the root may certify a region.")
    if not isinstance(region_code, str) or not REGION_CODE_RE.fullmatch(region_code):
        raise InvalidRequest("Region code %(value)r does not match %(pattern)s.",
                             field="region_code", value=region_code,
                             pattern=REGION_CODE_RE.pattern)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _name(name)),
                         x509.NameAttribute(REGION_CODE_OID, region_code)])
    key = generate_key(algorithm)
    cert = _issue(subject, key, root, REGION_VALIDITY, _ca_extensions(REGION_PATH_LENGTH), now)
    log.info("created region %s (kid %s)", region_code, kid_of(cert).hex())
    return Credential(key, cert, (root.cert,))


def create_node(region: Credential, node_id: str, facility_code: str, kind: NodeKind | str,
                *, algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
                now: datetime | None = None) -> Credential:
    """A node key and certificate issued by a region; only clinics may sign prescriptions."""
    if region.region_code is None or region.is_root or not is_ca(region.cert):
        raise InvalidRequest("Only a region may certify a node.")
    identity = NodeIdentity(node_id, facility_code, region.region_code, kind)  # type: ignore[arg-type]
    key = generate_key(algorithm)
    cert = certify_node(region, identity, key.public_key(), now=now)
    return Credential(key, cert, (region.cert, *region.chain))


def certify_node(region: Credential, identity: NodeIdentity, public_key: PublicKey, *,
                 now: datetime | None = None) -> x509.Certificate:
    """A node certificate for a public key made elsewhere (on the node, sent in a CSR)."""
    if region.region_code is None or region.is_root or not is_ca(region.cert):
        raise InvalidRequest("Only a region may certify a node.")
    if identity.region_code != region.region_code:
        raise InvalidRequest("Region %(region)s may not certify a node of region %(other)s.",
                             field="region", region=region.region_code,
                             other=identity.region_code)
    usages = [EKU_SYNC] + ([EKU_PRESCRIBE] if identity.kind is NodeKind.CLINIC else [])
    extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage(usages), False),
    ]
    cert = _issue(identity.subject(), public_key, region, NODE_VALIDITY, extensions, now)
    log.info("certified %s node %s of facility %s (kid %s)", identity.kind, identity.node_id,
             identity.facility_code, kid_of(cert).hex())
    return cert


def revoke(trust_list: TrustList, cert: x509.Certificate, reason: str,
           now: datetime) -> Revocation:
    """Revoke `cert` in `trust_list` for good (a region takes every node under it along).

    The certificate is added to the list too, so a verifier meeting it answers "revoked"
    rather than "unknown".
    """
    if not (is_ca(cert) and cert.issuer == cert.subject):
        trust_list.add_certificate(cert)
    return trust_list.revoke(cert, now, reason)


def make_bundle(node: Credential, trust_list: TrustList,
                facility: dict | None = None) -> EnrolmentBundle:
    """An enrolment bundle holding a copy of `trust_list` with the node's own chain added."""
    copy = TrustList.from_dict(trust_list.to_dict())
    for cert in (node.cert, *node.chain):
        if not (is_ca(cert) and cert.issuer == cert.subject):
            copy.add_certificate(cert)
    return EnrolmentBundle(node, copy, facility)


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest("A name must be 1 to %(max)s characters.", field="name",
                             max=MAX_NAME_LENGTH)
    return name.strip()


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def _ca_extensions(path_length: int) -> list[tuple[x509.ExtensionType, bool]]:
    return [(x509.BasicConstraints(ca=True, path_length=path_length), True),
            (_key_usage(cert_sign=True), True)]


def _issue(subject: x509.Name, key: PrivateKey | PublicKey, issuer: Credential | None,
           validity: timedelta, extensions: list[tuple[x509.ExtensionType, bool]],
           now: datetime | None) -> x509.Certificate:
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("naive datetime; use datetime.now(UTC)")
    not_after = now + validity
    public = key.public_key() if isinstance(key, PrivateKey) else key  # type: ignore[arg-type]
    signer, issuer_name = key, subject
    builder = x509.CertificateBuilder()
    if issuer is not None:
        if not issuer.cert.not_valid_before_utc <= now <= issuer.cert.not_valid_after_utc:
            raise InvalidRequest("The issuing certificate %(kid)s is not valid now.",
                                 kid=kid_of(issuer.cert).hex())
        # A certificate outliving its issuer would only fail later and more confusingly.
        not_after = min(not_after, issuer.cert.not_valid_after_utc)
        signer, issuer_name = issuer.key, issuer.cert.subject
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False)
    builder = (builder.subject_name(subject).issuer_name(issuer_name)
               .public_key(public).serial_number(x509.random_serial_number())
               .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, digest)


# A TLS server certificate lives on a LAN device and is checked by browsers, which refuse
# server certificates valid for more than 398 days (CA/Browser Forum baseline).
TLS_VALIDITY = timedelta(days=397)


def certify_tls_server(region: Credential, dns_names: list[str], ip_addresses: list[Any],
                       public_key: PublicKey, *, now: datetime | None = None
                       ) -> x509.Certificate:
    """A TLS server certificate for a node's `<facility-code>.local` name and LAN addresses."""
    if region.region_code is None or region.is_root or not is_ca(region.cert):
        raise InvalidRequest("Only a region may certify a node.")
    if not dns_names:
        raise InvalidRequest("A TLS certificate needs the node's .local name.", field="tls")
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ip) for ip in ip_addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0]),
                         x509.NameAttribute(REGION_CODE_OID, region.region_code)])
    extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(digital_signature=True, content_commitment=False,
                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                       key_cert_sign=False, crl_sign=False, encipher_only=False,
                       decipher_only=False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName(names), False),
    ]
    cert = _issue(subject, public_key, region, TLS_VALIDITY, extensions, now)
    log.info("certified TLS server %s (kid %s)", dns_names[0], kid_of(cert).hex())
    return cert
