"""`dmed-node discover`: list the DMED nodes announcing themselves on the LAN."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .discovery import NodeBrowser, choose, new_zeroconf, verify_peer

# Installed by deploy/install.sh --root-cert (the terminal set-up step).
NATIONAL_ROOT = Path("/etc/dmed/national-root.pem")


def _verify(root_cert: Path) -> bool | str:
    """HTTPS nodes are checked against the national root when the terminal has it."""
    return str(root_cert) if root_cert.is_file() else True


@click.command("discover")
@click.option("--timeout", default=3.0, type=click.FloatRange(0.1, 60),
              help="Seconds to listen for announcements")
@click.option("--interface", "interfaces", multiple=True,
              help="IPv4 address of an interface to listen on (repeat; default: all)")
@click.option("--fingerprint", default=None,
              help="Print only the address of the node with this certificate fingerprint, "
                   "after it proved it holds the key")
@click.option("--root-cert", type=click.Path(dir_okay=False, path_type=Path),
              default=NATIONAL_ROOT, show_default=True,
              help="The national root a node's HTTPS certificate must chain to")
@click.option("--only", is_flag=True,
              help="Print the address of the only enrolled node on the LAN (after it proved "
                   "it holds its announced certificate's key); fails if there are several")
def discover(timeout: float, interfaces: tuple[str, ...], fingerprint: str | None,
             root_cert: Path, only: bool) -> None:
    """List the nodes (and nodes waiting for enrolment) seen on the LAN."""
    zc = new_zeroconf(list(interfaces) or None)
    browser = NodeBrowser(zc)
    try:
        time.sleep(timeout)
        seen = browser.announcements()
    finally:
        browser.close()
        zc.close()
    if only:
        node = choose(seen, None)
        if node is None or not verify_peer(node.base_url, node.fingerprint,
                                           verify=_verify(root_cert)):
            raise click.ClickException("Not exactly one node proved itself on this LAN; give "
                                       "its fingerprint or enter its address by hand.")
        click.echo(node.base_url)
        return
    if fingerprint is not None:
        node = choose(seen, fingerprint)
        if node is None or not verify_peer(node.base_url, fingerprint,
                                           verify=_verify(root_cert)):
            raise click.ClickException("No node with that fingerprint proved itself on the "
                                       "LAN; enter its address by hand.")
        click.echo(node.base_url)
        return
    if not seen:
        click.echo("No node announces itself on this LAN.")
    for a in seen:
        state = "enrolled" if a.enrolled else "waiting for enrolment"
        click.echo(f"{a.name}  {a.kind or '-'}  {a.facility or '-'}  {a.base_url}  {state}  "
                   f"fingerprint {a.fingerprint}  version {a.version}")
