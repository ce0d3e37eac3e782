"""Keys, certificates, enrolment bundles and the provisioning store on disk.

Private keys are written 0600 from the first byte (the file is created with that mode, never
chmod-ed afterwards), are never logged, and never appear in an exception message.

Enrolment bundles are written here in either form (a directory, or one .json file); the
format and every reader live in sync_protocol.enrolment, which the node uses too. The readers
here are those, with their errors turned into provisioning errors (same messages).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from provisioning.errors import (
    AlreadyExists,
    InvalidRequest,
    KeystoreError,
    NotFound,
    ProvisioningError,
)
from provisioning.pki import (
    Credential,
    EnrolmentBundle,
    KeyAlgorithm,
    PrivateKey,
    create_node,
    create_region,
    create_root,
    make_bundle,
    revoke,
)
from sync_protocol import enrolment
from sync_protocol.certificates import REGION_CODE_RE, NodeKind
from sync_protocol.enrolment import (
    BUNDLE_FILES,
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    FACILITY_FILE,
    KEY_MISMATCH,
    NOT_FOUND,
    EnrolmentError,
    read_enrolment,
)
from sync_protocol.trust_list import Revocation, TrustList

log = logging.getLogger(__name__)

SECRET_FILE_MODE = 0o600  # owner only: a leaked node key can sign prescriptions
SECRET_DIR_MODE = 0o700
PUBLIC_FILE_MODE = 0o644  # certificates and trust lists are public by design
ROOT_DIR = "root"
REGIONS_DIR = "regions"
TRUST_LIST_FILE = "trust-list.json"
LOCK_FILE = ".lock"
# An enrolment error becomes this provisioning error (message and params unchanged).
_ERROR_FOR_CODE: dict[str, type[ProvisioningError]] = {
    NOT_FOUND: NotFound, KEY_MISMATCH: InvalidRequest}

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextlib.contextmanager
def _keystore_errors() -> Iterator[None]:
    """Raise sync_protocol.enrolment errors as provisioning's: the CLI and callers see one tree."""
    try:
        yield
    except EnrolmentError as e:
        error = _ERROR_FOR_CODE.get(e.code, KeystoreError)
        raise error(e.message, field=e.field, **e.params) from e


def _with_keystore_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _keystore_errors():
            return func(*args, **kwargs)
    return wrapper


# The readers of sync_protocol.enrolment, raising provisioning errors.
key_from_pem = _with_keystore_errors(enrolment.key_from_pem)
read_private_key = _with_keystore_errors(enrolment.read_private_key)
read_certificates = _with_keystore_errors(enrolment.read_certificates)
read_certificate = _with_keystore_errors(enrolment.read_certificate)
read_trust_list = _with_keystore_errors(enrolment.read_trust_list)


