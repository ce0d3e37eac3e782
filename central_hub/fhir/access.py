"""SMART Backend Services for systems, not people: registered clients, their signed JWT
assertions, short-lived access tokens, scopes (resource types) and regions (least
knowledge), and the audit of every read.

A client is registered on the hub machine (`dmed-hub fhir-client-add`) with its public key;
it asks /fhir/r4/auth/token for a token with a JWT assertion signed by its private key
(ES256, ES384 or RS384, as SMART requires), and sends that token as a Bearer token. Tokens
are stored as SHA-256 hashes only; assertion ids (jti) are kept until they expire, so an
assertion cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sync_protocol.timeutil import to_instant

from ..storage import Storage, Tx
from .errors import BadClientAssertion, BadRegistration, NotAuthorised, OutOfScope
from .sources import SOURCES

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_TYPE = "client_credentials"
TOKEN_SECONDS = 300  # SMART: access tokens of at most five minutes
MAX_ASSERTION_SECONDS = 300  # SMART: an assertion's exp at most five minutes ahead
CLOCK_SKEW_SECONDS = 60  # tolerated difference between the client's clock and ours
MAX_ASSERTION_CHARS = 8192
ALGORITHMS: dict[str, tuple[type, Any]] = {
    "ES256": (ec.EllipticCurvePublicKey, hashes.SHA256()),
    "ES384": (ec.EllipticCurvePublicKey, hashes.SHA384()),
    "RS384": (rsa.RSAPublicKey, hashes.SHA384()),
}
CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
ALL = "*"
SCOPE_PATTERN = re.compile(r"^system/([A-Za-z]+|\*)\.(read|rs|r|s|\*)$")
CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
REGION_PATTERN = re.compile(r"^[A-Z]{2,8}$")


@dataclass(frozen=True)
class Access:
    """What one client may see: resource types and regions."""

    client_id: str
    types: frozenset[str]
    regions: frozenset[str]
    all_regions: bool

    def check(self, resource_type: str) -> None:
        if resource_type not in self.types:
            raise OutOfScope("Your scopes do not include system/%(type)s.read", field="type",
                             code="out_of_scope", type=resource_type)


# -- scopes and registration ----------------------------------------------------------------

def scope_types(scopes: list[str]) -> frozenset[str]:
    types: set[str] = set()
    for scope in scopes:
        match = SCOPE_PATTERN.match(scope)
        if match is None:
            continue
        kind = match.group(1)
        types.update(SOURCES if kind == "*" else {kind} & set(SOURCES))
    return frozenset(types)


def normal_scopes(text: str) -> list[str]:
    scopes = sorted(set(text.split()))
    for scope in scopes:
        match = SCOPE_PATTERN.match(scope)
        if match is None or (match.group(1) != "*" and match.group(1) not in SOURCES):
            raise BadRegistration("Scope %(scope)s is not system/<Type>.read for a type served "
                                  "here (or system/*.read)", field="scopes",
                                  code="bad_scope", scope=scope)
    if not scopes:
        raise BadRegistration("Give at least one scope", field="scopes", code="bad_scope")
    return scopes


def register_client(storage: Storage, client_id: str, name: str, public_key_pem: bytes,
                    scopes: str, regions: str, now: datetime) -> dict[str, Any]:
    """Register a client (or replace its key, scopes and regions)."""
    if not CLIENT_ID_PATTERN.match(client_id):
        raise BadRegistration("Client id: 3-64 lower-case letters, digits, '.', '_' or '-'",
                              field="client_id", code="bad_client_id")
    if not name.strip():
        raise BadRegistration("Give the client's name", field="name", code="bad_name")
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError) as e:
        raise BadRegistration("The public key is not a PEM public key", field="public_key",
                              code="bad_key") from e
    alg = _alg_of(key)
    region_list = sorted(set(regions.replace(",", " ").split()))
    if not region_list or any(r != ALL and not REGION_PATTERN.match(r) for r in region_list):
        raise BadRegistration("Regions: codes such as TAS SAM, or * for every region",
                              field="regions", code="bad_regions")
    scope_list = normal_scopes(scopes)
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    row = (client_id, name.strip(), pem, alg, " ".join(scope_list), " ".join(region_list),
           to_instant(now))
    with storage.transaction(exclusive=False) as tx:
        tx.execute("INSERT INTO fhir_clients (client_id, name, public_key, alg, scopes, "
                   "regions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) "
                   "DO UPDATE SET name = excluded.name, public_key = excluded.public_key, "
                   "alg = excluded.alg, scopes = excluded.scopes, regions = excluded.regions, "
                   "disabled = 0", row)
        tx.execute("DELETE FROM fhir_tokens WHERE client_id = ?", (client_id,))
    return {"client_id": client_id, "alg": alg, "scopes": scope_list, "regions": region_list}


def _alg_of(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        for alg, curve in CURVES.items():
            if isinstance(key.curve, curve):
                return alg
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return "RS384"
    raise BadRegistration("Keys must be EC P-256 (ES256), EC P-384 (ES384) or RSA of 2048 "
                          "bits or more (RS384)", field="public_key", code="bad_key")


def list_clients(storage: Storage) -> list[dict[str, Any]]:
    with storage.reader() as tx:
        return tx.query("SELECT client_id, name, alg, scopes, regions, created_at, disabled "
                        "FROM fhir_clients ORDER BY client_id")


def disable_client(storage: Storage, client_id: str) -> bool:
    with storage.transaction(exclusive=False) as tx:
        changed = tx.execute("UPDATE fhir_clients SET disabled = 1 WHERE client_id = ?",
                             (client_id,))
        tx.execute("DELETE FROM fhir_tokens WHERE client_id = ?", (client_id,))
    return bool(changed)


# -- the token endpoint ---------------------------------------------------------------------

def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _refuse(message: str, code: str = "invalid_client", **params: Any) -> BadClientAssertion:
    return BadClientAssertion(message, field="client_assertion", code=code, **params)


def issue_token(storage: Storage, form: dict[str, str], audience: str,
                now: datetime) -> dict[str, Any]:
    """Check a client_credentials request with its JWT assertion; return the token answer."""
    if form.get("grant_type") != GRANT_TYPE:
        raise BadClientAssertion("grant_type must be client_credentials", field="grant_type",
                                 code="unsupported_grant_type")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _refuse("client_assertion_type must be %(type)s", type=ASSERTION_TYPE)
    token = form.get("client_assertion") or ""
    parts = token.split(".")
    if len(token) > MAX_ASSERTION_CHARS or len(parts) != 3:
        raise _refuse("client_assertion is not a signed JWT")
    try:
        header, claims = json.loads(_b64(parts[0])), json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise _refuse("client_assertion is not a signed JWT") from e
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _refuse("client_assertion is not a signed JWT")
    client_id = claims.get("iss")
    if not isinstance(client_id, str) or claims.get("sub") != client_id:
        raise _refuse("The assertion's iss and sub must both be your client id")
    with storage.reader() as tx:
        client = tx.one("SELECT * FROM fhir_clients WHERE client_id = ? AND disabled = 0",
                        (client_id,))
    if client is None:
        raise _refuse("Unknown or disabled client")
    if header.get("alg") != client["alg"]:
        raise _refuse("The assertion must be signed %(alg)s, with the registered key",
                      alg=client["alg"])
    _verify(client, f"{parts[0]}.{parts[1]}".encode(), signature)
    _check_claims(claims, audience, now)
    granted = _granted(client, form.get("scope") or "")
    expires = now + timedelta(seconds=TOKEN_SECONDS)
    access_token = secrets.token_urlsafe(32)
    with storage.transaction(exclusive=False) as tx:
        tx.execute("DELETE FROM fhir_assertions WHERE expires_at < ?", (to_instant(now),))
        tx.execute("DELETE FROM fhir_tokens WHERE expires_at < ?", (to_instant(now),))
        # one statement decides, so two requests racing with one assertion get one token
        if not tx.execute("INSERT INTO fhir_assertions (client_id, jti, expires_at) VALUES "
                          "(?, ?, ?) ON CONFLICT (client_id, jti) DO NOTHING",
                          (client_id, claims["jti"], to_instant(_exp(claims)))):
            raise _refuse("This assertion (jti) was used already")
        tx.execute("INSERT INTO fhir_tokens (token_hash, client_id, scopes, expires_at) "
                   "VALUES (?, ?, ?, ?)", (_hash(access_token), client_id, " ".join(granted),
                                           to_instant(expires)))
    log.info("FHIR token issued to client %s for %s", client_id, " ".join(granted))
    return {"access_token": access_token, "token_type": "bearer", "expires_in": TOKEN_SECONDS,
            "scope": " ".join(granted)}


def _verify(client: dict[str, Any], signed: bytes, signature: bytes) -> None:
    key = serialization.load_pem_public_key(client["public_key"].encode())
    _, digest = ALGORITHMS[client["alg"]]
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise _refuse("The assertion's signature is not valid")
            r, s = int.from_bytes(signature[:size]), int.from_bytes(signature[size:])
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(digest))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), digest)
    except InvalidSignature as e:
        raise _refuse("The assertion's signature is not valid") from e


def _exp(claims: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"], tz=UTC)


def _check_claims(claims: dict[str, Any], audience: str, now: datetime) -> None:
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise _refuse("The assertion's aud must be this token endpoint, %(url)s", url=audience)
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _refuse("The assertion needs exp")
    moment = now.timestamp()
    if exp < moment - CLOCK_SKEW_SECONDS:
        raise _refuse("The assertion has expired")
    if exp > moment + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
        raise _refuse("The assertion's exp is more than five minutes ahead")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
        raise _refuse("The assertion needs a jti")


def _granted(client: dict[str, Any], requested: str) -> list[str]:
    registered = client["scopes"].split()
    if not requested.strip():
        return registered
    wanted = set(requested.split())
    allowed = scope_types(registered)
    granted = sorted(s for s in wanted if scope_types([s]) and scope_types([s]) <= allowed)
    if not granted:
        raise BadClientAssertion("None of the requested scopes is registered for this client",
                                 field="scope", code="invalid_scope")
    return granted


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_for(storage: Storage, authorization: str | None, now: datetime) -> Access:
    """The Access of a Bearer token; NotAuthorised without a valid one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorised("Send an access token from /fhir/r4/auth/token as a Bearer token",
                            field="Authorization", code="no_token")
    with storage.reader() as tx:
        row = tx.one("SELECT t.client_id, t.scopes, t.expires_at, c.regions FROM fhir_tokens t "
                     "JOIN fhir_clients c ON c.client_id = t.client_id WHERE t.token_hash = ? "
                     "AND c.disabled = 0", (_hash(token.strip()),))
    if row is None or row["expires_at"] <= to_instant(now):
        raise NotAuthorised("The access token is unknown or has expired; ask for a new one",
                            field="Authorization", code="invalid_token")
    regions = frozenset(row["regions"].split())
    return Access(row["client_id"], scope_types(row["scopes"].split()), regions - {ALL},
                  ALL in regions)


def audit(tx: Tx, access: Access, interaction: str, resource_type: str, count: int,
          detail: str, now: datetime) -> None:
    """Every read is written down: who, what type, how many, and the query."""
    tx.execute("INSERT INTO fhir_audit (at, client_id, interaction, resource_type, count, "
               "detail) VALUES (?, ?, ?, ?, ?, ?)",
               (to_instant(now), access.client_id, interaction, resource_type, count,
                detail[:1000]))
