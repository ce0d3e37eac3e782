"""`dmed-node`: a thin CLI over the node library."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from sync_protocol.bundle_passphrase import (
    bundle_key_is_encrypted,
    get_passphrase,
    passphrase_file_option,
)
from sync_protocol.cli_errors import ClearErrors, note_database
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import new_ulid

from .backup_cli import backup as backup_command
from .backup_cli import housekeeping as housekeeping_command
from .backup_cli import restore as restore_command
from .cli_store import open_cli_store
from .credentials import NodeCredentials
from .discovery_cli import discover as discover_command
from .doctor_cli import doctor as doctor_command
from .enrol_cli import enrol as enrol_command
from .enrol_cli import replace as replace_command
from .services import staff as staff_service
from .services.access import ROLES, SYSTEM
from .staff_cli import staff as staff_command
from .store import NodeStore
from .web.config import SETTINGS, load_config
from .web.context import CREDENTIALS_KEY, STORE_KEY, SYNC_AGENT_KEY

log = logging.getLogger(__name__)


_store = open_cli_store  # the name every command here uses


def _fail(error: ProtocolError) -> click.ClickException:
    return click.ClickException(error.text)


DB = click.option("--db", "database", help="Node database file (default from config)")


@click.group(cls=ClearErrors)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level")
def main(verbose: bool) -> None:
    """DMED Edge node: local store, domain services and the node's web server."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@DB
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Enrolment bundle from dmed-provision add-node: gives the node its identity")
@click.option("--node-id", default=None,
              help="Node identity without a bundle (development only: cannot sign or sync)")
@passphrase_file_option
def init(database: str | None, bundle: str | None, node_id: str | None,
         passphrase_file: Path | None) -> None:
    """Create or upgrade the node database and give the node its identity."""
    from sync_protocol.certificates import identity_of

    from .credentials import install_bundle, load_credentials
    from .enrolment import enrolment_dir, is_enrolled
    from .services.clock import confirm_clock
    password = None
    if bundle:  # decrypt and check before anything is written (issue 16)
        password = (get_passphrase(passphrase_file, confirm=False)
                    if bundle_key_is_encrypted(bundle) else None)
        try:
            load_credentials(bundle, password)
        except ProtocolError as e:
            raise click.ClickException(str(e)) from e
    store = _store(database)
    if store.state("node_id") is None:
        if bundle is None and is_enrolled(store.path.parent):
            bundle = str(enrolment_dir(store.path.parent))  # `dmed-node enrol` put it there
        if bundle:
            try:
                credentials = load_credentials(bundle, password)
                identity = identity_of(credentials.cert)
                installed = (Path(bundle) if Path(bundle) == enrolment_dir(store.path.parent)
                             else install_bundle(bundle, store.path.parent, password))
            except (ProtocolError, OSError) as e:
                raise click.ClickException(str(e)) from e
            store.initialise(identity.node_id)
            with store.transaction() as tx:
                store.set_state(tx.conn, "bundle_path", str(installed))
            _register_provisioned_facility(store, credentials)
        else:
            store.initialise(node_id or f"node-{new_ulid()}")
        # The person provisioning the node vouches for its clock at this moment.
        confirm_clock(store, "init")
    click.echo(f"node {store.node_id} ready at {store.path}")


def _register_provisioned_facility(store: NodeStore, credentials: NodeCredentials) -> None:
    """The facility the region provisioned comes with the enrolment: register it at once."""
    from .enrolment import facility_of
    from .services.facilities import register_provisioned
    try:
        record = facility_of(credentials)
        if record is not None:
            register_provisioned(store, SYSTEM, record)
            click.echo(f"facility {record.code} ({record.names['uz']}) registered")
    except ProtocolError as e:
        raise _fail(e) from e


