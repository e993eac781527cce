"""The grading subcommands of ``xrd-bravais``.

validate, score, submit, submissions, select, close, leaderboard, rescore,
amend-key, rules and integrity.

A thin layer over :mod:`scoring`: each command parses its options, calls the
library and prints. Student-facing output (validate, submit, score, the public
leaderboard) is computed from Public rows only until the competition is closed.

Over 500 lines: eleven small commands over one library, each a page of options and
printing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from scoring.integrity import ALPHA, SHARED_ERRORS
from scoring.ladder import PUBLIC_BOARDS
from scoring.leaderboard.copying import WHICH
from scoring.metrics import Scores
from xrd_bravais.contract.console import checked_output, fail
from xrd_bravais.contract.layout import MEASURED_PUBLIC_TITLE
from xrd_bravais.contract.tasks import Track, load_task

PublicBoard = StrEnum("PublicBoard", {kind: kind for kind in PUBLIC_BOARDS})  # type: ignore[misc]
Which = StrEnum("Which", {kind: kind for kind in WHICH})  # type: ignore[misc]
_ALL_SUBMISSIONS = Which("all")


class Format(StrEnum):
    table = "table"
    md = "md"
    csv = "csv"
    html = "html"


CompetitionOption = Annotated[
    Path, typer.Option("--competition", "-c", help="Folder of the built competition.")
]
TrackOption = Annotated[
    str | None,
    typer.Option(
        "--track", "-t",
        help="A track of the competition: bravais (lattices) or spacegroup.",
        show_default="the competition's first",
    ),
]

__all__ = ["CompetitionOption", "TrackOption", "fail", "register", "resolve_track"]


def resolve_track(competition: Path, track: str | None) -> Track:
    """The track called ``track`` in the competition's task; one line if there is none."""
    try:
        return load_task(competition).track(track)
    except ValueError as err:
        fail(str(err))


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn user errors into exit codes, never a traceback.

    Exit 1 listing a submission's problems; exit 2 with one line for a refusal
    (closed board, altered answer key, missing folder).
    """
    from scoring.grade import AnswerKeyError
    from scoring.leaderboard import LeaderboardError
    from scoring.submission import SubmissionError

    try:
        yield
    except SubmissionError as err:
        _print_notices(err.notices)
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    except (LeaderboardError, AnswerKeyError, FileNotFoundError) as err:
        fail(str(err))


def _scores_line(scores: Scores, portion: str) -> str:
    low, high = scores.accuracy_ci
    return (
        f"{portion} score: accuracy {100 * scores.accuracy:.2f} % "
        f"(95 % CI {100 * low:.2f}-{100 * high:.2f}), macro-F1 {scores.macro_f1:.4f}, "
        f"balanced accuracy {100 * scores.balanced_accuracy:.2f} %, on {scores.n:,} "
        f"{portion} rows."
    )


def _details(scores: Scores, track: Track, portion: str) -> str:
    """Per-class recall and the confusion matrix of one portion, as text."""
    import pandas as pd

    labels = [str(label) for label in track.labels]
    cm = np.asarray(scores.confusion)
    present = cm.sum(axis=0) + cm.sum(axis=1) > 0
    shown = [label for label, keep in zip(labels, present, strict=True) if keep]
    recall = pd.Series(scores.recall, index=labels)[shown]
    lines = [f"\nRecall per class ({portion} rows; classes absent on both sides left out):"]
    lines += [f"  {label:>4}  {'—' if np.isnan(v) else f'{100 * v:6.2f} %'}"
              for label, v in recall.items()]  # fmt: skip
    matrix = pd.DataFrame(cm[np.ix_(present, present)], index=shown, columns=shown)
    matrix.index.name = "true \\ predicted"
    lines += [f"\nConfusion matrix ({portion} rows):", matrix.to_string()]
    return "\n".join(lines)


def _print_notices(notices: tuple[str, ...] | list[str]) -> None:
    for notice in notices:
        typer.echo(f"note: {notice}")


def validate(
    submission: Annotated[Path, typer.Argument(help="The submission CSV.")],
    competition: CompetitionOption,
    track: TrackOption = None,
) -> None:
    """Check a submission file against public/test.parquet (free, needs no labels)."""
    from scoring.submission import validate_submission

    spec = resolve_track(competition, track)
    with _user_errors():
        valid = validate_submission(submission, competition, spec)
    _print_notices(valid.notices)
    typer.echo(
        f"{submission} is a valid {spec.name} submission: {len(valid.frame):,} rows, "
        f"one per test id (sha256 {valid.sha256[:12]})."
    )


def score(
    submission: Annotated[Path, typer.Argument(help="The submission CSV.")],
    competition: CompetitionOption,
    track: TrackOption = None,
    details: Annotated[
        bool, typer.Option(help="Also print recall per class and the confusion matrix.")
    ] = False,
    private: Annotated[
        bool,
        typer.Option("--private", help="Also the Private and Measured portions (after close)."),
    ] = False,
) -> None:
    """Score a submission without storing it (grader side: needs private/)."""
    from scoring.grade import grade
    from scoring.leaderboard import Leaderboard

    spec = resolve_track(competition, track)
    with _user_errors():
        if private:
            with Leaderboard.open(competition) as board:
                if not board.is_closed():
                    fail("Private scores stay hidden until the competition is closed "
                         "(xrd-bravais close)")  # fmt: skip
        result = grade(submission, competition, spec)
    _print_notices(result.notices)
    typer.echo(_scores_line(result.public, "Public"))
    if details:
        typer.echo(_details(result.public, spec, "Public"))
    if result.measured_public is not None:
        typer.echo(_scores_line(result.measured_public, MEASURED_PUBLIC_TITLE))
    if private:
        typer.echo(_scores_line(result.private, "Private"))
        if details:
            typer.echo(_details(result.private, spec, "Private"))
        if result.measured is not None:
            typer.echo(_scores_line(result.measured, "Measured"))
            if details:
                typer.echo(_details(result.measured, spec, "Measured"))


def submit(
    submission: Annotated[Path, typer.Argument(help="The submission CSV.")],
    team: Annotated[str, typer.Option("--team", help="Team name (created on first use).")],
    competition: CompetitionOption,
    track: TrackOption = None,
    message: Annotated[str, typer.Option("--message", "-m", help="A note for your record.")] = "",
    details: Annotated[
        bool, typer.Option(help="Print Public recall per class and confusion matrix.")
    ] = False,
    baseline: Annotated[
        bool, typer.Option(help="Organisers: store as an unranked reference row.")
    ] = False,
) -> None:
    """Validate, score and record a submission; print its Public score and the quota left."""
    from scoring.leaderboard import Leaderboard

    with _user_errors(), Leaderboard.open(competition) as board:
        receipt = board.submit(submission, team, resolve_track(competition, track), message,
                               baseline=baseline)  # fmt: skip
    _print_notices(receipt.notices)
    state = "valid" if receipt.valid else "NOT valid"
    typer.echo(
        f"Submission {receipt.submission_id} from team {receipt.team!r} on the "
        f"{receipt.track} track: {state} (sha256 {receipt.sha256[:12]})."
    )
    if receipt.released is False and receipt.released_public is not None:
        typer.echo(
            f"Public board (Ladder): not released. This submission is not above your released "
            f"score of {100 * receipt.released_public.accuracy:.2f} % (submission "
            f"{receipt.released_submission_id}) by more than the noise of the comparison; the "
            "board keeps that score and this submission's Public score stays hidden."
        )
    if receipt.released:
        typer.echo("Public board (Ladder): released; the board now shows this submission.")
    if receipt.public is not None:
        typer.echo(_scores_line(receipt.public, "Public"))
        if details:
            typer.echo(_details(receipt.public, resolve_track(competition, receipt.track),
                                "Public"))  # fmt: skip
    if receipt.measured_public is not None:
        typer.echo(_scores_line(receipt.measured_public, MEASURED_PUBLIC_TITLE))
    if receipt.late:
        typer.echo("The competition is closed: this late submission is scored but not ranked.")
    if receipt.quota_left is not None:
        typer.echo(
            f"Quota: {receipt.quota_left} valid submission"
            f"{'s' * (receipt.quota_left != 1)} left today; resets at "
            f"{receipt.quota_resets_at:%Y-%m-%d %H:%M} UTC."
        )
    if not receipt.valid:
        typer.echo("\n".join(["problems:", *(f"  - {p}" for p in receipt.problems)]), err=True)
        raise typer.Exit(1)


def select(
    submission_ids: Annotated[list[int], typer.Argument(help="Submission ids to pick.")],
    team: Annotated[str, typer.Option("--team", help="Your team name.")],
    competition: CompetitionOption,
    track: TrackOption = None,
) -> None:
    """Pick up to two submissions for the private leaderboard (default: two best Public)."""
    from scoring.leaderboard import Leaderboard

    spec = resolve_track(competition, track)
    with _user_errors(), Leaderboard.open(competition) as board:
        chosen = board.select(team, submission_ids, spec)
    typer.echo(
        f"Team {team!r} selected submission(s) {', '.join(map(str, chosen))} on the "
        f"{spec.name} track for the private leaderboard."
    )


def close(
    competition: CompetitionOption,
    at: Annotated[
        datetime | None,
        typer.Option(help="Deadline (UTC) instead of now, e.g. 2026-12-01T00:00:00."),
    ] = None,
    retroactive: Annotated[
        bool,
        typer.Option(help="Confirm a past deadline that makes stored submissions late."),
    ] = False,
    reopen: Annotated[
        bool,
        typer.Option(help="Confirm moving a passed deadline into the future (reopening)."),
    ] = False,
) -> None:
    """Freeze the competition at its deadline; then the private leaderboard appears."""
    from scoring.leaderboard import Leaderboard

    deadline = None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC))
    with _user_errors(), Leaderboard.open(competition) as board:
        rules = board.close(deadline, retroactive=retroactive, reopen=reopen)
        closed = board.is_closed()
    assert rules.deadline is not None
    when = f"{rules.deadline:%Y-%m-%d %H:%M:%S} UTC"
    if closed:
        typer.echo(
            f"Closed at {when}. Later submissions are kept as late (unranked). "
            "See the result with: xrd-bravais leaderboard --private"
        )
    else:
        typer.echo(f"The competition will close at {when}.")


def leaderboard(
    competition: CompetitionOption,
    track: TrackOption = None,
    private: Annotated[
        bool, typer.Option("--private", help="Final standings with the shake-up (after close).")
    ] = False,
    measured: Annotated[
        bool,
        typer.Option(
            "--measured",
            help="The final submissions ranked on the real measurements (after close).",
        ),
    ] = False,
    late: Annotated[bool, typer.Option("--late", help="Submissions after the deadline.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists.")
    ] = False,
) -> None:
    """Print the public leaderboard, or the private one and the shake-up after close."""
    from scoring.grade import AnswerKeyError, load_answer_key, reference_guesses
    from scoring.leaderboard import Leaderboard, utc_now
    from scoring.render import display_frame, display_late, render
    from xrd_bravais.contract.io import atomic_write_text

    now = utc_now()
    spec = resolve_track(competition, track)
    if out is not None:
        checked_output(out, force=force)
    with _user_errors(), Leaderboard.open(competition) as board:
        if late:
            frame = display_late(board.late_board(spec, now))
            title = f"Late submissions ({spec.name} track, not ranked)"
            text = render(frame, fmt.value, title, generated_at=now)
        else:
            portion = "Measured" if measured else "Private" if private else "Public"
            if measured:
                table = board.measured_board(spec, now)
                if table.empty:
                    fail(f"{competition} has no Measured portion (build --measured-test)")
            elif private:
                table = board.private_board(spec, now)
            else:
                table = board.public_board(spec)
            try:
                refs = reference_guesses(load_answer_key(competition), spec, portion)
            except AnswerKeyError:
                refs = None
            shown = display_frame(table, refs, private=private and not measured)
            title = f"{portion} leaderboard: {competition.resolve().name} ({spec.name} track)"
            subtitle = (
                f"Accuracy on the {portion} part of the test set; ties broken by "
                "macro-F1, then the earlier submission (which ranks first)."
            )
            if portion == "Public" and board.rules.is_ladder:
                subtitle += (" The board is a Ladder: each team's last released submission, "
                             "not its best.")  # fmt: skip
            text = render(shown, fmt.value, title, subtitle, generated_at=now)
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        typer.echo(f"Wrote {out}.")


def rescore(competition: CompetitionOption) -> None:
    """Grade every stored submission again (after `amend-key` or a grader update)."""
    from scoring.leaderboard import Leaderboard

    with _user_errors(), Leaderboard.open(competition) as board:
        changes = board.rescore()
        closed = board.is_closed()
        n = sum(len(board.submissions(name)) for name in board.task.track_names)
    typer.echo(f"Rescored {n} submission{'s' * (n != 1)}: {len(changes)} changed.")
    hidden = 0
    for change in changes:
        fields = ["valid", "public_accuracy", "public_macro_f1"]
        if closed:
            fields += ["private_accuracy", "private_macro_f1", "measured_accuracy",
                       "measured_macro_f1"]  # fmt: skip
        moved = [f"{f} {change.before[f]} -> {change.after[f]}" for f in fields
                 if change.before[f] != change.after[f]]  # fmt: skip
        if moved:
            typer.echo(f"  #{change.submission_id} {change.team} ({change.track}): "
                       + "; ".join(moved))  # fmt: skip
        else:
            hidden += 1
    if hidden:
        typer.echo(f"  {hidden} changed only on hidden rows (shown after close).")


def submissions(
    team: Annotated[str, typer.Option("--team", help="Your team name.")],
    competition: CompetitionOption,
    track: TrackOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List a team's own submissions (ids for `select`, Public scores, picks)."""
    from scoring.leaderboard import Leaderboard
    from scoring.render import display_history, render

    spec = resolve_track(competition, track)
    with _user_errors(), Leaderboard.open(competition) as board:
        history = board.team_history(team, spec)
        if history.empty and team not in board.team_names():
            fail(f"no team called {team!r} (names are case-sensitive)")
        quota = board.rules.max_selected
    title = f"Submissions of team {team!r} ({spec.name} track)"
    if "released" in history:
        quota_note = ("The Public board is the Ladder: a submission's Public score is shown "
                      "only where it was released. ")
    else:
        quota_note = ""
    subtitle = quota_note + (
        f"Public scores only. Pick up to {quota} for the final ranking with "
        "`xrd-bravais select ID ... --team NAME`; with none picked, the best Public ones count."
    )
    typer.echo(render(display_history(history), fmt.value, title, subtitle), nl=False)


