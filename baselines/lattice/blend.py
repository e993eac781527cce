"""Votes of several classifiers: a soft vote, and a log-linear pool fitted on held-out rows.

The 1D-CNN reads the pattern as a picture of peaks; XGBoost reads pooled
intensities and the positions of the strongest peaks. They err on different
patterns, so the mean of their probabilities is right more often than either
(measured in ``docs/figures.md``, "Seeds and the blend"). The blend baselines
(:func:`baselines.runner.run.registry`) combine such members: ``blend-realism`` is
an equal vote of three, ``blend`` a pool of the two (:class:`LogPool`). Where
``baselines run`` has already fitted the members on the same training rows, a blend
votes with those fitted models (wrapped in :class:`sklearn.frozen.FrozenEstimator`)
instead of fitting them again.

Where one member is much the stronger (XGBoost over the CNN on a small build), an
equal vote lets the weaker one pull it down: the demo's equal vote scored under
XGBoost alone. :class:`LogPool`, the ``blend`` baseline's vote, multiplies the
members' probabilities, each raised to an exponent learned from training rows the
members did not see, so the stronger member weighs more.
"""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

POOL_FLOOR: Final = 1e-4
"""The least probability a log-linear pool takes a member to give a class.

A member's zero would otherwise veto a class whatever the others say. On the
whole-archive build the pools' simulated figures move by at most 0.6 points between
floors of 1e-2 and 1e-6, their real ones by at most 1.3 (``benchmarks.blend_weights``).
"""


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
    centring : CentringCheck, optional
        Applied to the mean probabilities: the lattice that indexing the peaks
        shows, its cells tried first in the system the vote chose
        (:class:`baselines.lattice.indexing.CentringCheck`). Default: none.

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
                 verbose: int = 0, centring: Any = None) -> None:  # fmt: skip
        self.estimators = estimators
        self.weights = weights
        self.verbose = verbose
        self.centring = centring

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
        kept = self._kept()
        if self.weights is None:
            return np.ones(int(kept.sum()))
        names = [name for name, _ in self.estimators]
        weights = np.asarray(self.weights, dtype=float)
        if weights.shape != (len(names),) or not np.isfinite(weights).all() \
                or (weights < 0).any() or weights[kept].sum() == 0:  # fmt: skip
            raise ValueError(
                f"weights must be {len(names)} non-negative numbers, not all zero among "
                f"the members kept (one per member: {', '.join(names)}); got {self.weights!r}"
            )
        kept_weights: np.ndarray = weights[kept]
        return kept_weights

    def _kept(self) -> np.ndarray:
        """Which members are not dropped, after checking the list of members."""
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
        return kept

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
            aligned = aligned_proba(member, X, self.classes_)
            total = weight * aligned if total is None else total + weight * aligned
        assert total is not None  # _checked_weights refuses an empty list
        mean: np.ndarray = total / weights.sum()
        if self.centring is not None:
            mean = self.centring.refine(X, mean, self.classes_)
        return mean

    def predict(self, X: Any) -> np.ndarray:
        """The label of highest mean probability."""
        check_is_fitted(self, "estimators_")
        labels: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return labels


