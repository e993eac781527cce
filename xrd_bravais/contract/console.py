"""The one way a command reports a user error: one line on stderr, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def checked_output(target: Path, *, force: bool = False, folder: bool = False) -> Path:
    """``target`` if a command may write it (:func:`~xrd_bravais.contract.io.check_output`).

    Otherwise the command fails with the reason, in one line.

    Every command that writes a file a user names goes through this, so none of
    them replaces an existing file without ``--force`` or touches a competition's
    answer key, store or manifest.
    """
    from xrd_bravais.contract.io import OutputError, check_output

    try:
        return check_output(target, force=force, folder=folder)
    except OutputError as err:
        fail(str(err))
