"""The organisers' check for copied submissions, over the stored files.

Grades every compared file again (the store keeps no predictions) and hands the
label codes to :func:`scoring.integrity.integrity_report`. Organisers only: the
report names teams and reads hidden rows; nothing of it reaches a student.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.grade import AnswerKey, grade, load_answer_key
from scoring.integrity import ALPHA, SHARED_ERRORS, integrity_report
from scoring.leaderboard.ranking import _final_candidates
from scoring.leaderboard.store import Store
from scoring.submission import SubmissionError
from xrd_bravais.contract.tasks import Track

WHICH: Final = ("all", "final")
"""Which submissions :meth:`Copying.integrity` compares: every valid one, or each
team's final candidates (its picks, else its best Public ones)."""


class Copying(Store):
    """Pairs of teams whose submissions agree beyond chance."""

    def integrity(
        self,
        track: str | Track | None = None,
        *,
        which: str = "all",
        shared: float = SHARED_ERRORS,
        alpha: float = ALPHA,
        answer_key: AnswerKey | None = None,
    ) -> pd.DataFrame:
        """Every pair of teams, flagged where their wrong answers agree beyond chance.

        Parameters
        ----------
        track : str or Track, optional
        which : {"all", "final"}
            Compare every valid submission (on time or late), or only each team's
            final candidates (fewer pairs: for large courses).
        shared, alpha : float
            The null model's shared-error share and the flags' family-wise error
            rate (:mod:`scoring.integrity`).
        answer_key : AnswerKey, optional

        Returns
        -------
        pandas.DataFrame
            :data:`scoring.integrity.COLUMNS` (removed teams left out).
        """
        if which not in WHICH:
            raise ValueError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
        spec = self.task.track(track)
        key = answer_key or load_answer_key(self.competition)
        frame = self.submissions(spec)
        frame = frame[frame["valid"] == 1]
        if which == "final":
            frame = _final_candidates(frame[frame["late"] == 0], self.rules.max_selected)
            frame = frame[frame["valid"] == 1]
        predictions: dict[int, npt.NDArray[np.int64]] = {}
        by_file: dict[str, npt.NDArray[np.int64]] = {}
        for submission_id, digest in zip(frame["submission_id"], frame["sha256"], strict=True):
            if digest not in by_file:
                try:
                    result = grade(self.file(digest), key, spec)
                except SubmissionError:
                    continue  # invalid under the current grader: nothing to compare
                assert result.predictions is not None
                by_file[digest] = result.predictions
            predictions[int(submission_id)] = by_file[digest]
        kept = frame[frame["submission_id"].isin(list(predictions))]
        return integrity_report(
            predictions,
            dict(zip(kept["submission_id"].astype(int), kept["team"], strict=True)),
            key.codes(spec),
            spec.n_labels,
            baselines=sorted(set(kept.loc[kept["baseline"] == 1, "team"])),
            files=dict(zip(kept["submission_id"].astype(int), kept["sha256"], strict=True)),
            shared=shared,
            alpha=alpha,
        )
