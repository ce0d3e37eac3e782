"""dmed-provision commands for facilities and the enrolment desk (thin layer on the library).

Kept beside cli.py so the key commands stay short; `serve` (the station) lives in
provisioning.station.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from provisioning.cli_base import _library_errors, _store, dir_option, main
from provisioning.enrolment_desk import EnrolmentDesk, export_pending, import_answer
from provisioning.facilities import add_facility, list_facilities
from sync_protocol.json_body import parse_json

log = logging.getLogger(__name__)

OPERATOR = click.option("--operator", required=True,
                        help="Who decides (kept in the audit trail).")


def _hours(values: tuple[str, ...]) -> dict[str, str]:
    hours = {}
    for value in values:
        day, _, span = value.partition("=")
        if not span:
            raise click.BadParameter(f"{value!r}: use DAY=HH:MM-HH:MM, e.g. mon=08:00-17:00",
                                     param_hint="--hours")
        hours[day.strip().lower()] = span.strip()
    return hours


@main.command("add-facility")
@dir_option
@click.option("--region", required=True, help="Region code, e.g. TAS.")
@click.option("--code", required=True, help="Facility code, e.g. TAS-POL-012.")
@click.option("--kind", type=click.Choice(["clinic", "pharmacy"]), required=True,
              help="clinic or pharmacy; a node enrolled for it must be of this kind.")
@click.option("--name-uz", required=True, help="Name in Uzbek (Latin).")
@click.option("--name-ru", required=True, help="Name in Russian.")
@click.option("--name-en", required=True, help="Name in English.")
@click.option("--address", required=True, help="Street address, as patients read it.")
@click.option("--district", required=True, help="District (tuman) of the region.")
@click.option("--hours", multiple=True, help="Opening hours, e.g. mon=08:00-17:00 (repeat; "
                                             "a clinic needs them).")
@_library_errors
def add_facility_command(directory: Path, region: str, code: str, kind: str, name_uz: str,
                         name_ru: str, name_en: str, address: str, district: str,
                         hours: tuple[str, ...]) -> None:
    """Record a facility of the region; enrolment carries it to its nodes, signed."""
    store = _store(directory)
    record = add_facility(store, code=code, kind=kind, region=region,
                          names={"uz": name_uz, "ru": name_ru, "en": name_en},
                          address=address, district=district, opening_hours=_hours(hours))
    EnrolmentDesk(store).audit("cli", "add_facility", record.code, "done",
                               f"{record.kind} {record.facility_id}")
    click.echo(f"Facility {record.code} ({record.kind}, region {record.region}) recorded: "
               f"id {record.facility_id}.")


@main.command("facilities")
@dir_option
@_library_errors
def facilities_command(directory: Path) -> None:
    """List the provisioned facilities."""
    for record in list_facilities(_store(directory)):
        click.echo(f"{record.code}  {record.kind}  {record.region}  {record.district}  "
                   f"{record.names['uz']}  (revision {record.revision})")


@main.command("requests")
@dir_option
@click.option("--state", type=click.Choice(["pending", "approved", "refused"]),
              help="Only requests in this state.")
@_library_errors
def requests_command(directory: Path, state: str | None) -> None:
    """List enrolment requests: node, facility, fingerprint, where it was seen."""
    for r in EnrolmentDesk(_store(directory)).requests(state):
        click.echo(f"{r['request_id']}  {r['state']}  {r['node_id']}  {r['kind']}  "
                   f"{r['facility_code']}  {r['fingerprint']}  from {r['seen_from']}"
                   f"{'  renewal' if r['renewal'] else ''}")


@main.command("receive")
@dir_option
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_library_errors
def receive_command(directory: Path, request_file: Path) -> None:
    """Take a node's request from a file (request.json from the node, or an export)."""
    desk = EnrolmentDesk(_store(directory))
    data = parse_json(request_file.read_text(encoding="utf-8"))
    for request in data if isinstance(data, list) else [data]:
        click.echo(f"Request {desk.receive(request, f'file {request_file.name}')} pending.")


@main.command("approve")
@dir_option
@click.option("--request", "request_id", required=True, help="Request id, from `requests`.")
@click.option("--code", required=True, help="The code shown on the node's screen.")
@click.option("--facility", "facility_code", required=True,
              help="The provisioned facility the node is for.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the answer to this file (for the node, or the station).")
