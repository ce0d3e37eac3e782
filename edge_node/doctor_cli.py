"""`dmed-node doctor` (thin layer on edge_node.doctor)."""

from __future__ import annotations

import click

from .doctor import OK, PROBLEM, run_checks

MARKS = {OK: "ok     ", PROBLEM: "PROBLEM", "skipped": "skipped"}


@click.command("doctor")
@click.option("--db", "database", help="Node database file (default from config)")
@click.option("--interface", "interfaces", multiple=True,
              help="IPv4 address to look for the node's LAN announcement on (default: all)")
@click.option("--wait", default=3.0, type=click.FloatRange(0, 30),
              help="Seconds to listen for the node's LAN announcement")
def doctor(database: str | None, interfaces: tuple[str, ...], wait: float) -> None:
    """Check clock, disk, certificate, hub, log, pending events and LAN announcement, and say
    what to do about each problem; exits 1 if there is one."""
    from .credentials import load_credentials
    from .web.config import load_config
    config = load_config(overrides={"DATABASE": database} if database else None)
    from .cli_store import open_cli_store as _store
    store = _store(database)
    bundle = config.get("NODE_BUNDLE") or store.state("bundle_path")
    credentials = load_credentials(bundle) if bundle else None
    results = run_checks(store, credentials, config["HUB_URL"],
                         interfaces=list(interfaces) or None, announce_wait=wait)
    for check in results:
        click.echo(f"{MARKS[check.state]}  {check.name:<12} {check.detail}")
        if check.advice:
            click.echo(f"         -> {check.advice}")
    if any(c.state == PROBLEM for c in results):
        raise SystemExit(1)
