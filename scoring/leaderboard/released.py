"""The released Public scores of the Ladder, replayed from the store.

Under the Ladder (``xrd-bravais rules --public-board ladder``) a team's score on the
Public board is the one :func:`scoring.ladder.ladder` released last. The decision
needs each submission's per-row hits on the Public rows; the store keeps them
(``public_hits``, packed bits, keyed by the answer key's sha256 so an amended key
recomputes them) and fills what is missing by grading the stored file again, so a
board switched to the Ladder mid-course, or a store from before it, replays the
whole course.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.grade import AnswerKey, GradeResult, grade, load_answer_key
from scoring.ladder import ladder
from scoring.leaderboard.store import Store
from scoring.metrics import Scores
from scoring.submission import SubmissionError
from xrd_bravais.contract import layout
from xrd_bravais.contract.tasks import Track


@dataclass(frozen=True)
class Release:
    """The Ladder's decision on one submission.

    Attributes
    ----------
    submission_id : int
    team : str
    released : bool
        Whether this submission's Public score was released.
    released_submission_id : int
        The team's submission whose Public score the board shows after this one.
    margin : float
        How far above the team's released accuracy the submission had to be.
    """

    submission_id: int
    team: str
    released: bool
    released_submission_id: int
    margin: float


def public_hits(result: GradeResult, key: AnswerKey, track: Track) -> npt.NDArray[np.bool_]:
    """Where a graded submission is right on the Public rows, in the key's order."""
    if result.predictions is None:
        raise ValueError("the grade result carries no predictions")
    mask = key.portion_mask(layout.PUBLIC_PORTION)
    hits: npt.NDArray[np.bool_] = result.predictions[mask] == key.codes(track)[mask]
    return hits


def _pack(hits: npt.NDArray[np.bool_]) -> bytes:
    return np.packbits(hits.astype(np.uint8)).tobytes()


def _unpack(blob: bytes, n: int) -> npt.NDArray[np.bool_]:
    bits = np.unpackbits(np.frombuffer(blob, dtype=np.uint8), count=n)
    return bits.astype(bool)


class Released(Store):
    """The Ladder over the stored submissions: the hits cache and the replay."""

    def store_hits(
        self, db: sqlite3.Connection, submission_id: int, hits: npt.NDArray[np.bool_],
        key: AnswerKey,
    ) -> None:  # fmt: skip
        """Keep a submission's Public hits (inside the caller's write transaction)."""
        db.execute(
            "INSERT INTO public_hits (submission_id, answer_key_sha256, hits) VALUES (?, ?, ?) "
            "ON CONFLICT (submission_id) DO UPDATE SET answer_key_sha256 = "
            "excluded.answer_key_sha256, hits = excluded.hits",
            (submission_id, key.sha256, _pack(hits)),
        )

    def _hits(
        self, ids: Iterable[int], track: Track, key: AnswerKey
    ) -> dict[int, npt.NDArray[np.bool_]]:
        """The Public hits of stored valid submissions, grading again those not kept yet."""
        wanted = [int(i) for i in ids]
        n = int(key.portion_mask(layout.PUBLIC_PORTION).sum())
        kept = {
            int(row[0]): _unpack(bytes(row[1]), n)
            for row in self.connection.execute(
                "SELECT submission_id, hits FROM public_hits WHERE answer_key_sha256 = ? "
                "AND submission_id IN (SELECT value FROM json_each(?))",
                (key.sha256, _json_ids(wanted)),
            )
        }
        missing = [i for i in wanted if i not in kept]
        if not missing:
            return kept
        rows = self.connection.execute(
            "SELECT s.id, f.content FROM submissions s JOIN files f ON f.sha256 = s.sha256 "
            "WHERE s.id IN (SELECT value FROM json_each(?))",
            (_json_ids(missing),),
        ).fetchall()
        graded: dict[int, npt.NDArray[np.bool_]] = {}
        for submission_id, content in rows:  # graded outside the write lock
            try:
                result = grade(bytes(content), key, track)
            except SubmissionError:
                # Valid when stored, invalid now (a grader update): no hits, never
                # released; a rescore marks it invalid.
                continue
            graded[int(submission_id)] = public_hits(result, key, track)
        with self._write() as db:
            for submission_id, hits in graded.items():
                self.store_hits(db, submission_id, hits, key)
        kept.update(graded)
        return kept

    def public_scores(self, submission_id: int) -> Scores:
        """The stored Public scores of a valid submission (what the board shows of it)."""
        row = self.connection.execute(
            "SELECT scores FROM submissions WHERE id = ?", (int(submission_id),)
        ).fetchone()
        return Scores.from_dict(json.loads(row["scores"])["public"])

    def releases(
        self, track: Track, teams: Iterable[str] | None = None, key: AnswerKey | None = None
    ) -> dict[int, Release]:
        """The Ladder replayed over each team's valid on-time submissions, in time order.

        Baselines are left out (they do not probe: they are shown as plain rows).

        Parameters
        ----------
        track : Track
        teams : iterable of str, optional
            Only these teams (default: all).
        key : AnswerKey, optional
            The loaded answer key (default: read it).

        Returns
        -------
        dict
            Submission id to its :class:`Release`.
        """
        frame = self.submissions(track)
        frame = frame[(frame["valid"] == 1) & (frame["late"] == 0) & (frame["baseline"] == 0)]
        if teams is not None:
            frame = frame[frame["team"].isin(list(teams))]
        if frame.empty:
            return {}
        key = key or load_answer_key(self.competition)
        hits = self._hits(frame["submission_id"], track, key)
        out: dict[int, Release] = {}
        ordered = frame.sort_values(["submitted_at", "submission_id"], kind="stable")
        for team, rows in ordered.groupby("team", sort=False):
            ids = [int(i) for i in rows["submission_id"] if int(i) in hits]
            if not ids:
                continue
            for submission_id, step in zip(ids, ladder([hits[i] for i in ids]), strict=True):
                out[submission_id] = Release(
                    submission_id=submission_id,
                    team=str(team),
                    released=step.released,
                    released_submission_id=ids[step.best_index],
                    margin=step.margin,
                )
        return out


def _json_ids(ids: list[int]) -> str:
    """Submission ids as a JSON array, for SQLite's ``json_each``."""
    return json.dumps([int(i) for i in ids])
