"""Issue 16 (e): from an empty machine, regional IT puts a clinic and a pharmacy into service
through the provisioning station (over HTTPS, trusting only the national root), with keys
born on the nodes, registers each facility's staff with `dmed-node staff add` (no demo seed),
and the pharmacy dispenses a prescription written at the clinic. Real processes on loopback,
driven by the README's commands; the operator uses the station's web pages.

Then: no node's private key exists anywhere but in its own key file (station and hub files
are searched for it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import requests
from helpers.servers import free_port

from sync_protocol.enrolment import read_private_key
from sync_protocol.identifiers import make_pinfl

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIS = {"dmed-provision": "provisioning.cli", "dmed-node": "edge_node.cli",
        "dmed-hub": "central_hub.cli"}
OPERATOR_PASSWORD = "regional-it-2026"  # noqa: S105 (a test account)
PINS = {"doctor": "4821", "registrar": "5937", "pharmacist": "6048"}  # not seeded: typed
START_TIMEOUT = 30.0
NODES = {
    "clinic": ("tas-pol-012-a", "TAS-POL-012", "clinic",
               ["--name-uz", "12-son oilaviy poliklinika", "--name-ru", "Поликлиника № 12",
                "--name-en", "Family polyclinic 12", "--address", "Bunyodkor ko'ch. 12",
                "--district", "Chilonzor", "--hours", "mon=08:00-17:00",
                "--hours", "tue=08:00-17:00", "--hours", "wed=08:00-17:00"]),
    "pharmacy": ("tas-apt-007-a", "TAS-APT-007", "pharmacy",
                 ["--name-uz", "Qatortol dorixonasi", "--name-ru", "Аптека Катартал",
                  "--name-en", "Qatortol pharmacy", "--address", "Qatortol ko'ch. 3",
                  "--district", "Chilonzor"]),
}


def command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; from {CLIS[name]} import main; "
            f"sys.argv[0] = {name!r}; main()", *map(str, args)]


class Machine:
    """One loopback 'LAN': runs the CLIs and keeps the servers it starts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "DMED_STATION_PASSWORD":
                    OPERATOR_PASSWORD}
        self.env.pop("DMED_CA_PASSPHRASE", None)
        self.servers: list[subprocess.Popen] = []
        self.logs: list = []

    def run(self, name: str, *args: str, env: dict | None = None) -> str:
        result = subprocess.run(command(name, *args), cwd=self.directory, capture_output=True,
                                text=True, env={**self.env, **(env or {})}, timeout=120,
                                check=False)
        assert result.returncode == 0, f"{name} {args}: {result.stdout}{result.stderr}"
        return result.stdout

    def serve(self, name: str, *args: str, url: str, env: dict | None = None,
              verify: str | bool = True) -> str:
        log = open(self.directory / f"{name}-{len(self.servers)}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        process = subprocess.Popen(command(name, *args), cwd=self.directory, stdout=log,
                                   stderr=subprocess.STDOUT, env={**self.env, **(env or {})})
        self.servers.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert process.poll() is None, (self.directory / log.name).read_text()
            try:
                requests.get(url, timeout=2, allow_redirects=False, verify=verify)
                return url.rsplit("/", 1)[0] if url.count("/") > 3 else url
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"{name} did not start")

    def stop(self) -> None:
        for process in self.servers:
            process.terminate()
        for process in self.servers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


@pytest.fixture
def machine(tmp_path):
    m = Machine(tmp_path)
    yield m
    m.stop()


def operator_session(station: str, root: str) -> requests.Session:
    session = requests.Session()
    token = csrf(session.get(f"{station}/sign-in", timeout=10, verify=root).text)
    page = session.post(f"{station}/sign-in", timeout=30, verify=root, data={
        "login": "it-karimov", "password": OPERATOR_PASSWORD, "csrf": token})
    assert "Karimov" in page.text
    return session


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def api(session: requests.Session, url: str, path: str, token: str | None = None,
        body: dict | None = None, method: str = "POST", expect: int = 200) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = session.request(method, url + path, json=body, headers=headers, timeout=60,
                               verify=session.verify)  # not REQUESTS_CA_BUNDLE
    assert response.status_code == expect, response.text
    return response.json()