def key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    encryption = (serialization.NoEncryption() if password is None
                  else serialization.BestAvailableEncryption(password))
    return key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_secret(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write bytes readable by the owner only; without `overwrite`, never replace a file."""
    path = Path(path)
    target = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") if overwrite else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, SECRET_FILE_MODE)
    except FileExistsError as e:
        raise AlreadyExists("File %(path)s exists already.", path=str(path)) from e
    except OSError as e:
        raise KeystoreError("Cannot create %(path)s: %(error)s.", path=str(path),
                            error=e.strerror) from e
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(target, path)
    except OSError as e:
        target.unlink(missing_ok=True)
        raise KeystoreError("Cannot write %(path)s: %(error)s.", path=str(path),
                            error=e.strerror) from e
    return path


def write_private_key(path: str | Path, key: PrivateKey, *, password: bytes | None = None,
                      overwrite: bool = False) -> Path:
    written = write_secret(path, key_to_pem(key, password), overwrite=overwrite)
    log.info("wrote private key %s", written)  # the path, never the key
    return written


def write_public(path: str | Path, data: bytes) -> Path:
    """Atomically replace a public file (certificates, trust lists)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temp.write_bytes(data)
        temp.chmod(PUBLIC_FILE_MODE)
        os.replace(temp, path)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise KeystoreError("Cannot write %(path)s: %(error)s.", path=str(path),
                            error=e.strerror) from e
    return path


def certificates_to_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def write_certificates(path: str | Path, certs: Iterable[x509.Certificate]) -> Path:
    return write_public(path, certificates_to_pem(certs))


def write_trust_list(path: str | Path, trust_list: TrustList) -> Path:
    return write_public(path, trust_list.to_json(indent=2).encode("utf-8") + b"\n")


def write_credential(directory: str | Path, credential: Credential, *,
                     password: bytes | None = None) -> Path:
    """key.pem (0600) and cert.pem (certificate then its chain) in a new directory."""
    directory = make_private_dir(directory)
    write_private_key(directory / "key.pem", credential.key, password=password)
    write_certificates(directory / "cert.pem", (credential.cert, *credential.chain))
    return directory


def read_credential(directory: str | Path, password: bytes | None = None) -> Credential:
    directory = Path(directory)
    certs = read_certificates(directory / "cert.pem")
    if not certs:
        raise KeystoreError("%(path)s holds no certificate.", path=str(directory / "cert.pem"))
    key = read_private_key(directory / "key.pem", password)
    return Credential(key, certs[0], tuple(certs[1:]))


def make_private_dir(directory: str | Path) -> Path:
    """Create a directory only its owner can enter; an existing one must be empty."""
    directory = Path(directory)
    try:
        directory.mkdir(mode=SECRET_DIR_MODE, parents=True)
    except FileExistsError as e:
        if not directory.is_dir() or any(directory.iterdir()):
            raise AlreadyExists("%(path)s exists and is not an empty directory.",
                                path=str(directory)) from e
    except OSError as e:
        raise KeystoreError("Cannot create %(path)s: %(error)s.", path=str(directory),
                            error=e.strerror) from e
    return directory


def write_bundle(bundle: EnrolmentBundle, out: str | Path,
                 passphrase: bytes | None = None) -> Path:
    """Write a bundle as one JSON file (if `out` ends in .json) or as a new directory.

    With `passphrase`, the key is PKCS#8 encrypted (BestAvailableEncryption)."""
    out = Path(out)
    if out.suffix == ".json":
        data = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
                "node_id": bundle.identity.node_id,
                "key": key_to_pem(bundle.node.key, passphrase).decode("ascii"),
                "cert": certificates_to_pem([bundle.node.cert]).decode("ascii"),
                "chain": [certificates_to_pem([c]).decode("ascii") for c in bundle.node.chain],
                "trust_list": bundle.trust_list.to_dict()}
        if bundle.facility is not None:
            data["facility"] = bundle.facility
        write_secret(out, json.dumps(data, sort_keys=True, indent=2).encode("utf-8"))
    else:
        make_private_dir(out)
        write_private_key(out / BUNDLE_FILES["key"], bundle.node.key, password=passphrase)
        write_certificates(out / BUNDLE_FILES["cert"], [bundle.node.cert])
        write_certificates(out / BUNDLE_FILES["chain"], bundle.node.chain)
        write_trust_list(out / BUNDLE_FILES["trust_list"], bundle.trust_list)
        if bundle.facility is not None:
            write_public(out / FACILITY_FILE, json.dumps(bundle.facility, ensure_ascii=False,
                                                         indent=2).encode("utf-8"))
    log.info("wrote enrolment bundle for node %s to %s", bundle.identity.node_id, out)
    return out


def read_bundle(path: str | Path, passphrase: bytes | None = None) -> EnrolmentBundle:
    """Read a bundle in either form (sync_protocol.enrolment); the key must match the cert."""
    with _keystore_errors():
        read = read_enrolment(path, passphrase)
    return EnrolmentBundle(Credential(read.key, read.cert, read.chain), read.trust_list,
                           read.facility)


def is_private(path: str | Path) -> bool:
    """True if only the owner may read or write `path` (a check for tests and `show`)."""
    return stat.S_IMODE(Path(path).stat().st_mode) & 0o077 == 0


