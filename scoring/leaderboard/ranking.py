"""Boards as queries: the best submission per team on a portion, ranked.

Pure functions over the frame of stored submissions
(:meth:`scoring.leaderboard.store.Store.submissions`): they read no file and
write nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scoring.grade import GradeResult


def _score_columns(result: GradeResult | None) -> tuple[float | None, ...]:
    if result is None:
        return (None, None, None, None)
    values = (result.public.accuracy, result.public.macro_f1,
              result.private.accuracy, result.private.macro_f1)  # fmt: skip
    return tuple(None if np.isnan(v) else float(v) for v in values)


def _measured_figures(scores_json: object, key: str = "measured") -> tuple[float, float]:
    """Accuracy and macro-F1 on a real-measurement portion from a stored scores column.

    ``key``: ``"measured"`` (hidden until close) or ``"measured_public"``.
    """
    if not isinstance(scores_json, str):
        return (float("nan"), float("nan"))
    measured = json.loads(scores_json).get(key)
    if measured is None:
        return (float("nan"), float("nan"))
    return tuple(  # type: ignore[return-value]
        float("nan") if measured.get(k) is None else float(measured[k])
        for k in ("accuracy", "macro_f1")
    )


def _ci(scores_json: object, portion: str) -> tuple[float, float]:
    if not isinstance(scores_json, str):  # NULL: an invalid submission
        return (float("nan"), float("nan"))
    figures = json.loads(scores_json).get(portion)
    if figures is None:  # no such portion in this competition
        return (float("nan"), float("nan"))
    low, high = figures["accuracy_ci"]
    return (float("nan") if low is None else low, float("nan") if high is None else high)


def _final_candidates(frame: pd.DataFrame, max_selected: int) -> pd.DataFrame:
    """Per team, the selected valid submissions, or its best Public ones if none."""
    valid = frame[frame["valid"] == 1]
    picked = []
    for _, team_rows in valid.groupby("team", sort=False):
        chosen = team_rows[team_rows["selected"] == 1]
        if chosen.empty:
            chosen = _sort_best(team_rows, "public").head(max_selected)
        picked.append(chosen)
    invalid_only = frame[~frame["team"].isin(valid["team"])]
    return pd.concat([*picked, invalid_only], ignore_index=True) if picked else invalid_only


def _sort_best(frame: pd.DataFrame, portion: str) -> pd.DataFrame:
    return frame.sort_values(
        [f"{portion}_accuracy", f"{portion}_macro_f1", "submitted_at", "submission_id"],
        ascending=[False, False, True, True],
        na_position="last",
        kind="stable",
    )


def _board(frame: pd.DataFrame, portion: str) -> pd.DataFrame:
    """Best submission per team on a portion, ranked with shared ranks for ties."""
    columns = ["rank", "team", "baseline", "accuracy", "macro_f1", "accuracy_ci_low",
               "accuracy_ci_high", "entries", "submission_id", "submitted_at"]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ordered = _sort_best(frame, portion)
    best = ordered.drop_duplicates("team", keep="first")
    entries = frame.groupby("team")["valid"].sum()
    ci = [_ci(s, portion) for s in best["scores"]]
    board = pd.DataFrame({
        "team": best["team"].to_numpy(),
        "baseline": best["baseline"].astype(bool).to_numpy(),
        "accuracy": best[f"{portion}_accuracy"].astype(float).to_numpy(),
        "macro_f1": best[f"{portion}_macro_f1"].astype(float).to_numpy(),
        "accuracy_ci_low": [c[0] for c in ci],
        "accuracy_ci_high": [c[1] for c in ci],
        "entries": best["team"].map(entries).astype(int).to_numpy(),
        "submission_id": best["submission_id"].to_numpy(),
        "submitted_at": best["submitted_at"].to_numpy(),
    })  # fmt: skip
    board.insert(0, "rank", pd.array(_competition_ranks(board), dtype="Int64"))
    return board[columns]


def _competition_ranks(board: pd.DataFrame) -> list[int | None]:
    """Ranks 1, 2, 3 ... over ranked rows, in the board's order.

    The board is sorted by accuracy, then macro-F1, then the earlier submission,
    so equal scores are ranked by time, as the rules say (the earlier submission
    wins a tie). Baselines and rows without a score get no rank.
    """
    ranks: list[int | None] = []
    position = 0
    for accuracy, baseline in zip(board["accuracy"], board["baseline"], strict=True):
        if baseline or np.isnan(accuracy):
            ranks.append(None)
            continue
        position += 1
        ranks.append(position)
    return ranks

