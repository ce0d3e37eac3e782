"""Helpers for the FHIR tests: client keys, signed SMART assertions, tokens, validation with
`fhir.resources` (its R4B models: R4's resources as the tests use them), and a seeded hub.

Imported by test modules, so it opts out of assertion rewriting (PYTEST_DONT_REWRITE).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fhir.resources.R4B import get_fhir_model_class

from central_hub.fhir.access import register_client
from sync_protocol.identifiers import new_ulid

TOKEN_PATH = "/fhir/r4/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def validate(resource: dict[str, Any]) -> dict[str, Any]:
    """Parse with fhir.resources (raises on anything FHIR does not allow); return it. Also
    what its models let through: FHIR JSON has no empty objects, arrays, strings or nulls."""
    model = get_fhir_model_class(resource["resourceType"])
    model.parse_obj(resource)
    no_empty_values(resource, resource["resourceType"])
    return resource


def no_empty_values(value: Any, where: str) -> None:
    if value is None or value in ("", [], {}):
        raise AssertionError(f"{where} is empty: FHIR JSON forbids it")
    if isinstance(value, dict):
        for key, item in value.items():
            no_empty_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            no_empty_values(item, f"{where}[{n}]")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Client:
    client_id: str
    key: Any
    alg: str
    audience: str
    token: str | None = None
    used: list[str] = field(default_factory=list)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def assertion(self, *, key: Any = None, alg: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": self.audience,
                "exp": now + 240, "jti": new_ulid(), **claims}
        alg = alg or self.alg
        header = {"alg": alg, "typ": "JWT", "kid": "k1"}
        signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        return f"{signed}.{_b64(sign(key or self.key, alg, signed.encode()))}"

    def form(self, assertion: str | None = None, scope: str | None = None) -> dict[str, str]:
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion or self.assertion()}
        if scope:
            form["scope"] = scope
        return form


def sign(key: Any, alg: str, data: bytes) -> bytes:
    digest = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size) + s.to_bytes(size)
    return key.sign(data, padding.PKCS1v15(), digest)


def new_key(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_client(storage, client_id: str, scopes: str = "system/*.read", regions: str = "*",
                alg: str = "ES256", audience: str = "http://localhost/fhir/r4/auth/token"
                ) -> Client:
    client = Client(client_id, new_key(alg), alg, audience)
    register_client(storage, client_id, f"Test {client_id}", client.public_pem(), scopes,
                    regions, datetime.now(UTC))
    return client


def get_token(http, client: Client, **form: Any) -> str:
    """A token through the token endpoint; `http` is a Flask test client."""
    response = http.post(TOKEN_PATH, data=client.form(**form))
    assert response.status_code == 200, response.get_json()
    client.token = response.get_json()["access_token"]
    return client.token


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
