"""`dmed-node backup` and `restore`: a consistent online copy, readable only by the region.

The copy is taken with SQLite's online backup API while the node serves (readers and the
writer go on; the copy is one consistent snapshot), then sealed to the region's backup key:

    ephemeral ECDH P-256 with the region's public backup key -> HKDF-SHA256 -> AES-256-GCM
    over CHUNK_BYTES chunks (nonce = prefix || chunk number; the last chunk is marked in the
    associated data, so a truncated or reordered file fails to open)

File: MAGIC, a 4-byte header length, the JSON header (algorithm, ephemeral public key,
node id, time, recipient fingerprint, size), then the chunks, each with its 16-byte tag.
The node never holds the private backup key: a stolen node's backups stay closed. Restore
decrypts with the region's private key, writes a new database, and checks every origin's
hash chain before anything replaces a node's data.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sync_protocol.enrolment_request import public_key_fingerprint
from sync_protocol.errors import ProtocolError
from sync_protocol.events import verify_chain
from sync_protocol.json_body import parse_json

from .store import NodeStore

log = logging.getLogger(__name__)

MAGIC = b"DMEDBAK1"
ALGORITHM = "ECDH-P256+HKDF-SHA256+AES-256-GCM/chunked"
CHUNK_BYTES = 1 << 20  # 1 MiB: bounded memory on a Raspberry Pi whatever the database size
NONCE_PREFIX_BYTES = 7  # + 4-byte chunk number + 1-byte "last" flag = 12-byte GCM nonce
TAG_BYTES = 16
MAX_HEADER_BYTES = 8192
BACKUP_KEY_FILE = "backup-key.pub.pem"  # the region's public backup key, from enrolment
BACKUP_PAGES_PER_STEP = 256  # copy in steps so the node's writer is never held up long
DEFAULT_KEEP = 7  # a week of nightly copies on the USB drive


class BackupError(ProtocolError):
    code = "backup_error"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    node_id: str
    created_at: str
    size: int


def snapshot(store: NodeStore, target: Path) -> None:
    """A consistent copy of the live database (SQLite online backup API)."""
    source = sqlite3.connect(store.path)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest, pages=BACKUP_PAGES_PER_STEP)
    finally:
        dest.close()
        source.close()


def backup(store: NodeStore, out_dir: Path, public_key_pem: bytes, *,
           now: datetime | None = None, keep: int = DEFAULT_KEEP) -> BackupInfo:
    """Snapshot, seal to the region's key, write to out_dir; keep the newest `keep` files."""
    now = datetime.now(UTC) if now is None else now
    recipient = _public_key(public_key_pem)
    node_id = store.node_id
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    target = out_dir / f"{node_id}-{stamp}.dmedbak"
    with tempfile.TemporaryDirectory(dir=store.path.parent) as work:
        plain = Path(work) / "snapshot.db"
        snapshot(store, plain)
        size = plain.stat().st_size
        header = {"algorithm": ALGORITHM, "node_id": node_id,
                  "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "size": size,
                  "recipient": public_key_fingerprint(recipient)}
        partial = target.with_suffix(".partial")
        with plain.open("rb") as source, partial.open("wb") as sink:
            _seal(source, sink, recipient, header)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, target)
    _rotate(out_dir, node_id, keep)
    log.info("backup of %s written to %s (%s bytes)", node_id, target, size)
    return BackupInfo(target, node_id, header["created_at"], size)