@main.command("seed-demo")
@DB
def seed_demo(database: str | None) -> None:
    """Seed demo data for this node's facility: a polyclinic with doctors, a week of slots,
    staff and patients, or a pharmacy with its staff (by the kind in the node's bundle)."""
    from .credentials import load_credentials
    from .seed import seed_demo as seed_clinic
    from .seed import seed_pharmacy
    store = _store(database)
    bundle = store.state("bundle_path")
    try:
        if bundle:
            identity = load_credentials(bundle).identity
            if identity.kind == "pharmacy":
                result = seed_pharmacy(store, code=identity.facility_code,
                                       region=identity.region_code)
            else:
                result = seed_clinic(store, code=identity.facility_code,
                                     region=identity.region_code, pharmacist=False)
        else:
            result = seed_clinic(store)
    except ProtocolError as e:
        raise _fail(e) from e
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@main.command("create-staff")
@DB
@click.option("--username", required=True, help="Sign-in name")
@click.option("--full-name", required=True, help="Name shown on screens")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do")
@click.option("--practitioner-id", default=None, help="Doctor record, for role doctor")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True,
              help="4 to 8 digits (prompted when not given)")
def create_staff(database, username, full_name, role, practitioner_id, pin) -> None:
    """Create a staff account with an argon2-hashed PIN."""
    try:
        staff_id = staff_service.create_staff(_store(database), SYSTEM, username=username,
                                              full_name=full_name, role=role, pin=pin,
                                              practitioner_id=practitioner_id)
    except ProtocolError as e:
        raise _fail(e) from e
    click.echo(f"created {username} ({role}) {staff_id}")


@main.command("export-log")
@DB
@click.option("--after", default=0, help="Start after this log position")
def export_log(database: str | None, after: int) -> None:
    """Write the event log as JSON lines to standard output."""
    for event in _store(database).events(after_position=after):
        sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")


@main.command("verify-log")
@DB
def verify_log(database: str | None) -> None:
    """Check this node's own chain whole, and the events held of other origins."""
    from .log_check import verify_log as check
    try:
        report = check(_store(database))
    except ProtocolError as e:
        raise _fail(e) from e
    click.echo(f"log verified: {report['origins']} origin(s), {report['own']} own event(s) "
               f"in one unbroken chain, {report['others']} event(s) of other origins")


@main.command()
@DB
def rebuild(database: str | None) -> None:
    """Rebuild every table from the event log."""
    count = _store(database).rebuild_projections()
    click.echo(f"rebuilt from {count} events")


@main.command()
def config() -> None:
    """Show every setting, its current value and what it does."""
    current = load_config()
    for name, (_default, help_line) in SETTINGS.items():
        value = "***" if "SECRET" in name or "TOKEN" in name else current[name]
        click.echo(f"DMED_{name}={value}    # {help_line}")


@main.command()
@DB
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for the LAN)")
@click.option("--port", default=8080, help="Port to listen on")
@click.option("--workers", default=2, type=click.IntRange(1, 16),
              help="Server processes sharing the port (a Raspberry Pi has 4 cores; 1: a "
              "single process, as before)")
@click.option("--announce/--no-announce", default=True,
              help="Announce the node on the LAN (zeroconf) so terminals and the station "
              "find it")
@click.option("--tls/--no-tls", "tls", default=None,
              help="Serve HTTPS with the TLS certificate from enrolment (default: when the "
              "node has one); --port then only redirects to --https-port")
