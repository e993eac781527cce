"""Gradient-boosted trees (XGBoost) on the same features as the random forest.

``xgboost.XGBClassifier`` wants labels ``0 .. K-1``; :class:`BoostedTrees` wraps
it so that it takes the lattice symbols (or space-group numbers) directly, like
every other scikit-learn classifier, and keeps them in ``classes_``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from baselines.lattice.forest import pattern_features
from xrd_bravais.contract.grid import Grid

PARAM_GRID: Final[dict[str, list[Any]]] = {
    "model__max_depth": [4, 6],
    "model__learning_rate": [0.1, 0.2],
}
"""Search space of :func:`make_boosting`."""


class BoostedTrees(ClassifierMixin, BaseEstimator):
    """XGBoost's histogram trees as a scikit-learn classifier over any labels.

    Parameters
    ----------
    n_estimators : int, default=300
        Boosting rounds.
    max_depth : int, default=6
    learning_rate : float, default=0.1
    subsample, colsample_bytree : float, default=0.8
        Row and column fractions per tree.
    random_state : int, default=0
    n_jobs : int, optional
        Threads (default: all cores).
    early_stopping_rounds : int, optional
        Stop when the held-out log-loss has not improved for this many rounds
        (``n_estimators`` is then the most); None: every round.
    validation_fraction : float, default=0.1
        With early stopping, the share of each label's rows held out to watch it.
        Labels with too few rows to spare one stay whole in the training part
        (the space-group track has many with one or two).

    Attributes
    ----------
    classes_ : ndarray
        The labels, sorted.
    booster_ : xgboost.XGBClassifier
        The fitted model, on labels ``0 .. len(classes_) - 1``.
    n_rounds_ : int
        The rounds the model keeps (``best_iteration + 1`` with early stopping).
    """

    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        random_state: int = 0,
        n_jobs: int | None = None,
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction

    def _held_out(self, codes: np.ndarray) -> np.ndarray:
        """A mask of validation rows: ``validation_fraction`` of each label, rounded down."""
        rng = np.random.default_rng(self.random_state)
        mask = np.zeros(len(codes), dtype=bool)
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            take = int(self.validation_fraction * len(rows))
            if take and take < len(rows):
                mask[rng.choice(rows, take, replace=False)] = True
        return mask

    def fit(self, X: Any, y: Any) -> BoostedTrees:
        """Encode the labels and fit the booster; returns ``self``."""
        from xgboost import XGBClassifier

        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("need at least 2 classes to fit, got 1 class")
        self.booster_ = XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            tree_method="hist",
            early_stopping_rounds=self.early_stopping_rounds,
            eval_metric="mlogloss",
        )
        if self.early_stopping_rounds is None:
            self.booster_.fit(X, codes)
            self.n_rounds_ = self.n_estimators
            return self
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        held = self._held_out(codes)
        if not held.any():
            raise ValueError("early stopping needs held-out rows: no label has enough rows "
                             f"for validation_fraction={self.validation_fraction}")  # fmt: skip
        self.booster_.fit(X[~held], codes[~held], eval_set=[(X[held], codes[held])],
                          verbose=False)  # fmt: skip
        self.n_rounds_ = int(self.booster_.best_iteration) + 1
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        proba: np.ndarray = self.booster_.predict_proba(X)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row."""
        proba = self.predict_proba(X)
        result: np.ndarray = self.classes_[np.argmax(proba, axis=1)]
        return result


def make_boosting(grid: Grid, random_state: int = 0, n_jobs: int | None = None,
                  relations: bool = True) -> Pipeline:  # fmt: skip
    """A seeded XGBoost pipeline over pooled patterns and peak features on ``grid``.

    ``relations`` adds the peaks' pair ratios and additive triples
    (:func:`baselines.lattice.forest.pattern_features`; the default, as the
    ``xgboost`` and ``xgboost-realism`` baselines do).

    Examples
    --------
    >>> from xrd_bravais.contract.grid import Grid
    >>> make_boosting(Grid(5.0, 90.0, 0.02, 4251)).named_steps["model"].max_depth
    6
    """
    model = BoostedTrees(random_state=random_state, n_jobs=n_jobs)
    return Pipeline([("features", pattern_features(grid, relations=relations)),
                     ("model", model)])  # fmt: skip
