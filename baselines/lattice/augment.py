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
* :class:`RealismAugmented` does the same inside ``fit``, so the copies belong to
  the estimator (the ``xgboost-realism`` baseline);
* ``CNN1DClassifier(augment="realism")`` draws such a copy of each training row
  afresh in every epoch.

:class:`RealismAccuracy` scores a model on such copies of held-out rows, so a
parameter search chooses what suits measured patterns rather than clean ones.

Texture and graininess change each reflection's intensity and so need the
reflections themselves: ``public/train_sticks.parquet`` lists them for every
training row, and :func:`competition.physics.realism.measured_pattern` renders them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

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


class RealismAccuracy:
    """A scorer: the accuracy on one realism copy of each held-out row.

    A callable with scikit-learn's scorer signature, for ``GridSearchCV(scoring=...)``:
    a search scored by it chooses the parameters that suit measured-looking patterns
    (search-match's blur on the AMCSD build: 0.2 degrees scored on realism copies, 0.8
    on clean rows).
    The copy of a fold is drawn from ``random_state`` and the rows alone, so every
    candidate meets the same copies.

    Parameters
    ----------
    grid : Grid
        Where the columns lie in 2theta.
    random_state : int, default=0
        Seeds the copies.
    ranges : competition.physics.realism.RealismRanges, optional
        The ranges of every setting; default the builder's.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV            # doctest: +SKIP
    >>> GridSearchCV(model, grid_of_params, scoring=RealismAccuracy(data.grid))  # doctest: +SKIP
    """

    def __init__(self, grid: Grid, random_state: int = 0, ranges: Any = None) -> None:
        self.grid = grid
        self.random_state = random_state
        self.ranges = ranges

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        """Accuracy of ``estimator`` on a realism copy of ``X``."""
        copies, _ = realism_copies(X, y, self.grid, draws=1, keep_clean=False,
                                   ranges=self.ranges, random_state=self.random_state)  # fmt: skip
        return float(np.mean(estimator.predict(copies) == np.asarray(y)))

    def __repr__(self) -> str:
        return f"RealismAccuracy(random_state={self.random_state})"


class RealismAugmented(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit a classifier on the training rows plus measured-looking copies of each.

    The augmentation happens inside :meth:`fit`, so a grid search, a saved model
    and ``xrd-bravais baselines run`` treat the whole as one estimator; at
    prediction time the patterns go to the fitted classifier unchanged (put any
    preprocessing, such as smoothing and background removal, in ``estimator``: it
    then sees the copies and the test patterns alike).

    Parameters
    ----------
    estimator : classifier
        Cloned and fitted on the augmented rows.
    grid : Grid, optional
        Where the columns lie in 2theta (required to fit: the realism model
        moves peaks and draws the K-alpha2 line in degrees).
    draws : int, default=2
        Copies per training row (:func:`realism_copies`); memory grows as
        ``1 + draws`` times the training matrix.
    keep_clean : bool, default=True
        Keep the clean rows beside the copies.
    max_rows : int, optional
        Draw the copies from a seeded, class-stratified sample of at most this many
        training rows (:func:`baselines.data.stratified_sample`: every class keeps a
        row) and fit on those; default every row. It bounds the memory and time of a
        fit on a large build: 30,000 rows with two copies each take 7.3 GB in
        XGBoost, 88,000 about 21 GB. The sample is the one ``xrd-bravais baselines
        run --sample`` takes with the same seed, unless :meth:`fit` is told which
        rows are of the build's own source: those come first
        (:func:`baselines.data.own_source_first_sample`).
    random_state : int, default=0
        Seeds the sample and the copies.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone.
    classes_ : ndarray
    n_features_in_ : int
    n_rows_used_ : int
        Training rows the copies were drawn from (all, or ``max_rows``).
    n_own_used_ : int or None
        How many of them are of the build's own source, where :meth:`fit` was told.
    n_augmented_ : int
        Rows the clone was fitted on.
    """

    def __init__(self, estimator: Any, grid: Grid | None = None, draws: int = 2,
                 keep_clean: bool = True, max_rows: int | None = None,
                 random_state: int = 0) -> None:  # fmt: skip
        self.estimator = estimator
        self.grid = grid
        self.draws = draws
        self.keep_clean = keep_clean
        self.max_rows = max_rows
        self.random_state = random_state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model pickled before ``max_rows`` existed was fitted on every row.
        state.setdefault("max_rows", None)
        super().__setstate__(state)

    def fit(self, X: Any, y: Any, own_source: Any = None) -> RealismAugmented:
        """Draw the copies and fit a clone of ``estimator`` on them; returns ``self``.

        Parameters
        ----------
        X, y : array-like
        own_source : array-like of bool, shape (n_rows,), optional
            Which rows are of the build's own source, beside the computed
            structures of ``--train-extra`` (``baselines run`` passes it from
            ``train_meta.parquet``): a ``max_rows`` sample then takes them all
            first. On the whole-archive build (153,536 rows, 5,432 minerals) the
            plain sample held 348 of them. Default: a stratified sample of all rows.

        Raises
        ------
        ValueError
            If ``max_rows`` is not a positive whole number, or too small to keep
            a row of every class; if ``own_source`` is not one boolean per row.
        """
        from sklearn.base import clone

        from baselines.data import checked_own_source, own_source_first_sample, stratified_sample
        from xrd_bravais.contract.grid import require_grid

        grid = require_grid(self.grid, "realism augmentation")
        X, y = validate_data(self, X, y, dtype=np.float32)
        own = checked_own_source(own_source, len(y))
        if self.max_rows is not None:
            if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int | np.integer) \
                    or self.max_rows < 1:  # fmt: skip
                raise ValueError(f"max_rows must be a positive whole number or None, "
                                 f"got {self.max_rows!r}")  # fmt: skip
            rows = (stratified_sample(np.asarray(y), int(self.max_rows), self.random_state)
                    if own is None else own_source_first_sample(
                        np.asarray(y), own, int(self.max_rows), self.random_state))  # fmt: skip
            X, y = X[rows], np.asarray(y)[rows]
            own = None if own is None else own[rows]
        X_aug, y_aug = realism_copies(X, y, grid, self.draws, self.keep_clean,
                                      random_state=self.random_state)  # fmt: skip
        self.estimator_ = clone(self.estimator).fit(X_aug, y_aug)
        self.classes_ = self.estimator_.classes_
        self.n_rows_used_ = len(y)
        self.n_own_used_ = None if own is None else int(own.sum())
        self.n_augmented_ = len(y_aug)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The fitted classifier's labels for ``X``."""
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        result: np.ndarray = self.estimator_.predict(X)
        return result

    def predict_proba(self, X: Any) -> np.ndarray:
        """The fitted classifier's probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        result: np.ndarray = self.estimator_.predict_proba(X)
        return result
