"""One place per CLI where storage and file errors become one clear line and exit status 1.

A database that cannot be opened (missing directory, no permission, read-only file, not a
database) used to end a command in a raw ``sqlite3.OperationalError`` traceback. Each CLI's
group is a ``ClearErrors``; a command names the database it opens with ``note_database``,
so the line says which path failed and why.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import click

from .json_body import BadJson

DATABASE_KEY = "dmed.database"


def note_database(path: Any) -> None:
    """Remember, for the error line, which database this command works on."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[DATABASE_KEY] = str(path)


def _sqlite_cause(error: sqlite3.Error, path: str | None) -> str:
    text = str(error)
    if path and path != ":memory:":
        file = Path(path)
        if not file.parent.is_dir():
            return f"its directory {file.parent} does not exist"
        if "readonly" in text or (file.exists() and not os.access(file, os.W_OK)):
            return "the file is read-only for this user"
        if not file.exists() and not os.access(file.parent, os.W_OK):
            return f"no permission to create it in {file.parent}"
    return text


def describe(error: BaseException, database: str | None) -> str:
    if isinstance(error, sqlite3.Error):
        return f"cannot use database {database or '(unknown)'}: {_sqlite_cause(error, database)}"
    if isinstance(error, OSError):
        where = error.filename or database or ""
        cause = error.strerror or str(error)
        return f"{where}: {cause}" if where else cause
    if isinstance(error, BadJson):
        return error.text
    return str(error)


class ClearErrors(click.Group):
    """A click group whose commands end in one clear line, never a traceback, on storage and
    file errors. `extra` names more exception types to treat so (a driver's own errors)."""

    extra: tuple[type[BaseException], ...] = ()

    def invoke(self, ctx: click.Context) -> Any:
        handled: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, BadJson, *self.extra)
        try:
            return super().invoke(ctx)
        except handled as error:
            raise click.ClickException(describe(error, ctx.meta.get(DATABASE_KEY))) from error
