"""A node's enrolment bundle, read side: its private key, certificate, chain and trust list.

provisioning writes bundles (provisioning.keystore.write_bundle); the node reads them here,
so it never has to import provisioning. Either form:

    directory   key.pem (0600), cert.pem, chain.pem (region then root), trust-list.json,
                facility.json when the region provisioned the facility (optional)
    file .json  {"format": "dmed-enrolment-bundle", "version": 1, "node_id", "key", "cert",
                 "chain": [...], "trust_list": {...}, "facility": {...}}  (0600: it holds the key)

Key material never appears in a log line or an error message: messages name the file only.
Reading a bundle checks that the key belongs to the certificate; whether the certificate is
trusted is the trust list's call (enrolment.trust_list.verify_chain(enrolment.cert, now)).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sync_protocol.certificates import NodeIdentity, identity_of, kid_of
from sync_protocol.errors import TrustError
from sync_protocol.json_body import parse_json
from sync_protocol.trust_list import MAX_TRUST_LIST_BYTES, TrustList, TrustListInvalid

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "dmed-enrolment-bundle"
BUNDLE_VERSION = 1
BUNDLE_FILES = {"key": "key.pem", "cert": "cert.pem", "chain": "chain.pem",
                "trust_list": "trust-list.json"}
# The region's signed facility record (sync_protocol.facility_record); older bundles lack it.
FACILITY_FILE = "facility.json"
# Group or others able to read a private key is worth a warning: the key signs prescriptions.
SHARED_MODE_BITS = 0o077

# EnrolmentError codes; provisioning maps them onto its own errors.
NOT_FOUND = "not_found"  # a file of the bundle is missing
UNREADABLE = "unreadable"  # the file exists but the OS refuses to read it
INVALID_KEY = "invalid_key"  # not a PEM key, wrong passphrase, or an unsupported algorithm
INVALID_CERTIFICATE = "invalid_certificate"
INVALID_TRUST_LIST = "invalid_trust_list"
INVALID_BUNDLE = "invalid_bundle"  # a JSON bundle that cannot be read
KEY_MISMATCH = "key_mismatch"  # the key does not belong to the certificate

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class EnrolmentError(TrustError):
    """An enrolment bundle, key or certificate file that cannot be used (never shows a key)."""

    code = "invalid_enrolment"


@dataclass(frozen=True)
class Enrolment:
    """What a node holds after enrolment: its key, certificate, chain and the trust list."""

    key: PrivateKey = field(repr=False)
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers, nearest first: region, then root
    trust_list: TrustList = field(repr=False)
    facility: dict | None = field(default=None, repr=False)  # signed facility record

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain", tuple(self.chain))
        if self.key.public_key() != self.cert.public_key():
            raise EnrolmentError("The private key does not belong to certificate %(kid)s.",
                                 code=KEY_MISMATCH, kid=kid_of(self.cert).hex())

    @property
    def kid(self) -> bytes:
        return kid_of(self.cert)

    @property
    def identity(self) -> NodeIdentity:
        """The node identity of the certificate (NotANodeCert if it carries none)."""
        return identity_of(self.cert)


def read_enrolment(path: str | Path, password: bytes | None = None) -> Enrolment:
    """Read a bundle in either form: a directory, or a single JSON file.

    `password`: the bundle's passphrase when add-node encrypted its key (issue 16)."""
    path = Path(path)
    enrolment = (_read_directory(path, password) if path.is_dir()
                 else _read_json(path, password))
    log.info("read enrolment bundle %s (certificate %s)", path, enrolment.kid.hex())
    return enrolment


def key_from_pem(data: bytes, password: bytes | None = None, *,
                 source: str = "the key") -> PrivateKey:
    """An ECDSA or Ed25519 private key from PEM; `source` names it in error messages."""
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as e:  # the message never repeats the data
        raise EnrolmentError("Cannot read the private key in %(source)s (not a PEM key, or "
                             "a wrong or missing passphrase).", code=INVALID_KEY,
                             source=source) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise EnrolmentError("The key in %(source)s is neither ECDSA nor Ed25519.",
                             code=INVALID_KEY, source=source)
    return key


