"""Finding this node's peers on the LAN, and trusting one only after it proves its key.

The announcement, browser and choice live in sync_protocol.lan_discovery (the station uses
them too). Discovery is a hint, never trust (DESIGN lesson 9): `verify_peer` asks the node to
sign a fresh challenge and trusts it only if its certificate has the fingerprint the terminal
was given and the signature verifies. "Enter the address by hand" always remains.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sync_protocol.lan_discovery import (
    SERVICE_TYPE,
    TXT_KEYS,
    Announcement,
    Announcer,
    NodeBrowser,
    cert_fingerprint,
    choose,
    new_zeroconf,
)

log = logging.getLogger(__name__)

__all__ = ["SERVICE_TYPE", "TXT_KEYS", "Announcement", "Announcer", "NodeBrowser",
           "cert_fingerprint", "choose", "new_zeroconf", "sign_challenge", "verify_peer"]

HTTP_TIMEOUT = 5.0
CHALLENGE_BYTES = 16
IDENTITY_PATH = "/api/v1/node/identity"


def verify_peer(base_url: str, fingerprint: str, *, session: Any = requests,
                verify: bool | str = True) -> bool:
    """Does the node at base_url hold the key of the certificate with this fingerprint?"""
    challenge = secrets.token_hex(CHALLENGE_BYTES)
    try:
        response = session.get(base_url.rstrip("/") + IDENTITY_PATH,
                               params={"challenge": challenge}, timeout=HTTP_TIMEOUT,
                               verify=verify)
        body = response.json()
        cert = x509.load_pem_x509_certificate(str(body["cert"]).encode("ascii"))
        signature = bytes.fromhex(str(body["signature"]))
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False
    if cert_fingerprint(cert) != _normal(fingerprint):
        return False
    return _signature_ok(cert, signature, challenge_message(challenge))


def challenge_message(challenge: str) -> bytes:
    return hashlib.sha256(b"dmed-node-identity\n" + challenge.encode("ascii")).digest()


def sign_challenge(key: Any, challenge: str) -> bytes:
    message = challenge_message(challenge)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _signature_ok(cert: x509.Certificate, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    public = cert.public_key()
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _normal(fingerprint: str) -> str:
    return fingerprint.replace(":", "").replace(" ", "").lower()
