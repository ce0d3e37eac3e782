"""The `dmed-provision` command group and what its command modules share (the store, the
--dir option, library errors as ClickExceptions): cli.py and desk_cli.py both import it, so
neither imports the other's module for it."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from provisioning.keystore import CaStore
from sync_protocol.cli_errors import ClearErrors
from sync_protocol.errors import ProtocolError

log = logging.getLogger(__name__)

# The passphrase comes from the environment, never argv (visible in ps and shell history).
PASSPHRASE_ENV = "DMED_CA_PASSPHRASE"  # noqa: S105 (a variable name, not a password)
DIR_ENV = "DMED_PROVISION_DIR"

F = TypeVar("F", bound=Callable[..., Any])


def _library_errors(func: F) -> F:
    """Library errors become ClickExceptions: a clear message and exit status 1."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ProtocolError as e:
            raise click.ClickException(e.text) from e
    return wrapper  # type: ignore[return-value]


def _store(directory: Path) -> CaStore:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    return CaStore(directory, password=passphrase.encode("utf-8") if passphrase else None)


dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), required=True,
    envvar=DIR_ENV, help=f"Provisioning store directory (or ${DIR_ENV}).")


@click.group(cls=ClearErrors)
@click.option("-v", "--verbose", is_flag=True, help="Log what is done to stderr.")
def main(verbose: bool) -> None:
    """Issue and revoke DMED Edge keys: national root, regions, clinic and pharmacy nodes.

    The store directory keeps the root and regional keys and the trust list. Set
    DMED_CA_PASSPHRASE to encrypt (and later read) those keys with a passphrase.
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