def amend_key(
    corrected: Annotated[Path, typer.Argument(help="The corrected solution.csv.")],
    competition: CompetitionOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the key changes (recorded).")],
) -> None:
    """Replace the answer key with a corrected one, record why, and rescore every submission."""
    from scoring.amend import amend_answer_key

    with _user_errors():
        amendment = amend_answer_key(competition, corrected, reason)
    moved = ", ".join(f"{n} {portion}" for portion, n in amendment.changed.items())
    typer.echo(
        f"Amended the answer key ({moved} row(s) relabelled); the old key is kept in "
        f"{amendment.archived} and the change recorded in manifest.json."
    )
    rescore(competition)


def rules(
    competition: CompetitionOption,
    daily_quota: Annotated[
        int | None, typer.Option(min=0, help="Valid submissions per team and UTC day.")
    ] = None,
    invalid_quota: Annotated[
        int | None, typer.Option(min=0, help="Invalid submissions per team and UTC day.")
    ] = None,
    max_selected: Annotated[
        int | None, typer.Option(min=0, help="Submissions a team may select.")
    ] = None,
    public_board: Annotated[
        PublicBoard | None,
        typer.Option(
            "--public-board",
            help="plain: every submission's Public score is shown. ladder: Blum and Hardt's "
            "Ladder: a team's Public score is released only when a submission beats its "
            "released one by more than the noise, so probing the Public rows gains nothing.",
        ),
    ] = None,
) -> None:
    """Show the competition rules, or change the quotas and the kind of Public board."""
    from scoring.leaderboard import Leaderboard

    changes = {
        name: value
        for name, value in (
            ("daily_quota", daily_quota),
            ("invalid_daily_quota", invalid_quota),
            ("max_selected", max_selected),
            ("public_board", None if public_board is None else public_board.value),
        )
        if value is not None
    }
    with _user_errors(), Leaderboard.open(competition) as board:
        current = board.set_rules(**changes) if changes else board.rules
        log = board.audit_log()
    deadline = "none" if current.deadline is None else f"{current.deadline:%Y-%m-%d %H:%M:%S} UTC"
    typer.echo(
        f"daily quota: {current.daily_quota} valid, {current.invalid_daily_quota} invalid "
        f"submissions per team, track and UTC day\nselections: up to {current.max_selected} "
        f"per team\ndeadline: {deadline}\npublic board: {current.public_board} "
        f"({PUBLIC_BOARDS[current.public_board]})"
    )
    if len(log):
        # Closes, reopens and rescores, as the store recorded them.
        typer.echo("history:")
        for at, action, detail in log.itertuples(index=False):
            typer.echo(f"  {at[:19].replace('T', ' ')} UTC  {action}  {detail}")


