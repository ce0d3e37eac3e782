"""API: the node proves who it is to a terminal that found it on the LAN.

A discovered address is only a hint (edge_node.discovery): the terminal sends a fresh
challenge and trusts the node if the certificate returned has the fingerprint it expects and
the signature over the challenge verifies with that certificate's key.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, jsonify, request

from ..discovery import CHALLENGE_BYTES, cert_fingerprint, sign_challenge
from ..errors import NodeNotInitialised, ValidationFailed
from .context import optional_credentials
from .endpoint import endpoint

bp = Blueprint("identity", __name__, url_prefix="/api/v1")
CHALLENGE_RE = re.compile(f"[0-9a-f]{{{CHALLENGE_BYTES * 2}}}")


@endpoint(bp, "GET", "/node/identity", public=True,
          summary="The node's certificate and its signature over a terminal's challenge",
          query={"challenge": (f"{CHALLENGE_BYTES * 2} lower-case hex digits",
                               {"type": "string",
                                "pattern": f"^[0-9a-f]{{{CHALLENGE_BYTES * 2}}}$"}, True)})
def identity():
    challenge = request.args.get("challenge", "")
    if not CHALLENGE_RE.fullmatch(challenge):
        raise ValidationFailed("challenge must be %(n)s lower-case hex digits",
                               field="challenge", n=CHALLENGE_BYTES * 2)
    credentials = optional_credentials()
    if credentials is None:
        raise NodeNotInitialised("This node is not enrolled yet")
    return jsonify({"cert": credentials.cert.public_bytes(Encoding.PEM).decode("ascii"),
                    "fingerprint": cert_fingerprint(credentials.cert),
                    "signature": sign_challenge(credentials.key, challenge).hex()})
