"""``xrd-bravais starter-kit``: zip the public files and the starter kit for students."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.cli import CompetitionOption
from xrd_bravais.contract.console import checked_output, fail


def starter_kit(
    competition: CompetitionOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The zip to write.")],
    name: Annotated[
        str | None, typer.Option(help="Folder inside the zip (default: <competition>-starter-kit).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists.")
    ] = False,
) -> None:
    """Bundle public/ with the README, notebook and script; refuse answer-key content."""
    import zipfile

    from starter_kit.kit import KitLeakError, build_kit

    if out.is_dir():
        fail(f"--out {out} is a folder; give the zip file to write, e.g. {out / 'kit.zip'}")
    checked_output(out, force=force)
    try:
        path = build_kit(competition, out, name)
    except KitLeakError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    except FileNotFoundError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot write {out}: {err.strerror or err}")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    size = path.stat().st_size / 2**20
    typer.echo(f"Wrote {path} ({len(names)} files, {size:.1f} MiB); no answer-key content found.")
    for entry in names:
        typer.echo(f"  {entry}")


def register(app: typer.Typer) -> None:
    """Add ``starter-kit`` to the ``xrd-bravais`` application."""
    app.command("starter-kit")(starter_kit)