@click.option("--https-port", default=8443, help="Port for HTTPS (with TLS)")
def serve(database: str | None, host: str, port: int, workers: int, announce: bool,
          tls: bool | None, https_port: int) -> None:
    """Run the node's web server and background jobs."""
    from .web import create_app
    from .web.serving import serve as serve_app
    from .web.serving import serve_workers
    overrides = {"DATABASE": database} if database else {}
    note_database(database or load_config()["DATABASE"])
    if tls is not False and _tls_files(database):
        _serve_tls(overrides, host, port, https_port, announce, _tls_files(database))
        return
    if tls:
        raise click.ClickException("This node has no TLS certificate yet: enrol it with "
                                   "`dmed-node enrol` first.")
    if workers == 1:
        app = create_app(overrides)
        with _background_jobs(app), _announced(app, host, port, announce):
            click.echo(f"DMED Edge node {app.extensions[STORE_KEY].state('node_id')} on "
                       f"http://{host}:{port}/")
            serve_app(app, host, port)
        return
    first = create_app(overrides)  # migrations run here, once, before any worker opens the db
    node_id = first.extensions[STORE_KEY].state("node_id")
    first.extensions[STORE_KEY].close()
    workers_config = {**overrides, "BACKGROUND_JOBS": False}  # this process runs them

    def started(bound: int) -> None:
        click.echo(f"DMED Edge node {node_id} on http://{host}:{bound}/ ({workers} workers)")

    def in_parent():
        app = create_app(overrides)
        stack = ExitStack()
        stack.enter_context(_background_jobs(app))
        stack.enter_context(_announced(app, host, port, announce))
        return stack

    serve_workers(lambda: _following_renewals(create_app(workers_config)), host, port,
                  workers, on_listening=started, in_parent=in_parent)


def _following_renewals(app):
    """A worker re-reads the credentials the parent's renewal installed (edge_node.renewal)."""
    bundle = app.config.get("NODE_BUNDLE") or app.extensions[STORE_KEY].state("bundle_path")
    if bundle and CREDENTIALS_KEY in app.extensions:
        from .renewal import follow_renewals
        follow_renewals(app, Path(bundle))
    return app


def _renewal(app):
    """The node renews its own certificate when STATION_URL is set (edge_node.renewal)."""
    if not app.config.get("STATION_URL") or CREDENTIALS_KEY not in app.extensions:
        return None
    from .renewal import Renewal, switch_credentials
    return Renewal(Path(app.config["DATABASE"]).parent, app.config["STATION_URL"],
                   lambda renewed: switch_credentials(app, renewed))


def _tls_files(database: str | None):
    from .enrolment import TLS_CERT_FILE, TLS_KEY_FILE, enrolment_dir
    directory = enrolment_dir(_store(database).path.parent)
    cert, key = directory / TLS_CERT_FILE, directory / TLS_KEY_FILE
    return (cert, key) if cert.exists() and key.exists() else None


def _serve_tls(overrides: dict, host: str, port: int, https_port: int, announce: bool,
               files) -> None:
    """HTTPS (cheroot, one process) and a plain HTTP port that only redirects."""
    from sync_protocol.tls_serving import redirect_app, secure_transport, serve_https, tls_server

    from .web import create_app
    from .web.serving import create_node_server
    app = secure_transport(create_app(overrides))
    server = tls_server(app, host, https_port, *files)
    redirect = create_node_server(redirect_app(https_port), host, port)
    with _background_jobs(app), _announced(app, host, https_port, announce, tls=True):
        click.echo(f"DMED Edge node {app.extensions[STORE_KEY].state('node_id')} on "
                   f"https://{host}:{https_port}/ (http://{host}:{port}/ redirects)")
        serve_https(server, redirect)


@contextmanager
def _announced(app, host: str, port: int, announce: bool, *, tls: bool = False
               ) -> Iterator[None]:
    """Announce on the LAN while serving (edge_node.announce); never on an ephemeral port."""
    if not announce or port == 0:
        yield
        return
    from .announce import announcing
    with announcing(Path(app.config["DATABASE"]).parent,
                    app.extensions.get(CREDENTIALS_KEY), host, port, tls=tls):
        yield


@contextmanager
def _background_jobs(app) -> Iterator[None]:
    from .background import BackgroundJobs
    jobs = None
    if app.config["BACKGROUND_JOBS"]:
        jobs = BackgroundJobs(app.extensions[STORE_KEY], app.config,
                              app.extensions.get(SYNC_AGENT_KEY), _renewal(app))
        jobs.start()
    try:
        yield
    finally:
        if jobs:
            jobs.stop()


main.add_command(enrol_command)
main.add_command(replace_command)
main.add_command(discover_command)
main.add_command(backup_command)
main.add_command(restore_command)
main.add_command(housekeeping_command)
main.add_command(doctor_command)
main.add_command(staff_command)

if __name__ == "__main__":
    main()
