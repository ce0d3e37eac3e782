"""`dmed-node enrol`: the node makes its own key and asks the region's station to certify it.

Kept apart from cli.py (thin: it calls edge_node.enrolment and the station client).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import requests

from sync_protocol.certificates import NodeIdentity
from sync_protocol.errors import ProtocolError
from sync_protocol.json_body import parse_json

from . import enrolment
from .web.context import CREDENTIALS_KEY, STORE_KEY, SYNC_AGENT_KEY

log = logging.getLogger(__name__)

# The station answers when its operator approves; poll gently (a Pi on shared Wi-Fi).
POLL_SECONDS = 2.0
HTTP_TIMEOUT = 10.0
REQUESTS_PATH = "/enrol/requests"
# deploy/install.sh --root-cert puts the national root here; the station is checked against it.
INSTALLED_ROOT = Path("/etc/dmed/national-root.pem")


def _data_dir(database: str | None) -> Path:
    from .web.config import load_config
    return Path(database or load_config()["DATABASE"]).resolve().parent


def _lan_ips(given: tuple[str, ...]) -> list[str]:
    from .announce import WILDCARDS, lan_addresses
    return list(given) or [ip for ip in lan_addresses(WILDCARDS[0]) if ip != "127.0.0.1"]


def _show(pending: enrolment.PendingEnrolment) -> None:
    click.echo(f"Node {pending.identity.node_id} ({pending.identity.kind}, facility "
               f"{pending.identity.facility_code}, region {pending.identity.region_code})")
    click.echo(f"Request     {pending.request_id}")
    click.echo(f"Code        {pending.code}")
    click.echo(f"Fingerprint {pending.fingerprint}")
    click.echo("Give the code to the regional operator and compare the fingerprint on the "
               "station's screen before it approves.")


def submit(station: str, request: dict, verify: str | bool = True) -> None:
    try:
        response = requests.post(station.rstrip("/") + REQUESTS_PATH, json=request,
                                 timeout=HTTP_TIMEOUT, verify=verify)
    except requests.RequestException as e:
        raise click.ClickException(f"Cannot reach the station at {station}: {e}") from e
    if response.status_code >= 400:
        raise click.ClickException(f"The station refused the request: {_error(response)}")


def known_to(station: str, request_id: str, verify: str | bool = True) -> bool:
    """Has the station received this request already (a second run only waits)?"""
    try:
        response = requests.get(f"{station.rstrip('/')}{REQUESTS_PATH}/{request_id}",
                                timeout=HTTP_TIMEOUT, verify=verify)
    except requests.RequestException as e:
        raise click.ClickException(f"Cannot reach the station at {station}: {e}") from e
    return response.status_code != 404


def wait_for_answer(station: str, request_id: str, wait: float,
                    verify: str | bool = True) -> dict:
    deadline = time.monotonic() + wait
    url = f"{station.rstrip('/')}{REQUESTS_PATH}/{request_id}"
    while True:
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT, verify=verify)
        except requests.RequestException as e:
            raise click.ClickException(f"Cannot reach the station at {station}: {e}") from e
        if response.status_code >= 400:
            raise click.ClickException(f"The station refused the request: {_error(response)}")
        body = response.json()
        if body.get("state") == "approved":
            return body["answer"]
        if time.monotonic() > deadline:
            raise click.ClickException("No answer yet; run `dmed-node enrol --station URL "
                                       "--wait N` again once the operator has approved.")
        time.sleep(POLL_SECONDS)


def _error(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


@click.command("enrol")
@click.option("--db", "database", help="Node database file (its directory keeps the key)")
@click.option("--node-id", help="Node id given by regional IT, e.g. tas-pol-012")
@click.option("--facility", "facility_code", help="Facility code, e.g. TAS-POL-012")
@click.option("--region", "region_code", help="Region code, e.g. TAS")
@click.option("--kind", type=click.Choice(["clinic", "pharmacy"]), help="What the node is")
@click.option("--station", help="Provisioning station URL; the request is sent there")
@click.option("--station-ca", type=click.Path(exists=True, dir_okay=False),
              envvar="DMED_STATION_CA",
              help="The national root certificate (PEM): the only authority the station's "
                   "HTTPS certificate is checked against (or $DMED_STATION_CA; default "
                   "/etc/dmed/national-root.pem, from install.sh --root-cert)")
@click.option("--wait", default=0.0, type=click.FloatRange(0, 86400),
              help="Seconds to wait for the operator's approval")
@click.option("--show", is_flag=True, help="Show the pending request's code and fingerprint")
@click.option("--answer", "answer_file", type=click.Path(exists=True, dir_okay=False),
              help="Install the station's answer from a file (offline region key)")
@click.option("--renew", is_flag=True, help="Ask for a new certificate for this node")
@click.option("--lan-ip", "lan_ips", multiple=True,
              help="LAN address the TLS certificate names besides <facility>.local (repeat; "
                   "default: this machine's outgoing address)")
def enrol(database, node_id, facility_code, region_code, kind, station, station_ca, wait,
          show, answer_file, renew, lan_ips) -> None:
    """Enrol this node with a key made here: show a code and fingerprint, get a certificate.

    The private key is written 0600 beside the database and never leaves the node. Then run
    `dmed-node init` to open the node for its facility.
    """
    data_dir = _data_dir(database)
    verify = station_ca or (str(INSTALLED_ROOT) if INSTALLED_ROOT.is_file() else True)
    try:
        if answer_file:
            installed = enrolment.install_answer(
                data_dir, parse_json(Path(answer_file).read_text(encoding="utf-8")))
            click.echo(f"Enrolled: certificate {installed.kid.hex()} until "
                       f"{installed.cert.not_valid_after_utc:%Y-%m-%d}.")
            return
        renew_dir = data_dir / enrolment.RENEW_DIR
        existing = show or (station and not (node_id or renew))
        if existing:
            directory = renew_dir if renew_dir.exists() else enrolment.enrolment_dir(data_dir)
            pending = enrolment.pending(directory)
        elif renew:
            pending = enrolment.start_renewal(data_dir, lan_ips=_lan_ips(lan_ips))
        else:
            missing = [n for n, v in (("--node-id", node_id), ("--facility", facility_code),
                                      ("--region", region_code), ("--kind", kind)) if not v]
            if missing:
                raise click.UsageError(f"Missing {', '.join(missing)} for a new enrolment.")
            pending = enrolment.start(data_dir, NodeIdentity(node_id, facility_code,
                                                             region_code, kind),
                                      lan_ips=_lan_ips(lan_ips))
        _show(pending)
        if station:
            if not (existing and known_to(station, pending.request_id, verify)):
                submit(station, pending.request, verify)
                click.echo(f"Request sent to {station}.")
            if wait:
                answer = wait_for_answer(station, pending.request_id, wait, verify)
                installed = enrolment.install_answer(data_dir, answer,
                                                     now=datetime.now(UTC))
                click.echo(f"Enrolled: certificate {installed.kid.hex()} until "
                           f"{installed.cert.not_valid_after_utc:%Y-%m-%d}.")
        else:
            click.echo(f"Request file: {pending.directory / enrolment.REQUEST_FILE}")
    except (ProtocolError, OSError, ValueError) as e:
        raise click.ClickException(getattr(e, "text", str(e))) from e


@click.command("replace")
@click.option("--db", "database", help="The replacement's database (enrolled, initialised)")
@click.option("--predecessor", required=True,
              help="Node id of the dead node this one replaces (same facility)")
def replace(database, predecessor) -> None:
    """Rebuild a replacement node from the hub (DMED_HUB_URL): its facility's records and
    its predecessor's synced events come back; says what was lost."""
    from .replacement import rebuild_from_hub
    from .web import create_app
    app = create_app({"DATABASE": database, "BACKGROUND_JOBS": False} if database else
                     {"BACKGROUND_JOBS": False})
    agent, credentials = (app.extensions.get(SYNC_AGENT_KEY),
                          app.extensions.get(CREDENTIALS_KEY))
    if agent is None or credentials is None:
        raise click.ClickException("Enrol and init this node and set DMED_HUB_URL first.")
    try:
        result = rebuild_from_hub(app.extensions[STORE_KEY], agent,
                                  credentials.identity.facility_code, predecessor)
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    click.echo(f"Rebuilt from the hub: {result.pulled} events, facility "
               f"{credentials.identity.facility_code}.")
    click.echo(f"The hub had {predecessor}'s events up to sequence "
               f"{result.last_acknowledged_seq}; anything it recorded after that never "
               "reached the hub: re-enter it from paper.")
