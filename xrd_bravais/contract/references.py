"""The random-guess references: what guessing scores, from the class counts alone.

Shown on the leaderboard, in the data card, the kit README and the baselines
report; one definition here so that they all agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

GUESS_TITLES: Final = {
    "uniform": "random guess (uniform)",
    "prior": "random guess (prior-matched)",
    "majority": "random guess (majority class)",
}
"""The board names of the three random-guess baselines, by reference: where a board
has a guess's baseline row, its expected-accuracy reference row is not repeated."""


def reference_scores(
    train_counts: Sequence[int] | npt.ArrayLike,
    test_counts: Sequence[int] | npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Expected accuracy of the three random-guess references.

    Parameters
    ----------
    train_counts : array of int (K,)
        Training rows per class (what a guesser can know).
    test_counts : array of int (K,), optional
        Rows per class of the portion scored; default: assume it follows the
        training distribution (the figure a data card can publish).

    Returns
    -------
    dict
        ``uniform`` (1/K), ``prior`` (guess class k with its training frequency:
        ``sum_k p_k q_k``) and ``majority`` (always the commonest training class:
        ``q_argmax p``), where ``p`` and ``q`` are the training and test shares.

    Raises
    ------
    ValueError
        If the counts are empty, have no positive total or differ in length.

    Examples
    --------
    >>> ref = reference_scores([50, 30, 20])
    >>> round(ref["uniform"], 4), round(ref["prior"], 2), ref["majority"]
    (0.3333, 0.38, 0.5)
    """
    p = np.asarray(train_counts, dtype=np.float64)
    if p.ndim != 1 or p.sum() <= 0:
        raise ValueError("train_counts must be a non-empty vector with a positive total")
    q = p if test_counts is None else np.asarray(test_counts, dtype=np.float64)
    if q.shape != p.shape or q.sum() <= 0:
        raise ValueError("test_counts must have one count per class and a positive total")
    p, q = p / p.sum(), q / q.sum()
    return {
        "uniform": 1.0 / p.size,
        "prior": float(p @ q),
        "majority": float(q[int(np.argmax(p))]),
    }


def majority_label(train_counts: Sequence[int] | npt.ArrayLike, labels: Sequence[object]) -> object:
    """The commonest training label; a tie goes to the first in ``labels`` order.

    The one rule behind the sample submission, the data card and the kit README.

    Examples
    --------
    >>> majority_label([3, 5, 5], ["aP", "mP", "cF"])
    'mP'
    """
    return labels[int(np.argmax(np.asarray(train_counts)))]
