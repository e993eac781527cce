"""Render leaderboards for people: a terminal table, Markdown, CSV or a static HTML page.

The functions take the frames of :mod:`scoring.leaderboard` and the random-guess
references, and return text; nothing here reads the store, so what is rendered
is exactly what the caller chose to show.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

import pandas as pd

from xrd_bravais.contract.references import GUESS_TITLES

FORMATS: Final = ("table", "md", "csv", "html")

_REFERENCE_NAMES: Final = {
    "uniform": "random guess: uniform",
    "prior": "random guess: prior-matched",
    "majority": "random guess: majority class",
}


def _percent(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * float(value):.2f}"  # type: ignore[arg-type]


def _number(value: object, digits: int = 4) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def _integer(value: object, signed: bool = False) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    number = int(value)  # type: ignore[call-overload]
    return f"{number:+d}" if signed and number else str(number)


def display_frame(
    board: pd.DataFrame, references: Mapping[str, float] | None = None, private: bool = False
) -> pd.DataFrame:
    """The board as strings, with baselines and random-guess references as flagged rows.

    Parameters
    ----------
    board : pandas.DataFrame
        From :meth:`~scoring.leaderboard.Leaderboard.public_board` or
        :meth:`~scoring.leaderboard.Leaderboard.private_board`.
    references : mapping, optional
        Expected accuracy of ``uniform``, ``prior`` and ``majority`` guessing, each
        shown as a reference row unless the board has that guess's baseline row.
    private : bool
        Add the shake-up columns (public rank, change, public-private gap).

    Returns
    -------
    pandas.DataFrame
        Columns ``Rank, Team, Kind, Accuracy %, 95 % CI, Macro-F1, Entries, Submitted``
        (and ``Public rank, Change, Gap (points)`` when private: places gained from
        the public to the private board, Public minus Private accuracy; and
        ``Measured %`` where the test set has real measurements; on the public board,
        ``Real (Public) %`` where some of them are Public), sorted by accuracy.
    """
    rows = []
    has_measured = "measured_accuracy" in board and bool(board["measured_accuracy"].notna().any())
    has_real_public = ("measured_public_accuracy" in board
                       and bool(board["measured_public_accuracy"].notna().any()))  # fmt: skip
    for record in board.to_dict("records"):
        kind = "baseline" if record["baseline"] else "team"
        low, high = record["accuracy_ci_low"], record["accuracy_ci_high"]
        ci = "—" if _percent(low) == "—" else f"[{_percent(low)}, {_percent(high)}]"
        row = {
            "Rank": _integer(record["rank"]),
            "Team": str(record["team"]),
            "Kind": kind,
            "Accuracy %": _percent(record["accuracy"]),
            "95 % CI": ci,
            "Macro-F1": _number(record["macro_f1"]),
            "Entries": str(int(record["entries"])),
            "Submitted": str(record["submitted_at"])[:19].replace("T", " "),
            "_sort": record["accuracy"],
        }
        if has_real_public and not private:
            row["Real (Public) %"] = _percent(record.get("measured_public_accuracy"))
        if private:
            row["Public rank"] = _integer(record.get("public_rank"))
            row["Change"] = _integer(record.get("change"), signed=True)
            row["Gap (points)"] = _percent(record.get("gap"))
            if has_measured:
                row["Measured %"] = _percent(record.get("measured_accuracy"))
        rows.append(row)
    shown = set(board.loc[board["baseline"].astype(bool), "team"]) if len(board) else set()
    for name, value in (references or {}).items():
        if GUESS_TITLES.get(name) in shown:
            continue  # the guess's own baseline row is on the board: one row per guess
        row = dict.fromkeys(rows[0] if rows else ["Rank"], "—")
        row.update(Team=_REFERENCE_NAMES.get(name, name), Kind="reference",
                   **{"Accuracy %": _percent(value)}, _sort=value)  # fmt: skip
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Stable sort keeps the board's own order (it breaks ties by time); references slot in.
    frame["_sort"] = pd.to_numeric(frame["_sort"], errors="coerce").fillna(-1.0)
    frame = frame.sort_values("_sort", ascending=False, kind="stable")
    return frame.drop(columns="_sort").reset_index(drop=True)


def display_late(late: pd.DataFrame) -> pd.DataFrame:
    """The late submissions (:meth:`~scoring.leaderboard.Leaderboard.late_board`), for people."""
    rows = []
    for record in late.to_dict("records"):
        row = {
            "Submission": str(record["submission_id"]),
            "Team": str(record["team"]),
            "Submitted": str(record["submitted_at"])[:19].replace("T", " "),
            "Valid": "yes" if record["valid"] else "no",
            "Public %": _percent(record["public_accuracy"]),
            "Public F1": _number(record["public_macro_f1"]),
        }
        if "private_accuracy" in record:
            row["Private %"] = _percent(record["private_accuracy"])
            row["Private F1"] = _number(record["private_macro_f1"])
        if "measured_accuracy" in record:
            row["Measured %"] = _percent(record["measured_accuracy"])
            row["Measured F1"] = _number(record["measured_macro_f1"])
        rows.append(row)
    return pd.DataFrame(rows)


def display_history(history: pd.DataFrame) -> pd.DataFrame:
    """A team's own submissions (:meth:`~scoring.leaderboard.Leaderboard.team_history`).

    Under the Ladder a ``Released`` column says which Public scores the board took.
    """
    rows = [
        {
            "Submission": str(record["submission_id"]),
            "Submitted": str(record["submitted_at"])[:19].replace("T", " "),
            "Valid": "yes" if record["valid"] else "no",
            "Public %": _percent(record["public_accuracy"]),
            "Public F1": _number(record["public_macro_f1"]),
            **({"Released": _released(record.get("released"))} if "released" in record else {}),
            "Selected": "yes" if record["selected"] else "",
            "Late": "late" if record["late"] else "",
            "Message": str(record["message"]),
        }
        for record in history.to_dict("records")
    ]
    return pd.DataFrame(rows)


def display_integrity(report: pd.DataFrame) -> pd.DataFrame:
    """Pairs of teams (:meth:`~scoring.leaderboard.Leaderboard.integrity`), for organisers."""
    rows = []
    for r in report.to_dict("records"):
        p = float(r["p_adjusted"])
        rows.append({
            "Flag": "FLAGGED" if r["flagged"] else ("baselines" if r["baseline_pair"] else ""),
            "Team A": str(r["team_a"]),
            "Team B": str(r["team_b"]),
            "Submissions": f"{r['submission_a']} / {r['submission_b']}",
            "Accuracy %": f"{100 * r['accuracy_a']:.1f} / {100 * r['accuracy_b']:.1f}",
            "Agree %": f"{100 * r['agreement']:.1f}",
            "Both wrong": str(r["both_wrong"]),
            "Same wrong (expected)": f"{r['same_wrong']} ({r['expected_same_wrong']:.1f})",
            "Shared errors": _number(r["shared_errors"], 2),
            "p (Bonferroni)": ("identical file" if r["identical_file"]
                               else "< 1e-300" if p < 1e-300 else f"{p:.2g}"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _released(value: object) -> str:
    """The Ladder's decision on a submission, for people (``""`` where it made none)."""
    if value is True:
        return "yes"
    if value is False:
        return "no: not above your released score by more than the noise"
    return ""


