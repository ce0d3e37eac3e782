"""The region's enrolment desk: pending CSR requests, approve or refuse, every action audited.

station.db (SQLite, in the provisioning store directory) keeps the requests as received
(public: a CSR and an HMAC proof, never a private key), their answers, and the audit trail.
Approving checks, in order, and issues nothing unless every check passes:

    the request is still pending (an answered or refused one is a replay)
    it is not older than REQUEST_TTL
    the code the operator typed matches (after MAX_CODE_ATTEMPTS wrong codes it is refused)
    the CSR is for the facility the operator chose, of this region, and of the facility's kind
    the node id has no revoked certificate (a revoked node is replaced under a new node id)
    a renewal is signed by the node's current, valid certificate of the same identity;
    a first enrolment meets no valid certificate of that node id
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from provisioning.backup_keys import public_backup_key
from provisioning.errors import AlreadyExists, InvalidRequest, NotFound, ProvisioningError
from provisioning.facilities import get_facility, signed_facility
from provisioning.keystore import CaStore, write_trust_list
from provisioning.pki import certify_node, certify_tls_server
from sync_protocol.certificates import kid_of
from sync_protocol.enrolment_request import (
    ANSWER_FORMAT,
    REQUEST_VERSION,
    EnrolmentRequestInvalid,
    parse_request,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.trust_list import TrustList

log = logging.getLogger(__name__)

STATION_DB = "station.db"
MAX_CODE_ATTEMPTS = 5  # a 40-bit code cannot be guessed in five tries
MAX_REQUEST_BYTES = 16_384  # a CSR and a certificate: a few kilobytes
# Anyone on the LAN may send a request: a flood must not fill the station's disk.
MAX_PENDING = 200
MAX_TLS_ADDRESSES = 4  # wired, Wi-Fi, and room to move; a node is not a router
PENDING, APPROVED, REFUSED = "pending", "approved", "refused"

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY, received_at TEXT NOT NULL, seen_from TEXT NOT NULL,
    node_id TEXT NOT NULL, facility_code TEXT NOT NULL, region TEXT NOT NULL,
    kind TEXT NOT NULL, fingerprint TEXT NOT NULL, renewal INTEGER NOT NULL,
    body TEXT NOT NULL, state TEXT NOT NULL, wrong_codes INTEGER NOT NULL DEFAULT 0,
    decided_at TEXT, decided_by TEXT, reason TEXT, answer TEXT);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
"""


class EnrolmentRefused(ProvisioningError):
    """An approval the desk refuses: nothing is issued, the reason is audited."""

    code = "enrolment_refused"


