"""Closing, reopening and rescoring: the operations that fix the final ranking.

The final ranking is a function of the first close alone: when the deadline passes,
the submissions that count for each team (its picks, or its best Public ones) are
written to the ``finalists`` table once, and the Private and Measured boards rank
those. Closing a closed competition is refused; only an explicit reopen (logged in
the ``audit`` table with what it changed) moves a passed deadline, turns late
submissions into on-time ones and lets the finalists be chosen again.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from scoring.grade import GRADER_VERSION, AnswerKey, GradeResult, grade, load_answer_key
from scoring.ladder import check_public_board
from scoring.leaderboard.ranking import _final_candidates, _measured_figures, _score_columns
from scoring.leaderboard.released import Released, public_hits
from scoring.leaderboard.rules import LeaderboardError, Rules, _stamp, utc_now
from scoring.leaderboard.store import _FROZEN_KEY, _log, _set_deadline
from scoring.submission import (
    SubmissionError,
)


@dataclass(frozen=True)
class Change:
    """How one stored submission's scores moved in a rescore."""

    submission_id: int
    team: str
    track: str
    before: dict[str, Any]
    after: dict[str, Any]



class Closing(Released):
    """The rules that change, the close, the reopen, the rescore, and their audit log.

    (Over 200 lines: the close and its refusals are documented at length, since a
    course's final ranking depends on them.)
    """

    def set_rules(self, **changes: Any) -> Rules:
        """Change some rules (``daily_quota=10``, ``deadline=datetime(...)``) and return them.

        Raises
        ------
        LeaderboardError
            For a negative quota, or a new deadline for a competition that has
            closed (only :meth:`close` with ``reopen=True`` moves a passed deadline).
        """
        self._ensure_frozen()
        before = self.rules
        rules = replace(before, **changes)
        for name in ("daily_quota", "invalid_daily_quota", "max_selected"):
            if getattr(rules, name) < 0:
                raise LeaderboardError(f"{name} must be 0 or more")
        try:
            check_public_board(rules.public_board)
        except ValueError as err:
            raise LeaderboardError(str(err)) from None
        if rules.deadline != self.rules.deadline and self.is_closed():
            raise LeaderboardError(
                "the competition has closed and its final ranking stands; its deadline moves "
                "only by reopening it (xrd-bravais close --reopen --at ..., recorded in the "
                "audit log)"
            )
        values = {
            "daily_quota": str(rules.daily_quota),
            "invalid_daily_quota": str(rules.invalid_daily_quota),
            "max_selected": str(rules.max_selected),
            "public_board": rules.public_board,
        }
        with self._write() as db:
            db.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )
            if rules.public_board != before.public_board:
                _log(db, utc_now(), "public board",
                     {"from": before.public_board, "to": rules.public_board})  # fmt: skip
            if rules.deadline != before.deadline:
                _set_deadline(db, rules.deadline)
        return self.rules

    def close(
        self,
        at: datetime | None = None,
        *,
        retroactive: bool = False,
        reopen: bool = False,
        now: datetime | None = None,
    ) -> Rules:
        """Freeze the competition at ``at`` (default: now).

        Submissions from that moment on are late. The private leaderboard and the
        shake-up report become available once the moment has passed, and the
        submissions that count for each team are fixed then, once.

        Parameters
        ----------
        at : datetime, optional
            The deadline (UTC); default: now.
        retroactive : bool
            Confirm a deadline in the past that turns stored on-time submissions
            into late ones (they leave both boards).
        reopen : bool
            Confirm moving the deadline of a closed competition into the future:
            its private leaderboard has already been visible. The reopen is
            recorded in the audit log with the submissions it makes on-time.
        now : datetime, optional
            The present (tests).

        Raises
        ------
        LeaderboardError
            For a closed competition (closing again changes nothing), or either
            change without its confirmation; nothing is changed.
        """
        moment = now or utc_now()
        deadline = at or moment
        if deadline.tzinfo is None:
            raise LeaderboardError("the deadline must say its time zone (UTC)")
        rules = self.rules
        if rules.is_closed(moment):
            assert rules.deadline is not None
            closed = f"{rules.deadline:%Y-%m-%d %H:%M:%S} UTC"
            if deadline <= moment:
                raise LeaderboardError(
                    f"the competition is already closed (since {closed}); closing it again "
                    "changes nothing and its final ranking stands. To take submissions again, "
                    "reopen it with a deadline in the future: xrd-bravais close --reopen "
                    "--at YYYY-MM-DDTHH:MM:SS"
                )
            if not reopen:
                raise LeaderboardError(
                    f"the competition closed at {closed} and its private leaderboard may have "
                    f"been seen; a deadline of {deadline:%Y-%m-%d %H:%M:%S} UTC would reopen "
                    "it. Confirm with --reopen (the Private scores are then no longer a fair "
                    "final test)"
                )
            return self._reopen(deadline, moment)
        if deadline < moment and not retroactive:
            (n,) = self.connection.execute(
                "SELECT COUNT(*) FROM submissions WHERE late = 0 AND submitted_at >= ?",
                (_stamp(deadline),),
            ).fetchone()
            if n:
                raise LeaderboardError(
                    f"a deadline of {deadline:%Y-%m-%d %H:%M:%S} UTC is in the past and would "
                    f"make {n} on-time submission{'s' * (n != 1)} late (removed from both "
                    "boards); confirm with --retroactive, or close now without --at"
                )
        with self._write() as db:
            if self.rules.is_closed(moment):  # closed by another process meanwhile
                raise LeaderboardError("the competition was closed meanwhile; nothing changed")
            _set_deadline(db, deadline)
            passed = deadline <= moment
            _log(db, moment, "close" if passed else "schedule", {"deadline": _stamp(deadline)})
            if passed:
                self._freeze(db)
        return self.rules

    def _reopen(self, deadline: datetime, moment: datetime) -> Rules:
        """Move a passed deadline to ``deadline`` (in the future), logging what it changes."""
        with self._write() as db:
            before = self.rules.deadline
            (n,) = db.execute(
                "SELECT COUNT(*) FROM submissions WHERE late = 1 AND submitted_at < ?",
                (_stamp(deadline),),
            ).fetchone()
            _set_deadline(db, deadline)
            db.execute("DELETE FROM finalists")
            db.execute("DELETE FROM settings WHERE key = ?", (_FROZEN_KEY,))
            _log(db, moment, "reopen", {
                "closed_at": _stamp(before) if before else None,
                "deadline": _stamp(deadline),
                "late_made_on_time": int(n),
            })  # fmt: skip
        return self.rules

    def _freeze(self, db: sqlite3.Connection) -> None:
        """Write the finalists of every track for the deadline now in force (once)."""
        rules = self.rules
        assert rules.deadline is not None
        stamp = _stamp(rules.deadline)
        row = db.execute("SELECT value FROM settings WHERE key = ?", (_FROZEN_KEY,)).fetchone()
        if row is not None and row[0] == stamp:
            return
        db.execute("DELETE FROM finalists")
        for name in self.task.track_names:
            frame = self.submissions(name)
            frame = frame[frame["late"] == 0]
            chosen = _final_candidates(frame, rules.max_selected)
            ids = chosen.loc[chosen["valid"] == 1, "submission_id"]
            db.executemany(
                "INSERT INTO finalists (track, submission_id) VALUES (?, ?)",
                [(name, int(i)) for i in ids],
            )
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_FROZEN_KEY, stamp),
        )

    def _ensure_frozen(self, now: datetime | None = None) -> None:
        """Fix the finalists if the deadline has passed and they are not fixed yet.

        A deadline set in advance passes by the clock, with no call to :meth:`close`:
        the first operation after it that reads or could change the final ranking
        fixes them, before anything else happens.
        """
        moment = now or utc_now()
        rules = self.rules
        if not rules.is_closed(moment):
            return
        assert rules.deadline is not None
        row = self.connection.execute(
            "SELECT value FROM settings WHERE key = ?", (_FROZEN_KEY,)
        ).fetchone()
        if row is not None and row[0] == _stamp(rules.deadline):
            return
        with self._write() as db:
            self._freeze(db)

    def audit_log(self) -> pd.DataFrame:
        """Every close, reopen and rescore, oldest first: ``at, action, detail``."""
        return pd.read_sql_query(
            "SELECT at, action, detail FROM audit ORDER BY id", self.connection
        )

    # ------------------------------------------------------------------ rescoring
    def rescore(self, answer_key: AnswerKey | None = None) -> list[Change]:
        """Grade every stored submission again with the current key and grader.

        Returns
        -------
        list of Change
            The submissions whose validity or scores changed.
        """
        key = answer_key or load_answer_key(self.competition)
        # The final ranking's submissions are fixed before any score moves.
        self._ensure_frozen()
        rows = self.connection.execute(
            "SELECT s.id, s.track, s.sha256, s.valid, s.public_accuracy, s.public_macro_f1, "
            "s.private_accuracy, s.private_macro_f1, s.scores, t.name FROM submissions s "
            "JOIN teams t ON t.id = s.team_id ORDER BY s.id"
        ).fetchall()
        updates, changes, hits = [], [], []
        fields = ("valid", "public_accuracy", "public_macro_f1", "private_accuracy",
                  "private_macro_f1", "measured_accuracy", "measured_macro_f1")  # fmt: skip
        for row in rows:
            content = self.file(row["sha256"])
            try:
                result: GradeResult | None = grade(content, key, row["track"])
                problems = None
            except SubmissionError as err:
                result, problems = None, json.dumps(err.problems)
            measured = _measured_figures(json.dumps(result.to_dict()) if result else None)
            new = dict(zip(fields, (int(result is not None), *_score_columns(result), *measured),
                           strict=True))  # fmt: skip
            old = {name: row[name] for name in fields[:5]}
            old |= dict(zip(fields[5:], _measured_figures(row["scores"]), strict=True))
            if result is not None:
                hits.append((row["id"], public_hits(result, key, key.task.track(row["track"]))))
            if not _same(old, new):
                changes.append(Change(row["id"], row["name"], row["track"], old, new))
            updates.append((
                new["valid"], problems, *_score_columns(result),
                json.dumps(result.to_dict()) if result else None,
                GRADER_VERSION, key.sha256, row["id"],
            ))  # fmt: skip
        with self._write() as db:
            db.executemany(
                "UPDATE submissions SET valid = ?, problems = ?, public_accuracy = ?, "
                "public_macro_f1 = ?, private_accuracy = ?, private_macro_f1 = ?, scores = ?, "
                "grader_version = ?, answer_key_sha256 = ? WHERE id = ?",
                updates,
            )
            # The Ladder replays the course from these: the new key's hits only.
            db.execute("DELETE FROM public_hits")
            for submission_id, row_hits in hits:
                self.store_hits(db, submission_id, row_hits, key)
            _log(db, utc_now(), "rescore", {"answer_key_sha256": key.sha256,
                                            "grader_version": GRADER_VERSION,
                                            "submissions": len(rows), "changed": len(changes)})
        return changes



def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    for name, value in old.items():
        other = new[name]
        if _missing(value) or _missing(other):
            if _missing(value) != _missing(other):
                return False
        elif not np.isclose(value, other, rtol=0, atol=1e-12):
            return False
    return True


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


