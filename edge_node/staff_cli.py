"""`dmed-node staff`: regional IT or the facility's admin puts its people on the node (thin:
it calls edge_node.services.staff_admin)."""

from __future__ import annotations

import getpass
import logging

import click

from sync_protocol.errors import ProtocolError
from sync_protocol.rights import STAFF_ROLES

from .services.facilities import SPECIALTIES

log = logging.getLogger(__name__)


@click.group("staff")
def staff() -> None:
    """Staff accounts of this node: doctors (with their practitioner record), registrars,
    pharmacists and admins, each with a PIN."""


@staff.command("add")
@click.option("--db", "database", help="Node database file (default from config)")
@click.option("--username", required=True, help="Sign-in name: letters, digits, dots, _")
@click.option("--full-name", required=True, help="Name shown on screens and prescriptions")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True,
              help="What the account may do; a clinic has doctors and registrars, a pharmacy "
                   "pharmacists; both have admins")
@click.option("--specialty", type=click.Choice(SPECIALTIES), default=None,
              help="A doctor's specialty (required for --role doctor)")
@click.option("--family-doctor", is_flag=True, help="A doctor who is a family doctor (GP)")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="DMED_STAFF_PIN",
              help="4 to 8 digits, not 1111 or 1234 and the like (asked twice, or "
                   "$DMED_STAFF_PIN); stored hashed only")
@click.option("--operator", default=None,
              help="Who adds the account, for the node's staff audit (default: your login)")
def add(database, username, full_name, role, specialty, family_doctor, pin, operator) -> None:
    """Add a staff account; a doctor is registered as a practitioner of this node's facility
    at the same time, so they can book, examine and prescribe at once."""
    from .cli_store import open_cli_store
    from .services.staff_admin import add_staff_member
    try:
        member = add_staff_member(open_cli_store(database), username=username,
                                  full_name=full_name, role=role, pin=pin, specialty=specialty,
                                  family_doctor=family_doctor,
                                  by=operator or f"cli:{getpass.getuser()}")
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    click.echo(f"added {member.username} ({member.role}) {member.staff_id}"
               + (f", practitioner {member.practitioner_id}" if member.practitioner_id else ""))


@staff.command("list")
@click.option("--db", "database", help="Node database file (default from config)")
@click.option("--audit", is_flag=True, help="Show who added which account instead")
def list_command(database, audit) -> None:
    """List this node's staff accounts (never their PINs), or the staff audit."""
    from .cli_store import open_cli_store
    from .services.access import SYSTEM
    from .services.staff import list_staff
    from .services.staff_admin import staff_audit
    store = open_cli_store(database)
    if audit:
        for row in staff_audit(store):
            click.echo(f"{row['at']}  {row['actor']}  {row['action']} {row['username']} "
                       f"({row['role']})  {row['outcome']}  {row['detail']}")
        return
    for row in list_staff(store, SYSTEM):
        click.echo(f"{row['username']}  {row['role']}  {row['full_name']}"
                   + ("" if row["active"] else "  (inactive)"))