class CaStore:
    """The provisioning node's directory: root and regional keys, and the trust list issued.

    Layout: root/{key,cert}.pem, regions/<CODE>/{key,cert}.pem, trust-list.json (every
    certificate issued, every revocation). Node keys are never kept here: they leave in the
    enrolment bundle only. Changes hold an exclusive lock on .lock, so two operators cannot
    lose each other's updates; a bundle is written before the trust list records its node.
    """

    def __init__(self, directory: str | Path, *, password: bytes | None = None) -> None:
        self.directory = Path(directory)
        self._password = password  # encrypts the root and regional keys when given

    @property
    def trust_list_path(self) -> Path:
        return self.directory / TRUST_LIST_FILE

    def trust_list(self) -> TrustList:
        if not self.trust_list_path.exists():
            raise NotFound("No provisioning store in %(path)s; run init-root first.",
                           path=str(self.directory))
        return read_trust_list(self.trust_list_path)

    def root(self) -> Credential:
        self.trust_list()  # a clear "no store" error first
        return read_credential(self.directory / ROOT_DIR, self._password)

    def region(self, region_code: str) -> Credential:
        path = self.directory / REGIONS_DIR / region_code
        if not REGION_CODE_RE.fullmatch(region_code) or not path.is_dir():
            raise NotFound("Region %(region)s is not in this store.", region=region_code)
        return read_credential(path, self._password)

    def region_codes(self) -> list[str]:
        regions = self.directory / REGIONS_DIR
        return sorted(p.name for p in regions.iterdir() if p.is_dir()) if regions.is_dir() else []

    def init_root(self, name: str, *, algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
                  now: datetime | None = None) -> Credential:
        try:
            self.directory.mkdir(mode=SECRET_DIR_MODE, parents=True, exist_ok=True)
        except OSError as e:
            raise KeystoreError("Cannot create %(path)s: %(error)s.", path=str(self.directory),
                                error=e.strerror) from e
        with self._locked():
            if (self.directory / ROOT_DIR).exists() or self.trust_list_path.exists():
                raise AlreadyExists("%(path)s holds a root already.", path=str(self.directory))
            root = create_root(name, algorithm=algorithm, now=now)
            write_credential(self.directory / ROOT_DIR, root, password=self._password)
            write_trust_list(self.trust_list_path, TrustList(roots=[root.cert]))
        return root

    def add_region(self, region_code: str, name: str, *,
                   algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
                   now: datetime | None = None) -> Credential:
        with self._locked():
            trust_list, root = self.trust_list(), self.root()
            if (self.directory / REGIONS_DIR / region_code).exists():
                raise AlreadyExists("Region %(region)s exists already.", region=region_code)
            region = create_region(root, region_code, name, algorithm=algorithm, now=now)
            (self.directory / REGIONS_DIR).mkdir(mode=SECRET_DIR_MODE, exist_ok=True)
            write_credential(self.directory / REGIONS_DIR / region_code, region,
                             password=self._password)
            trust_list.add_certificate(region.cert)
            write_trust_list(self.trust_list_path, trust_list)
        return region

    def add_node(self, region_code: str, node_id: str, facility_code: str,
                 kind: NodeKind | str, *, out: str | Path | None = None,
                 algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
                 now: datetime | None = None, facility: dict | None = None,
                 passphrase: bytes | None = None) -> EnrolmentBundle:
        """Issue a node key and certificate; write its bundle to `out` if given.

        `facility`: the region's signed facility record, carried by the bundle.
        `passphrase`: encrypts the bundle's key (None writes it in clear: tests, demo)."""
        now = datetime.now(UTC) if now is None else now
        with self._locked():
            trust_list = self.trust_list()
            for cert in trust_list.node_certificates(node_id):
                if trust_list.revocation(cert) is None and cert.not_valid_after_utc > now:
                    raise AlreadyExists("Node %(node_id)s has a valid certificate already; "
                                        "revoke it first.", node_id=node_id)
            node = create_node(self.region(region_code), node_id, facility_code, kind,
                               algorithm=algorithm, now=now)
            trust_list.add_certificate(node.cert)
            bundle = make_bundle(node, trust_list, facility)
            if out is not None:
                write_bundle(bundle, out, passphrase)
            write_trust_list(self.trust_list_path, trust_list)
        return bundle

    def revoke_node(self, node_id: str, reason: str, *,
                    now: datetime | None = None) -> list[Revocation]:
        """Revoke every certificate of a node that is not revoked yet."""
        now = datetime.now(UTC) if now is None else now
        with self._locked():
            trust_list = self.trust_list()
            certs = trust_list.node_certificates(node_id)
            if not certs:
                raise NotFound("Node %(node_id)s is not in this store.", node_id=node_id)
            revoked = [revoke(trust_list, cert, reason, now) for cert in certs
                       if trust_list.revocation(cert) is None]
            if not revoked:
                raise AlreadyExists("Node %(node_id)s is revoked already.", node_id=node_id)
            write_trust_list(self.trust_list_path, trust_list)
        return revoked

    def revoke_region(self, region_code: str, reason: str, *,
                      now: datetime | None = None) -> Revocation:
        """Revoke a region: every node certificate it issued is refused from now on."""
        now = datetime.now(UTC) if now is None else now
        with self._locked():
            trust_list, region = self.trust_list(), self.region(region_code)
            if trust_list.revocation(region.cert) is not None:
                raise AlreadyExists("Region %(region)s is revoked already.", region=region_code)
            revocation = revoke(trust_list, region.cert, reason, now)
            write_trust_list(self.trust_list_path, trust_list)
        return revocation

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, SECRET_FILE_MODE)
        except FileNotFoundError as e:
            raise NotFound("No provisioning store in %(path)s; run init-root first.",
                           path=str(self.directory)) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
