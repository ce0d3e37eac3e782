"""Reading a node's enrolment bundle (sync_protocol.enrolment): both forms, and every refusal
names the file but never shows the key."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from helpers.pki import CLINIC_ID, PHARMACY_ID, make_pki

from provisioning import InvalidRequest, KeystoreError, NotFound, read_bundle
from provisioning.keystore import key_to_pem
from sync_protocol.certificates import EKU_PRESCRIBE, NodeKind
from sync_protocol.enrolment import (
    BUNDLE_FILES,
    INVALID_BUNDLE,
    INVALID_CERTIFICATE,
    INVALID_KEY,
    INVALID_TRUST_LIST,
    KEY_MISMATCH,
    NOT_FOUND,
    Enrolment,
    EnrolmentError,
    read_enrolment,
)
from sync_protocol.errors import TrustError

FORMS = {"directory": "clinic_bundle", "json": "pharmacy_bundle"}  # make_pki's two bundles


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def bundles(pki, tmp_path):
    """Fresh copies of both bundles, to corrupt: {"directory": Path, "json": Path}."""
    copies = {"directory": tmp_path / "clinic-bundle", "json": tmp_path / "pharmacy.json"}
    shutil.copytree(pki.paths["clinic_bundle"], copies["directory"])
    shutil.copy2(pki.paths["pharmacy_bundle"], copies["json"])
    return copies


def _secret_lines(key) -> list[str]:
    """The base64 lines of a private key's PEM: none may ever show up in a message."""
    return [line for line in key_to_pem(key).decode("ascii").splitlines()
            if line and not line.startswith("-----")]


def _texts(error: BaseException) -> str:
    """Everything a log line or traceback could print for an error and its causes."""
    parts = []
    while error is not None:
        parts += [str(error), repr(error), getattr(error, "text", "")]
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def _assert_no_key(text: str, *keys) -> None:
    for key in keys:
        for line in _secret_lines(key):
            assert line not in text


# -- reading ------------------------------------------------------------------------------

@pytest.mark.parametrize(("form", "node_id", "kind"), [
    ("directory", CLINIC_ID, NodeKind.CLINIC), ("json", PHARMACY_ID, NodeKind.PHARMACY)])
def test_both_forms_read_into_the_same_enrolment(pki, form, node_id, kind):
    enrolment = read_enrolment(pki.paths[FORMS[form]])
    credential = pki.node(kind)
    assert enrolment.cert == credential.cert
    assert enrolment.key.public_key() == credential.key.public_key()
    assert enrolment.chain == (pki.region.cert, pki.root.cert)
    assert (enrolment.identity.node_id, enrolment.identity.kind) == (node_id, kind)
    assert enrolment.kid == credential.kid
    verdict = enrolment.trust_list.verify_chain(enrolment.cert, pki.now)
    assert verdict.ok and verdict.identity == enrolment.identity


def test_a_clinic_enrolment_may_prescribe(pki):
    enrolment = read_enrolment(str(pki.paths["clinic_bundle"]))  # a str path works too
    assert enrolment.trust_list.verify_kid(enrolment.kid, pki.now, require_eku=EKU_PRESCRIBE).ok


@pytest.mark.parametrize("form", FORMS)
def test_provisioning_reads_the_same_bundle(pki, form):
    path = pki.paths[FORMS[form]]
    enrolment, bundle = read_enrolment(path), read_bundle(path)
    assert bundle.node.cert == enrolment.cert and bundle.node.chain == enrolment.chain
    assert bundle.trust_list.digest() == enrolment.trust_list.digest()


def test_the_repr_shows_no_key(pki):
    enrolment = read_enrolment(pki.paths["pharmacy_bundle"])
    _assert_no_key(repr(enrolment), enrolment.key)
    assert "key=" not in repr(enrolment)


# -- refusals -----------------------------------------------------------------------------

def test_a_key_of_another_node_is_refused(pki):
    with pytest.raises(EnrolmentError) as error:
        Enrolment(pki.pharmacy.key, pki.clinic.cert, (pki.region.cert,), pki.trust_list)
    assert error.value.code == KEY_MISMATCH
    assert pki.clinic.kid.hex() in error.value.text
    _assert_no_key(_texts(error.value), pki.pharmacy.key, pki.clinic.key)


@pytest.mark.parametrize("form", FORMS)
def test_a_bundle_whose_key_is_another_nodes_is_refused(pki, bundles, form):
    other = pki.root.key  # a real, readable key that does not belong to the node
    if form == "directory":
        (bundles[form] / BUNDLE_FILES["key"]).write_bytes(key_to_pem(other))
    else:
        data = json.loads(bundles[form].read_text())
        data["key"] = key_to_pem(other).decode("ascii")
        bundles[form].write_text(json.dumps(data))
    with pytest.raises(EnrolmentError) as error:
        read_enrolment(bundles[form])
    assert error.value.code == KEY_MISMATCH
    _assert_no_key(_texts(error.value), other)


