"""Training-time realism: measured-looking copies of the published clean patterns.

The builder's realism model (:mod:`competition.physics.realism`) turns a structure's
reflections into a pattern that looks like a laboratory measurement. A model
trained only on clean patterns meets real ones as a stranger: K-alpha2 shoulders,
background slopes and counting noise look like the peak splitting of a
low-symmetry cell. Two ways to train on what real patterns look like:

* :func:`realism_copies` draws measured-looking copies of finished patterns
  (:func:`competition.physics.realism.degrade`: shifts, the K-alpha2 line, size
  broadening, impurity peaks, background, Poisson counts) for any model that
  takes a fixed training set;
* ``CNN1DClassifier(augment="realism")`` draws such a copy of each training row
  afresh in every epoch.

Texture and graininess change each reflection's intensity and so need the
reflections themselves: ``public/train_sticks.parquet`` lists them for every
training row, and :func:`competition.physics.realism.measured_pattern` renders them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xrd_bravais.contract.grid import Grid


def realism_copies(
    X: Any,
    y: Any,
    grid: Grid,
    draws: int = 2,
    keep_clean: bool = True,
    ranges: Any = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A training set with ``draws`` measured-looking copies of every row.

    Parameters
    ----------
    X : array (n, grid.n_points)
        Clean patterns, as in ``train.parquet``.
    y : array (n,)
        Their labels.
    grid : Grid
        Where the columns lie in 2theta (``baselines.data.read_patterns`` gives it).
    draws : int, default=2
        Copies per row, each with its own instrument, sample and noise.
    keep_clean : bool, default=True
        Keep the clean rows too (a model then still knows ideal patterns).
    ranges : competition.physics.realism.RealismRanges, optional
        The ranges of every setting; default the builder's.
    random_state : int, default=0

    Returns
    -------
    X_new, y_new : arrays
        Clean rows first (if kept), then each draw in the order of ``X``.

    Examples
    --------
    >>> from baselines.data import read_patterns                 # doctest: +SKIP
    >>> data = read_patterns("comp/public/train.parquet")        # doctest: +SKIP
    >>> X, y = realism_copies(data.X, data.y, data.grid, draws=2)  # doctest: +SKIP
    """
    from competition.physics.realism import degrade

    if draws < 0:
        raise ValueError(f"draws must be >= 0, got {draws}")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != grid.n_points:
        raise ValueError(
            f"X must have {grid.n_points} columns (the grid's points), got shape {X.shape}"
        )
    rng = np.random.default_rng(random_state)
    parts = [X] if keep_clean else []
    parts += [degrade(X, grid, rng, ranges) for _ in range(draws)]
    if not parts:
        raise ValueError("nothing to return: draws=0 and keep_clean=False")
    return np.concatenate(parts), np.concatenate([y] * len(parts))
