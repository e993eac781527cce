"""What the pages and the API show, computed once for both from :mod:`scoring`.

Student-facing views read only Public figures before the deadline: the boards
through :meth:`~scoring.leaderboard.Leaderboard.public_board`, a team's rows through
:meth:`~scoring.leaderboard.Leaderboard.team_history` and
:meth:`~scoring.leaderboard.Leaderboard.team_submission`. The Private and Measured
boards come from methods that refuse before close.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
from markdown_it import MarkdownIt

from scoring.grade import AnswerKeyError, reference_guesses
from scoring.integrity import ALPHA, SHARED_ERRORS
from scoring.ladder import PUBLIC_BOARDS
from scoring.leaderboard import Leaderboard, Quota, Rules, TeamSubmission
from scoring.render import display_frame, display_history, display_integrity, display_late
from xrd_bravais.contract import layout
from xrd_bravais.contract.tasks import Track
from xrd_bravais.web.charts import Series, step_chart
from xrd_bravais.web.site import Site

BASELINE_FILE: Final = re.compile(r"^[A-Za-z0-9_.-]+\.(png|csv)$")
"""Files of a baseline's folder that the site serves (plots and tables, never models)."""


@dataclass(frozen=True)
class Table:
    """A board as strings: column names, rows, and the row kinds for badges."""

    columns: list[str]
    rows: list[dict[str, str]]

    @classmethod
    def of(cls, frame: pd.DataFrame, ties: set[str] | None = None) -> Table:
        """From a display frame; teams in ``ties`` get a ``Tie`` mark."""
        if frame.empty:
            return cls(columns=[], rows=[])
        records = frame.astype(str).to_dict("records")
        for record in records:
            record["_tie"] = "tie" if ties and record.get("Team") in ties else ""
        return cls(columns=[c for c in frame.columns], rows=records)

    def to_json(self) -> list[dict[str, str | bool]]:
        """Rows for the API (the tie mark as a field)."""
        return [{**{c: r[c] for c in self.columns}, "tie": bool(r.get("_tie"))} for r in self.rows]


def _tied(board: pd.DataFrame) -> set[str]:
    """Ranked teams sharing accuracy and macro-F1 with another: ranked by time instead."""
    ranked = board[board["rank"].notna()]
    groups = ranked.groupby(["accuracy", "macro_f1"], dropna=True)["team"]
    return {team for _, names in groups if len(names) > 1 for team in names}


def _references(site: Site, track: Track, portion: str) -> dict[str, float] | None:
    try:
        return reference_guesses(site.answer_key(), track, portion)
    except AnswerKeyError:
        return None


def public_table(site: Site, track: Track) -> Table:
    """The public leaderboard with baselines and random-guess references."""
    board = site.board().public_board(track)
    return Table.of(display_frame(board, _references(site, track, "Public")), _tied(board))


def progress_chart(site: Site, track: Track, top: int = 5) -> str:
    """The best Public score over time of the leading teams, with the best baseline.

    Under the Ladder the released scores (what the board showed). Public figures
    only: nothing here is hidden before the close. ``""`` with no team yet.
    """
    board = site.board()
    table = board.public_board(track)
    leaders = table[table["rank"].notna()].sort_values("rank")["team"].head(top).tolist()
    progress = board.public_progress(track)
    series = [Series(team, list(zip(rows["submitted_at"], rows["accuracy"], strict=True)))
              for team in leaders for rows in [progress[progress["team"] == team]]]  # fmt: skip
    baselines = table[table["baseline"] & table["accuracy"].notna()]
    level = {}
    if len(baselines):
        best = baselines.sort_values("accuracy", ascending=False).iloc[0]
        level[f"best baseline: {best['team']}"] = float(best["accuracy"])
    return step_chart(series, f"Public accuracy over time of the top {len(leaders)} teams, "
                              f"{track.name} track", level=level)  # fmt: skip


def team_chart(board: Leaderboard, team: str, track: Track) -> str:
    """A team's own submissions over time: each one's Public score and the board's line.

    Under the Ladder, before the close, only released scores (the others are hidden).
    """
    history = board.team_history(team, track)
    history = history[(history["valid"] == 1) & (history["late"] == 0)]
    times = [datetime.fromisoformat(str(t)) for t in history["submitted_at"]]
    progress = board.public_progress(track)
    mine = progress[progress["team"] == team]
    return step_chart(
        [Series("on the board", list(zip(mine["submitted_at"], mine["accuracy"], strict=True))),
         Series("each submission", list(zip(times, history["public_accuracy"], strict=True)),
                line=False)],
        f"Your Public accuracy over time, {track.name} track",
    )  # fmt: skip