def test_regional_it_puts_a_clinic_and_a_pharmacy_into_service(machine, tmp_path):
    run = machine.run
    # The region's machine: the README's provisioning commands.
    run("dmed-provision", "init-root", "--dir", "ca", "--name", "DMED National Root")
    run("dmed-provision", "add-region", "--dir", "ca", "--code", "TAS", "--name",
        "Toshkent shahri")
    facility_ids = {}
    for name, (_node_id, facility, kind, details) in NODES.items():
        recorded = run("dmed-provision", "add-facility", "--dir", "ca", "--region", "TAS",
                       "--code", facility, "--kind", kind, *details)
        facility_ids[name] = re.search(r"id (\S+?)\.?$", recorded.strip()).group(1)
    run("dmed-provision", "add-operator", "--dir", "ca", "--login", "it-karimov", "--name",
        "Karimov Aziz")
    root = str(tmp_path / "ca" / "root" / "cert.pem")  # the only authority anyone trusts
    station_port = free_port()
    station = f"https://127.0.0.1:{station_port}"
    machine.serve("dmed-provision", "serve", "--dir", "ca", "--port", station_port,
                  "--tls-name", "provision.local", "--interface", "127.0.0.1",
                  url=f"{station}/sign-in", verify=root)
    operator = operator_session(station, root)

    # Each node makes its key and asks; the operator checks code and fingerprint, approves.
    for name, (node_id, facility, kind, _details) in NODES.items():
        db = f"{name}/node.db"
        (tmp_path / name).mkdir()
        shown = run("dmed-node", "enrol", "--db", db, "--node-id", node_id, "--facility",
                    facility, "--region", "TAS", "--kind", kind, "--station", station,
                    "--station-ca", root, "--lan-ip", "127.0.0.1")
        code = re.search(r"Code\s+(\S+)", shown).group(1)
        fingerprint = re.search(r"Fingerprint\s+(.+)", shown).group(1).strip()
        request_id = re.search(r"Request\s+(\S+)", shown).group(1)
        page = operator.get(f"{station}/", timeout=10, verify=root).text
        assert fingerprint in page  # what the operator compares with the node's screen
        approved = operator.post(f"{station}/requests/{request_id}/approve?lang=en",
                                 timeout=30, verify=root, data={"code": code, "facility": facility,
                                                   "csrf": csrf(page)})
        assert approved.status_code == 200 and "Approved" in approved.text
        run("dmed-node", "enrol", "--db", db, "--station", station, "--station-ca", root,
            "--wait", "30")
        assert facility in run("dmed-node", "init", "--db", db)

    # The hub learns the region's trust list from the station.
    trust = tmp_path / "trust-list.json"
    trust.write_text(requests.get(f"{station}/trust-list.json", timeout=10, verify=root).text)
    hub_db = f"sqlite:///{tmp_path / 'hub.db'}"
    run("dmed-hub", "init", "--db", hub_db, "--trust", str(trust))
    hub_port = free_port()
    hub = machine.serve("dmed-hub", "serve", "--db", hub_db, "--port", hub_port, "--workers",
                        "1", url=f"http://127.0.0.1:{hub_port}/healthz")
    hub = f"http://127.0.0.1:{hub_port}"

    # Each facility's people, as the README says (PINs from $DMED_STAFF_PIN, else asked).
    for name, username, full_name, role, extra in (
            ("clinic", "dr.karimova", "Karimova Dilnoza Rustamovna", "doctor",
             ["--specialty", "family_medicine", "--family-doctor"]),
            ("clinic", "registrar", "Aliyeva Madina", "registrar", []),
            ("pharmacy", "pharmacist", "Yusupov Bekzod", "pharmacist", [])):
        added = run("dmed-node", "staff", "add", "--db", f"{name}/node.db", "--username",
                    username, "--full-name", full_name, "--role", role, *extra,
                    "--operator", "it-karimov", env={"DMED_STAFF_PIN": PINS[role]})
        assert f"added {username} ({role})" in added
    urls = {}
    for name in NODES:  # HTTPS with the certificate enrolment brought; HTTP redirects
        port, https_port = free_port(), free_port()
        machine.serve("dmed-node", "serve", "--db", f"{name}/node.db", "--port", port,
                      "--https-port", https_port, "--no-announce",
                      env={"DMED_HUB_URL": hub},
                      url=f"http://127.0.0.1:{port}/api/v1/node/status")
        urls[name] = f"https://127.0.0.1:{https_port}"

    http = requests.Session()
    http.verify = root  # only the national root
    clinic, pharmacy = urls["clinic"], urls["pharmacy"]
    registrar = api(http, clinic, "/api/v1/auth/sign-in", body={
        "username": "registrar", "pin": PINS["registrar"]})["token"]
    patient = {"full_name": "Toshmatov Anvar", "facility_id": facility_ids["clinic"],
               "pinfl": make_pinfl(date(1984, 3, 9), "male", district="261", serial="101")}
    patient_id = api(http, clinic, "/api/v1/patients", registrar, body=patient,
                     expect=201)["patient_id"]
    doctor = api(http, clinic, "/api/v1/auth/sign-in", body={
        "username": "dr.karimova", "pin": PINS["doctor"]})["token"]
    rx = api(http, clinic, "/api/v1/prescriptions", doctor, expect=201, body={
        "patient_id": patient_id, "items": [{
            "inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
            "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}]})
    assert api(http, clinic, "/api/v1/sync/run", doctor)["status"]["synced"] is True

    pharmacist = api(http, pharmacy, "/api/v1/auth/sign-in",
                     body={"username": "pharmacist", "pin": PINS["pharmacist"]})["token"]
    api(http, pharmacy, "/api/v1/sync/run", pharmacist)
    verdict = api(http, pharmacy, "/api/v1/pharmacy/verify", pharmacist,
                  body={"code": rx["qr"], "pinfl": patient["pinfl"]})
    assert verdict["verdict"] == "valid", verdict
    api(http, pharmacy, "/api/v1/pharmacy/dispense", pharmacist, expect=201, body={
        "prescription_id": rx["prescription_id"], "item_no": 1, "quantity": 20,
        "product": "Amoksil", "batch": "A1", "expiry": "2030-05-01"})
    status = api(http, pharmacy, "/api/v1/sync/run", pharmacist)["status"]
    assert status["synced"] is True, status
    nodes = requests.get(f"{hub}/api/v1/nodes", timeout=10).json()
    assert {"tas-pol-012-a", "tas-apt-007-a"} <= {n["node_id"] for n in nodes["nodes"]}

    # No node's private key anywhere but its key file: not in the station's, not the hub's.
    for name in NODES:
        key_file = tmp_path / name / "enrolment" / "key.pem"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        secret = read_private_key(key_file).private_numbers().private_value
        needles = [secret.to_bytes(32, "big"), format(secret, "x").encode(),
                   key_file.read_bytes().split(b"\n")[1]]
        for place in (tmp_path / "ca", tmp_path / "hub.db"):
            files = [place] if place.is_file() else [f for f in place.rglob("*") if f.is_file()]
            for file in files:
                data = file.read_bytes()
                assert not any(n in data for n in needles), f"{name} key found in {file}"
