"""`dmed-node discover`: list the DMED nodes announcing themselves on the LAN."""

from __future__ import annotations

import time

import click

from .discovery import NodeBrowser, choose, new_zeroconf, verify_peer


@click.command("discover")
@click.option("--timeout", default=3.0, type=click.FloatRange(0.1, 60),
              help="Seconds to listen for announcements")
@click.option("--interface", "interfaces", multiple=True,
              help="IPv4 address of an interface to listen on (repeat; default: all)")
@click.option("--fingerprint", default=None,
              help="Print only the address of the node with this certificate fingerprint, "
                   "after it proved it holds the key")
def discover(timeout: float, interfaces: tuple[str, ...], fingerprint: str | None) -> None:
    """List the nodes (and nodes waiting for enrolment) seen on the LAN."""
    zc = new_zeroconf(list(interfaces) or None)
    browser = NodeBrowser(zc)
    try:
        time.sleep(timeout)
        seen = browser.announcements()
    finally:
        browser.close()
        zc.close()
    if fingerprint is not None:
        node = choose(seen, fingerprint)
        if node is None or not verify_peer(f"http://{node.address}", fingerprint):
            raise click.ClickException("No node with that fingerprint proved itself on the "
                                       "LAN; enter its address by hand.")
        click.echo(node.address)
        return
    if not seen:
        click.echo("No node announces itself on this LAN.")
    for a in seen:
        state = "enrolled" if a.enrolled else "waiting for enrolment"
        click.echo(f"{a.name}  {a.kind or '-'}  {a.facility or '-'}  {a.address}  {state}  "
                   f"fingerprint {a.fingerprint}  version {a.version}")
