"""Random guessing, the floor every model must clear.

Three guesses, all scikit-learn's ``DummyClassifier``:

* ``uniform``: each lattice with probability 1/14 (expected accuracy 7.14 %);
* ``prior``: lattices drawn with their training frequencies (expected accuracy
  sum of p_train * p_test, the "prior-matched" guess);
* ``majority``: always the most common training lattice.
"""

from __future__ import annotations

from typing import Final

from sklearn.dummy import DummyClassifier

STRATEGIES: Final = {"uniform": "uniform", "prior": "stratified", "majority": "most_frequent"}
"""Our names for the three guesses and the ``DummyClassifier`` strategy of each."""


def make_random_guess(kind: str = "uniform", random_state: int = 0) -> DummyClassifier:
    """A seeded random guess.

    Parameters
    ----------
    kind : {"uniform", "prior", "majority"}
    random_state : int

    Examples
    --------
    >>> make_random_guess("prior")
    DummyClassifier(random_state=0, strategy='stratified')
    """
    if kind not in STRATEGIES:
        raise ValueError(f"kind must be one of {', '.join(STRATEGIES)}, got {kind!r}")
    return DummyClassifier(strategy=STRATEGIES[kind], random_state=random_state)