class LogPool(SoftVote):
    """A log-linear pool of classifiers, its exponents learned on held-out training rows.

    The pool scores each class by ``sum_m w_m log p_m`` (the product of the
    members' probabilities, each raised to its exponent ``w_m >= 0``, each
    probability floored at ``floor``) and gives the softmax of the scores. The
    exponents minimise the cross-entropy of that softmax on a held-out part of the
    training rows (whole compounds where :meth:`fit` is given them), as predicted by
    clones of the members fitted on the rest (:func:`pool_exponents`). The members
    that then vote are fitted on every training row, or used as they were fitted
    where they are wrapped in :class:`~sklearn.frozen.FrozenEstimator`: a fit costs
    one more fit of each member, on the rest.

    Parameters
    ----------
    estimators : list of (str, estimator)
        As for :class:`SoftVote`; ``"drop"`` leaves a member out.
    validation_fraction : float, default=0.2
        About this share of the training rows is held out to learn the exponents
        (one fold of ``round(1 / validation_fraction)``, stratified by label).
    floor : float, default=POOL_FLOOR
        The least probability taken from a member.
    verbose : int, default=0
        Passed to the members that have an integer ``verbose``.
    random_state : int, default=0
        Seeds the held-out fold.

    Attributes
    ----------
    exponents_ : ndarray of shape (n_members_kept,)
        The learned exponents, in the order of ``estimators_``.
    n_held_out_ : int
        Training rows held out to learn them.
    estimators_, classes_, n_features_in_
        As for :class:`SoftVote`.

    Examples
    --------
    A member that knows the data and one that guesses the prior: the pool learns to
    lean on the first.

    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X = np.arange(40.0).reshape(-1, 1); y = np.where(X[:, 0] < 20, "a", "b")
    >>> pool = LogPool([("near", KNeighborsClassifier(3)), ("prior", DummyClassifier())])
    >>> pool = pool.fit(X, y)
    >>> bool(pool.exponents_[0] > pool.exponents_[1]), pool.predict([[5.0], [35.0]]).tolist()
    (True, ['a', 'b'])
    """

    def __init__(self, estimators: list[tuple[str, Any]], validation_fraction: float = 0.2,
                 floor: float = POOL_FLOOR, verbose: int = 0,
                 random_state: int = 0) -> None:  # fmt: skip
        self.estimators = estimators
        self.validation_fraction = validation_fraction
        self.floor = floor
        self.verbose = verbose
        self.random_state = random_state

    def _checked_weights(self) -> np.ndarray:
        """Ones for the members kept: the pool's exponents are learned, not given."""
        return np.ones(int(self._kept().sum()))

    def fit(self, X: Any, y: Any, groups: Any = None, **fit_params: Any) -> LogPool:
        """Learn the exponents on held-out rows, then fit (or freeze) the members on all.

        Parameters
        ----------
        X, y : array-like
        groups : array-like of shape (n_rows,), optional
            The compound of each row: the held-out part then holds whole compounds,
            so that no member meets a polymorph of a held-out row in training.
        **fit_params
            ``<member>__<parameter>``, as for :meth:`SoftVote.fit`; a value with one
            entry per training row is cut to the rows of each fit.

        Raises
        ------
        ValueError
            As :meth:`SoftVote.fit`; if ``validation_fraction`` is not in (0, 0.5]
            or ``floor`` not in (0, 1); if ``groups`` is not one entry per row.
        """
        if not 0 < self.validation_fraction <= 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5], "
                             f"got {self.validation_fraction!r}")  # fmt: skip
        if not 0 < self.floor < 1:
            raise ValueError(f"floor must be in (0, 1), got {self.floor!r}")
        self._kept()
        X_checked, y_checked = validate_data(self, X, y)
        check_classification_targets(y_checked)
        y_checked = np.asarray(y_checked)
        held = self._held_out(y_checked, groups)
        rest = ~held
        # The members as they would be fitted now: a frozen one's settings, unfitted.
        fresh = [(name, member if is_dropped(member) else clone(
                     member.estimator if isinstance(member, FrozenEstimator) else member))
                 for name, member in self.estimators]  # fmt: skip
        cut = {key: _rows_of(value, rest, len(y_checked)) for key, value in fit_params.items()}
        part = SoftVote(fresh, verbose=self.verbose).fit(X_checked[rest], y_checked[rest], **cut)
        classes = np.unique(y_checked)
        log_p = np.log(np.stack([
            np.clip(aligned_proba(member, X_checked[held], classes), self.floor, None)
            for member in part.estimators_]))  # fmt: skip
        self.exponents_ = pool_exponents(log_p, np.searchsorted(classes, y_checked[held]))
        self.n_held_out_ = int(held.sum())
        super().fit(X_checked, y_checked, **fit_params)
        return self

    def _held_out(self, y: np.ndarray, groups: Any) -> np.ndarray:
        """A mask of the held-out rows: the first fold of a seeded stratified split."""
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        n_splits = max(2, round(1 / self.validation_fraction))
        order = np.zeros((len(y), 1))
        with warnings.catch_warnings():
            # Labels rarer than the folds (space groups of one row) stay in the rest.
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            if groups is None:
                folds = StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
                _, held = next(folds.split(order, y))
            else:
                groups = np.asarray(groups)
                if groups.shape != (len(y),):
                    raise ValueError(f"groups has {groups.size} entries for {len(y)} rows")
                folds = StratifiedGroupKFold(n_splits, shuffle=True,
                                             random_state=self.random_state)  # fmt: skip
                _, held = next(folds.split(order, y, groups))
        mask = np.zeros(len(y), dtype=bool)
        mask[held] = True
        return mask

    def predict_proba(self, X: Any) -> np.ndarray:
        """The softmax of the members' floored log-probabilities weighed by ``exponents_``."""
        from scipy.special import softmax

        check_is_fitted(self, "exponents_")
        X = validate_data(self, X, reset=False)
        score = np.zeros((len(X), len(self.classes_)))
        for exponent, member in zip(self.exponents_, self.estimators_, strict=True):
            if exponent > 0:  # a member the pool ignores is not asked
                proba = aligned_proba(member, X, self.classes_)
                score += exponent * np.log(np.clip(proba, self.floor, None))
        result: np.ndarray = softmax(score, axis=1)
        return result


