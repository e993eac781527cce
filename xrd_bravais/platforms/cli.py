"""``xrd-bravais export kaggle|codabench``: a built competition as a platform's upload."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from scoring.cli import CompetitionOption, TrackOption, resolve_track
from xrd_bravais.contract.console import checked_output, fail
from xrd_bravais.platforms.codabench import IMAGE_PYARROW, IMAGE_PYTHON

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
    from xrd_bravais.platforms.common import ExportError
    from xrd_bravais.platforms.kaggle import export_kaggle

    spec = resolve_track(competition, track)
    checked_output(out, folder=True)
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


@export_app.command("codabench")
def codabench(
    competition: CompetitionOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The bundle zip to write.")],
    track: TrackOption = None,
    start: Annotated[
        datetime | None,
        typer.Option(help="Start of the Development phase, UTC (default: now).",
                     formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(help="End of the Development phase, UTC (default: the competition's "
                          "deadline, else eight weeks after the start).",
                     formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    ] = None,
    python_version: Annotated[
        str, typer.Option("--python", help="Python of the scoring image (vendored pyarrow).")
    ] = IMAGE_PYTHON,
    wheelhouse: Annotated[
        Path | None,
        typer.Option(help="Folder with the pyarrow wheel for that Python (offline export)."),
    ] = None,
    pyarrow_version: Annotated[
        str, typer.Option(help="The pyarrow vendored (it must import with the image's numpy).")
    ] = IMAGE_PYARROW,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists.")
    ] = False,
) -> None:
    """A Codabench competition bundle: pages, phases, leaderboard, our scoring program."""
    import yaml

    from xrd_bravais.platforms.codabench import export_codabench
    from xrd_bravais.platforms.common import ExportError

    spec = resolve_track(competition, track)
    checked_output(out, force=force)
    try:
        bundle = export_codabench(competition, out, spec.name, start=start, end=end,
                                  python_version=python_version, wheelhouse=wheelhouse,
                                  pyarrow_version=pyarrow_version,
                                  notify=typer.echo)
    except ExportError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    except (FileNotFoundError, OSError) as err:
        fail(str(err))
    with zipfile.ZipFile(bundle) as archive:
        phases = yaml.safe_load(archive.read("competition.yaml"))["phases"]
    size = bundle.stat().st_size / 2**20
    typer.echo(f"Wrote {bundle} ({size:.1f} MiB) for Codabench ({spec.name} track); no "
               "answer-key content in pages/, public_data/ or starting_kit/.")
    for phase in phases:
        typer.echo(f"  phase {phase['name']}: from {phase['start']} UTC"
                   + (f" to {phase['end']} UTC" if phase.get("end") else ""))
    typer.echo("Next: codabench.org -> Benchmarks -> Management -> Upload, and choose this zip.")


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``xrd-bravais`` application."""
    app.add_typer(export_app, name="export")
