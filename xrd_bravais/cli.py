"""The ``xrd-bravais`` application: every subcommand, registered in the order of use.

Each package owns its commands (``competition.cli``, ``scoring.cli``,
``baselines.cli``, ``starter_kit.cli``, ``xrd_bravais.platforms.cli``,
``xrd_bravais.web.cli``) and exposes a ``register(app)``; this module composes them.
Every command parses its options and calls the library; user errors exit non-zero
with one line on stderr, no traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from baselines.cli import register as register_baselines
from competition.cli import register as register_build
from scoring.cli import register as register_scoring
from starter_kit.cli import register as register_starter_kit
from xrd_bravais.platforms.cli import register as register_export
from xrd_bravais.web.cli import register as register_website

app = typer.Typer(
    name="xrd-bravais",
    help="Run a powder-XRD Bravais-lattice classification competition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib import metadata

        typer.echo(f"xrd-bravais {metadata.version('xrd-bravais')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_print_version, is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Run a powder-XRD Bravais-lattice classification competition."""


register_build(app)  # build
register_scoring(app)  # validate, score, submit, submissions, select, close, leaderboard, ...
register_baselines(app)  # baselines list | run | predict
register_starter_kit(app)  # starter-kit
register_export(app)  # export kaggle
register_website(app)  # serve, teams add | list | remove | token | admin


def run() -> None:
    """The ``xrd-bravais`` command: the application, with one line for a refused file access.

    A command run by a user who may not read or write the competition folder (a TA's
    account on a course server, say) stops with the path and what to do, never a
    traceback; every other user error is already one line where it arises.
    """
    try:
        app(prog_name="xrd-bravais")
    except PermissionError as err:
        where = err.filename or "a file"
        print(f"error: permission denied: {where}: run the command as the user who owns the "
              "competition folder, or ask them for access", file=sys.stderr)  # fmt: skip
        sys.exit(2)
