"""The trust chain: national root -> region -> node, verification, revocation, trust lists."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from helpers.pki import CLINIC_ID, PHARMACY_ID, REGION_CODE, make_pki

from provisioning.pki import (
    NODE_VALIDITY,
    REGION_VALIDITY,
    ROOT_VALIDITY,
    KeyAlgorithm,
    create_node,
    create_region,
    create_root,
    make_bundle,
    revoke,
)
from sync_protocol import cose
from sync_protocol.certificates import (
    BAD_CHAIN_SIGNATURE,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    EKU_PRESCRIBE,
    EKU_SYNC,
    ISSUER_NOT_A_CA,
    MISSING_EKU,
    NOT_A_NODE_CERT,
    REGION_CODE_OID,
    REGION_MISMATCH,
    REVOKED,
    UNKNOWN_CERT,
    UNKNOWN_ISSUER,
    ChainRefused,
    InvalidNodeIdentity,
    NodeIdentity,
    NodeKind,
    NotANodeCert,
    extended_key_usages,
    identity_of,
    kid_of,
)
from sync_protocol.errors import TrustError
from sync_protocol.trust_list import TrustList, TrustListInvalid

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
PRESCRIPTION_ID = "01JNKZ3V5X8Q4W2E6R7T9Y0V1P"  # a ULID


@pytest.fixture(scope="module")
def pki():
    return make_pki(now=T0)


def _fresh(pki):
    """A private copy of the shared trust list, for tests that change it."""
    return TrustList.from_dict(pki.trust_list.to_dict())


def _forge(subject, key, issuer_name, signer, *, ca=None, cert_sign=True, ekus=None,
           not_before=T0, days=365):
    """A certificate built by hand, for profiles provisioning would never issue."""
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_before + timedelta(days=days)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=ca), True)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
            crl_sign=cert_sign, encipher_only=False, decipher_only=False), True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), False)
    return builder.sign(signer, hashes.SHA256())


def _region_name(name, code):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                      x509.NameAttribute(REGION_CODE_OID, code)])


# -- verification succeeds ----------------------------------------------------------------

@pytest.mark.parametrize("kind, node_id", [("clinic", CLINIC_ID), ("pharmacy", PHARMACY_ID)])
def test_node_chain_verifies(pki, kind, node_id):
    node = pki.node(kind)
    verdict = pki.trust_list.verify_chain(node.cert, T0 + timedelta(days=1))
    assert verdict.ok and verdict.reason is None
    assert verdict.identity.node_id == node_id and verdict.identity.kind == kind
    assert verdict.kid == node.kid
    assert verdict.public_key == node.key.public_key()
    assert pki.trust_list.verify_kid(node.kid, T0, require_eku=EKU_SYNC).ok


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_chain_verifies_for_every_key_algorithm(algorithm):
    pki = make_pki(now=T0, algorithm=algorithm)
    assert pki.trust_list.require_kid(pki.clinic.kid, T0, require_eku=EKU_PRESCRIBE).ok


def test_rsa_chain_verifies_for_robustness():
    root_key, region_key = (rsa.generate_private_key(65537, 2048) for _ in range(2))
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSA root")])
    root = _forge(root_name, root_key, root_name, root_key, ca=1)
    region = _forge(_region_name("RSA region", "TAS"), region_key, root_name, root_key, ca=0)
    identity = NodeIdentity("rsa-node", "F1", "TAS", NodeKind.PHARMACY)
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = _forge(identity.subject(), node_key, region.subject, region_key, ekus=[EKU_SYNC])
    verdict = TrustList([root], [region, node]).verify_chain(node, T0 + timedelta(days=1))
    assert verdict.ok, verdict.reason
    assert verdict.identity == identity


# -- extended key usages ------------------------------------------------------------------

def test_only_clinic_nodes_carry_the_prescribing_eku(pki):
    assert EKU_PRESCRIBE in extended_key_usages(pki.clinic.cert)
    assert EKU_PRESCRIBE not in extended_key_usages(pki.pharmacy.cert)
    for node in (pki.clinic, pki.pharmacy):
        assert EKU_SYNC in extended_key_usages(node.cert)


@pytest.mark.parametrize("kind, ok", [("clinic", True), ("pharmacy", False)])
def test_prescribing_requires_the_eku(pki, kind, ok):
    verdict = pki.trust_list.verify_kid(pki.node(kind).kid, T0, require_eku=EKU_PRESCRIBE)
    assert verdict.ok is ok
    assert verdict.reason == (None if ok else MISSING_EKU)
    assert (verdict.public_key is not None) is ok


def test_a_pharmacy_cert_with_a_prescribing_eku_still_cannot_prescribe(pki):
    identity = NodeIdentity("tas-pharmacy-evil", "F9", REGION_CODE, NodeKind.PHARMACY)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _forge(identity.subject(), key, pki.region.cert.subject, pki.region.key,
                  ekus=[EKU_SYNC, EKU_PRESCRIBE])
    trust_list = _fresh(pki)
    assert trust_list.verify_chain(cert, T0 + timedelta(days=1)).ok
    verdict = trust_list.verify_chain(cert, T0 + timedelta(days=1), require_eku=EKU_PRESCRIBE)
    assert verdict.reason == MISSING_EKU


@pytest.mark.parametrize("ekus, required", [
    ([EKU_SYNC], EKU_PRESCRIBE), (None, EKU_SYNC), ([EKU_PRESCRIBE], EKU_SYNC),
])
def test_a_clinic_cert_without_the_eku_asked_for_is_refused(pki, ekus, required):
    identity = NodeIdentity("tas-clinic-narrow", "F8", REGION_CODE, NodeKind.CLINIC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _forge(identity.subject(), key, pki.region.cert.subject, pki.region.key, ekus=ekus)
    verdict = pki.trust_list.verify_chain(cert, T0 + timedelta(days=1), require_eku=required)
    assert (verdict.ok, verdict.reason) == (False, MISSING_EKU)
    assert pki.trust_list.verify_chain(cert, T0 + timedelta(days=1)).ok


# -- foreign and malformed chains ---------------------------------------------------------

def test_a_foreign_root_with_the_same_names_is_refused(pki):
    forger = make_pki(now=T0)  # same root name, region code and node ids, other keys
    verdict = pki.trust_list.verify_chain(forger.clinic.cert, T0 + timedelta(days=1))
    assert not verdict.ok and verdict.reason == BAD_CHAIN_SIGNATURE
    assert pki.trust_list.verify_kid(forger.clinic.kid, T0).reason == UNKNOWN_CERT


def test_a_region_under_a_foreign_root_is_refused_even_when_listed(pki):
    foreign_root = create_root("Foreign root", now=T0)
    foreign_region = create_region(foreign_root, "SAM", "Samarqand", now=T0)
    node = create_node(foreign_region, "sam-clinic-1", "SAM-1", "clinic", now=T0)
    trust_list = _fresh(pki)
    assert trust_list.verify_chain(node.cert, T0).reason == UNKNOWN_ISSUER
    trust_list.add_certificate(foreign_region.cert)
    trust_list.add_certificate(node.cert)
    verdict = trust_list.verify_kid(node.kid, T0)
    assert (verdict.reason, verdict.which) == (UNKNOWN_ISSUER, "region")


def test_a_region_cannot_certify_nodes_of_another_region(pki):
    samarkand = create_region(pki.root, "SAM", "Samarqand", now=T0)
    identity = NodeIdentity("tas-clinic-fake", "F1", REGION_CODE, NodeKind.CLINIC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _forge(identity.subject(), key, samarkand.cert.subject, samarkand.key,
                  ekus=[EKU_SYNC, EKU_PRESCRIBE])
    trust_list = _fresh(pki)
    trust_list.add_certificate(samarkand.cert)
    assert trust_list.verify_chain(cert, T0 + timedelta(days=1)).reason == REGION_MISMATCH


def test_an_issuer_without_cert_sign_usage_is_refused(pki):
    key = ec.generate_private_key(ec.SECP256R1())
    name = _region_name("No signing", "BUX")
    weak_region = _forge(name, key, pki.root.cert.subject, pki.root.key, ca=0, cert_sign=False)
    identity = NodeIdentity("bux-1", "F1", "BUX", NodeKind.CLINIC)
    node = _forge(identity.subject(), ec.generate_private_key(ec.SECP256R1()), name, key)
    trust_list = _fresh(pki)
    trust_list.add_certificate(weak_region)
    verdict = trust_list.verify_chain(node, T0 + timedelta(days=1))
    assert (verdict.reason, verdict.which) == (ISSUER_NOT_A_CA, "region")


@pytest.mark.parametrize("which", ["root", "region"])
def test_ca_certificates_are_not_node_certificates(pki, which):
    cert = getattr(pki, which).cert
    assert pki.trust_list.verify_chain(cert, T0).reason == NOT_A_NODE_CERT
    with pytest.raises(NotANodeCert):
        identity_of(cert)


def test_a_root_cannot_be_smuggled_in_as_a_region(pki):
    with pytest.raises(TrustListInvalid):
        TrustList().add_certificate(create_root("Sneaky", now=T0).cert)
    with pytest.raises(TrustListInvalid):
        TrustList().add_root(pki.region.cert)


# -- time -------------------------------------------------------------------------------

@pytest.mark.parametrize("offset, reason, which", [
    (-timedelta(days=1), CERT_NOT_YET_VALID, "node"),
    (NODE_VALIDITY + timedelta(seconds=1), CERT_EXPIRED, "node"),
    (ROOT_VALIDITY + timedelta(days=1), CERT_EXPIRED, "node"),
])
def test_certificates_outside_their_validity_are_refused(pki, offset, reason, which):
    verdict = pki.trust_list.verify_kid(pki.clinic.kid, T0 + offset)
    assert (verdict.ok, verdict.reason, verdict.which) == (False, reason, which)
    assert pki.trust_list.verify_kid(pki.clinic.kid, T0 + NODE_VALIDITY).ok


def test_every_link_of_the_chain_is_checked_for_time(pki):
    identity = NodeIdentity("tas-long", "F1", REGION_CODE, NodeKind.PHARMACY)
    key = ec.generate_private_key(ec.SECP256R1())  # outlives its region: pki never does this
    node = _forge(identity.subject(), key, pki.region.cert.subject, pki.region.key, days=5000)
    verdict = pki.trust_list.verify_chain(node, T0 + REGION_VALIDITY + timedelta(days=1))
    assert (verdict.reason, verdict.which) == (CERT_EXPIRED, "region")
    assert pki.trust_list.verify_chain(node, T0 + timedelta(days=1)).ok


def test_an_expired_region_refuses_nodes_issued_just_before(pki):
    late = pki.now + REGION_VALIDITY - timedelta(days=30)
    node = create_node(pki.region, "tas-late", "F2", "pharmacy", now=late)
    assert node.cert.not_valid_after_utc == pki.region.cert.not_valid_after_utc
    verdict = pki.trust_list.verify_chain(node.cert, late + timedelta(days=31))
    assert verdict.reason == CERT_EXPIRED


def test_a_naive_time_is_a_programming_error(pki):
    with pytest.raises(ValueError, match="naive"):
        pki.trust_list.verify_kid(pki.clinic.kid, datetime(2026, 3, 2))  # noqa: DTZ001


# -- revocation ---------------------------------------------------------------------------

def test_a_revoked_node_is_refused_and_the_others_are_not(pki):
    trust_list = _fresh(pki)
    assert trust_list.verify_kid(pki.clinic.kid, T0).ok  # caches the chain
    revocation = revoke(trust_list, pki.clinic.cert, "Pi stolen", T0 + timedelta(days=3))
    assert revocation.serial == pki.clinic.cert.serial_number
    for when in (T0, T0 + timedelta(days=30)):  # a stolen key can backdate: time is no excuse
        verdict = trust_list.verify_kid(pki.clinic.kid, when)
        assert (verdict.reason, verdict.which) == (REVOKED, "node")
    assert trust_list.verify_kid(pki.pharmacy.kid, T0).ok
    assert "node certificate" in verdict.message and "revoked" in verdict.message
    with pytest.raises(ChainRefused) as refused:
        trust_list.require_chain(pki.clinic.cert, T0)
    assert refused.value.code == REVOKED and isinstance(refused.value, TrustError)
    assert pki.clinic.kid.hex() in refused.value.text


def test_a_revoked_region_revokes_every_node_under_it(pki):
    trust_list = _fresh(pki)
    revoke(trust_list, pki.region.cert, "regional key leaked", T0)
    for node in (pki.clinic, pki.pharmacy):
        verdict = trust_list.verify_kid(node.kid, T0 + timedelta(days=1))
        assert (verdict.reason, verdict.which) == (REVOKED, "region")


def test_revoking_an_unlisted_node_makes_it_known_as_revoked(pki):
    trust_list = _fresh(pki)
    node = create_node(pki.region, "tas-new", "F3", "clinic", now=T0)
    revoke(trust_list, node.cert, "never delivered", T0)
    assert trust_list.verify_kid(node.kid, T0).reason == REVOKED


# -- identity and key id ------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(NodeKind))
def test_identity_round_trips_through_the_certificate(pki, kind):
    node = create_node(pki.region, "tas-x.9_a", "TAS-FAC-1", kind, now=T0)
    assert identity_of(node.cert) == NodeIdentity("tas-x.9_a", "TAS-FAC-1", "TAS", kind)
    assert identity_of(x509.load_pem_x509_certificate(node.cert.public_bytes(Encoding.PEM))
                       ).kind is NodeKind(kind)


@pytest.mark.parametrize("field, value", [
    ("node_id", ""), ("node_id", "has space"), ("node_id", "x" * 65),
    ("facility_code", "-leading"), ("region_code", "tas"), ("kind", "hospital"),
])
def test_invalid_identities_are_refused(field, value):
    values = {"node_id": "n1", "facility_code": "F1", "region_code": "TAS", "kind": "clinic"}
    with pytest.raises(InvalidNodeIdentity) as error:
        NodeIdentity(**{**values, field: value})
    assert error.value.field == field


def test_kid_is_the_first_8_bytes_of_sha256_of_the_der(pki):
    der = pki.clinic.cert.public_bytes(Encoding.DER)
    assert kid_of(pki.clinic.cert) == hashlib.sha256(der).digest()[:8]
    assert kid_of(pki.clinic.cert) == cose.kid_of(pki.clinic.cert)  # the QR code's key id
    assert pki.trust_list.get(pki.clinic.kid) == pki.clinic.cert
    assert pki.trust_list.node_certificates(CLINIC_ID) == (pki.clinic.cert,)


# -- serialisation and merging ------------------------------------------------------------

def _busy(pki):
    trust_list = _fresh(pki)
    revoke(trust_list, pki.pharmacy.cert, "decommissioned", T0 + timedelta(hours=2))
    return trust_list


def test_trust_list_json_round_trips(pki):
    trust_list = _busy(pki)
    text = trust_list.to_json()
    again = TrustList.from_json(text)
    assert again.to_json() == text and again.digest() == trust_list.digest()
    assert again.verify_kid(pki.clinic.kid, T0).ok
    assert again.verify_kid(pki.pharmacy.kid, T0).reason == REVOKED
    data = json.loads(text)
    assert len(data["roots"]) == 1 and len(data["nodes"]) == 2
    assert data["revocations"][0]["revoked_at"] == "2026-03-01T08:00:00Z"


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"format": "dmed-trust-list", "version": 99}',
    '{"format": "dmed-trust-list", "version": 1, "roots": ["garbage"]}',
    '{"format": "dmed-trust-list", "version": 1, "revocations": [{"kid": "zz"}]}',
])
def test_a_malformed_trust_list_is_refused(text):
    with pytest.raises(TrustListInvalid):
        TrustList.from_json(text)


def test_merge_is_a_union_in_any_order(pki):
    mine, theirs = _fresh(pki), TrustList([pki.root.cert], [pki.region.cert])
    extra = create_node(pki.region, "tas-extra", "F4", "pharmacy", now=T0)
    theirs.add_certificate(extra.cert)
    theirs.revoke(pki.clinic.cert, T0 + timedelta(days=2), "later report")
    mine.revoke(pki.clinic.cert, T0 + timedelta(days=1), "stolen")
    one, two = TrustList.from_dict(mine.to_dict()), TrustList.from_dict(theirs.to_dict())
    result = one.merge(theirs)
    two.merge(mine)
    assert one.digest() == two.digest()
    assert (result.added_certificates, result.added_revocations) == (1, 0)
    assert one.revocation(pki.clinic.cert).reason == "stolen"  # the earliest wins
    assert one.revocation(pki.clinic.cert).serial == pki.clinic.cert.serial_number
    assert one.verify_kid(extra.kid, T0).ok
    before = one.digest()
    assert one.merge(two).added_certificates == 0 and one.digest() == before


def test_merge_never_adds_a_root_unless_asked(pki):
    forger = make_pki(now=T0)
    trust_list = _fresh(pki)
    result = trust_list.merge(forger.trust_list)
    assert result.ignored_roots == 1 and len(trust_list.roots) == 1
    assert trust_list.verify_kid(forger.clinic.kid, T0).reason == BAD_CHAIN_SIGNATURE
    assert trust_list.merge(forger.trust_list, accept_roots=True).ignored_roots == 0
    assert trust_list.verify_kid(forger.clinic.kid, T0).ok


def test_merge_never_removes_a_revocation(pki):
    revoked, clean = _busy(pki), _fresh(pki)
    revoked.merge(clean)
    assert revoked.revocation(pki.pharmacy.kid) is not None


@pytest.mark.parametrize("cancelled", [None, [], [
    {"prescription_id": PRESCRIPTION_ID, "cancelled_at": "2026-03-01T07:00:00Z",
     "reason": "wrong dose"}]])
def test_a_list_written_with_the_old_cancellations_section_still_loads(pki, cancelled):
    """Lists stored before cancellations left the trust list (they travel as events) carry
    a "cancelled_prescriptions" section: it is ignored, the rest verifies as before."""
    data = _busy(pki).to_dict()
    if cancelled is not None:
        data["cancelled_prescriptions"] = cancelled
    again = TrustList.from_dict(data)
    assert again.digest() == _busy(pki).digest() and "cancelled_prescriptions" not in \
        again.to_dict()
    assert again.verify_kid(pki.clinic.kid, T0).ok
    assert again.verify_kid(pki.pharmacy.kid, T0).reason == REVOKED


def test_an_enrolment_bundle_verifies_on_its_own(pki):
    node = create_node(pki.region, "tas-fresh", "F5", "clinic", now=T0)
    bundle = make_bundle(node, TrustList([pki.root.cert]))
    assert bundle.verify(T0).ok and bundle.identity.node_id == "tas-fresh"


def _constraints(cert):
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value


def _usage(cert):
    return cert.extensions.get_extension_for_class(x509.KeyUsage).value


@pytest.mark.parametrize("which, ca, path_length, validity", [
    ("root", True, 1, ROOT_VALIDITY), ("region", True, 0, REGION_VALIDITY),
    ("clinic", False, None, NODE_VALIDITY), ("pharmacy", False, None, NODE_VALIDITY),
])
def test_certificate_profile(pki, which, ca, path_length, validity):
    cert = getattr(pki, which).cert
    assert (_constraints(cert).ca, _constraints(cert).path_length) == (ca, path_length)
    usage = _usage(cert)
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (ca, ca, not ca)
    assert cert.not_valid_after_utc - pki.now == validity
    assert cert.not_valid_before_utc <= pki.now
