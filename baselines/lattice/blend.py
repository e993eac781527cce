"""A soft vote: the weighted mean of several classifiers' class probabilities.

The 1D-CNN reads the pattern as a picture of peaks; XGBoost reads pooled
intensities and the positions of the strongest peaks. They err on different
patterns, so the mean of their probabilities is right more often than either
(measured in the README's "Seeds and the blend" section). The blend baseline
(:func:`baselines.runner.run.registry`, ``blend``) is such a vote of the two; where
``baselines run`` has already fitted them on the same training rows, it votes
with those fitted models (wrapped in :class:`sklearn.frozen.FrozenEstimator`)
instead of fitting them again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


class SoftVote(ClassifierMixin, _BaseComposition):
    """Average the class probabilities of named classifiers.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The members, each with ``fit`` and ``predict_proba``. A member wrapped in
        :class:`~sklearn.frozen.FrozenEstimator` is used as it was fitted; the
        others are cloned and fitted on the blend's training rows. Nested
        parameters go through the member's name (``cnn1d__epochs``). A member set
        to ``"drop"`` (``set_params(xgboost="drop")``, as in scikit-learn's
        :class:`~sklearn.ensemble.VotingClassifier`) is neither fitted nor asked.
    weights : sequence of float, optional
        One non-negative weight per member, dropped ones included (their weight is
        ignored); not all zero among the others. Default: equal.
    verbose : int, default=0
        Passed to the members that have an integer ``verbose`` (the CNN's
        progress bar) before they are fitted.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members, in the order of ``estimators``, the dropped ones left out.
    classes_ : ndarray
        The labels of the training rows, sorted; ``predict_proba``'s columns.
    n_features_in_ : int
        Pattern points seen in ``fit``.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = [[0.0], [0.2], [0.8], [1.0]], ["a", "a", "b", "b"]
    >>> vote = SoftVote([("prior", DummyClassifier()), ("linear", LogisticRegression())])
    >>> vote.fit(X, y).predict([[0.9]]).tolist()
    ['b']
    """

    def __init__(self, estimators: list[tuple[str, Any]], weights: Any = None,
                 verbose: int = 0) -> None:  # fmt: skip
        self.estimators = estimators
        self.weights = weights
        self.verbose = verbose

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters, the members' own ones as ``<name>__<parameter>`` when ``deep``."""
        params: dict[str, Any] = self._get_params("estimators", deep=deep)
        return params

    def set_params(self, **params: Any) -> SoftVote:
        """Set parameters, a member (``cnn1d=...``) or a member's (``cnn1d__epochs=10``)."""
        self._set_params("estimators", **params)
        return self

    def _checked_weights(self) -> np.ndarray:
        """The weights of the members that are not dropped, in their order."""
        if not self.estimators:
            raise ValueError("SoftVote needs at least one (name, estimator) member")
        names = [name for name, _ in self.estimators]
        self._validate_names(names)  # unique, no "__", not a parameter name
        odd = [f"{name}={member!r}" for name, member in self.estimators
               if isinstance(member, str) and not is_dropped(member)]  # fmt: skip
        if odd:
            raise ValueError(f"a member is an estimator or 'drop', not {', '.join(odd)}")
        kept = np.array([not is_dropped(member) for _, member in self.estimators])
        if not kept.any():
            raise ValueError(f"every member of the vote is dropped: {', '.join(names)}")
        if self.weights is None:
            return np.ones(int(kept.sum()))
        weights = np.asarray(self.weights, dtype=float)
        if weights.shape != (len(names),) or not np.isfinite(weights).all() \
                or (weights < 0).any() or weights[kept].sum() == 0:  # fmt: skip
            raise ValueError(
                f"weights must be {len(names)} non-negative numbers, not all zero among "
                f"the members kept (one per member: {', '.join(names)}); got {self.weights!r}"
            )
        kept_weights: np.ndarray = weights[kept]
        return kept_weights

    def fit(self, X: Any, y: Any, **fit_params: Any) -> SoftVote:
        """Fit the members that are not frozen on ``X``, ``y``.

        Parameters
        ----------
        X, y : array-like
        **fit_params
            ``<member>__<parameter>``: passed to that member's ``fit``
            (``search-match__match__groups=groups``); ignored by frozen and
            dropped members.

        Raises
        ------
        ValueError
            If there is no member (or every one is dropped), names repeat, the
            weights do not fit the members, a fit parameter names no member, or a
            frozen member knows labels that ``y`` does not have.
        """
        self._checked_weights()
        names = [name for name, _ in self.estimators]
        routed: dict[str, dict[str, Any]] = {name: {} for name in names}
        for key, value in fit_params.items():
            name, _, param = key.partition("__")
            if name not in routed or not param:
                raise ValueError(f"fit parameter {key!r} is not <member>__<parameter> for a "
                                 f"member of the vote ({', '.join(names)})")  # fmt: skip
            routed[name][param] = value
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        fitted = []
        for name, member in self.estimators:
            if is_dropped(member):
                continue
            if not isinstance(member, FrozenEstimator):
                member = clone(member)
                verbose = getattr(member, "verbose", None)
                if isinstance(verbose, int) and not isinstance(verbose, bool):
                    member.set_params(verbose=self.verbose)
            member = member.fit(X, y, **routed[name])
            unknown = np.setdiff1d(member.classes_, self.classes_)
            if unknown.size:
                raise ValueError(
                    f"member {name!r} predicts labels that the training rows do not have: "
                    f"{', '.join(map(str, unknown[:5]))}; was it fitted on other rows?"
                )
            fitted.append(member)
        self.estimators_ = fitted
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The weighted mean of the members' probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False)
        weights = self._checked_weights()
        total = None
        for weight, member in zip(weights, self.estimators_, strict=True):
            proba = member.predict_proba(X)
            # A member may know fewer labels (a frozen one): its columns go to theirs.
            aligned = np.zeros((proba.shape[0], len(self.classes_)))
            aligned[:, np.searchsorted(self.classes_, member.classes_)] = proba
            total = weight * aligned if total is None else total + weight * aligned
        assert total is not None  # _checked_weights refuses an empty list
        mean: np.ndarray = total / weights.sum()
        return mean

    def predict(self, X: Any) -> np.ndarray:
        """The label of highest mean probability."""
        check_is_fitted(self, "estimators_")
        labels: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return labels


def is_dropped(member: Any) -> bool:
    """Whether a vote's member is scikit-learn's ``"drop"`` (left out of the vote).

    Examples
    --------
    >>> is_dropped("drop"), is_dropped("passthrough"), is_dropped(None)
    (True, False, False)
    """
    return isinstance(member, str) and member == "drop"