@dataclass(frozen=True)
class Decision:
    request_id: str
    state: str
    answer: dict[str, Any] | None = None


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EnrolmentDesk:
    def __init__(self, store: CaStore) -> None:
        self.store = store
        self.path = store.directory / STATION_DB
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.executescript(SCHEMA)
        finally:
            db.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "",
              now: datetime | None = None) -> None:
        with self._db() as db:
            self._audit(db, actor, action, target, outcome, detail, now)

    @staticmethod
    def _audit(db: sqlite3.Connection, actor: str, action: str, target: str, outcome: str,
               detail: str = "", now: datetime | None = None) -> None:
        db.execute("INSERT INTO audit (at, actor, action, target, outcome, detail) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (_iso(now or datetime.now(UTC)), actor, action, target, outcome, detail))

    # -- revoking (the station's button and `dmed-provision revoke` share this) -----------
    def revoke_node(self, node_id: str, reason: str, *, actor: str,
                    now: datetime | None = None) -> list[Any]:
        """Revoke every certificate of a node; the outcome, refused or done, is audited."""
        return self._audited("revoke", node_id, reason, actor, now,
                             lambda: self.store.revoke_node(node_id, reason, now=now))

    def revoke_region(self, region_code: str, reason: str, *, actor: str,
                      now: datetime | None = None) -> Any:
        """Revoke a region (and so every node it certified); audited like a node's."""
        return self._audited("revoke_region", region_code, reason, actor, now,
                             lambda: self.store.revoke_region(region_code, reason, now=now))

    def _audited(self, action: str, target: str, reason: str, actor: str,
                 now: datetime | None, revoke: Callable[[], Any]) -> Any:
        """Run `revoke`; audit it as refused (with why) or done (with the reason given)."""
        try:
            result = revoke()
        except ProtocolError as e:
            self.audit(actor, action, target, "refused", e.text, now)
            raise
        self.audit(actor, action, target, "done", reason, now)
        return result

    def audit_trail(self, limit: int = 200) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
            return [dict(r) for r in rows]

    # -- receiving ------------------------------------------------------------------------
    def receive(self, body: Any, seen_from: str, *, now: datetime | None = None) -> str:
        """Keep a node's request as pending; a request id seen before is a replay."""
        now = datetime.now(UTC) if now is None else now
        try:
            request = parse_request(body, now)
        except EnrolmentRequestInvalid as e:
            self.audit("node", "receive", seen_from, "refused", e.text, now)
            raise
        if request.expired(now):
            raise EnrolmentRefused("This request has expired; make a new one on the node.",
                                   field="created_at")
        if request.identity.region_code not in self.store.region_codes():
            raise EnrolmentRefused("This request is for region %(region)s; this station "
                                   "serves %(ours)s.", field="region",
                                   region=request.identity.region_code,
                                   ours=", ".join(self.store.region_codes()) or "none")
        identity = request.identity
        with self._db() as db:
            waiting = db.execute("SELECT COUNT(*) FROM requests WHERE state = ?",
                                 (PENDING,)).fetchone()[0]
            if waiting >= MAX_PENDING:
                raise EnrolmentRefused("Too many requests are waiting; refuse the unknown ones "
                                       "first.", code="too_many_pending")
            if db.execute("SELECT 1 FROM requests WHERE request_id = ?",
                          (request.request_id,)).fetchone():
                self._audit(db, "node", "receive", request.request_id, "refused", "replayed",
                            now)
                raise AlreadyExists("Request %(id)s was received already.", field="request_id",
                                    id=request.request_id)
            db.execute(
                "INSERT INTO requests (request_id, received_at, seen_from, node_id, "
                "facility_code, region, kind, fingerprint, renewal, body, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.request_id, _iso(now), seen_from, identity.node_id,
                 identity.facility_code, identity.region_code, str(identity.kind),
                 request.fingerprint, int(request.renewal_cert is not None),
                 json.dumps(body), PENDING))
            self._audit(db, "node", "receive", request.request_id, "pending",
                        f"{identity.node_id} from {seen_from}", now)
        return request.request_id

    def requests(self, state: str | None = None) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT request_id, received_at, seen_from, node_id, "
                              "facility_code, region, kind, fingerprint, renewal, state, "
                              "decided_at, decided_by, reason FROM requests "
                              "WHERE ? IS NULL OR state = ? ORDER BY received_at",
                              (state, state))
            return [dict(r) for r in rows]

    def decision(self, request_id: str) -> Decision:
        with self._db() as db:
            row = db.execute("SELECT state, answer FROM requests WHERE request_id = ?",
                             (request_id,)).fetchone()
        if row is None:
            raise NotFound("Request %(id)s is not known here.", field="request_id",
                           id=request_id)
        return Decision(request_id, row["state"],
                        json.loads(row["answer"]) if row["answer"] else None)

    # -- deciding -------------------------------------------------------------------------
    def approve(self, request_id: str, *, code: str, facility_code: str, actor: str,
                now: datetime | None = None) -> dict[str, Any]:
        """Check everything, issue the certificate, and keep the answer for the node."""
        now = datetime.now(UTC) if now is None else now
        with self._db() as db:
            row = db.execute("SELECT * FROM requests WHERE request_id = ?",
                             (request_id,)).fetchone()
            if row is None:
                raise NotFound("Request %(id)s is not known here.", field="request_id",
                               id=request_id)
            try:
                answer = self._check_and_issue(db, row, code, facility_code, now)
            except ProvisioningError as e:
                self._audit(db, actor, "approve", request_id, "refused", e.text, now)
                if e.code == "wrong_code" and row["wrong_codes"] + 1 >= MAX_CODE_ATTEMPTS:
                    db.execute("UPDATE requests SET state = ?, decided_at = ?, decided_by = ?,"
                               " reason = ? WHERE request_id = ?",
                               (REFUSED, _iso(now), actor, "too many wrong codes", request_id))
                if e.code == "wrong_code":
                    db.execute("UPDATE requests SET wrong_codes = wrong_codes + 1 "
                               "WHERE request_id = ?", (request_id,))
                db.execute("COMMIT")  # keep the audit line and the count; nothing issued
                db.execute("BEGIN IMMEDIATE")
                raise
            db.execute("UPDATE requests SET state = ?, decided_at = ?, decided_by = ?, "
                       "answer = ? WHERE request_id = ?",
                       (APPROVED, _iso(now), actor, json.dumps(answer), request_id))
            self._audit(db, actor, "approve", request_id, "approved",
                        f"{row['node_id']} certificate {answer['kid']}", now)
        return answer

    def refuse(self, request_id: str, *, actor: str, reason: str,
               now: datetime | None = None) -> None:
        now = datetime.now(UTC) if now is None else now
        if not reason or not reason.strip():
            raise InvalidRequest("Give a reason for refusing.", field="reason")
        with self._db() as db:
            updated = db.execute("UPDATE requests SET state = ?, decided_at = ?, decided_by = ?,"
                                 " reason = ? WHERE request_id = ? AND state = ?",
                                 (REFUSED, _iso(now), actor, reason.strip(), request_id,
                                  PENDING)).rowcount
            if not updated:
                raise NotFound("No pending request %(id)s.", field="request_id", id=request_id)
            self._audit(db, actor, "refuse", request_id, "refused", reason.strip(), now)

    def _check_and_issue(self, db: sqlite3.Connection, row: sqlite3.Row, code: str,
                         facility_code: str, now: datetime) -> dict[str, Any]:
        if row["state"] != PENDING:
            raise EnrolmentRefused("Request %(id)s was %(state)s already; a request is "
                                   "answered once.", code="replayed", field="request_id",
                                   id=row["request_id"], state=row["state"])
        request = parse_request(json.loads(row["body"]), now)
        if request.expired(now):
            raise EnrolmentRefused("This request has expired; make a new one on the node.",
                                   code="expired", field="created_at")
        if not request.code_matches(code):
            raise EnrolmentRefused("The code does not match the one shown on the node.",
                                   code="wrong_code", field="code")
        identity = request.identity
        facility = get_facility(self.store, facility_code)
        for name, asked, provisioned in (
                ("facility", identity.facility_code, facility.code),
                ("region", identity.region_code, facility.region),
                ("kind", str(identity.kind), facility.kind)):
            if asked != provisioned:
                raise EnrolmentRefused("The node asks for %(name)s %(asked)s, but facility "
                                       "%(facility)s has %(provisioned)s.",
                                       code="wrong_" + name, field=name, name=name,
                                       asked=asked, facility=facility.code,
                                       provisioned=provisioned)
        signed = signed_facility(self.store, facility.code)  # before anything is issued
        backup_key = public_backup_key(self.store, facility.region)
        with self.store._locked():
            trust_list = self.store.trust_list()
            certs = trust_list.node_certificates(identity.node_id)
            if any(trust_list.revocation(c) is not None for c in certs):
                raise EnrolmentRefused("Node %(node_id)s has been revoked; enrol a replacement "
                                       "under a new node id.", code="revoked",
                                       field="node_id", node_id=identity.node_id)
            valid = [c for c in certs if c.not_valid_after_utc > now]
            if request.renewal_cert is not None:
                self._check_renewal(request, trust_list, now)
            elif valid:
                raise EnrolmentRefused("Node %(node_id)s has a valid certificate already; "
                                       "the node renews it itself.", code="already_enrolled",
                                       field="node_id", node_id=identity.node_id)
            region = self.store.region(identity.region_code)
            tls_names, tls_ips = _tls_names(request, facility.code)  # checked before issuing
            cert = certify_node(region, identity, request.csr.public_key(), now=now)
            tls_cert = (certify_tls_server(region, tls_names, tls_ips,
                                           request.tls_csr.public_key(), now=now)
                        if request.tls_csr is not None else None)
            trust_list.add_certificate(cert)
            write_trust_list(self.store.trust_list_path, trust_list)
        bundle_trust = make_bundle_trust(trust_list, cert, (region.cert, *region.chain))
        return {"format": ANSWER_FORMAT, "version": REQUEST_VERSION,
                "request_id": row["request_id"], "kid": kid_of(cert).hex(),
                "cert": cert.public_bytes(Encoding.PEM).decode("ascii"),
                "chain": [c.public_bytes(Encoding.PEM).decode("ascii")
                          for c in (region.cert, *region.chain)],
                "trust_list": bundle_trust, "facility": signed,
                "backup_key": (backup_key or b"").decode("ascii") or None,
                "tls_cert": (tls_cert.public_bytes(Encoding.PEM).decode("ascii")
                             if tls_cert is not None else None)}

    @staticmethod
    def _check_renewal(request: Any, trust_list: Any, now: datetime) -> None:
        current = request.renewal_cert
        verdict = trust_list.verify_chain(current, now)
        if not verdict.ok:
            raise EnrolmentRefused("The node's current certificate is refused: %(why)s",
                                   code=verdict.reason or "renewal_refused", field="renewal",
                                   why=verdict.message)
        if verdict.identity != request.identity or not request.renewal_signed():
            raise EnrolmentRefused("The renewal is not signed by this node's current key.",
                                   code="renewal_not_signed", field="renewal")