def read_private_key(path: str | Path, password: bytes | None = None) -> PrivateKey:
    path = Path(path)
    data = _read_bytes(path)
    _warn_if_shared(path)
    return key_from_pem(data, password, source=str(path))


def read_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file, in file order; an empty file holds none."""
    data = _read_bytes(Path(path))
    try:
        return x509.load_pem_x509_certificates(data) if data.strip() else []
    except ValueError as e:
        raise EnrolmentError("Cannot read the certificates in %(path)s.",
                             code=INVALID_CERTIFICATE, path=str(path)) from e


def read_certificate(path: str | Path) -> x509.Certificate:
    certs = read_certificates(path)
    if len(certs) != 1:
        raise EnrolmentError("%(path)s should hold one certificate, not %(n)s.",
                             code=INVALID_CERTIFICATE, path=str(path), n=len(certs))
    return certs[0]


def read_trust_list(path: str | Path) -> TrustList:
    path = Path(path)
    try:
        return TrustList.from_json(_read_bytes(path))
    except TrustListInvalid as e:
        raise EnrolmentError("%(path)s is not a valid trust list: %(error)s",
                             code=INVALID_TRUST_LIST, path=str(path), error=e.text) from e


def _read_directory(path: Path, password: bytes | None = None) -> Enrolment:
    facility = None
    if (path / FACILITY_FILE).exists():
        try:
            facility = parse_json(_read_bytes(path / FACILITY_FILE))
        except ValueError as e:
            raise EnrolmentError("%(path)s is not valid JSON.", code=INVALID_BUNDLE,
                                 path=str(path / FACILITY_FILE)) from e
    return Enrolment(read_private_key(path / BUNDLE_FILES["key"], password),
                     read_certificate(path / BUNDLE_FILES["cert"]),
                     tuple(read_certificates(path / BUNDLE_FILES["chain"])),
                     read_trust_list(path / BUNDLE_FILES["trust_list"]), facility)


def _read_json(path: Path, password: bytes | None = None) -> Enrolment:
    raw = _read_bytes(path)
    _warn_if_shared(path)
    try:
        data = parse_json(raw, max_bytes=MAX_TRUST_LIST_BYTES)
        if (not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT
                or data.get("version") != BUNDLE_VERSION):
            raise EnrolmentError("%(path)s is not an enrolment bundle.", code=INVALID_BUNDLE,
                                 path=str(path))
        key_pem = data["key"].encode("ascii")
        cert = x509.load_pem_x509_certificate(data["cert"].encode("ascii"))
        chain = tuple(x509.load_pem_x509_certificate(c.encode("ascii")) for c in data["chain"])
        trust_list = TrustList.from_dict(data["trust_list"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # TrustListInvalid is a ValueError; the message is ours and names the file only.
        raise EnrolmentError("%(path)s is not a readable enrolment bundle.",
                             code=INVALID_BUNDLE, path=str(path)) from e
    key = key_from_pem(key_pem, password, source=str(path))
    return Enrolment(key, cert, chain, trust_list, data.get("facility"))


def key_is_encrypted(data: bytes) -> bool:
    """True for a passphrase-protected PEM key (PKCS#8 or legacy OpenSSL)."""
    return b"ENCRYPTED" in data.split(b"-----END", 1)[0]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise EnrolmentError("%(path)s does not exist.", code=NOT_FOUND, path=str(path)) from e
    except OSError as e:
        raise EnrolmentError("Cannot read %(path)s: %(error)s.", code=UNREADABLE,
                             path=str(path), error=e.strerror) from e


def _warn_if_shared(path: Path) -> None:
    """Warn (never refuse: the node must still boot) about a key others can read."""
    try:
        shared = path.stat().st_mode & SHARED_MODE_BITS
    except OSError:
        return
    if shared:
        log.warning("private key %s is readable by others; chmod 600 it", path)
