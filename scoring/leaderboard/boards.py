"""The boards and a team's own view: what each reader may see, when.

Before the deadline only Public scores leave here through student-facing methods
(:meth:`Boards.public_board`, a team's own history); the Private, Measured and
late boards' hidden columns wait for the close.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd

from scoring.leaderboard.closing import Closing
from scoring.leaderboard.ranking import _board
from scoring.leaderboard.rules import LeaderboardError, _parse_stamp
from scoring.metrics import Scores
from xrd_bravais.contract.tasks import Track


@dataclass(frozen=True)
class TeamSubmission:
    """A stored submission as its team may see it: Public scores only.

    Attributes
    ----------
    submission_id : int
    team, track, sha256 : str
    submitted_at : datetime
    message : str
    valid : bool
    problems : tuple of str
        Every problem the validator found, for an invalid file.
    public : Scores or None
        Public-portion scores of a valid submission.
    selected, late : bool
    measured_public : Scores or None
        Scores on the real measurements of the Public board, where there are any.
    released : bool or None
        Under the Ladder, before the close: whether this submission's Public score
        was released (``public`` and ``measured_public`` are ``None`` if not).
        ``None`` on a plain board.
    released_public : Scores or None
        Under the Ladder: the Public scores the board showed for the team right
        after this submission.
    released_submission_id : int or None
        Under the Ladder: the submission whose scores ``released_public`` are.
    """

    submission_id: int
    team: str
    track: str
    sha256: str
    submitted_at: datetime
    message: str
    valid: bool
    problems: tuple[str, ...]
    public: Scores | None
    selected: bool
    late: bool
    measured_public: Scores | None = None
    released: bool | None = None
    released_public: Scores | None = None
    released_submission_id: int | None = None



class Boards(Closing):
    """The public, private, measured and late boards, and a team's own submissions."""

    def team_history(self, team: str, track: str | Track | None = None) -> pd.DataFrame:
        """A team's own submissions with Public scores only (safe to show the team).

        Under the Ladder, until the close, a ``released`` column says which
        submissions' Public scores were released; the others' are NaN.
        """
        spec = self.task.track(track)
        frame = self.submissions(spec)
        frame = frame[frame["team"] == team]
        columns = [
            "submission_id", "submitted_at", "message", "valid",
            "public_accuracy", "public_macro_f1", "selected", "late",
        ]  # fmt: skip
        history = frame[columns].reset_index(drop=True)
        if self._ladder_hides():
            releases = self.releases(spec, teams=[team])
            released = history["submission_id"].map(
                lambda i: releases[i].released if i in releases else None
            )
            history["released"] = released
            hidden = released != True  # noqa: E712 (None and False alike)
            history.loc[hidden, ["public_accuracy", "public_macro_f1"]] = float("nan")
        return history

    def _ladder_hides(self, now: datetime | None = None) -> bool:
        """Whether the Ladder hides unreleased Public scores (under it, until the close)."""
        return self.rules.is_ladder and not self.is_closed(now)

    def team_submission(self, team: str, submission_id: int) -> TeamSubmission:
        """One of a team's own submissions, with its Public scores only (safe to show it).

        Raises
        ------
        LeaderboardError
            If the team has no submission with that id (another team's id reads the
            same as a missing one).
        """
        if not 0 < int(submission_id) < 2**63:  # beyond SQLite's integers: no such row
            raise LeaderboardError(f"team {team!r} has no submission {submission_id}")
        row = self.connection.execute(
            "SELECT s.id, s.track, s.sha256, s.submitted_at, s.message, s.valid, s.problems, "
            "s.scores, s.selected, s.late FROM submissions s JOIN teams t ON t.id = s.team_id "
            "WHERE s.id = ? AND t.name = ? AND t.removed = 0",
            (int(submission_id), team),
        ).fetchone()
        if row is None:
            raise LeaderboardError(f"team {team!r} has no submission {submission_id}")
        scores = json.loads(row["scores"]) if row["scores"] else None
        item = TeamSubmission(
            submission_id=int(row["id"]),
            team=team,
            track=row["track"],
            sha256=row["sha256"],
            submitted_at=_parse_stamp(row["submitted_at"]),
            message=row["message"],
            valid=bool(row["valid"]),
            problems=tuple(json.loads(row["problems"])) if row["problems"] else (),
            public=Scores.from_dict(scores["public"]) if scores else None,
            selected=bool(row["selected"]),
            late=bool(row["late"]),
            measured_public=_public_measurements(scores),
        )
        if scores is None or row["late"] or not self._ladder_hides():
            return item
        release = self.releases(self.task.track(item.track), teams=[team]).get(item.submission_id)
        if release is None:  # a baseline's, or a file the grader now refuses
            return item
        released_public = self.public_scores(release.released_submission_id)
        item = replace(item, released=release.released, released_public=released_public,
                       released_submission_id=release.released_submission_id)  # fmt: skip
        if release.released:
            return item
        return replace(item, public=None, measured_public=None)

    def public_board(self, track: str | Track | None = None) -> pd.DataFrame:
        """The public leaderboard: each team's best on-time Public score.

        Returns
        -------
        pandas.DataFrame
            Columns ``rank, team, baseline, accuracy, macro_f1, accuracy_ci_low,
            accuracy_ci_high, entries, submission_id, submitted_at``; sorted by
            accuracy, macro-F1, then the earlier submission; teams without a valid
            submission last with no rank; baselines flagged and unranked. Where the
            test set has a MeasuredPublic portion, ``measured_public_accuracy``: the
            same submission's accuracy on those real measurements (not ranked on).
            Under the Ladder each team's row is its last released submission, not
            its best.
        """
        spec = self.task.track(track)
        frame = self.submissions(spec)
        frame = frame[frame["late"] == 0]
        if self.rules.is_ladder:
            entries = frame.groupby("team")["valid"].sum()
            board = _board(self._released_rows(frame, spec), "public")
            board["entries"] = board["team"].map(entries).astype(int)
        else:
            board = _board(frame, "public")
        # The same submission on the real measurements of the Public board, if any.
        if frame["measured_public_accuracy"].notna().any():
            figures = frame.set_index("submission_id")["measured_public_accuracy"]
            board["measured_public_accuracy"] = board["submission_id"].map(figures).astype(float)
        return board

    def public_progress(self, track: str | Track | None = None) -> pd.DataFrame:
        """Each team's score on the public board over time (safe to show everyone).

        Returns
        -------
        pandas.DataFrame
            ``team, submitted_at, accuracy``: one row per on-time valid submission
            of a team (baselines left out), with the Public accuracy the board showed
            for the team from that moment: its best so far on a plain board, its
            released one under the Ladder. Time order.
        """
        spec = self.task.track(track)
        frame = self.submissions(spec)
        frame = frame[(frame["late"] == 0) & (frame["valid"] == 1) & (frame["baseline"] == 0)]
        frame = frame.sort_values(["submitted_at", "submission_id"], kind="stable")
        if self.rules.is_ladder:
            releases = self.releases(spec)
            scores = frame.set_index("submission_id")["public_accuracy"]
            shown = [scores[releases[i].released_submission_id] if i in releases else float("nan")
                     for i in frame["submission_id"]]  # fmt: skip
        else:
            shown = frame.groupby("team", sort=False)["public_accuracy"].cummax().tolist()
        return pd.DataFrame({
            "team": frame["team"].to_numpy(),
            "submitted_at": [_parse_stamp(t) for t in frame["submitted_at"]],
            "accuracy": pd.Series(shown, dtype=float).to_numpy(),
        })  # fmt: skip

    def _released_rows(self, frame: pd.DataFrame, track: Track) -> pd.DataFrame:
        """Each team's last released submission, the baselines' rows, invalid-only teams."""
        current = {r.team: r.released_submission_id for r in self.releases(track).values()}
        keep = (
            (frame["baseline"] == 1)
            | frame["submission_id"].isin(list(current.values()))
            | ~frame["team"].isin(list(current))
        )
        return frame[keep]

    def private_board(
        self, track: str | Track | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """The final leaderboard, with the shake-up: only after the deadline.

        Each team is scored by the best Private accuracy among its selected
        submissions (or, with none selected, its two best Public ones).

        Returns
        -------
        pandas.DataFrame
            The :meth:`public_board` columns on Private scores, plus
            ``public_rank``, ``change`` (places gained) and ``gap`` (Public minus
            Private accuracy of the submission that counts).

        Raises
        ------
        LeaderboardError
            Before the deadline.
        """
        frame = self._final_submissions(track, now, "the private leaderboard stays")
        public = _board(frame, "public")
        board = _board(self._finalist_rows(frame, track), "private")
        public_rank = public.set_index("team")["rank"]
        public_accuracy = frame.set_index("submission_id")["public_accuracy"]
        board["public_rank"] = board["team"].map(public_rank).astype("Int64")
        # Entries count every on-time valid submission, not only the finalists.
        board["entries"] = board["team"].map(public.set_index("team")["entries"])
        board["change"] = board["public_rank"] - board["rank"]
        board["gap"] = board["submission_id"].map(public_accuracy) - board["accuracy"]
        # The same submission's score on the real measurements, if the test set has them.
        measured = frame.set_index("submission_id")["measured_accuracy"]
        board["measured_accuracy"] = board["submission_id"].map(measured).astype(float)
        return board

    def _final_submissions(
        self, track: str | Track | None, now: datetime | None, what: str
    ) -> pd.DataFrame:
        """On-time submissions of a track, for a board of hidden scores: after close only."""
        if not self.is_closed(now):
            raise LeaderboardError(
                f"{what} hidden until the competition is closed (xrd-bravais close)"
            )
        self._ensure_frozen(now)
        frame = self.submissions(track)
        return frame[frame["late"] == 0]

    def _finalist_rows(self, frame: pd.DataFrame, track: str | Track | None) -> pd.DataFrame:
        """The submissions fixed at the close, and one unscored row per other team.

        A team with no finalist (no valid on-time submission at the close) is shown
        unranked, whatever a later rescore makes of its files.
        """
        spec = self.task.track(track)
        ids = {row[0] for row in self.connection.execute(
            "SELECT submission_id FROM finalists WHERE track = ?", (spec.name,))}  # fmt: skip
        chosen = frame[frame["submission_id"].isin(ids)]
        others = frame[~frame["team"].isin(chosen["team"])].drop_duplicates("team").copy()
        hidden = [c for c in others.columns if c.endswith(("_accuracy", "_macro_f1"))]
        others[hidden] = float("nan")
        others["scores"] = None
        others["valid"] = 0
        return pd.concat([chosen, others], ignore_index=True) if len(others) else chosen

    def measured_board(
        self, track: str | Track | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """The final submissions ranked on the real measurements: only after the deadline.

        Each team is represented by the submissions that count for the private
        leaderboard (its picks, or its two best Public ones), and ranked by the
        best accuracy among them on the Measured portion.

        Returns
        -------
        pandas.DataFrame
            The :meth:`public_board` columns on Measured scores (empty where the
            competition has no Measured portion).

        Raises
        ------
        LeaderboardError
            Before the deadline.
        """
        frame = self._final_submissions(track, now, "the Measured scores stay")
        if frame["measured_accuracy"].isna().all():
            return _board(frame.iloc[:0], "measured")
        return _board(self._finalist_rows(frame, track), "measured")

    def late_board(
        self, track: str | Track | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """Submissions after the deadline: scored for information, never ranked."""
        frame = self.submissions(track)
        frame = frame[frame["late"] == 1]
        closed = self.is_closed(now)
        columns = ["submission_id", "team", "submitted_at", "valid", "public_accuracy",
                   "public_macro_f1"]  # fmt: skip
        if closed:
            columns += ["private_accuracy", "private_macro_f1"]
            if frame["measured_accuracy"].notna().any():
                columns += ["measured_accuracy", "measured_macro_f1"]
        return frame[columns].reset_index(drop=True)


def _public_measurements(scores: dict[str, Any] | None) -> Scores | None:
    """The MeasuredPublic scores of a stored scores column, where there are any."""
    if not scores or not scores.get("measured_public"):
        return None
    return Scores.from_dict(scores["measured_public"])
