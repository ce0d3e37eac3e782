"""Issue 16 (i): TLS on the LAN. The node's TLS key is born on the node, its certificate comes
with enrolment for `<facility-code>.local` and LAN addresses; the node serves HTTPS, plain
HTTP only redirects, cookies are Secure and HSTS is sent. A client trusting only the national
root sees no warning; a certificate from a foreign root is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from edge_node import enrolment
from edge_node.credentials import load_credentials
from edge_node.enrolment import TLS_CERT_FILE, TLS_KEY_FILE
from edge_node.web import create_app
from edge_node.web.serving import create_node_server
from provisioning import CaStore
from provisioning.enrolment_desk import EnrolmentDesk, EnrolmentRefused
from provisioning.facilities import add_facility
from sync_protocol.certificates import NodeIdentity
from sync_protocol.enrolment_request import make_request, make_tls_csr, new_code
from sync_protocol.identifiers import new_ulid
from sync_protocol.tls_serving import HSTS, redirect_app, secure_transport, tls_server

CHROMIUM = Path("/usr/bin/chromium")
FACILITY = dict(code="TAS-POL-012", kind="clinic", region="TAS",
                names={"uz": "12-son poliklinika", "ru": "Поликлиника № 12",
                       "en": "Polyclinic 12"}, address="Bunyodkor 12", district="Chilonzor",
                opening_hours={"mon": "08:00-17:00"})
IDENTITY = NodeIdentity("tas-pol-012-a", "TAS-POL-012", "TAS", "clinic")
HOSTNAME = "tas-pol-012.local"


def make_region(directory: Path, name: str) -> CaStore:
    store = CaStore(directory)
    store.init_root(name)
    store.add_region("TAS", "Toshkent shahri")
    add_facility(store, **FACILITY)
    return store


def enrolled_node(region: CaStore, data_dir: Path) -> Path:
    desk = EnrolmentDesk(region)
    pending = enrolment.start(data_dir, IDENTITY, lan_ips=["127.0.0.1"])
    desk.receive(pending.request, "127.0.0.1")
    enrolment.install_answer(data_dir, desk.approve(pending.request_id, code=pending.code,
                                                    facility_code="TAS-POL-012", actor="op"))
    return data_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A node of the national region serving HTTPS and a redirecting HTTP port; and a node
    certified under a foreign root, served the same way."""
    base = tmp_path_factory.mktemp("tls")
    servers, urls = [], {}
    national = make_region(base / "ca", "DMED National Root")
    foreign = make_region(base / "foreign-ca", "Someone Else's Root")
    for name, region in (("node", national), ("foreign", foreign)):
        data_dir = enrolled_node(region, base / name)
        app = secure_transport(create_app(
            {"DATABASE": str(data_dir / "node.db"), "BACKGROUND_JOBS": False, "HUB_URL": "",
             "SECRET_KEY": "tls-test"},
            credentials=load_credentials(data_dir / "enrolment")))
        server = tls_server(app, "127.0.0.1", 0, data_dir / "enrolment" / TLS_CERT_FILE,
                            data_dir / "enrolment" / TLS_KEY_FILE)
        server.prepare()
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        servers.append(server)
        urls[name] = f"https://127.0.0.1:{server.bind_addr[1]}"
        if name == "node":
            redirect = create_node_server(redirect_app(server.bind_addr[1]), "127.0.0.1", 0)
            threading.Thread(target=redirect.run, daemon=True).start()
            urls["http"] = f"http://127.0.0.1:{redirect.effective_port}"
            urls["https_port"] = server.bind_addr[1]
            urls["cert"] = data_dir / "enrolment" / TLS_CERT_FILE
    root = base / "national-root.pem"
    root.write_bytes(national.root().cert.public_bytes(Encoding.PEM))
    yield {"urls": urls, "root": root, "base": base, "region": national}
    for server in servers:
        server.stop()
    redirect.close()


def test_tls_certificate_names_the_facility_and_lan_address(world):
    cert = x509.load_pem_x509_certificates(world["urls"]["cert"].read_bytes())[0]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOSTNAME]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (cert.not_valid_after_utc - datetime.now(UTC)).days <= 398
    key_file = world["base"] / "node" / "enrolment" / TLS_KEY_FILE
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_https_with_only_the_national_root_trusted(world):
    response = requests.get(world["urls"]["node"] + "/ui/kiosk/?lang=ru",
                            verify=str(world["root"]), timeout=10)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == HSTS
    cookies = response.headers.get("Set-Cookie", "")
    assert cookies and all("Secure" in c for c in response.raw.headers.getlist("Set-Cookie"))


def test_a_certificate_from_a_foreign_root_is_refused(world):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(world["urls"]["foreign"] + "/api/v1/node/status",
                     verify=str(world["root"]), timeout=10)