def render(
    frame: pd.DataFrame,
    fmt: str = "table",
    title: str = "Leaderboard",
    subtitle: str = "",
    generated_at: datetime | None = None,
) -> str:
    """Render a :func:`display_frame` as ``table``, ``md``, ``csv`` or ``html`` text."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        text: str = frame.map(csv_safe).to_csv(index=False, lineterminator="\n")
        return text
    if fmt == "md":
        return _markdown(frame, title, subtitle)
    if fmt == "html":
        return _html(frame, title, subtitle, generated_at)
    return _table(frame, title, subtitle)


def _table(frame: pd.DataFrame, title: str, subtitle: str) -> str:
    lines = [title, *([subtitle] if subtitle else []), ""]
    if frame.empty:
        return "\n".join([*lines, "(no submissions yet)"]) + "\n"
    columns = list(frame.columns)
    widths = {c: max(len(c), *(len(str(v)) for v in frame[c])) for c in columns}
    left = {"Team", "Kind", "Submitted", "Message"}

    def fmt_row(values: Mapping[str, object]) -> str:
        cells = [
            str(values[c]).ljust(widths[c]) if c in left else str(values[c]).rjust(widths[c])
            for c in columns
        ]
        return "  ".join(cells).rstrip()

    lines.append(fmt_row({c: c for c in columns}))
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += [fmt_row(row) for row in frame.to_dict("records")]
    return "\n".join(lines) + "\n"


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# Characters that Markdown (and the HTML it may carry) would interpret in a cell.
_MARKDOWN_SPECIAL: Final = re.compile(r"([\\`*_{}\[\]()#!~|])")


def csv_safe(value: object) -> object:
    """Neutralise a text cell that a spreadsheet would run as a formula.

    A leading ``'`` makes Excel, LibreOffice and Google Sheets show the text as
    typed (OWASP's advice); numbers such as ``-0.5`` or ``+2`` are left alone.

    Examples
    --------
    >>> csv_safe("=cmd|' /C calc'!A0")
    "'=cmd|' /C calc'!A0"
    >>> csv_safe("+2")
    '+2'
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def markdown_escape(value: object) -> str:
    r"""A value as literal Markdown text: HTML and Markdown syntax shown, not run.

    Examples
    --------
    >>> markdown_escape("<img src=x onerror=alert(1)> *bold*")
    '&lt;img src=x onerror=alert\\(1\\)&gt; \\*bold\\*'
    """
    text = html.escape(str(value), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ").replace("\r", " ")


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown(frame: pd.DataFrame, title: str, subtitle: str) -> str:
    lines = [f"# {markdown_escape(title)}", ""]
    if subtitle:
        lines += [markdown_escape(subtitle), ""]
    if frame.empty:
        return "\n".join([*lines, "No submissions yet."]) + "\n"
    # Team names and messages are typed by students: shown as text, never as markup.
    aligned = ("Team", "Kind", "Message")
    return "\n".join(lines) + "\n" + markdown_table(frame, left=aligned, escape=True)


def markdown_table(
    frame: pd.DataFrame, left: tuple[str, ...] | None = None, escape: bool = False
) -> str:
    """A pipe table of ``frame``; columns in ``left`` (default: the first) align left.

    With ``escape``, every cell is shown literally (:func:`markdown_escape`): use it
    for text that users typed. Without, cells may carry Markdown such as code spans.

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"model": ["rf"], "accuracy": [0.5]})), end="")
    | model | accuracy |
    |---|---:|
    | rf | 0.5 |
    """
    columns = [str(c) for c in frame.columns]
    aligned_left = tuple(columns[:1]) if left is None else left
    cell = markdown_escape if escape else _md_cell
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" if c in aligned_left else "---:" for c in columns) + "|")
    lines += [
        "| " + " | ".join(cell(value) for value in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


_CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } p.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
tr.baseline td { color: #5a4b00; background: #fff8db; font-style: italic; }
tr.reference td { color: #666; background: #f6f6f6; font-style: italic; }
footer { margin-top: 1rem; color: #777; font-size: .8rem; }
"""


def _html(frame: pd.DataFrame, title: str, subtitle: str, generated_at: datetime | None) -> str:
    esc = html.escape
    text_columns = {"Team", "Kind", "Submitted"}
    head = "".join(
        f'<th class="text">{esc(c)}</th>' if c in text_columns else f"<th>{esc(c)}</th>"
        for c in frame.columns
    )
    body = []
    for row in frame.to_dict("records"):
        cells = "".join(
            f'<td class="text">{esc(str(row[c]))}</td>' if c in text_columns
            else f"<td>{esc(str(row[c]))}</td>"
            for c in frame.columns
        )  # fmt: skip
        body.append(f'<tr class="{esc(str(row.get("Kind", "team")))}">{cells}</tr>')
    table = (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        if body
        else "<p>No submissions yet.</p>"
    )
    stamp = f"Generated {generated_at:%Y-%m-%d %H:%M} UTC. " if generated_at else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        + (f'<p class="sub">{esc(subtitle)}</p>' if subtitle else "")
        + table
        + f"<footer>{stamp}Baselines (yellow) and random-guess references (grey) are "
        "shown for comparison and are not ranked. Equal scores: the earlier submission "
        "ranks first.</footer>"
        "</body></html>\n"
    )
