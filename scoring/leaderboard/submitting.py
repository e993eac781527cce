"""Taking a submission: the quota, the team, the store, and the picks for the end.

Each submission is checked against the quotas and written in one ``BEGIN
IMMEDIATE`` transaction, so concurrent submitters never exceed a quota and nothing
is lost.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from scoring.grade import GRADER_VERSION, AnswerKey, GradeResult, grade, load_answer_key
from scoring.leaderboard.names import (
    check_name_is_distinct,
    clean_team_name,
    name_skeleton,
)
from scoring.leaderboard.ranking import _score_columns
from scoring.leaderboard.released import Released, public_hits
from scoring.leaderboard.rules import (
    LeaderboardError,
    Quota,
    QuotaExceeded,
    Rules,
    _stamp,
    _used_today,
    day_bounds,
    utc_now,
)
from scoring.metrics import Scores
from scoring.submission import (
    SubmissionError,
    SubmissionInput,
    read_submission_bytes,
    size_limit,
)
from xrd_bravais.contract.tasks import Track

MAX_MESSAGE: Final = 500


@dataclass(frozen=True)
class Receipt:
    """What a team learns from a submission: never anything from Private rows.

    Attributes
    ----------
    submission_id : int
    team : str
    track : str
    sha256 : str
        Hex digest of the file as stored.
    submitted_at : datetime
    valid : bool
    problems : tuple of str
        The validator's findings when not valid.
    notices : tuple of str
    public : Scores or None
        Public-portion scores of a valid submission.
    quota_left : int or None
        Valid submissions left today (None for baselines).
    quota_resets_at : datetime
        Next midnight UTC.
    late : bool
        Sent after the deadline: scored, not ranked.
    measured_public : Scores or None
        Scores on the real measurements of the Public board, where the test set
        has them (``build --measured-public-fraction``).
    released : bool or None
        Under the Ladder (``rules --public-board ladder``): whether this submission's
        Public score was released. ``public`` and ``measured_public`` are then
        ``None`` unless it was. ``None`` on a plain board.
    released_public : Scores or None
        Under the Ladder: the Public scores the board shows for the team after this
        submission (this one's, or an earlier released one's).
    released_submission_id : int or None
        Under the Ladder: the submission whose scores ``released_public`` are.
    """

    submission_id: int
    team: str
    track: str
    sha256: str
    submitted_at: datetime
    valid: bool
    problems: tuple[str, ...]
    notices: tuple[str, ...]
    public: Scores | None
    quota_left: int | None
    quota_resets_at: datetime
    late: bool
    measured_public: Scores | None = None
    released: bool | None = None
    released_public: Scores | None = None
    released_submission_id: int | None = None



class Submitting(Released):
    """Submit within the quota, see what is left of it, and pick the final submissions.

    (Over 200 lines: :meth:`submit` alone is 100, most of it its documentation.)
    """

    def _team_id(self, db: sqlite3.Connection, name: str, baseline: bool, now: str) -> int:
        row = db.execute(
            "SELECT id, baseline, removed FROM teams WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            taken = [r[0] for r in db.execute("SELECT name FROM teams")]
            if baseline:
                # A baseline may take a reserved name, never an existing team's look-alike.
                skeleton = name_skeleton(name)
                clash = [t for t in taken if name_skeleton(t) == skeleton]
                if clash:
                    raise LeaderboardError(f"{name!r} looks like the team {clash[0]!r}")
            else:
                check_name_is_distinct(name, taken)
            cursor = db.execute(
                "INSERT INTO teams (name, baseline, created_at) VALUES (?, ?, ?)",
                (name, int(baseline), now),
            )
            return int(cursor.lastrowid or 0)
        if bool(row["baseline"]) != baseline:
            kind = "a baseline" if row["baseline"] else "a team"
            raise LeaderboardError(f"{name!r} is already {kind}; pick another name")
        if row["removed"]:
            raise LeaderboardError(
                f"the team {name!r} was removed by the organisers; it takes no submissions"
            )
        return int(row["id"])

    # ------------------------------------------------------------------ submitting
    def submit(
        self,
        submission: SubmissionInput,
        team: str,
        track: str | Track | None = None,
        message: str = "",
        *,
        baseline: bool = False,
        answer_key: AnswerKey | None = None,
        now: datetime | None = None,
    ) -> Receipt:
        """Validate, score and store a submission within the team's quota.

        Parameters
        ----------
        submission : path, bytes, binary file or DataFrame
            The CSV.
        team : str
            Team name; a new name creates the team.
        track : {"bravais", "spacegroup"}
        message : str
            A note for the team's own record (at most 500 characters).
        baseline : bool
            Store as a reference row: shown, never ranked, no quota.
        answer_key : AnswerKey, optional
            Loaded key, to avoid reading it per call.
        now : datetime, optional
            The submission time (tests); default: the clock, read inside the
            write transaction so quota days are exact.

        Returns
        -------
        Receipt
            Public scores only.

        Raises
        ------
        QuotaExceeded
            If the team has no submission left today; nothing is stored.
        AnswerKeyError
            If the answer key does not match the manifest; nothing is stored.
        """
        spec = self.task.track(track)
        name = clean_team_name(team)
        message = message.strip()[:MAX_MESSAGE]
        key = answer_key or load_answer_key(self.competition)
        problems: tuple[str, ...] = ()
        notices: tuple[str, ...] = ()
        result: GradeResult | None = None
        # Refused before reading if missing or oversize: neither stored nor counted.
        content = read_submission_bytes(submission, size_limit(len(key)))
        try:
            result = grade(content, key, spec)
            notices = result.notices
        except SubmissionError as err:
            problems, notices = tuple(err.problems), tuple(err.notices)
        digest = hashlib.sha256(content).hexdigest()
        with self._write() as db:
            moment = now or utc_now()
            stamp = _stamp(moment)
            team_id = self._team_id(db, name, baseline, stamp)
            rules = self.rules
            left = None if baseline else self._check_quota(db, team_id, spec, moment, rules, result)
            db.execute(
                "INSERT OR IGNORE INTO files (sha256, size, content) VALUES (?, ?, ?)",
                (digest, len(content), content),
            )
            late = rules.is_closed(moment)
            cursor = db.execute(
                "INSERT INTO submissions (team_id, track, sha256, submitted_at, message, valid, "
                "problems, public_accuracy, public_macro_f1, private_accuracy, private_macro_f1, "
                "scores, grader_version, answer_key_sha256, late) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    team_id, spec.name, digest, stamp, message, int(result is not None),
                    json.dumps(list(problems)) if problems else None,
                    *_score_columns(result),
                    json.dumps(result.to_dict()) if result else None,
                    GRADER_VERSION, key.sha256, int(late),
                ),
            )  # fmt: skip
            submission_id = int(cursor.lastrowid or 0)
            if result is not None:
                self.store_hits(db, submission_id, public_hits(result, key, spec), key)
        receipt = Receipt(
            submission_id=submission_id,
            team=name,
            track=spec.name,
            sha256=digest,
            submitted_at=moment,
            valid=result is not None,
            problems=problems,
            notices=notices,
            public=result.public if result else None,
            quota_left=left,
            quota_resets_at=day_bounds(moment)[1],
            late=late,
            measured_public=result.measured_public if result else None,
        )
        if rules.is_ladder and result is not None and not baseline and not late:
            receipt = self._ladder_receipt(receipt, spec, key)
        return receipt

    def _ladder_receipt(self, receipt: Receipt, track: Track, key: AnswerKey) -> Receipt:
        """The receipt as the Ladder shows it: this submission's scores only if released."""
        release = self.releases(track, teams=[receipt.team], key=key)[receipt.submission_id]
        shown = self.public_scores(release.released_submission_id)
        if release.released:
            return replace(receipt, released=True, released_public=shown,
                           released_submission_id=release.released_submission_id)  # fmt: skip
        return replace(
            receipt, public=None, measured_public=None, released=False, released_public=shown,
            released_submission_id=release.released_submission_id,
        )

    def _check_quota(
        self,
        db: sqlite3.Connection,
        team_id: int,
        track: Track,
        moment: datetime,
        rules: Rules,
        result: GradeResult | None,
    ) -> int:
        n_valid, n_invalid = _used_today(db, team_id, track.name, moment)
        reset = f"resets at {day_bounds(moment)[1]:%Y-%m-%d %H:%M} UTC"
        if result is not None and n_valid >= rules.daily_quota:
            raise QuotaExceeded(
                f"daily quota reached: {n_valid} of {rules.daily_quota} valid submissions "
                f"today on the {track.name} track; it {reset}; the file was not stored"
            )
        if result is None and n_invalid >= rules.invalid_daily_quota:
            raise QuotaExceeded(
                f"too many invalid submissions today ({n_invalid} of "
                f"{rules.invalid_daily_quota}); check files with `xrd-bravais validate` first "
                f"(it is free); the limit {reset}"
            )
        return int(rules.daily_quota - n_valid - (result is not None))

    def quota(
        self, team: str, track: str | Track | None = None, now: datetime | None = None
    ) -> Quota:
        """What a team has left today on a track (the rule :meth:`submit` enforces).

        Raises
        ------
        LeaderboardError
            If there is no such team.
        """
        spec = self.task.track(track)
        moment = now or utc_now()
        row = self.connection.execute("SELECT id FROM teams WHERE name = ?", (team,)).fetchone()
        if row is None:
            raise LeaderboardError(f"no team called {team!r}")
        n_valid, n_invalid = _used_today(self.connection, int(row["id"]), spec.name, moment)
        rules = self.rules
        return Quota(
            valid_left=max(rules.daily_quota - n_valid, 0),
            invalid_left=max(rules.invalid_daily_quota - n_invalid, 0),
            resets_at=day_bounds(moment)[1],
        )

    # ------------------------------------------------------------------ selection
    def select(
        self, team: str, submission_ids: Sequence[int], track: str | Track | None = None,
        now: datetime | None = None,
    ) -> list[int]:  # fmt: skip
        """Pick the submissions that count for the private leaderboard.

        Replaces the team's earlier picks on that track. With no picks, the team's
        two best Public submissions count.

        Raises
        ------
        LeaderboardError
            Too many picks, an id that is not the team's valid, on-time submission
            on this track, or a closed competition.
        """
        spec = self.task.track(track)
        ids = sorted(set(int(i) for i in submission_ids))
        rules = self.rules
        if rules.is_closed(now or utc_now()):
            raise LeaderboardError("the competition is closed; selections are final")
        if len(ids) > rules.max_selected:
            raise LeaderboardError(
                f"at most {rules.max_selected} submissions may be selected, got {len(ids)}"
            )
        with self._write() as db:
            row = db.execute("SELECT id FROM teams WHERE name = ?", (team,)).fetchone()
            if row is None:
                raise LeaderboardError(f"no team called {team!r}")
            own = {
                r[0]
                for r in db.execute(
                    "SELECT id FROM submissions WHERE team_id = ? AND track = ? AND valid = 1 "
                    "AND late = 0",
                    (row["id"], spec.name),
                )
            }
            foreign = [i for i in ids if i not in own]
            if foreign:
                raise LeaderboardError(
                    f"submission(s) {', '.join(map(str, foreign))} are not valid on-time "
                    f"{spec.name} submissions of team {team!r}"
                )
            db.execute(
                "UPDATE submissions SET selected = (id IN (SELECT value FROM json_each(?))) "
                "WHERE team_id = ? AND track = ?",
                (json.dumps(ids), row["id"], spec.name),
            )
        return ids