@OPERATOR
@_library_errors
def approve_command(directory: Path, request_id: str, code: str, facility_code: str,
                    out: Path | None, operator: str) -> None:
    """Approve a request after checking its code and fingerprint: issue the certificate."""
    answer = EnrolmentDesk(_store(directory)).approve(
        request_id, code=code, facility_code=facility_code, actor=operator)
    if out is not None:
        out.write_text(json.dumps(answer, ensure_ascii=False, indent=2), encoding="utf-8")
    click.echo(f"Approved: certificate {answer['kid']}.")


@main.command("refuse")
@dir_option
@click.option("--request", "request_id", required=True, help="Request id, from `requests`.")
@click.option("--reason", required=True, help="Why, for the audit trail.")
@OPERATOR
@_library_errors
def refuse_command(directory: Path, request_id: str, reason: str, operator: str) -> None:
    """Refuse a request, with a reason."""
    EnrolmentDesk(_store(directory)).refuse(request_id, actor=operator, reason=reason)
    click.echo(f"Refused {request_id}.")


@main.command("export-requests")
@dir_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write the requests to.")
@_library_errors
def export_requests_command(directory: Path, out: Path) -> None:
    """Write the pending requests to a file, for a region key kept offline."""
    pending = export_pending(EnrolmentDesk(_store(directory)))
    out.write_text(json.dumps(pending, indent=2), encoding="utf-8")
    click.echo(f"{len(pending)} request(s) written to {out}.")


