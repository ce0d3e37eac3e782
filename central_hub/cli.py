"""`dmed-hub`: a thin CLI over the hub library."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import click

from sync_protocol.cli_errors import ClearErrors, note_database
from sync_protocol.errors import ProtocolError
from sync_protocol.json_body import parse_json
from sync_protocol.timeutil import utc_now
from sync_protocol.trust_list import TrustList

from . import staff
from .composition import open_storage
from .config import SETTINGS, load_config
from .storage import Storage
from .storage.postgres import redact
from .trust_store import TrustStore

log = logging.getLogger(__name__)

PASSWORD_ENV = "DMED_HUB_STAFF_PASSWORD"  # noqa: S105 - the variable name; else prompted
DB = click.option("--db", "database", help="Database URL: sqlite:///path or postgresql://... "
                  "(default from config)")


def _storage(database: str | None) -> Storage:
    url = database or load_config()["DATABASE"]
    note_database(redact(str(url)).removeprefix("sqlite:///"))
    try:
        return open_storage(url)
    except (ValueError, OSError) as e:
        raise click.ClickException(f"cannot open {redact(str(url))}: {e}") from e
    except Exception as e:  # psycopg.OperationalError and friends
        raise click.ClickException(f"cannot open {redact(str(url))}: {e}") from e


def _read_trust(path: str) -> TrustList:
    try:
        return TrustList.from_json(Path(path).read_bytes())
    except OSError as e:
        raise click.ClickException(f"cannot read {path}: {e}") from e
    except ProtocolError as e:
        raise click.ClickException(f"{path}: {e.text}") from e


@click.group(cls=ClearErrors)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level")
def main(verbose: bool) -> None:
    """DMED Edge central hub: global event log, sync API, node dashboard."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@DB
@click.option("--trust", "trust_path", required=True,
              help="Trust list JSON from dmed-provision (roots are accepted from it)")
def init(database: str | None, trust_path: str) -> None:
    """Create or upgrade the hub database and install its trust list."""
    trust_list = _read_trust(trust_path)
    with _storage(database) as storage:
        result = TrustStore(storage).import_list(trust_list, accept_roots=True)
        versions = storage.schema_versions()
        click.echo(f"hub database {storage.url} ready (schema {versions}); trust list: "
                   f"{result.added_certificates} certificate(s), {result.added_revocations} "
                   "revocation(s) added")


@main.command("trust-import")
@DB
@click.option("--trust", "trust_path", required=True,
              help="Trust list JSON with new regions, nodes or revocations")
def trust_import(database: str | None, trust_path: str) -> None:
    """Merge a newer trust list (e.g. a revocation) into the hub's; roots are not taken."""
    trust_list = _read_trust(trust_path)
    with _storage(database) as storage:
        store = TrustStore(storage)
        if not store.initialised:
            raise click.ClickException("the hub has no trust list yet; run dmed-hub init")
        result = store.import_list(trust_list)
    click.echo(f"merged: {result.added_certificates} certificate(s), "
               f"{result.added_revocations} revocation(s), {result.ignored_roots} root(s) "
               "ignored")


@main.command()
@DB
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table")
def nodes(database: str | None, as_json: bool) -> None:
    """List every node's sync state: last push and pull, lag, pending, last error."""
    from . import nodes as registry
    with _storage(database) as storage:
        rows = registry.list_nodes(storage, utc_now())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no node has synced yet")
        return
    click.echo(f"{'node':<24} {'kind':<9} {'facility':<14} {'acked':>7} {'pending':>8} "
               f"{'last push':<21} {'last pull':<21} {'flag / last error'}")
    for row in rows:
        pending = f"{row['pending']}{'+' if row['pending_capped'] else ''}"
        note = row["flag"] or (row["last_error"] if row["error_is_current"] else "") or ""
        click.echo(f"{row['node_id']:<24} {row['kind']:<9} {row['facility_code']:<14} "
                   f"{row['acked_seq']:>7} {pending:>8} {row['last_push_at'] or '-':<21} "
                   f"{row['last_pull_at'] or '-':<21} {note}")


@main.command()
@DB
def reconcile(database: str | None) -> None:
    """Raise paper mismatches that only time reveals (never matched, late online checks);
    run it periodically, e.g. hourly from a timer."""
    from .reconciliation import reconcile_overdue
    with _storage(database) as storage:
        raised = reconcile_overdue(storage, utc_now())
    click.echo(f"{len(raised)} paper mismatch(es) raised")


