"""The trust list: roots, regions and node certificates, and revocations.

Shared by nodes and the hub; it reads certificates and never holds a private key (issuing
is provisioning.pki). What a certificate must say is sync_protocol.certificates.

Revocation ignores the revocation time when deciding: a signature carries only the time its
signer claims, so a stolen key could backdate. The time and reason are kept for people.
The verdict of a chain is memoised per certificate; revocation and validity dates are checked
on every call, so a cached chain can never outlive a revocation or an expiry.
Cancelled prescriptions travel as events (PrescriptionCancelled), not in this list.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from sync_protocol.certificates import (
    BAD_CHAIN_SIGNATURE,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    EKU_PRESCRIBE,
    ISSUER_NOT_A_CA,
    KID_LENGTH,
    MISSING_EKU,
    NOT_A_NODE_CERT,
    REGION_MISMATCH,
    REVOKED,
    UNKNOWN_CERT,
    UNKNOWN_ISSUER,
    ChainVerdict,
    NodeIdentity,
    NodeKind,
    NotANodeCert,
    cert_digest,
    extended_key_usages,
    identity_of,
    is_ca,
    is_node_leaf,
    kid_of,
    may_issue,
    region_code_of,
    signed_by,
)
from sync_protocol.errors import TrustError
from sync_protocol.json_body import parse_json

log = logging.getLogger(__name__)

# A certificate is about 1 kB: room for tens of thousands of nodes and their revocations.
MAX_TRUST_LIST_BYTES = 64 * 1024 * 1024

# Chain results memoised per certificate; bounded so certificates presented by strangers
# cannot grow memory without limit. Enough for every node certificate of a large region.
CHAIN_CACHE_SIZE = 4096
# Free-text reasons are shown to people and synced everywhere; keep them short.
MAX_REASON_LENGTH = 200
TRUST_LIST_FORMAT = "dmed-trust-list"
TRUST_LIST_VERSION = 1


class TrustListInvalid(TrustError, ValueError):
    """A trust list (JSON, PEM) that cannot be read, or a certificate it cannot hold."""

    code = "invalid_trust_list"


@dataclass(frozen=True)
class Revocation:
    kid: bytes
    revoked_at: datetime
    reason: str
    serial: int | None = None


@dataclass(frozen=True)
class MergeResult:
    added_certificates: int
    added_revocations: int
    ignored_roots: int  # roots the other list had that we do not accept implicitly
    rejected_certificates: int  # e.g. a key id clash; the rest is merged all the same


@dataclass(frozen=True)
class _Link:
    """A certificate with what every verification needs, computed once."""

    cert: x509.Certificate
    kid: bytes
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> _Link:
        return cls(cert, kid_of(cert), cert.not_valid_before_utc, cert.not_valid_after_utc)


@dataclass(frozen=True)
class _Chain:
    leaf: _Link
    identity: NodeIdentity
    public_key: CertificatePublicKeyTypes
    paths: tuple[tuple[_Link, _Link], ...]  # (region, root) pairs that sign this leaf
    ekus: frozenset[x509.ObjectIdentifier]


def utc_seconds(moment: datetime) -> datetime:
    """UTC, whole seconds: how every time in a trust list is stored (exact JSON round trip)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; use datetime.now(UTC)")
    return moment.astimezone(UTC).replace(microsecond=0)


def _check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise TrustListInvalid("A reason must be 1 to %(max)s characters.", field="reason",
                               max=MAX_REASON_LENGTH)
    return reason.strip()