def test_plain_http_only_redirects(world):
    for method in ("GET", "POST"):
        response = requests.request(method, world["urls"]["http"] + "/ui/desk/?a=1",
                                    allow_redirects=False, timeout=10)
        assert response.status_code == 308
        assert response.headers["Location"] == (
            f"https://127.0.0.1:{world['urls']['https_port']}/ui/desk/?a=1")
        assert response.content == b""


@pytest.mark.parametrize(("dns", "ips", "code"), [
    ("tas-apt-007.local", ["127.0.0.1"], "wrong_tls_name"),  # another facility's name
    (HOSTNAME, ["8.8.8.8"], "wrong_tls_address"),  # a public address
])
def test_tls_request_for_another_name_or_a_public_address_is_refused(world, tmp_path, dns,
                                                                     ips, code):
    desk = EnrolmentDesk(world["region"])
    key, tls_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    code_shown = new_code()
    identity = NodeIdentity(f"tas-pol-012-{code[-4:]}", "TAS-POL-012", "TAS", "clinic")
    request = make_request(key, identity, code_shown, new_ulid(), datetime.now(UTC),
                           tls_csr=make_tls_csr(tls_key, dns, ips))
    desk.receive(request, "127.0.0.1")
    before = world["region"].trust_list().digest()
    with pytest.raises(EnrolmentRefused) as error:
        desk.approve(request["request_id"], code=code_shown, facility_code="TAS-POL-012",
                     actor="op")
    assert error.value.code == code
    assert world["region"].trust_list().digest() == before


def test_a_swapped_tls_csr_breaks_the_code_proof(world):
    desk = EnrolmentDesk(world["region"])
    key = ec.generate_private_key(ec.SECP256R1())
    shown = new_code()
    identity = NodeIdentity("tas-pol-012-swap", "TAS-POL-012", "TAS", "clinic")
    request = make_request(key, identity, shown, new_ulid(), datetime.now(UTC),
                           tls_csr=make_tls_csr(ec.generate_private_key(ec.SECP256R1()),
                                                HOSTNAME, []))
    attacker = make_tls_csr(ec.generate_private_key(ec.SECP256R1()), HOSTNAME, [])
    request["tls_csr"] = attacker.public_bytes(Encoding.PEM).decode()
    desk.receive(request, "127.0.0.1")
    with pytest.raises(EnrolmentRefused) as error:
        desk.approve(request["request_id"], code=shown, facility_code="TAS-POL-012",
                     actor="op")
    assert error.value.code == "wrong_code"


def test_browser_with_only_the_national_root_sees_no_warning(world, tmp_path):
    if not CHROMIUM.exists() or not shutil.which("certutil"):
        if os.environ.get("CI"):
            pytest.fail("chromium and certutil (libnss3-tools) are installed by .ci/run")
        pytest.skip("needs /usr/bin/chromium and certutil (Debian libnss3-tools)")
    from playwright.sync_api import Error, sync_playwright
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "DMED root",
                    "-i", str(world["root"])], check=True)
    port, foreign_port = world["urls"]["https_port"], world["urls"]["foreign"].rsplit(":")[-1]
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
            f"--host-resolver-rules=MAP {HOSTNAME} 127.0.0.1"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args,
                                             headless=True, env={**os.environ,
                                                                 "HOME": str(home)})
        try:
            page = browser.new_page()
            response = page.goto(f"https://{HOSTNAME}:{port}/ui/kiosk/")
            assert response is not None and response.ok
            assert page.evaluate("window.isSecureContext") is True
            # The same name, certified under a foreign root: refused for its authority.
            with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
                page.goto(f"https://{HOSTNAME}:{foreign_port}/ui/kiosk/")
        finally:
            browser.close()


def test_a_terminal_finds_the_https_node_by_fingerprint_and_the_national_root(world):
    from click.testing import CliRunner

    from edge_node.announce import announcement_for
    from edge_node.cli import main as node_cli
    from edge_node.discovery import Announcer, cert_fingerprint, new_zeroconf
    data_dir = world["base"] / "node"
    credentials = load_credentials(data_dir / "enrolment")
    zc = new_zeroconf(["127.0.0.1"])
    announcer = Announcer(zc, announcement_for(data_dir, credentials, ["127.0.0.1"],
                                               world["urls"]["https_port"], tls=True))
    announcer.start()
    try:
        found = CliRunner().invoke(node_cli, [
            "discover", "--interface", "127.0.0.1", "--timeout", "2", "--fingerprint",
            cert_fingerprint(credentials.cert), "--root-cert", str(world["root"])])
    finally:
        announcer.stop()
        zc.close()
    assert found.exit_code == 0, found.output
    assert found.output.strip() == world["urls"]["node"]