@main.command()
@DB
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for all)")
@click.option("--port", default=8700, help="Port to listen on")
@click.option("--threads", default=16, help="Server threads per worker (above the sync limit, "
              "so health checks and the dashboard still answer when syncs are full)")
@click.option("--workers", default=1, type=click.IntRange(1, 64),
              help="Worker processes sharing the port (e.g. one per core); each has --threads "
              "and its own sync limit")
@click.option("--projector", type=click.Choice(["background", "inline"]), default="background",
              show_default=True, help="background: a push answers once stored and a projector "
              "thread follows the log; inline: a push projects before it answers")
def serve(database: str | None, host: str, port: int, threads: int, workers: int,
          projector: str) -> None:
    """Run the hub's sync API and dashboard API."""
    from .web.app import create_app
    from .web.serving import serve as serve_hub
    overrides = {"DATABASE": database} if database else {}
    with _storage(database):
        pass  # a database that cannot be opened stops here in one clear line, not in a worker
    overrides["PROJECTOR"] = projector
    click.echo(f"DMED Edge hub on http://{host}:{port}/ ({workers} worker(s), "
               f"{redact(str(load_config(overrides=overrides)['DATABASE']))})")
    serve_hub(lambda: create_app(overrides), host=host, port=port, threads=threads,
              workers=workers)


def _new_password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@main.command("create-staff")
@DB
@click.option("--login", required=True, help="Sign-in name: small Latin letters, digits, . _ -")
@click.option("--name", "full_name", required=True, help="Full name, shown on the pages and "
              "recorded with every conflict review")
@click.option("--role", type=click.Choice(staff.ROLES), default=staff.ROLES[0],
              show_default=True, help="What the account may do")
def create_staff(database: str | None, login: str, full_name: str, role: str) -> None:
    """Add a central staff account for the dashboard pages. The password is asked for
    (hidden, twice), or read from DMED_HUB_STAFF_PASSWORD for scripts."""
    password = _new_password()
    try:
        staff.check_password(password)
        with _storage(database) as storage:
            account = staff.create_staff(storage, login=login, full_name=full_name, role=role,
                                         password=password)
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    click.echo(f"staff account {account['login']} ({account['full_name']}, {account['role']}) "
               "created; sign in at /staff/sign-in")


@main.command("list-staff")
@DB
def list_staff(database: str | None) -> None:
    """List the central staff accounts, with those disabled or locked now."""
    with _storage(database) as storage:
        accounts = staff.list_staff(storage)
    if not accounts:
        click.echo("no staff accounts; add one with dmed-hub create-staff")
    for account in accounts:
        state = ("disabled" if account["disabled"] else
                 "locked after wrong passwords" if account["locked"] else "active")
        click.echo(f"{account['login']}\t{account['full_name']}\t{account['role']}\t{state}")


@main.command("staff-password")
@DB
@click.option("--login", required=True, help="The account's sign-in name")
def staff_password(database: str | None, login: str) -> None:
    """Set a new password for a staff account: lifts a lock after wrong passwords and signs
    the account out everywhere. Asked for (hidden, twice) or read from
    DMED_HUB_STAFF_PASSWORD."""
    password = _new_password()
    _staff_change(database, lambda storage: staff.set_password(storage, login, password))
    click.echo(f"new password set for {staff.normalise_login(login)}; its open sessions ended")


@main.command("disable-staff")
@DB
@click.option("--login", required=True, help="The account's sign-in name")
def disable_staff(database: str | None, login: str) -> None:
    """Disable a staff account: it can no longer sign in, and its open sessions end now."""
    _staff_change(database, lambda storage: staff.set_disabled(storage, login, True))
    click.echo(f"staff account {staff.normalise_login(login)} disabled; its sessions ended")


@main.command("enable-staff")
@DB
@click.option("--login", required=True, help="The account's sign-in name")
def enable_staff(database: str | None, login: str) -> None:
    """Enable a disabled staff account again (it signs in anew)."""
    _staff_change(database, lambda storage: staff.set_disabled(storage, login, False))
    click.echo(f"staff account {staff.normalise_login(login)} enabled")


def _staff_change(database: str | None, change: Callable[[Storage], None]) -> None:
    try:
        with _storage(database) as storage:
            change(storage)
    except ProtocolError as e:
        raise click.ClickException(e.text) from e


@main.command("fhir-client-add")
@DB
@click.option("--client-id", required=True, help="The client's id (iss and sub of its "
              "assertions): lower-case letters, digits, . _ -")
