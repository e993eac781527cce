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

from baselines.forest import pattern_features
from contract.grid import Grid

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

    Attributes
    ----------
    classes_ : ndarray
        The labels, sorted.
    booster_ : xgboost.XGBClassifier
        The fitted model, on labels ``0 .. len(classes_) - 1``.
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
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state
        self.n_jobs = n_jobs

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
        )
        self.booster_.fit(X, codes)
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


def make_boosting(grid: Grid, random_state: int = 0, n_jobs: int | None = None) -> Pipeline:
    """A seeded XGBoost pipeline over pooled patterns and peak features on ``grid``.

    Examples
    --------
    >>> from contract.grid import Grid
    >>> make_boosting(Grid(5.0, 90.0, 0.02, 4251)).named_steps["model"].max_depth
    6
    """
    model = BoostedTrees(random_state=random_state, n_jobs=n_jobs)
    return Pipeline([("features", pattern_features(grid)), ("model", model)])