def restore(backup_file: Path, private_key_pem: bytes, target_db: Path, *,
            password: bytes | None = None) -> dict[str, Any]:
    """Open a backup with the region's private key into a new database and check its log."""
    if target_db.exists():
        raise BackupError("%(path)s exists; restore into a new path (nothing was changed).",
                          field="db", path=str(target_db))
    try:
        key = serialization.load_pem_private_key(private_key_pem, password)
    except (ValueError, TypeError) as e:
        raise BackupError("Cannot read the region's backup key (wrong file or passphrase).",
                          field="key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise BackupError("The backup key is not an EC P-256 key.", field="key")
    target_db.parent.mkdir(parents=True, exist_ok=True)
    partial = target_db.with_name(target_db.name + ".partial")
    try:
        with backup_file.open("rb") as source, partial.open("wb") as sink:
            header = _open(source, sink, key)
        origins = _check_log(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target_db)
    log.info("restored %s from %s", header["node_id"], backup_file)
    return {**header, "origins": origins}


def _seal(source: BinaryIO, sink: BinaryIO, recipient: ec.EllipticCurvePublicKey,
          header: dict[str, Any]) -> None:
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    header = {**header, "epk": ephemeral.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "nonce_prefix": os.urandom(NONCE_PREFIX_BYTES).hex()}
    encoded = json.dumps(header, sort_keys=True).encode("utf-8")
    aead = AESGCM(_derive(ephemeral.exchange(ec.ECDH(), recipient)))
    sink.write(MAGIC + struct.pack(">I", len(encoded)) + encoded)
    prefix = bytes.fromhex(header["nonce_prefix"])
    for number, (chunk, last) in enumerate(_chunks(source)):
        sink.write(aead.encrypt(_nonce(prefix, number, last), chunk, encoded))


def _open(source: BinaryIO, sink: BinaryIO, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupError("This is not a DMED node backup.", field="backup")
    (length,) = struct.unpack(">I", source.read(4) or b"\0\0\0\0")
    if not 0 < length <= MAX_HEADER_BYTES:
        raise BackupError("The backup's header is damaged.", field="backup")
    encoded = source.read(length)
    try:
        header = parse_json(encoded)
        epk = serialization.load_pem_public_key(header["epk"].encode("ascii"))
        prefix = bytes.fromhex(header["nonce_prefix"])
    except (ValueError, KeyError, TypeError) as e:
        raise BackupError("The backup's header is damaged.", field="backup") from e
    if header.get("recipient") != public_key_fingerprint(key.public_key()):
        raise BackupError("This backup was sealed to another region's key.", field="key")
    aead = AESGCM(_derive(key.exchange(ec.ECDH(), epk)))  # type: ignore[arg-type]
    number, ended = 0, False
    while block := source.read(CHUNK_BYTES + TAG_BYTES):
        if ended:
            raise BackupError("The backup has data after its end.", field="backup")
        try:
            sink.write(aead.decrypt(_nonce(prefix, number, False), block, encoded))
        except InvalidTag:
            try:
                sink.write(aead.decrypt(_nonce(prefix, number, True), block, encoded))
                ended = True
            except InvalidTag as e:
                raise BackupError("The backup is damaged or was changed (chunk %(n)s).",
                                  field="backup", n=number) from e
        number += 1
    if not ended:
        raise BackupError("The backup is cut short.", field="backup")
    return header


def _chunks(source: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    current = source.read(CHUNK_BYTES)
    while True:
        following = source.read(CHUNK_BYTES)
        yield current, not following
        if not following:
            return
        current = following


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", number) + (b"\x01" if last else b"\x00")


def _derive(shared: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dmed-node-backup v1").derive(shared)


def _public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise BackupError("Cannot read the region's public backup key.", field="key") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BackupError("The backup key is not an EC P-256 key.", field="key")
    return key


def _check_log(path: Path) -> dict[str, int]:
    """Every origin's sequence and hash chain must verify; returns each origin's head."""
    try:
        store = NodeStore(path)
    except sqlite3.DatabaseError as e:
        raise BackupError("The restored file is not a node database.", field="backup") from e
    try:
        heads = {}
        for row in store.query("SELECT DISTINCT origin FROM events"):
            events = sorted(store.events(origin=row["origin"]), key=lambda e: e.seq)
            verify_chain(events)
            heads[row["origin"]] = events[-1].seq if events else 0
        return heads
    except ProtocolError as e:
        raise BackupError("The restored log does not verify: %(error)s", field="backup",
                          error=e.text) from e
    finally:
        store.close()


def _rotate(out_dir: Path, node_id: str, keep: int) -> None:
    copies = sorted(out_dir.glob(f"{node_id}-*.dmedbak"))
    for old in copies[:-keep] if keep > 0 else []:
        old.unlink()


def housekeeping(store: NodeStore) -> dict[str, int]:
    """Nightly database care on a small SD card: fold the WAL back into the database (so it
    does not grow between quiet hours) and refresh the query planner's statistics."""
    wal = store.path.with_name(store.path.name + "-wal")
    before = wal.stat().st_size if wal.exists() else 0
    conn = sqlite3.connect(store.path, timeout=30)
    try:
        busy, _frames, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        conn.execute("PRAGMA optimize")
    finally:
        conn.close()
    after = wal.stat().st_size if wal.exists() else 0
    log.info("housekeeping: WAL %s -> %s bytes (busy=%s)", before, after, busy)
    return {"wal_before": before, "wal_after": after, "busy": int(busy)}