def private_tables(site: Site, track: Track) -> dict[str, Table]:
    """After close: the private board with the shake-up, the Measured one, the late one.

    Raises
    ------
    LeaderboardError
        Before the deadline (nothing from hidden rows is computed).
    """
    board = site.board()
    private = board.private_board(track)
    tables = {"private": Table.of(
        display_frame(private, _references(site, track, "Private"), private=True), _tied(private)
    )}  # fmt: skip
    measured = board.measured_board(track)
    if not measured.empty:
        tables["measured"] = Table.of(
            display_frame(measured, _references(site, track, "Measured")), _tied(measured)
        )
    return tables


def late_table(site: Site, track: Track) -> Table:
    """Submissions after the deadline (hidden scores only once closed)."""
    return Table.of(display_late(site.board().late_board(track)))


def history_rows(board: Leaderboard, team: str, track: Track) -> list[dict[str, Any]]:
    """A team's submissions for its page and the API: Public figures only."""
    raw = board.team_history(team, track)
    shown = display_history(raw)
    rows = []
    for record, text in zip(raw.to_dict("records"), shown.to_dict("records"), strict=True):
        rows.append({
            "submission_id": int(record["submission_id"]),
            "submitted_at": str(record["submitted_at"])[:19].replace("T", " "),
            "message": str(record["message"]),
            "valid": bool(record["valid"]),
            "public_accuracy": _number(record["public_accuracy"]),
            "public_macro_f1": _number(record["public_macro_f1"]),
            "selected": bool(record["selected"]),
            "late": bool(record["late"]),
            "released": _flag(record.get("released")),
            "text": {k: str(v) for k, v in text.items()},
        })  # fmt: skip
    return rows


def integrity_view(report: pd.DataFrame) -> dict[str, Any]:
    """The integrity report for the admin page: flagged pairs, then the others."""
    flagged = report[report["flagged"]] if len(report) else report
    others = report[~report["flagged"]] if len(report) else report
    return {
        "flagged": Table.of(display_integrity(flagged)),
        "others": Table.of(display_integrity(others)),
        "n_pairs": len(report),
        "shared_errors": SHARED_ERRORS,
        "alpha": ALPHA,
    }


def _flag(value: object) -> bool | None:
    """The Ladder's decision (None where it made none: a plain board, an invalid file)."""
    return value if isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)  # type: ignore[arg-type]


def scores_view(scores: Any, track: Track) -> dict[str, Any] | None:
    """Public figures and per-class recall, ready for a page or the API."""
    if scores is None:
        return None
    data = scores.to_dict()
    recall = [
        {"label": str(label), "recall": value, "n": int(sum(row))}
        for label, value, row in zip(track.labels, data["recall"], data["confusion"], strict=True)
        if sum(row) > 0
    ]
    return {
        "n": data["n"], "accuracy": data["accuracy"], "macro_f1": data["macro_f1"],
        "balanced_accuracy": data["balanced_accuracy"], "accuracy_ci": data["accuracy_ci"],
        "macro_f1_ci": data["macro_f1_ci"], "recall": recall,
    }  # fmt: skip