def _time_text(moment: datetime) -> str:
    return utc_seconds(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    return utc_seconds(datetime.fromisoformat(text))


class TrustList:
    """Roots, regions and node certificates, and revoked certificates.

    Only grows: certificates and revocations are never removed, so merging lists in any order
    gives the same list (it is synced between nodes like events). Verifying from many threads
    is safe; changes (add, revoke, merge) should come from one writer.
    """

    def __init__(self, roots: Iterable[x509.Certificate] = (),
                 certificates: Iterable[x509.Certificate] = ()) -> None:
        self._sorted_cache: dict[str, tuple[x509.Certificate, ...]] = {}
        self._sections: dict[str, dict[bytes, x509.Certificate]] = {
            "roots": {}, "regions": {}, "nodes": {}}
        self._revocations: dict[bytes, Revocation] = {}
        self._roots_by_subject: dict[x509.Name, list[_Link]] = {}
        self._regions_by_subject: dict[x509.Name, list[_Link]] = {}
        self._by_node_id: dict[str, list[x509.Certificate]] = {}
        self._chains: dict[bytes, _Chain | ChainVerdict] = {}  # by SHA-256 of the leaf's DER
        self._node_digests: dict[bytes, bytes] = {}  # kid -> SHA-256 of DER, listed nodes
        for cert in roots:
            self.add_root(cert)
        for cert in certificates:
            self.add_certificate(cert)

    # -- certificates ---------------------------------------------------------------------

    def add_root(self, cert: x509.Certificate) -> bool:
        """Trust a national root (a self-signed CA). True if it was not known yet."""
        if not (cert.issuer == cert.subject and signed_by(cert, cert) and may_issue(cert, 1)):
            raise TrustListInvalid("Certificate %(subject)s is not a self-signed root CA.",
                                   subject=cert.subject.rfc4514_string())
        return self._put("roots", cert)

    def add_certificate(self, cert: x509.Certificate) -> bool:
        """Add a region (CA) or node certificate. True if it was not known yet.

        Adding vouches for nothing: verify_chain decides whether a certificate is trusted.
        """
        if not is_ca(cert):
            identity_of(cert)  # a node certificate must say whose it is
            return self._put("nodes", cert)
        if cert.issuer == cert.subject:
            raise TrustListInvalid("Certificate %(subject)s is a root; roots need add_root.",
                                   subject=cert.subject.rfc4514_string())
        return self._put("regions", cert)

    def _put(self, section: str, cert: x509.Certificate) -> bool:
        kid = kid_of(cert)
        known = self.get(kid)
        if known is not None:
            if known == cert:
                return False
            raise TrustListInvalid("Two certificates share key id %(kid)s.", kid=kid.hex())
        self._sections[section][kid] = cert
        self._sorted_cache.pop(section, None)
        if section == "nodes":
            self._node_digests[kid] = cert_digest(cert)
            self._by_node_id.setdefault(identity_of(cert).node_id, []).append(cert)
            return True
        index = self._roots_by_subject if section == "roots" else self._regions_by_subject
        index.setdefault(cert.subject, []).append(_Link.of(cert))
        self._chains.clear()  # a new CA can complete a refused chain or add a path
        return True

    def get(self, kid: bytes) -> x509.Certificate | None:
        for section in self._sections.values():
            if kid in section:
                return section[kid]
        return None

    def node_certificates(self, node_id: str) -> tuple[x509.Certificate, ...]:
        """Every certificate issued to a node id, newest first."""
        certs = self._by_node_id.get(node_id, [])
        return tuple(sorted(certs, key=lambda c: (c.not_valid_before_utc, kid_of(c)),
                            reverse=True))

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return self._sorted("roots")

    @property
    def regions(self) -> tuple[x509.Certificate, ...]:
        return self._sorted("regions")

    @property
    def nodes(self) -> tuple[x509.Certificate, ...]:
        return self._sorted("nodes")

    def _sorted(self, section: str) -> tuple[x509.Certificate, ...]:
        # A pharmacy asks for the node certificates at every scan: sort once per change.
        cached = self._sorted_cache.get(section)
        if cached is None:
            cached = self._sorted_cache[section] = tuple(
                cert for _, cert in sorted(self._sections[section].items()))
        return cached

    # -- revocations ------------------------------------------------------------------------

    def revoke(self, cert_or_kid: x509.Certificate | bytes, revoked_at: datetime,
               reason: str) -> Revocation:
        """Revoke a certificate for good; returns the entry kept (the earliest one)."""
        if isinstance(cert_or_kid, x509.Certificate):
            kid, serial = kid_of(cert_or_kid), cert_or_kid.serial_number
        else:
            kid, serial = bytes(cert_or_kid), None
        if len(kid) != KID_LENGTH:
            raise TrustListInvalid("A key id has %(n)s bytes.", field="kid", n=KID_LENGTH)
        return self._keep_revocation(
            Revocation(kid, utc_seconds(revoked_at), _check_reason(reason), serial))

    def _keep_revocation(self, new: Revocation) -> Revocation:
        old = self._revocations.get(new.kid)
        if old is not None:  # earliest wins, so merge order does not matter
            first = min(old, new, key=lambda r: (r.revoked_at, r.reason))
            new = Revocation(first.kid, first.revoked_at, first.reason,
                             old.serial if old.serial is not None else new.serial)
        self._revocations[new.kid] = new
        if old is None:
            log.info("revoked certificate %s: %s", new.kid.hex(), new.reason)
        return new

    def revocation(self, cert_or_kid: x509.Certificate | bytes) -> Revocation | None:
        kid = kid_of(cert_or_kid) if isinstance(cert_or_kid, x509.Certificate) else cert_or_kid
        return self._revocations.get(bytes(kid))

    @property
    def revocations(self) -> tuple[Revocation, ...]:
        return tuple(rev for _, rev in sorted(self._revocations.items()))

    # -- verification ---------------------------------------------------------------------

    def verify_kid(self, kid: bytes, now: datetime,
                   require_eku: x509.ObjectIdentifier | None = None) -> ChainVerdict:
        """Verify the node certificate with this key id (e.g. from a QR code) at `now`."""
        kid = bytes(kid)
        cert = self._sections["nodes"].get(kid)
        if cert is None:
            utc_seconds(now)  # a naive `now` is a bug even when the kid is unknown
            return ChainVerdict(False, kid, UNKNOWN_CERT, "node")
        return self._verify(cert, self._node_digests[kid], now, require_eku)

    def require_kid(self, kid: bytes, now: datetime,
                    require_eku: x509.ObjectIdentifier | None = None) -> ChainVerdict:
        """verify_kid, raising ChainRefused (code = reason) unless the chain is good."""
        return self.verify_kid(kid, now, require_eku).raise_if_refused()

    def require_chain(self, cert: x509.Certificate, now: datetime,
                      require_eku: x509.ObjectIdentifier | None = None) -> ChainVerdict:
        """verify_chain, raising ChainRefused (code = reason) unless the chain is good."""
        return self.verify_chain(cert, now, require_eku).raise_if_refused()

    def verify_chain(self, cert: x509.Certificate, now: datetime,
                     require_eku: x509.ObjectIdentifier | None = None) -> ChainVerdict:
        """Is `cert` a node certificate that chains node -> region -> root of this list, with
        every signature good, nothing revoked, everything valid at `now`, and (if asked) the
        extended key usage `require_eku`?"""
        return self._verify(cert, cert_digest(cert), now, require_eku)

    def _verify(self, cert: x509.Certificate, digest: bytes, now: datetime,
                require_eku: x509.ObjectIdentifier | None) -> ChainVerdict:
        if now.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        chain = self._chain(cert, digest)
        if isinstance(chain, ChainVerdict):
            return chain
        refusal = None
        for region, root in chain.paths:  # usually one; two while a region cert is renewed
            refusal = self._check_dates(chain, (("node", chain.leaf), ("region", region),
                                                ("root", root)), now)
            if refusal is None:
                break
        if refusal is not None:
            return refusal
        if require_eku is not None and not _has_eku(chain, require_eku):
            return ChainVerdict(False, chain.leaf.kid, MISSING_EKU, "node", chain.identity,
                                chain.leaf.cert)
        return ChainVerdict(True, chain.leaf.kid, None, None, chain.identity, chain.leaf.cert,
                            chain.public_key)

    def _check_dates(self, chain: _Chain, links: tuple[tuple[str, _Link], ...],
                     now: datetime) -> ChainVerdict | None:
        def refused(reason: str, which: str) -> ChainVerdict:
            return ChainVerdict(False, chain.leaf.kid, reason, which, chain.identity,
                                chain.leaf.cert)

        for which, link in links:  # revocation first: the most serious news for a pharmacist
            if link.kid in self._revocations:
                return refused(REVOKED, which)
        for which, link in links:
            if now < link.not_before:
                return refused(CERT_NOT_YET_VALID, which)
            if now > link.not_after:
                return refused(CERT_EXPIRED, which)
        return None

    def _chain(self, cert: x509.Certificate, digest: bytes) -> _Chain | ChainVerdict:
        cached = self._chains.get(digest)
        if cached is None:
            cached = self._build_chain(cert, digest[:KID_LENGTH])
            if len(self._chains) >= CHAIN_CACHE_SIZE:
                self._chains.clear()  # crude but thread-safe; a rebuild costs two signatures
            self._chains[digest] = cached
        return cached

    def _build_chain(self, cert: x509.Certificate, kid: bytes) -> _Chain | ChainVerdict:
        """The time-independent part of verification: structure and signatures."""
        if not is_node_leaf(cert):
            return ChainVerdict(False, kid, NOT_A_NODE_CERT, "node", None, cert)
        try:
            identity = identity_of(cert)
        except NotANodeCert:
            return ChainVerdict(False, kid, NOT_A_NODE_CERT, "node", None, cert)
        # The deepest failure is the most telling one: (depth, reason, which).
        failure, paths = (0, UNKNOWN_ISSUER, "node"), []
        for region in self._regions_by_subject.get(cert.issuer, ()):
            if not signed_by(cert, region.cert):
                failure = max(failure, (1, BAD_CHAIN_SIGNATURE, "node"))
            elif not may_issue(region.cert, 0):
                failure = max(failure, (2, ISSUER_NOT_A_CA, "region"))
            elif region_code_of(region.cert) != identity.region_code:
                failure = max(failure, (3, REGION_MISMATCH, "node"))
            else:
                failure = max(failure, (4, UNKNOWN_ISSUER, "region"))
                for root in self._roots_by_subject.get(region.cert.issuer, ()):
                    if signed_by(region.cert, root.cert):
                        paths.append((region, root))
                    else:
                        failure = max(failure, (5, BAD_CHAIN_SIGNATURE, "region"))
        if not paths:
            return ChainVerdict(False, kid, failure[1], failure[2], identity, cert)
        return _Chain(_Link.of(cert), identity, cert.public_key(), tuple(paths),
                      extended_key_usages(cert))

    # -- serialisation and merging --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A deterministic plain-data form: sections sorted by key id, times in UTC seconds."""
        def pems(section: str) -> list[str]:
            return [c.public_bytes(Encoding.PEM).decode("ascii") for c in self._sorted(section)]

        return {
            "format": TRUST_LIST_FORMAT,
            "version": TRUST_LIST_VERSION,
            "roots": pems("roots"),
            "regions": pems("regions"),
            "nodes": pems("nodes"),
            "revocations": [
                {"kid": r.kid.hex(), "serial": None if r.serial is None else format(r.serial, "x"),
                 "revoked_at": _time_text(r.revoked_at), "reason": r.reason}
                for r in self.revocations],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, ensure_ascii=False)

    def digest(self) -> str:
        """SHA-256 (hex) of the compact JSON: equal digests mean equal lists."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: Any) -> TrustList:
        if not isinstance(data, dict) or data.get("format") != TRUST_LIST_FORMAT:
            raise TrustListInvalid("This is not a DMED trust list.")
        if data.get("version") != TRUST_LIST_VERSION:
            raise TrustListInvalid("Trust list version %(version)r is not supported.",
                                   field="version", version=data.get("version"))
        try:
            trust_list = cls(_load_pems(data.get("roots", [])),
                             _load_pems(data.get("regions", []) + data.get("nodes", [])))
            for r in data.get("revocations", []):
                serial = None if r.get("serial") is None else int(r["serial"], 16)
                trust_list._keep_revocation(Revocation(
                    bytes.fromhex(r["kid"]), _parse_time(r["revoked_at"]),
                    _check_reason(r["reason"]), serial))
        except TrustError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise TrustListInvalid("The trust list is malformed: %(error)s.",
                                   error=str(e)) from e
        return trust_list

    @classmethod
    def from_json(cls, text: str | bytes) -> TrustList:
        try:
            data = parse_json(text, max_bytes=MAX_TRUST_LIST_BYTES)
        except ValueError as e:
            raise TrustListInvalid("The trust list is not valid JSON.") from e
        return cls.from_dict(data)

    def merge(self, other: TrustList, *, accept_roots: bool = False) -> MergeResult:
        """Union in another list's certificates and revocations.

        Roots are trust anchors: a peer's list cannot add one unless `accept_roots` is set
        (provisioning does that; sync must not).
        """
        added = ignored = rejected = 0
        for cert in other.roots:
            if cert in self._sections["roots"].values():
                continue
            if accept_roots:
                added += self.add_root(cert)
            else:
                ignored += 1
                log.warning("ignored unknown root %s from a merged trust list",
                            kid_of(cert).hex())
        for cert in other.regions + other.nodes:
            try:
                added += self.add_certificate(cert)
            except TrustError as e:
                rejected += 1
                log.warning("rejected certificate %s from a merged trust list: %s",
                            kid_of(cert).hex(), e.text)
        revocations = len(self._revocations)
        for rev in other.revocations:
            self._keep_revocation(rev)
        return MergeResult(added, len(self._revocations) - revocations, ignored, rejected)


def _has_eku(chain: _Chain, eku: x509.ObjectIdentifier) -> bool:
    if eku == EKU_PRESCRIBE and chain.identity.kind != NodeKind.CLINIC:
        return False  # even a mis-issued pharmacy certificate never prescribes
    return eku in chain.ekus


def _load_pems(pems: list[str]) -> list[x509.Certificate]:
    try:
        return [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in pems]
    except (ValueError, AttributeError) as e:
        raise TrustListInvalid("A certificate in the trust list cannot be read.") from e