def pool_exponents(log_probabilities: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The exponents of a log-linear pool fitted to ``codes`` by cross-entropy.

    The pool scores a row's classes by ``sum_m w_m * log p_m`` (the product of the
    members' probabilities, each raised to its exponent ``w_m >= 0``) and predicts
    the best; the exponents minimise the mean cross-entropy of its softmax.

    Parameters
    ----------
    log_probabilities : ndarray of shape (n_members, n_rows, n_classes)
        Each member's log-probabilities (finite: floor them first).
    codes : ndarray of shape (n_rows,)
        The true class of each row, as a column index.

    Returns
    -------
    ndarray of shape (n_members,)

    Examples
    --------
    A member that is always right and one that guesses at random:

    >>> rng = np.random.default_rng(0)
    >>> codes = rng.integers(0, 3, 200)
    >>> right = np.full((200, 3), 0.2); right[np.arange(200), codes] = 0.6
    >>> guess = rng.dirichlet(np.ones(3), 200)
    >>> w = pool_exponents(np.log(np.stack([right, guess])), codes)
    >>> bool(w[0] > 10 * w[1])
    True
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    rows = np.arange(len(codes))

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        log_q = log_softmax(np.tensordot(weights, log_probabilities, axes=1), axis=1)
        residual = np.exp(log_q)
        residual[rows, codes] -= 1.0
        gradient = np.einsum("mrc,rc->m", log_probabilities, residual) / len(codes)
        return float(-log_q[rows, codes].mean()), gradient

    n_members = len(log_probabilities)
    found = minimize(loss, np.ones(n_members), jac=True, method="L-BFGS-B",
                     bounds=[(0.0, None)] * n_members)  # fmt: skip
    return np.asarray(found.x)


def aligned_proba(member: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """``member``'s probabilities on ``X`` in the columns of ``classes`` (0 where it has none).

    A member may know fewer labels than the vote (a frozen one, or one fitted on
    part of the rows): its columns go to theirs.
    """
    proba = member.predict_proba(X)
    aligned = np.zeros((proba.shape[0], len(classes)))
    aligned[:, np.searchsorted(classes, member.classes_)] = proba
    return aligned


def _rows_of(value: Any, rows: np.ndarray, n_rows: int) -> Any:
    """``value`` cut to ``rows`` where it has one entry per training row, else as it is."""
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != n_rows:
        return value
    return np.asarray(value)[rows]


def is_dropped(member: Any) -> bool:
    """Whether a vote's member is scikit-learn's ``"drop"`` (left out of the vote).

    Examples
    --------
    >>> is_dropped("drop"), is_dropped("passthrough"), is_dropped(None)
    (True, False, False)
    """
    return isinstance(member, str) and member == "drop"
