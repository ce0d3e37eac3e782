"""Issue 16: the provisioning station serves HTTPS (`dmed-provision serve`, a real process on
loopback). It certifies itself under the region; a client trusting only the national root
reaches it, signs in, and gets Secure cookies and HSTS; plain HTTP is refused on the HTTPS
port and only redirects on --http-port; a client without the national root is refused; plain
HTTP (--insecure-http) is for loopback only. A node renews over HTTPS, trusting its root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from helpers.servers import free_port

from edge_node import enrolment
from edge_node.renewal import REQUESTED, WAITING, Renewal
from provisioning import CaStore
from provisioning.cli import main
from provisioning.enrolment_desk import EnrolmentDesk
from provisioning.facilities import add_facility
from provisioning.station_accounts import create_operator
from provisioning.station_tls import CERT_FILE, KEY_FILE, STATION_TLS_DIR, station_tls
from sync_protocol.certificates import NodeIdentity
from sync_protocol.tls_serving import HSTS

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"  # noqa: S105 (a test account)
START_TIMEOUT = 30.0
PHARMACY = dict(code="TAS-APT-007", kind="pharmacy", region="TAS",
                names={"uz": "Qatortol dorixonasi", "ru": "Аптека Катартал",
                       "en": "Qatortol pharmacy"},
                address="Qatortol ko'ch. 3", district="Chilonzor")


def make_store(directory: Path, root_name: str = "DMED National Root",
               since: datetime | None = None) -> CaStore:
    store = CaStore(directory)
    store.init_root(root_name, now=since)
    store.add_region("TAS", "Toshkent shahri", now=since)
    return store


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    base = tmp_path_factory.mktemp("station-tls")
    store = make_store(base / "ca", since=datetime.now(UTC) - timedelta(days=800))
    add_facility(store, **PHARMACY)
    create_operator(EnrolmentDesk(store), login="karimov", full_name="Karimov Aziz",
                    password=PASSWORD)
    root = base / "national-root.pem"
    root.write_bytes(store.root().cert.public_bytes(Encoding.PEM))
    port, http_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DMED_CA_PASSPHRASE", None)
    log = (base / "station.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from provisioning.cli import main; "
         "sys.argv[0] = 'dmed-provision'; main()", "serve", "--dir", str(base / "ca"),
         "--host", "127.0.0.1", "--port", str(port), "--http-port", str(http_port),
         "--tls-name", "provision.local", "--interface", "127.0.0.1"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, (base / "station.log").read_text()
            try:
                requests.get(url + "/sign-in", verify=str(root), timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield {"url": url, "port": port, "http_port": http_port, "root": root, "base": base,
               "store": store}
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def test_a_client_trusting_only_the_national_root_signs_in_with_secure_cookies(station):
    session = requests.Session()
    verify = str(station["root"])
    page = session.get(station["url"] + "/sign-in?lang=en", verify=verify, timeout=10)
    assert page.status_code == 200 and page.headers["Strict-Transport-Security"] == HSTS
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    signed_in = session.post(station["url"] + "/sign-in", verify=verify, timeout=30,
                             allow_redirects=False,
                             data={"login": "karimov", "password": PASSWORD, "csrf": token})
    assert signed_in.status_code == 302
    cookies = [*page.raw.headers.getlist("Set-Cookie"),
               *signed_in.raw.headers.getlist("Set-Cookie")]
    assert {c.split("=")[0] for c in cookies} >= {"dmed_station", "lang"}
    assert all("; Secure" in c for c in cookies), cookies
    overview = session.get(station["url"] + "/", verify=verify, timeout=10)
    assert "Karimov" in overview.text


def test_plain_http_is_refused_on_the_https_port_and_redirected_on_the_http_port(station):
    try:  # cheroot answers "400: only speaks HTTPS" or hangs up: no page goes out in clear
        refused = requests.get(f"http://127.0.0.1:{station['port']}/sign-in", timeout=10)
    except requests.ConnectionError:
        refused = None
    assert refused is None or (refused.status_code == 400 and "csrf" not in refused.text)
    for method in ("GET", "POST"):
        moved = requests.request(method, f"http://127.0.0.1:{station['http_port']}/sign-in"
                                 "?lang=ru", allow_redirects=False, timeout=10)
        assert moved.status_code == 308 and moved.content == b""
        assert moved.headers["Location"] == f"{station['url']}/sign-in?lang=ru"


def test_a_client_without_the_national_root_is_refused(station, tmp_path):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(station["url"] + "/sign-in", timeout=10)  # the system's CAs only
    foreign = make_store(tmp_path / "foreign", "Someone Else's Root")
    other_root = tmp_path / "foreign-root.pem"
    other_root.write_bytes(foreign.root().cert.public_bytes(Encoding.PEM))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(station["url"] + "/sign-in", verify=str(other_root), timeout=10)


def test_the_station_key_is_born_in_its_store_and_certified_by_the_region(station):
    directory = station["base"] / "ca" / STATION_TLS_DIR
    assert oct((directory / KEY_FILE).stat().st_mode & 0o777) == "0o600"
    cert, issuer = x509.load_pem_x509_certificates((directory / CERT_FILE).read_bytes())
    assert issuer == station["store"].region("TAS").cert
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["provision.local"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_a_node_renews_over_https_trusting_its_national_root(station, tmp_path):
    desk = EnrolmentDesk(station["store"])
    when = datetime.now(UTC) - timedelta(days=710)
    identity = NodeIdentity("tas-apt-007-a", "TAS-APT-007", "TAS", "pharmacy")
    pending = enrolment.start(tmp_path / "node", identity, now=when)
    desk.receive(pending.request, "127.0.0.1", now=when)
    enrolment.install_answer(tmp_path / "node", desk.approve(
        pending.request_id, code=pending.code, facility_code="TAS-APT-007", actor="op",
        now=when), now=when)
    renewal = Renewal(tmp_path / "node", station["url"], lambda renewed: None)
    assert renewal.run_once() == REQUESTED
    assert renewal.run_once() == WAITING  # the station knows the request: HTTPS both ways


def test_certificate_is_kept_while_good_and_issued_again_for_a_new_address(tmp_path):
    store = make_store(tmp_path / "ca")
    cert_file, _ = station_tls(store, host="127.0.0.1", names=["provision.local"])
    first = cert_file.read_bytes()
    assert station_tls(store, host="127.0.0.1", names=["provision.local"])[0].read_bytes() \
        == first
    station_tls(store, host="0.0.0.0", names=["provision.local"],  # noqa: S104
                addresses=["192.168.1.10"])
    assert cert_file.read_bytes() != first
    soon = datetime.now(UTC) + timedelta(days=380)  # within 30 days of its end
    station_tls(store, host="0.0.0.0", names=["provision.local"],  # noqa: S104
                addresses=["192.168.1.10"], now=soon)
    renewed = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    assert renewed.not_valid_after_utc > soon + timedelta(days=300)


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0", "--insecure-http"], "only on a loopback"),
    (["--tls-name", "not a name!"], "not a host name"),
    (["--tls-address", "192.168.1.300"], "--tls-address"),
])
def test_bad_serve_options_are_refused_before_anything_listens(tmp_path, monkeypatch, args,
                                                                message):
    monkeypatch.delenv("DMED_CA_PASSPHRASE", raising=False)
    make_store(tmp_path / "ca")
    result = CliRunner().invoke(main, ["serve", "--dir", str(tmp_path / "ca"), *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "ca" / STATION_TLS_DIR / CERT_FILE).exists()


def test_a_store_of_two_regions_asks_which_certifies_the_station(tmp_path):
    store = make_store(tmp_path / "ca")
    store.add_region("SAM", "Samarqand viloyati")
    with pytest.raises(Exception, match="--tls-region"):
        station_tls(store, host="127.0.0.1", names=["provision.local"])
    cert_file, _ = station_tls(store, host="127.0.0.1", names=["provision.local"],
                               region_code="SAM")
    assert x509.load_pem_x509_certificates(cert_file.read_bytes())[1] == store.region(
        "SAM").cert
