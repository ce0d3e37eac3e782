"""`dmed-node backup` and `dmed-node restore` (thin layer on edge_node.backup)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sync_protocol.errors import ProtocolError

from . import backup as backups
from .enrolment import enrolment_dir

PASSPHRASE_ENV = "DMED_BACKUP_PASSPHRASE"  # noqa: S105 (a variable name)


@click.command("backup")
@click.option("--db", "database", help="Node database file (default from config)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False,
              path_type=Path), help="Directory for the copy, e.g. the USB drive's mount point")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The region's public backup key (default: the one enrolment brought)")
@click.option("--keep", default=backups.DEFAULT_KEEP, show_default=True,
              type=click.IntRange(1, 365), help="How many copies of this node to keep there")
def backup(database: str | None, out_dir: Path, key_file: Path | None, keep: int) -> None:
    """Copy the live database (SQLite backup API) sealed to the region's backup key."""
    from .cli_store import open_cli_store as _store
    store = _store(database)
    key_file = key_file or enrolment_dir(store.path.parent) / backups.BACKUP_KEY_FILE
    try:
        info = backups.backup(store, out_dir, key_file.read_bytes(), keep=keep)
    except FileNotFoundError as e:
        raise click.ClickException(f"No backup key at {key_file}: give --key, the region's "
                                   "public backup key.") from e
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    click.echo(f"backup of {info.node_id} written to {info.path} ({info.size} bytes)")


@click.command("restore")
@click.option("--backup", "backup_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A .dmedbak file made by dmed-node backup")
@click.option("--key", "key_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"The region's private backup key (its passphrase in ${PASSPHRASE_ENV})")
@click.option("--db", "database", required=True, type=click.Path(path_type=Path),
              help="The database file to create (must not exist)")
def restore(backup_file: Path, key_file: Path, database: Path) -> None:
    """Open a backup into a new database and check every origin's hash chain."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        result = backups.restore(backup_file, key_file.read_bytes(), database,
                                 password=passphrase.encode() if passphrase else None)
    except ProtocolError as e:
        raise click.ClickException(e.text) from e
    heads = ", ".join(f"{o} up to {s}" for o, s in sorted(result["origins"].items()))
    click.echo(f"restored {result['node_id']} as of {result['created_at']} into {database}; "
               f"log verified ({heads or 'empty'})")


@click.command("housekeeping")
@click.option("--db", "database", help="Node database file (default from config)")
def housekeeping(database: str | None) -> None:
    """Fold the WAL into the database and refresh statistics (nightly, by a timer)."""
    from .cli_store import open_cli_store as _store
    result = backups.housekeeping(_store(database))
    click.echo(f"WAL {result['wal_before']} -> {result['wal_after']} bytes")