@pytest.mark.parametrize("part", BUNDLE_FILES)
def test_a_missing_file_of_a_bundle_directory_is_named(bundles, part):
    missing = bundles["directory"] / BUNDLE_FILES[part]
    missing.unlink()
    with pytest.raises(EnrolmentError) as error:
        read_enrolment(bundles["directory"])
    assert error.value.code == NOT_FOUND
    assert error.value.text == f"{missing} does not exist."


def test_a_missing_bundle_is_not_found(tmp_path):
    with pytest.raises(EnrolmentError) as error:
        read_enrolment(tmp_path / "nowhere.json")
    assert error.value.code == NOT_FOUND and "nowhere.json" in error.value.text
    assert isinstance(error.value, TrustError)


def _truncate_inside_the_key(data: dict, text: str) -> str:
    start = text.index('"key": "-----BEGIN')
    return text[:start + 150]  # mid-way through the key's base64


def _mangle_the_key(data: dict, text: str) -> str:
    lines = data["key"].splitlines()
    lines[2] = lines[2][::-1]  # still base64, no longer a key
    return json.dumps({**data, "key": "\n".join(lines)})


def _drop(name: str):
    return lambda data, text: json.dumps({k: v for k, v in data.items() if k != name})


def _replace(name: str, value):
    return lambda data, text: json.dumps({**data, name: value})


@pytest.mark.parametrize(("corrupt", "code"), [
    (_truncate_inside_the_key, INVALID_BUNDLE),
    (_mangle_the_key, INVALID_KEY),
    (lambda data, text: "[" + text + "]", INVALID_BUNDLE),
    (_replace("format", "something-else"), INVALID_BUNDLE),
    (_replace("version", 99), INVALID_BUNDLE),
    (_drop("trust_list"), INVALID_BUNDLE),
    (_replace("trust_list", {"format": "dmed-trust-list", "version": 1, "roots": ["x"]}),
     INVALID_BUNDLE),
    (_replace("cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
     INVALID_BUNDLE),
    (_replace("chain", "not a list of certificates"), INVALID_BUNDLE),
], ids=["truncated", "mangled-key", "not-an-object", "format", "version", "no-trust-list",
        "bad-trust-list", "bad-cert", "bad-chain"])
def test_a_corrupted_json_bundle_is_refused_without_showing_the_key(pki, bundles, corrupt, code):
    path = bundles["json"]
    text = path.read_text()
    path.write_text(corrupt(json.loads(text), text))
    with pytest.raises(EnrolmentError) as error:
        read_enrolment(path)
    assert error.value.code == code
    assert str(path) in error.value.text
    _assert_no_key(_texts(error.value), pki.pharmacy.key)


@pytest.mark.parametrize(("part", "content", "code"), [
    ("key", b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0\n-----END PRIVATE KEY-----\n",
     INVALID_KEY),
    ("cert", b"", INVALID_CERTIFICATE),  # a node has exactly one certificate
    ("chain", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
     INVALID_CERTIFICATE),
    ("trust_list", b"{", INVALID_TRUST_LIST),
])
def test_a_corrupted_directory_bundle_names_the_bad_file(pki, bundles, part, content, code):
    bad = bundles["directory"] / BUNDLE_FILES[part]
    bad.write_bytes(content)
    with pytest.raises(EnrolmentError) as error:
        read_enrolment(bundles["directory"])
    assert error.value.code == code and str(bad) in error.value.text
    assert "c2VjcmV0" not in _texts(error.value)
    _assert_no_key(_texts(error.value), pki.clinic.key)


# -- permissions and provisioning's view ----------------------------------------------------

@pytest.mark.parametrize(("form", "mode", "warned"), [
    ("json", 0o600, False), ("json", 0o644, True),
    ("directory", 0o600, False), ("directory", 0o640, True)])
def test_a_key_others_can_read_is_warned_about_but_read(pki, bundles, caplog, form, mode,
                                                        warned):
    caplog.set_level(logging.DEBUG, logger="sync_protocol.enrolment")
    key_file = bundles[form] / BUNDLE_FILES["key"] if form == "directory" else bundles[form]
    key_file.chmod(mode)
    enrolment = read_enrolment(bundles[form])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    assert warnings == [] or str(key_file) in warnings[0].getMessage()
    _assert_no_key(caplog.text, enrolment.key)


@pytest.mark.parametrize(("corrupt", "provisioning_error"), [
    (lambda bundles: (bundles["directory"] / BUNDLE_FILES["chain"]).unlink(), NotFound),
    (lambda bundles: (bundles["directory"] / BUNDLE_FILES["trust_list"]).write_text("{"),
     KeystoreError),
    (lambda bundles: (bundles["directory"] / BUNDLE_FILES["key"]).write_bytes(
        key_to_pem(make_pki().root.key)), InvalidRequest),
], ids=["missing", "corrupted", "wrong-key"])
def test_provisioning_keeps_its_own_errors_and_messages(bundles, corrupt, provisioning_error):
    corrupt(bundles)
    with pytest.raises(EnrolmentError) as enrolment_error:
        read_enrolment(bundles["directory"])
    with pytest.raises(provisioning_error) as error:
        read_bundle(bundles["directory"])
    assert error.value.text == enrolment_error.value.text
    assert not isinstance(error.value, EnrolmentError)
