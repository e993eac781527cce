"""The Ladder: a Public leaderboard that probing cannot climb.

A team that sends many perturbed submissions, keeps those that score above its
best on the Public rows and combines them by majority vote, climbs a plain Public
board while its Private score stays where it was: it has fitted the Public rows'
noise. Blum and Hardt's Ladder (*The Ladder: A Reliable Leaderboard for Machine
Learning Competitions*, ICML 2015) releases a team's new Public score only when it
beats the team's best released score by more than the noise of the comparison, so
such probing learns almost nothing while honest progress still shows.

This module is the parameter-free variant of the paper (its Algorithm 2), on
accuracy: submission *t*, with per-row hits ``h_t`` (1 where the prediction is
right) on the *n* Public rows, is released when

    mean(h_t) > R + s / sqrt(n),

where ``R`` is the team's released accuracy (the accuracy of its last released
submission, with hits ``h_b``) and ``s`` the sample standard deviation of
``h_t - h_b``: a paired one-standard-error test of the improvement. The first
submission is always released. An accuracy is a multiple of 1/n already, so the
paper's rounding of the released score to that precision changes nothing.

Pure functions: the store (:mod:`scoring.leaderboard`) keeps the hits and replays a
team's submissions in time order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

PUBLIC_BOARDS: Final = {
    "plain": "every submission's Public score is shown, and a team's best counts",
    "ladder": "a team's Public score is released only when a submission beats its released "
    "score by more than the noise of the comparison, so probing the Public rows gains nothing",
}
"""The kinds of Public board, each with what it means for a student."""


@dataclass(frozen=True)
class LadderStep:
    """What the Ladder did with one submission.

    Attributes
    ----------
    released : bool
        Whether this submission's Public score was released (it became the team's
        score on the board).
    accuracy : float
        The submission's own Public accuracy (hidden from the team unless released).
    released_accuracy : float
        The team's released Public accuracy after this submission.
    best_index : int
        Position (in the sequence given) of the submission whose score is released
        after this one.
    margin : float
        ``s / sqrt(n)``: how far above the released accuracy a submission had to be
        (0 for the first submission).
    """

    released: bool
    accuracy: float
    released_accuracy: float
    best_index: int
    margin: float


def ladder(hits: Sequence[npt.ArrayLike]) -> list[LadderStep]:
    """Replay the parameter-free Ladder over one team's submissions, in time order.

    Parameters
    ----------
    hits : sequence of array-like of bool
        Per submission, 1 where its prediction of a Public row is right; every
        array has the same length *n* (the Public rows, in one fixed order).

    Returns
    -------
    list of LadderStep
        One per submission.

    Raises
    ------
    ValueError
        If the arrays differ in length or are empty.

    Examples
    --------
    >>> steps = ladder([[1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1]])
    >>> [s.released for s in steps]
    [True, False, True]
    """
    steps: list[LadderStep] = []
    best: npt.NDArray[np.float64] | None = None
    released_accuracy = float("nan")
    best_index = -1
    for index, row in enumerate(hits):
        current = np.asarray(row, dtype=np.float64).ravel()
        if current.size == 0:
            raise ValueError("a submission has no Public rows to score")
        accuracy = float(current.mean())
        if best is None:
            margin, released = 0.0, True
        else:
            if current.shape != best.shape:
                raise ValueError(
                    f"hits of {current.size} rows after {best.size}: one order of Public rows"
                )
            margin = _margin(current - best)
            released = accuracy > released_accuracy + margin
        if released:
            best, released_accuracy, best_index = current, accuracy, index
        steps.append(LadderStep(released, accuracy, released_accuracy, best_index, margin))
    return steps


def _margin(difference: npt.NDArray[np.float64]) -> float:
    """One standard error of a paired difference in accuracy: ``s / sqrt(n)``."""
    n = difference.size
    if n < 2:
        return 0.0
    return float(difference.std(ddof=1) / np.sqrt(n))


def check_public_board(kind: str) -> str:
    """``kind`` if it is a known Public board (:data:`PUBLIC_BOARDS`); a clear error if not."""
    if kind not in PUBLIC_BOARDS:
        raise ValueError(f"public board must be one of {', '.join(PUBLIC_BOARDS)}, got {kind!r}")
    return kind
