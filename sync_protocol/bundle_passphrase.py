"""The passphrase of an enrolment bundle's key (issue 16), for add-node and `dmed-node init`.

Taken from --passphrase-file FILE, else DMED_BUNDLE_PASSPHRASE, else asked hidden at the
prompt (twice when writing). Never logged or echoed.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

ENV_VAR = "DMED_BUNDLE_PASSPHRASE"
MIN_LENGTH = 12

passphrase_file_option = click.option(
    "--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=f"File holding the bundle passphrase (first line). Else ${ENV_VAR}, else a prompt.")


def bundle_key_is_encrypted(bundle: str | Path) -> bool:
    """True if the bundle (directory or .json) holds an encrypted key; False if unreadable."""
    import json

    from sync_protocol.enrolment import BUNDLE_FILES, key_is_encrypted
    bundle = Path(bundle)
    try:
        if bundle.is_dir():
            return key_is_encrypted((bundle / BUNDLE_FILES["key"]).read_bytes())
        return key_is_encrypted(json.loads(bundle.read_text(encoding="utf-8"))["key"]
                                .encode("ascii"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # the reader will give the proper error


def get_passphrase(passphrase_file: Path | None, *, confirm: bool) -> bytes:
    """The passphrase as bytes; with `confirm` (writing a bundle) at least MIN_LENGTH chars."""
    if passphrase_file is not None:
        lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        text = lines[0] if lines else ""
    elif os.environ.get(ENV_VAR):
        text = os.environ[ENV_VAR]
    else:
        text = click.prompt("Bundle passphrase", hide_input=True,
                            confirmation_prompt=confirm)
    if confirm and len(text) < MIN_LENGTH:
        raise click.ClickException(
            f"The bundle passphrase must be at least {MIN_LENGTH} characters long.")
    if not text:
        raise click.ClickException("The bundle passphrase is empty.")
    return text.encode("utf-8")