def _tls_names(request: Any, facility_code: str) -> tuple[list[str], list[Any]]:
    """The TLS CSR may name only `<facility-code>.local` and private LAN addresses."""
    if request.tls_csr is None:
        return [], []
    expected = f"{facility_code.lower()}.local"
    try:
        san = request.tls_csr.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise EnrolmentRefused("The TLS request names no host.", code="wrong_tls_name",
                               field="tls_csr") from e
    names, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    if names != [expected]:
        raise EnrolmentRefused("The TLS request names %(names)s; a node of this facility may "
                               "only be %(expected)s.", code="wrong_tls_name",
                               field="tls_csr", names=", ".join(names) or "nothing",
                               expected=expected)
    if len(ips) > MAX_TLS_ADDRESSES or any(not (ip.is_private or ip.is_loopback)
                                            for ip in ips):
        raise EnrolmentRefused("The TLS request may name at most %(max)s private LAN "
                               "addresses.", code="wrong_tls_address", field="tls_csr",
                               max=MAX_TLS_ADDRESSES)
    return names, ips


def make_bundle_trust(trust_list: TrustList, cert: Any, chain: tuple) -> dict[str, Any]:
    """The trust list a node receives: the region's list with the node's chain in it."""
    copy = TrustList.from_dict(trust_list.to_dict())
    for c in (cert, *chain):
        if c.issuer != c.subject:
            copy.add_certificate(c)
    return copy.to_dict()