@main.command("import-answer")
@dir_option
@click.argument("answer_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@OPERATOR
@_library_errors
def import_answer_command(directory: Path, answer_file: Path, operator: str) -> None:
    """Take an answer signed on the offline machine; the node then fetches it here."""
    answer = parse_json(answer_file.read_text(encoding="utf-8"))
    request_id = import_answer(EnrolmentDesk(_store(directory)), answer, actor=operator)
    click.echo(f"Answer for {request_id} imported.")


@main.command("add-operator")
@dir_option
@click.option("--login", required=True, help="Sign-in name of the regional IT operator.")
@click.option("--name", "full_name", required=True, help="Full name, shown in the audit trail.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="DMED_STATION_PASSWORD",
              help="At least 10 characters (asked twice, or $DMED_STATION_PASSWORD).")
@_library_errors
def add_operator_command(directory: Path, login: str, full_name: str, password: str) -> None:
    """Create an operator account for the provisioning station (argon2-hashed password)."""
    from provisioning.station_accounts import create_operator
    create_operator(EnrolmentDesk(_store(directory)), login=login, full_name=full_name,
                    password=password)
    click.echo(f"Operator {login} created.")


@main.command("serve")
@dir_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the station's LAN address to receive requests).")
@click.option("--port", default=8443, show_default=True, help="Port for HTTPS.")
@click.option("--http-port", type=int, default=None,
              help="Also listen for plain HTTP on this port, only to redirect to HTTPS "
                   "(default: no plain HTTP at all).")
@click.option("--tls-name", "tls_names", multiple=True,
              help="Host name the station's certificate names (repeat; default: "
                   "<hostname>.local).")
@click.option("--tls-address", "tls_addresses", multiple=True,
              help="LAN address the certificate names besides --host (repeat; needed when "
                   "--host is 0.0.0.0 and operators type the address).")
@click.option("--tls-region", default=None,
              help="Region that certifies the station (default: the store's only region).")
@click.option("--insecure-http", is_flag=True,
              help="Serve plain HTTP, without TLS: ONLY for the loopback demo and tests "
                   "(refused unless --host is a loopback address).")
@click.option("--interface", "interfaces", multiple=True,
              help="IPv4 address to look for nodes on (zeroconf; repeat; default: all).")
@_library_errors
def serve_command(directory: Path, host: str, port: int, http_port: int | None,
                  tls_names: tuple[str, ...], tls_addresses: tuple[str, ...],
                  tls_region: str | None, insecure_http: bool,
                  interfaces: tuple[str, ...]) -> None:
    """Run the provisioning station over HTTPS: sign-in, pending enrolments, approve, revoke,
    audit, and the nodes of the LAN (announced with zeroconf, enrolled or waiting).

    The station certifies itself under the region (a TLS key born in station-tls/); nodes
    and browsers trust the national root. Plain HTTP is off, or only redirects (--http-port).
    """
    from provisioning.station import create_app
    from provisioning.station_tls import station_tls
    from sync_protocol.lan_discovery import NodeBrowser, new_zeroconf
    from sync_protocol.tls_serving import secure_transport
    if insecure_http and not _loopback(host):
        raise click.UsageError("--insecure-http serves passwords in clear: only on a loopback "
                               "--host (127.0.0.1), for the demo and tests.")
    store = _store(directory)

    def certificate():
        return station_tls(store, host=host, names=tls_names, addresses=tls_addresses,
                           region_code=tls_region)
    files = None if insecure_http else certificate()
    zc = new_zeroconf(list(interfaces) or None)
    browser = NodeBrowser(zc)
    app = create_app(directory, {"LAN_NODES": browser.announcements})
    try:
        if files is None:
            from waitress import serve
            click.echo(f"Provisioning station on http://{host}:{port}/ (plain HTTP: "
                       "loopback demo only)")
            serve(app, host=host, port=port, threads=STATION_THREADS, ident="dmed-station")
        else:
            _serve_https(secure_transport(app), host, port, http_port, files, certificate)
    finally:
        browser.close()
        zc.close()


# Operators are a few people at once; four threads serve them and the nodes' polling.
STATION_THREADS = 4
# A station left running for a year renews its own certificate: looked at daily, issued again
# when 30 days remain (station_tls), and the server picks the new files up by itself.
CERTIFICATE_CHECK_SECONDS = 24 * 3600


def _loopback(host: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _serve_https(app, host: str, port: int, http_port: int | None, files,
                 certificate) -> None:
    import threading

    from waitress.server import create_server

    from sync_protocol.tls_serving import redirect_app, serve_https, tls_server
    server = tls_server(app, host, port, *files, server_name="dmed-station",
                        threads=STATION_THREADS)
    redirect = None
    if http_port is not None:
        redirect = create_server(redirect_app(port), host=host, port=http_port, threads=1)
    stop = threading.Event()
    threading.Thread(target=_keep_certificate, args=(certificate, stop), daemon=True,
                     name="station-certificate").start()
    click.echo(f"Provisioning station on https://{host}:{port}/"
               + (f" (http://{host}:{http_port}/ redirects)" if redirect else ""))
    try:
        serve_https(server, redirect)
    finally:
        stop.set()


def _keep_certificate(certificate, stop) -> None:
    while not stop.wait(CERTIFICATE_CHECK_SECONDS):
        try:
            certificate()
        except Exception:  # a bad day (region key unreadable) must not stop the station
            log.exception("the station's certificate was not renewed")


@main.command("add-backup-key")
@dir_option
@click.option("--region", required=True, help="Region code, e.g. TAS.")
@_library_errors
def add_backup_key_command(directory: Path, region: str) -> None:
    """Make the region's backup key; nodes enrolled from now on seal their backups to it."""
    from provisioning.backup_keys import PRIVATE_FILE, add_backup_key
    add_backup_key(_store(directory), region)
    click.echo(f"Backup key of region {region} made; its private half is "
               f"{directory / 'regions' / region / PRIVATE_FILE} (needed to restore).")


@main.command("update-facility")
@dir_option
@click.option("--code", required=True, help="Facility code, e.g. TAS-POL-012.")
@click.option("--name-uz", help="New name in Uzbek (Latin).")
@click.option("--name-ru", help="New name in Russian.")
@click.option("--name-en", help="New name in English.")
@click.option("--address", help="New street address.")
@click.option("--district", help="New district.")
@click.option("--hours", multiple=True, help="New opening hours, e.g. mon=08:00-17:00 (repeat; "
                                             "replaces all).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the signed record, for `dmed-hub facility-update`.")
@_library_errors
def update_facility_command(directory: Path, code: str, name_uz: str | None,
                            name_ru: str | None, name_en: str | None, address: str | None,
                            district: str | None, hours: tuple[str, ...], out: Path) -> None:
    """Change a facility's details; the signed record reaches its nodes through the hub."""
    from provisioning.facilities import get_facility, signed_facility, update_facility
    store = _store(directory)
    current = get_facility(store, code)
    names = {**current.names, **{k: v for k, v in (("uz", name_uz), ("ru", name_ru),
                                                    ("en", name_en)) if v}}
    changes: dict = {"names": names}
    if address:
        changes["address"] = address
    if district:
        changes["district"] = district
    if hours:
        changes["opening_hours"] = _hours(hours)
    record = update_facility(store, code, **changes)
    out.write_text(json.dumps(signed_facility(store, code), ensure_ascii=False, indent=2),
                   encoding="utf-8")
    EnrolmentDesk(store).audit("cli", "update_facility", code, "done",
                               f"revision {record.revision}")
    click.echo(f"Facility {code} revision {record.revision} signed into {out}; publish it "
               "with `dmed-hub facility-update --record` .")