def submission_view(
    item: TeamSubmission, track: Track, notices: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A team's submission for its page and the API (Public scores only)."""
    return {
        "submission_id": item.submission_id,
        "track": item.track,
        "sha256": item.sha256,
        "submitted_at": item.submitted_at.strftime("%Y-%m-%d %H:%M:%S"),
        "message": item.message,
        "valid": item.valid,
        "problems": list(item.problems),
        "notices": list(notices),
        "public": scores_view(item.public, track),
        "public_real": scores_view(item.measured_public, track),
        "released": item.released,
        "released_public": scores_view(item.released_public, track),
        "released_submission_id": item.released_submission_id,
        "selected": item.selected,
        "late": item.late,
    }


def quota_view(quota: Quota) -> dict[str, Any]:
    """Submissions left today and when the count resets."""
    return {
        "valid_left": quota.valid_left,
        "invalid_left": quota.invalid_left,
        "resets_at": quota.resets_at.strftime("%Y-%m-%d %H:%M UTC"),
    }


def rules_view(rules: Rules, now: datetime) -> dict[str, Any]:
    """The rules in force, and whether the competition is closed."""
    return {
        "daily_quota": rules.daily_quota,
        "invalid_daily_quota": rules.invalid_daily_quota,
        "max_selected": rules.max_selected,
        "public_board": rules.public_board,
        "public_board_meaning": PUBLIC_BOARDS[rules.public_board],
        "deadline": None if rules.deadline is None
        else rules.deadline.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "closed": rules.is_closed(now),
    }  # fmt: skip


# ---------------------------------------------------------------------------- documents
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(text: str, image_base: str | None = None) -> str:
    """Markdown to HTML with raw HTML escaped; relative images re-rooted at ``image_base``."""
    tokens = _MARKDOWN.parse(text)
    if image_base is not None:
        for token in tokens:
            for child in token.children or []:
                src = str(child.attrGet("src") or "")
                if child.type == "image" and src and not re.match(r"^([a-z]+:|/)", src):
                    child.attrSet("src", f"{image_base}/{src}")
    return str(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))


def data_card(site: Site) -> str | None:
    """``public/DATA.md`` as HTML, or ``None`` if the build wrote none."""
    path = site.competition / layout.DATA_CARD
    return render_markdown(path.read_text(encoding="utf-8")) if path.is_file() else None


def data_figures(site: Site) -> dict[str, Path]:
    """The data pictures students may see now, by name: ``overview``, ``measured-example``.

    The overview is made from training rows only. The real measurement shows a hidden
    test row with its label, so it appears only once the competition is closed.
    """
    found = {"overview": site.competition / layout.PUBLIC_OVERVIEW}
    if site.board().is_closed():
        found["measured-example"] = site.competition / layout.MEASURED_EXAMPLE
    return {name: path for name, path in found.items() if path.is_file()}


def measured_example_waits(site: Site) -> bool:
    """Whether the build has a real-measurement picture that the close will show."""
    return (not site.board().is_closed()
            and (site.competition / layout.MEASURED_EXAMPLE).is_file())  # fmt: skip


def baseline_results(site: Site) -> dict[str, list[dict[str, Any]]]:
    """Each track's baseline results (``result.json``: Public and CV figures only).

    Best Public accuracy first, as on the leaderboard.
    """
    found: dict[str, list[dict[str, Any]]] = {}
    for track in site.task.track_names:
        folder = site.competition / layout.BASELINES / track
        results = []
        for path in sorted(folder.glob("*/result.json")):
            result = json.loads(path.read_text(encoding="utf-8"))
            result["plots"] = sorted(p.name for p in path.parent.glob("*.png"))
            result["folder"] = path.parent.name
            results.append(result)
        if results:
            found[track] = sorted(results, key=lambda r: -(r["public"]["accuracy"] or 0.0))
    return found


def baseline_figure(site: Site, track: str) -> bool:
    """Whether a track's baselines have their comparison figure (``comparison.png``)."""
    return (site.competition / layout.BASELINES / track / "comparison.png").is_file()


def baseline_report(site: Site, track: str) -> str | None:
    """The track's baselines report (``report.md``) as HTML, images served by the site."""
    path = site.competition / layout.BASELINES / track / "report.md"
    if not path.is_file():
        return None
    return render_markdown(path.read_text(encoding="utf-8"), f"/baselines/{track}/files")


def baseline_section(site: Site, track: str, name: str) -> str | None:
    """One baseline's section of the report (its heading ends with ``(`name`)``)."""
    path = site.competition / layout.BASELINES / track / "report.md"
    if not path.is_file():
        return None
    text, keep, lines = path.read_text(encoding="utf-8"), False, []
    for line in text.splitlines():
        if line.startswith("## "):
            keep = line.rstrip().endswith(f"(`{name}`)")
        if keep:
            lines.append(line)
    if not lines:
        return None
    return render_markdown("\n".join(lines), f"/baselines/{track}/files")


def baseline_file(site: Site, track: str, relative: str) -> Path | None:
    """A plot or table below ``baselines/<track>/``, or ``None`` for anything else."""
    if track not in site.task.track_names:
        return None
    root = (site.competition / layout.BASELINES / track).resolve()
    parts = relative.split("/")
    if not 1 <= len(parts) <= 2 or not BASELINE_FILE.match(parts[-1]):
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None