def export_pending(desk: EnrolmentDesk) -> list[dict[str, Any]]:
    """Pending requests as received, for a region key kept offline (carried on a stick)."""
    with desk._db() as db:
        rows = db.execute("SELECT body FROM requests WHERE state = ? ORDER BY received_at",
                          (PENDING,))
        return [json.loads(r["body"]) for r in rows]


def import_answer(desk: EnrolmentDesk, answer: Any, *, actor: str,
                  now: datetime | None = None) -> str:
    """An answer signed on the offline machine: it must certify the pending request's key and
    chain to this station's trust list; then the node can fetch it here."""
    from cryptography import x509

    from sync_protocol.enrolment_request import public_key_fingerprint
    now = datetime.now(UTC) if now is None else now
    if not isinstance(answer, dict) or answer.get("format") != ANSWER_FORMAT:
        raise InvalidRequest("This is not an enrolment answer.")
    request_id = str(answer.get("request_id"))
    with desk._db() as db:
        row = db.execute("SELECT * FROM requests WHERE request_id = ?",
                         (request_id,)).fetchone()
        if row is None or row["state"] != PENDING:
            raise EnrolmentRefused("No pending request %(id)s for this answer.",
                                   code="replayed", field="request_id", id=request_id)
        try:
            cert = x509.load_pem_x509_certificate(str(answer["cert"]).encode("ascii"))
            trust = TrustList.from_dict(answer["trust_list"])
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidRequest("The answer cannot be read.") from e
        if public_key_fingerprint(cert.public_key()) != row["fingerprint"]:
            raise EnrolmentRefused("The answer certifies another key than the request's.",
                                   code="wrong_key", field="cert")
        local = desk.store.trust_list()
        if not trust.verify_chain(cert, now).ok or not any(
                r in local.roots for r in trust.roots):
            raise EnrolmentRefused("The answer's certificate does not chain to this "
                                   "station's root.", code="unknown_issuer", field="cert")
        db.execute("UPDATE requests SET state = ?, decided_at = ?, decided_by = ?, answer = ? "
                   "WHERE request_id = ?",
                   (APPROVED, _iso(now), actor, json.dumps(answer), request_id))
        desk._audit(db, actor, "import_answer", request_id, "approved",
                    f"{row['node_id']} certificate {kid_of(cert).hex()}", now)
    return request_id