@click.option("--name", required=True, help="Who the client is, e.g. the insurance fund")
@click.option("--public-key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="PEM file of the client's public key: EC P-256 (ES256), P-384 (ES384) or "
              "RSA >= 2048 bits (RS384)")
@click.option("--scopes", required=True, help="Space-separated, e.g. "
              "\"system/MedicationRequest.read system/MedicationDispense.read\"")
@click.option("--regions", required=True, help="Region codes it may see, e.g. \"TAS SAM\", "
              "or \"*\" for every region")
def fhir_client_add(database: str | None, client_id: str, name: str, key_path: str,
                    scopes: str, regions: str) -> None:
    """Register a system that reads the FHIR API (SMART Backend Services), or replace its
    key, scopes and regions (its open tokens end)."""
    from .fhir.access import register_client
    try:
        pem = Path(key_path).read_bytes()
    except OSError as e:
        raise click.ClickException(f"cannot read {key_path}: {e}") from e
    try:
        with _storage(database) as storage:
            client = register_client(storage, client_id, name, pem, scopes, regions, utc_now())
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    click.echo(f"FHIR client {client['client_id']} registered ({client['alg']}): "
               f"{' '.join(client['scopes'])}; regions {' '.join(client['regions'])}")


@main.command("fhir-clients")
@DB
def fhir_clients(database: str | None) -> None:
    """List the systems registered for the FHIR API, their scopes and regions."""
    from .fhir.access import list_clients
    with _storage(database) as storage:
        rows = list_clients(storage)
    if not rows:
        click.echo("no FHIR clients; add one with dmed-hub fhir-client-add")
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['client_id']}\t{row['name']}\t{row['alg']}\t{row['scopes']}\t"
                   f"{row['regions']}\t{state}")


@main.command("fhir-client-disable")
@DB
@click.option("--client-id", required=True, help="The client's id")
def fhir_client_disable(database: str | None, client_id: str) -> None:
    """Disable a FHIR client: its tokens end now and it gets no new ones."""
    from .fhir.access import disable_client
    with _storage(database) as storage:
        if not disable_client(storage, client_id):
            raise click.ClickException(f"no FHIR client {client_id}")
    click.echo(f"FHIR client {client_id} disabled")


@main.command("fhir-export")
@DB
@click.option("--since", default=None, help="Only what changed at or after this instant, "
              "e.g. 2026-01-01T00:00:00Z (FHIR _since)")
@click.option("--type", "types", default=None, help="Comma-separated resource types (FHIR "
              "_type); default every type")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for <Type>.ndjson files")
def fhir_export(database: str | None, since: str | None, types: str | None,
                out_dir: str) -> None:
    """Bulk export as FHIR NDJSON, offline (what $export does), on the hub machine; audited
    as client "cli"."""
    from .fhir.access import Access
    from .fhir.export import parse_since, parse_types, write_ndjson
    from .fhir.sources import SOURCES
    access = Access("cli", frozenset(SOURCES), frozenset(), all_regions=True)
    try:
        chosen = parse_types(types, access)
        moment = parse_since(since)
        with _storage(database) as storage:
            written = write_ndjson(storage, access, chosen, moment, Path(out_dir), utc_now)
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    for item in written:
        click.echo(f"{item.resource_type}\t{item.count}\t{item.path}")
    click.echo(f"{sum(w.count for w in written)} resource(s) written to {out_dir}")


@main.command("facility-update")
@click.option("--db", "database", help="Hub database URL (default from config)")
@click.option("--record", "record_file", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Signed facility record from `dmed-provision update-facility --out`")
def facility_update(database: str | None, record_file: str) -> None:
    """Publish a region's signed change of a facility's details to the region's nodes."""
    from .facility_updates import import_facility_update
    with _storage(database) as storage:
        try:
            revision = import_facility_update(
                storage, parse_json(Path(record_file).read_text(encoding="utf-8")))
        except (ProtocolError, ValueError) as e:
            raise click.ClickException(getattr(e, "text", str(e))) from e
    click.echo(f"Facility update published (revision {revision}).")


@main.command()
def config() -> None:
    """Show every setting, its current value and what it does."""
    current = load_config()
    for name, (_default, help_line) in SETTINGS.items():
        value = "***" if "TOKEN" in name and current[name] else current[name]
        if name == "DATABASE":
            value = redact(str(value))
        click.echo(f"DMED_HUB_{name}={value}    # {help_line}")


if __name__ == "__main__":
    main()
