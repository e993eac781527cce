"""``xrd-bravais export kaggle``: a built competition as a platform's upload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from contract.console import fail
from scoring.cli import CompetitionOption, TrackOption, resolve_track

export_app = typer.Typer(
    help="Export a built competition to a hosting platform.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@export_app.command("kaggle")
def kaggle(
    competition: CompetitionOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The folder to create.")],
    track: TrackOption = None,
) -> None:
    """The files a host uploads for a Kaggle community competition, and how to set it up."""
    from platforms.common import ExportError
    from platforms.kaggle import export_kaggle

    spec = resolve_track(competition, track)
    try:
        folder = export_kaggle(competition, out, spec.name)
    except ExportError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    except (FileNotFoundError, OSError) as err:
        fail(str(err))
    typer.echo(f"Wrote {folder} for Kaggle ({spec.name} track); no answer-key content in "
               "data/ or pages/. Next: read its README.md.")  # fmt: skip
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        typer.echo(f"  {path.relative_to(folder).as_posix()}")


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``xrd-bravais`` application."""
    app.add_typer(export_app, name="export")
