"""Signed sync requests: what a node signs and what the hub refuses (sync_protocol)."""

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from helpers.pki import CLINIC_ID, PHARMACY_ID, make_pki

from provisioning.pki import KeyAlgorithm, create_node, create_region, create_root, revoke
from sync_protocol.certificates import NodeKind
from sync_protocol.errors import TrustError
from sync_protocol.request_signing import (
    HEADER_CERTIFICATE,
    HEADER_NODE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIME,
    MAX_CLOCK_SKEW_SECONDS,
    sign_request,
    verify_request,
)
from sync_protocol.trust_list import TrustList

PATH = "/sync/v1/pull?after=0&limit=1000&max_bytes=524288"
BODY = b'{"node_id":"x","events":[]}'


class Nonces:
    """An in-memory nonce table: what the hub's NonceStore does with a database."""

    def __init__(self):
        self.seen = {}

    def __call__(self, node_id, nonce, expires):
        key = (node_id, nonce)
        if key in self.seen:
            return True
        self.seen[key] = expires
        return False


@pytest.fixture(scope="module", params=[KeyAlgorithm.EC_P256, KeyAlgorithm.ED25519])
def pki(request):
    return make_pki(algorithm=request.param)


def fresh(pki):
    return TrustList.from_dict(pki.trust_list.to_dict())


def signed(pki, cred=None, *, node_id=CLINIC_ID, method="POST", path=PATH, body=BODY, now=None,
           nonce=None):
    cred = cred or pki.clinic
    return sign_request(method, path, body, cred.key, cred.cert, node_id, now or pki.now, nonce)


def verify(pki, headers, *, trust_list=None, method="POST", path=PATH, body=BODY, now=None,
           nonces=None):
    return verify_request(method, path, body, headers, trust_list or pki.trust_list,
                          now or pki.now, nonces or Nonces())


def refusal(pki, headers, **kwargs):
    with pytest.raises(TrustError) as caught:
        verify(pki, headers, **kwargs)
    return caught.value


def test_a_signed_request_names_its_node(pki):
    identity = verify(pki, signed(pki))
    assert (identity.node_id, identity.kind, identity.region_code) == (CLINIC_ID,
                                                                        NodeKind.CLINIC, "TAS")


def test_header_names_are_case_insensitive(pki):
    headers = {k.lower(): v for k, v in signed(pki).items()}
    assert verify(pki, headers).node_id == CLINIC_ID


def test_a_node_unknown_to_the_list_is_learnt_from_its_chain(pki):
    newcomer = create_node(pki.region, "tas-clinic-0099", "TAS-POLY-99", NodeKind.CLINIC,
                           now=pki.now)
    assert pki.trust_list.get(newcomer.kid) is None
    headers = signed(pki, newcomer, node_id="tas-clinic-0099")
    assert verify(pki, headers).node_id == "tas-clinic-0099"


@pytest.mark.parametrize("change", ["method", "path", "body"])
def test_any_change_to_the_signed_request_breaks_the_signature(pki, change):
    headers = signed(pki)
    kwargs = {"method": "PUT", "path": PATH.replace("after=0", "after=9"),
              "body": BODY.replace(b"[]", b"[1]")}
    assert refusal(pki, headers, **{change: kwargs[change]}).code == "bad_signature"


def test_a_signature_by_another_key_is_refused(pki):
    headers = signed(pki)
    other = signed(pki, pki.pharmacy, node_id=PHARMACY_ID)
    headers[HEADER_SIGNATURE] = other[HEADER_SIGNATURE]
    assert refusal(pki, headers).code == "bad_signature"


def test_a_stranger_signing_with_a_real_nodes_certificate_is_refused(pki):
    """The certificate is public; without the node's private key the signature fails."""
    headers = sign_request("POST", PATH, BODY, ec.generate_private_key(ec.SECP256R1()),
                           pki.clinic.cert, CLINIC_ID, pki.now)
    assert refusal(pki, headers).code == "bad_signature"


def test_a_certificate_from_another_root_is_unknown(pki):
    root = create_root("Impostor Root", now=pki.now)
    region = create_region(root, "TAS", "Fake", now=pki.now)
    fake = create_node(region, CLINIC_ID, "TAS-POLY-12", NodeKind.CLINIC, now=pki.now)
    error = refusal(pki, signed(pki, fake))
    assert error.code == "unknown_key"
    assert error.http_status == 401


@pytest.mark.parametrize("which", ["node", "region"])
def test_a_revoked_key_is_refused(pki, which):
    trust_list = fresh(pki)
    cert = pki.clinic.cert if which == "node" else pki.region.cert
    revoke(trust_list, cert, "stolen", pki.now)
    error = refusal(pki, signed(pki), trust_list=trust_list)
    assert (error.code, error.http_status) == ("revoked", 403)


@pytest.mark.parametrize("offset", [MAX_CLOCK_SKEW_SECONDS + 5, -MAX_CLOCK_SKEW_SECONDS - 5])
def test_a_clock_too_far_off_is_refused_and_told_the_hubs_time(pki, offset):
    headers = signed(pki, now=pki.now + timedelta(seconds=offset))
    error = refusal(pki, headers)
    assert error.code == "clock_skew"
    assert error.params["hub_time"] == int(pki.now.timestamp())


def test_a_clock_within_the_allowed_skew_is_fine(pki):
    headers = signed(pki, now=pki.now + timedelta(seconds=MAX_CLOCK_SKEW_SECONDS - 5))
    assert verify(pki, headers).node_id == CLINIC_ID


def test_a_replayed_request_is_refused(pki):
    nonces = Nonces()
    headers = signed(pki)
    verify(pki, headers, nonces=nonces)
    assert refusal(pki, dict(headers), nonces=nonces).code == "replayed"


def test_a_refused_request_does_not_burn_its_nonce(pki):
    nonces = Nonces()
    headers = signed(pki)
    refusal(pki, headers, body=b"tampered", nonces=nonces)
    assert nonces.seen == {}


def test_a_node_claiming_another_nodes_id_is_refused(pki):
    error = refusal(pki, signed(pki, node_id=PHARMACY_ID))
    assert (error.code, error.http_status) == ("node_mismatch", 403)


@pytest.mark.parametrize("header, value", [
    (HEADER_NODE, None),
    (HEADER_TIME, "yesterday"),
    (HEADER_NONCE, "short"),
    (HEADER_CERTIFICATE, "%%%"),
    (HEADER_CERTIFICATE, base64.b64encode(b"not a certificate").decode()),
    (HEADER_SIGNATURE, ""),
])
def test_malformed_headers_are_refused(pki, header, value):
    headers = signed(pki)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    error = refusal(pki, headers)
    assert (error.code, error.field) == ("malformed_auth", header)
