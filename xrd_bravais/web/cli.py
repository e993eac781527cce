"""``xrd-bravais serve`` and ``xrd-bravais teams``: the website and its accounts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xrd_bravais.contract.console import fail

if TYPE_CHECKING:
    from scoring.leaderboard import Leaderboard

CompetitionOption = Annotated[
    Path, typer.Option("--competition", "-c", help="Folder of the built competition.")
]

teams_app = typer.Typer(
    name="teams", help="Teams of the website: add (prints a token), list, remove, new tokens.",
    no_args_is_help=True,
)  # fmt: skip


@contextmanager
def _store(competition: Path) -> Iterator[Leaderboard]:
    """The competition's store; a refusal (no build, a look-alike name ...) is one line."""
    from scoring.leaderboard import Leaderboard, LeaderboardError

    try:
        with Leaderboard.open(competition) as board:
            yield board
    except LeaderboardError as err:
        fail(str(err))


def _token_lines(who: str, token: str) -> None:
    typer.echo(f"{who}: {token}")
    typer.echo("Give it to them privately; it is stored hashed and cannot be shown again.",
               err=True)  # fmt: skip


@teams_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The team's name, as the boards will show it.")],
    competition: CompetitionOption,
) -> None:
    """Create a team (or bring back a removed one) and print its login token."""
    from scoring.teams import add_team

    with _store(competition) as board:
        token = add_team(board, name)
    _token_lines(f"team {name.strip()!r}", token)


@teams_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The team's name.")],
    competition: CompetitionOption,
) -> None:
    """Print a new token for a team (the old one and its logins stop working)."""
    from scoring.teams import reissue_team_token

    with _store(competition) as board:
        value = reissue_team_token(board, name)
    _token_lines(f"team {name!r}", value)


@teams_app.command("admin")
def admin(competition: CompetitionOption) -> None:
    """Print a new admin token (close, rescore, download); the previous one stops working."""
    from scoring.teams import admin_token

    with _store(competition) as board:
        value = admin_token(board)
    _token_lines("admin", value)


@teams_app.command("list")
def list_(competition: CompetitionOption) -> None:
    """List the teams: created, token issued, submissions, removed."""
    from scoring.teams import list_teams

    with _store(competition) as board:
        frame = list_teams(board)
    if frame.empty:
        typer.echo("No teams yet: add one with `xrd-bravais teams add NAME -c DIR`.")
        return
    frame["created_at"] = frame["created_at"].str[:19].str.replace("T", " ")
    frame["has_token"] = frame["has_token"].map({1: "yes", 0: "no"})
    frame["removed"] = frame["removed"].map({1: "removed", 0: ""})
    typer.echo(frame.to_string(index=False))


@teams_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The team's name.")],
    competition: CompetitionOption,
) -> None:
    """Revoke a team's token and take it off the boards (its submissions stay stored)."""
    from scoring.teams import remove_team

    with _store(competition) as board:
        n = remove_team(board, name)
    typer.echo(f"Removed team {name!r}: its token no longer works and its {n} submission"
               f"{'s' * (n != 1)} are kept in the store, off the boards. "
               "`teams add` brings it back.")  # fmt: skip


def serve(
    competition: CompetitionOption,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (they share the SQLite store).")
    ] = 1,
    kit: Annotated[
        Path | None,
        typer.Option(help="Starter-kit zip to offer (default: built beside the store)."),
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark cookies Secure (when served behind HTTPS).")
    ] = False,
) -> None:
    """Run the competition website: submissions, leaderboards, data card, API."""
    import os

    try:
        import uvicorn

        import xrd_bravais.web.app  # noqa: F401  (the web extra: fastapi, jinja2 ...)
    except ImportError as err:
        fail(f"the website needs the 'web' extra ({err.name} is missing): "
             "pip install 'xrd-bravais[web]'")  # fmt: skip
    from xrd_bravais.contract import layout

    if not layout.Layout(competition).is_built():
        fail(f"{competition} is not a built competition (no manifest.json)")
    if kit is not None and not kit.is_file():
        fail(f"starter kit {kit} not found; build it with `xrd-bravais starter-kit`")
    if not (competition / layout.SOLUTION).is_file():
        fail(f"{competition} has no {layout.SOLUTION}: the website grades submissions, so it "
             "runs on the organisers' full build (with private/), not on a copy of public/")
    app = _app_or_fail(competition, kit, secure_cookies)  # fail here, once, on a bad build
    typer.echo(f"Serving {competition} on http://{host}:{port} (Ctrl-C stops; nothing is lost).")
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    os.environ["XRD_BRAVAIS_COMPETITION"] = str(competition.resolve())
    os.environ["XRD_BRAVAIS_KIT"] = str(kit.resolve()) if kit else ""
    os.environ["XRD_BRAVAIS_SECURE_COOKIES"] = "1" if secure_cookies else "0"
    uvicorn.run("xrd_bravais.web.app:app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level="warning")  # fmt: skip


def _app_or_fail(competition: Path, kit: Path | None, secure_cookies: bool) -> object:
    """The site of ``competition``, or one line saying why it cannot be served."""
    from scoring.grade import AnswerKeyError
    from scoring.leaderboard import LeaderboardError
    from xrd_bravais.web.app import create_app

    try:
        return create_app(competition, kit=kit, secure_cookies=secure_cookies)
    except (LeaderboardError, AnswerKeyError) as err:
        fail(f"cannot serve {competition}: {err}")
    except PermissionError:
        raise  # the command's own one line (xrd_bravais.cli.run)
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        fail(f"cannot serve {competition}: {err.strerror or err}{where}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``teams`` to the ``xrd-bravais`` application."""
    app.command()(serve)
    app.add_typer(teams_app)