def integrity(
    competition: CompetitionOption,
    track: TrackOption = None,
    which: Annotated[
        Which,
        typer.Option("--submissions", help="Compare every valid submission, or only each "
                     "team's final candidates (its picks, else its best Public ones)."),
    ] = _ALL_SUBMISSIONS,
    shared_errors: Annotated[
        float,
        typer.Option(min=0.0, max=0.99, help="Null model: the share of errors two independent "
                     "teams may share (independent reference models share up to 0.39)."),
    ] = SHARED_ERRORS,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Family-wise error rate of the flags.")
    ] = ALPHA,
    every_pair: Annotated[
        bool, typer.Option("--all", help="Every pair of teams, not only the flagged ones.")
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Organisers: pairs of teams whose wrong answers agree beyond chance (copied submissions).

    For each pair of teams, the pair of their submissions that shares the most
    errors: the rows both get wrong, those where they give the same wrong label,
    and a p-value under the null that independent teams share at most
    --shared-errors of their errors. Reads hidden rows: never show it to students.
    """
    from scoring.leaderboard import Leaderboard
    from scoring.render import display_integrity, render
    from xrd_bravais.contract.io import atomic_write_text

    spec = resolve_track(competition, track)
    if out is not None:
        checked_output(out, force=force)
    with _user_errors(), Leaderboard.open(competition) as board:
        report = board.integrity(spec, which=which.value, shared=shared_errors, alpha=alpha)
    flagged = report[report["flagged"]] if len(report) else report
    shown = report if every_pair else flagged
    title = f"Integrity: {competition.resolve().name} ({spec.name} track)"
    compared = ", ".join(sorted(set(report["team_a"]) | set(report["team_b"]))) if len(
        report) else "nothing"  # fmt: skip
    subtitle = (
        f"{len(flagged)} flagged pair(s) of {len(report)}. Null model: independent teams share "
        f"at most {shared_errors:g} of their errors; flagged where the Bonferroni-adjusted "
        f"p-value is below {alpha:g}, or the files are identical. Compared: {compared}."
    )
    text = render(display_integrity(shown), fmt.value, title, subtitle) if len(shown) else (
        f"{title}\n{subtitle}\nNo pair of teams is flagged.\n")  # fmt: skip
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        typer.echo(f"Wrote {out}.")


def register(app: typer.Typer) -> None:
    """Add the grading commands to the ``xrd-bravais`` application."""
    for command in (validate, score, submit, submissions, select, close, leaderboard, rescore,
                    rules, integrity):  # fmt: skip
        app.command()(command)
    app.command("amend-key")(amend_key)
