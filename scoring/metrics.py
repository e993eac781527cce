"""Classification metrics on a pinned label set, computed from the confusion matrix.

Everything here needs only numpy. Labels are integer codes ``0 .. K-1`` into the
track's label tuple; the confusion matrix is always ``K x K``, so a class nobody
predicted counts as zero instead of vanishing. A class that is absent from both
the answer key and the predictions of a portion has no defined recall or F1: it
is reported as NaN and left out of the macro averages, exactly as scikit-learn's
``f1_score(..., labels=LABELS, average="macro", zero_division=np.nan)`` and
``balanced_accuracy_score`` do. Names ending in ``_score`` mean higher is better.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from xrd_bravais.contract.references import reference_scores

__all__ = [
    "Scores", "accuracy_score", "balanced_accuracy_score", "bootstrap_interval",
    "confusion_matrix", "macro_f1_score", "per_class_recall", "reference_scores",
    "wilson_interval",
]  # fmt: skip

N_BOOTSTRAP: Final = 1000
"""Bootstrap resamples for the macro-F1 interval: enough for two stable decimals."""
CONFIDENCE: Final = 0.95

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, n_labels: int) -> IntArray:
    """Counts ``C[i, j]`` of rows with true code ``i`` predicted as code ``j``.

    Parameters
    ----------
    y_true, y_pred : array of int
        Label codes in ``0 .. n_labels - 1``, one per row.
    n_labels : int
        Size of the pinned label set.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
    [[1, 0], [1, 1]]
    """
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} rows but y_pred has {pred.size}")
    flat = np.bincount(true * n_labels + pred, minlength=n_labels * n_labels)
    return flat.reshape(n_labels, n_labels).astype(np.int64)


def _divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_recall(cm: npt.ArrayLike) -> FloatArray:
    """Recall of each class (NaN where the class has no true rows)."""
    c = np.asarray(cm, dtype=np.float64)
    return _divide(np.diagonal(c).copy(), c.sum(axis=-1))


def per_class_f1(cm: npt.ArrayLike) -> FloatArray:
    """F1 of each class, ``2 tp / (2 tp + fp + fn)``; NaN if absent from both sides.

    Works on one matrix ``(K, K)`` or a stack ``(B, K, K)``.
    """
    c = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    denominator = c.sum(axis=-1) + c.sum(axis=-2)  # 2 tp + fp + fn
    return _divide(2 * tp, denominator)


def accuracy_score(cm: npt.ArrayLike) -> float:
    """Share of rows predicted correctly (NaN for no rows)."""
    c = np.asarray(cm)
    total = c.sum()
    return float(np.trace(c) / total) if total else float("nan")


def macro_f1_score(cm: npt.ArrayLike) -> float:
    """Unweighted mean of the per-class F1 over the classes present on either side."""
    f1 = per_class_f1(cm)
    return float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan")


def balanced_accuracy_score(cm: npt.ArrayLike) -> float:
    """Mean recall over the classes present in the answer key."""
    recall = per_class_recall(cm)
    return float(np.nanmean(recall)) if np.isfinite(recall).any() else float("nan")


def wilson_interval(
    n_correct: int, n: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    r"""Wilson score interval of an accuracy of ``n_correct`` out of ``n`` rows.

    The rows of a test portion are a sample of the crystals a model could meet, so
    the number it gets right is binomial, and its accuracy ``p = k / n`` has the
    interval

    .. math:: \frac{p + z^2/2n \pm z \sqrt{p(1-p)/n + z^2/4n^2}}{1 + z^2/n}

    with ``z`` the normal quantile of the confidence. Unlike a percentile
    bootstrap, it keeps its nominal coverage on small portions and never collapses
    to a point (14 of 21 correct: [45.4, 82.8] %; 0 of 21: [0, 15.5] %).

    Parameters
    ----------
    n_correct, n : int
        Correct rows and rows scored.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    tuple of float
        ``(low, high)`` in [0, 1]; NaNs when ``n`` is 0.

    Examples
    --------
    >>> tuple(round(v, 3) for v in wilson_interval(14, 21))
    (0.454, 0.828)
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = n_correct / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (max(0.0, float((centre - spread) / denominator)),
            min(1.0, float((centre + spread) / denominator)))  # fmt: skip


BOOTSTRAP_METHODS: Final = ("bca", "percentile")
"""Bootstrap intervals: bias-corrected and accelerated with expanded levels (the
default), or plain percentiles."""


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12))


def _normal_cdf(z: float) -> float:
    from statistics import NormalDist

    return NormalDist().cdf(z)


def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile by the Cornish-Fisher expansion in ``1/df`` (numpy only).

    Within 0.3 % of the exact value at the 97.5 % point for ``df >= 5``.
    """
    z = _normal_quantile(p)
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))  # fmt: skip


def _cell_scores(
    draws: npt.NDArray[np.int64], rows: IntArray, cols: IntArray, n_labels: int
) -> tuple[FloatArray, FloatArray]:
    """Accuracy and macro-F1 of confusion matrices given as counts of the cells ``rows, cols``.

    ``draws`` has one matrix per row (its counts in the order of the cells).
    """
    n = draws.shape[0]
    tp = np.zeros((n, n_labels), dtype=np.int64)
    actual = np.zeros((n, n_labels), dtype=np.int64)
    predicted = np.zeros((n, n_labels), dtype=np.int64)
    for j, (r, q) in enumerate(zip(rows, cols, strict=True)):
        actual[:, r] += draws[:, j]
        predicted[:, q] += draws[:, j]
        if r == q:
            tp[:, r] = draws[:, j]
    totals = np.maximum(draws.sum(axis=1), 1)
    accuracy = tp.sum(axis=1) / totals
    f1 = _divide((2 * tp).astype(np.float64), (actual + predicted).astype(np.float64))
    # A class drawn on neither side of a resample has no F1 there (NaN), as in the
    # metric itself; average over the classes present in each resample.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no class at all
        macro_f1 = np.nanmean(np.where(np.isfinite(f1), f1, np.nan), axis=1)
    return accuracy, macro_f1


def _bca_levels(
    boot: FloatArray, estimate: float, jackknife: FloatArray, weights: FloatArray,
    total: int, confidence: float,
) -> tuple[float, float]:  # fmt: skip
    """The two quantile levels of the BCa interval, with expanded nominal levels.

    Bias correction ``z0`` from the share of resamples below the estimate (ties
    count half); acceleration ``a`` from the jackknife (one row left out of each
    cell, weighted by the cell's count); the nominal normal point is widened to
    ``sqrt(n / (n - 1)) t_{n-1}`` (Hesterberg's expanded percentile), which is what
    brings the coverage to its nominal level on portions of 40-150 rows.
    """
    below = float(np.mean(boot < estimate) + 0.5 * np.mean(boot == estimate))
    z0 = _normal_quantile(below)
    mean = float(np.sum(weights * jackknife) / np.sum(weights))
    d = mean - jackknife
    spread = float(np.sum(weights * d**2))
    a = float(np.sum(weights * d**3)) / (6 * spread**1.5) if spread > 0 else 0.0
    alpha = (1 - confidence) / 2
    z = np.sqrt(total / (total - 1)) * _t_quantile(1 - alpha, total - 1) if total > 1 \
        else _normal_quantile(1 - alpha)  # fmt: skip
    levels = []
    for point in (-z, z):
        shifted = z0 + point
        levels.append(_normal_cdf(z0 + shifted / (1 - a * shifted)) if 1 - a * shifted > 0
                      else (0.0 if point < 0 else 1.0))  # fmt: skip
    return levels[0], levels[1]


def bootstrap_interval(
    cm: npt.ArrayLike,
    n_resamples: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    method: str = "bca",
) -> dict[str, tuple[float, float]]:
    """Bootstrap interval of accuracy and macro-F1, resampling rows.

    Resampling the ``n`` rows of a portion with replacement gives a multinomial
    draw of ``n`` over the cells of its confusion matrix; drawing those counts
    directly is the same bootstrap at a cost independent of the number of rows.
    The class counts vary between resamples, as they would between test sets (a
    bootstrap stratified by class holds them fixed and comes out too narrow).
    Scores use it for macro-F1, which has no closed form; accuracy has the Wilson
    interval (:func:`wilson_interval`).

    ``method="percentile"`` takes the resamples' quantiles; it covers the true
    macro-F1 only 92-93 % of the time at 40-150 rows (nominal 95 %) and collapses
    to a point on a perfect portion. The default ``"bca"`` corrects the quantiles
    for bias and skew (BCa, Efron 1987) at expanded nominal levels (Hesterberg
    2015): 94-96 % at those sizes (``tests/test_metrics.py`` simulates it). When
    every resample scores the same (a portion with no error, or one class
    only), no resample can show the errors the portion did not make, and the
    interval is the Wilson interval of its accuracy, a floor on how sure one can be.

    Parameters
    ----------
    cm : array (K, K)
        Confusion matrix of the portion.
    n_resamples : int
        Bootstrap replicates.
    confidence : float
        Coverage of the interval.
    seed : int
        Seed of the random generator; the same seed gives the same interval.
    method : {"bca", "percentile"}

    Returns
    -------
    dict
        ``{"accuracy": (low, high), "macro_f1": (low, high)}``; NaNs for an empty matrix.
    """
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(BOOTSTRAP_METHODS)}")
    c = np.asarray(cm, dtype=np.int64)
    total = int(c.sum())
    if total == 0:
        nan = (float("nan"), float("nan"))
        return {"accuracy": nan, "macro_f1": nan}
    rng = np.random.default_rng(seed)
    n_labels = c.shape[0]
    # Draw over the non-zero cells only: the cost grows with them, not with K x K.
    rows, cols = np.nonzero(c)
    counts = c[rows, cols]
    draws = rng.multinomial(total, counts / total, size=n_resamples)
    boot = dict(zip(("accuracy", "macro_f1"), _cell_scores(draws, rows, cols, n_labels),
                    strict=True))  # fmt: skip
    estimates = {"accuracy": accuracy_score(c), "macro_f1": macro_f1_score(c)}
    # One row left out of each cell in turn: the jackknife of the acceleration.
    jackknife = dict(zip(("accuracy", "macro_f1"),
                         _cell_scores(counts[None, :] - np.eye(len(counts), dtype=np.int64),
                                      rows, cols, n_labels), strict=True))  # fmt: skip
    alpha = (1 - confidence) / 2
    out = {}
    for name, values in boot.items():
        if method == "percentile":
            low, high = np.quantile(values, [alpha, 1 - alpha])
        elif np.ptp(values) == 0 or not np.isfinite(estimates[name]):
            low, high = wilson_interval(int(np.trace(c)), total, confidence)
        else:
            levels = _bca_levels(values, estimates[name], jackknife[name], counts.astype(float),
                                 total, confidence)  # fmt: skip
            low, high = np.quantile(values, levels)
        out[name] = (float(low), float(high))
    return out


@dataclass(frozen=True)
class Scores:
    """Every figure of one submission on one portion of the test set.

    Attributes
    ----------
    n : int
        Rows scored.
    accuracy, macro_f1, balanced_accuracy : float
        The headline metrics (accuracy is the primary one).
    accuracy_ci : tuple of float
        Wilson score 95 % interval of the accuracy (:func:`wilson_interval`).
    macro_f1_ci : tuple of float
        Bootstrap 95 % interval of macro-F1, resampling rows (:func:`bootstrap_interval`).
    recall : tuple of float
        Per-class recall in the track's label order (NaN: class absent).
    confusion : tuple of tuple of int
        ``K x K`` confusion matrix, true classes in rows.
    """

    n: int
    accuracy: float
    macro_f1: float
    balanced_accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1_ci: tuple[float, float]
    recall: tuple[float, ...] = field(repr=False)
    confusion: tuple[tuple[int, ...], ...] = field(repr=False)

    @classmethod
    def from_confusion(cls, cm: npt.ArrayLike, seed: int = 0) -> Scores:
        """Compute every figure from a confusion matrix."""
        c = np.asarray(cm, dtype=np.int64)
        ci = bootstrap_interval(c, seed=seed)
        return cls(
            n=int(c.sum()),
            accuracy=accuracy_score(c),
            macro_f1=macro_f1_score(c),
            balanced_accuracy=balanced_accuracy_score(c),
            accuracy_ci=wilson_interval(int(np.trace(c)), int(c.sum())),
            macro_f1_ci=ci["macro_f1"],
            recall=tuple(float(r) for r in per_class_recall(c)),
            confusion=tuple(tuple(int(v) for v in row) for row in c),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN becomes ``None``)."""

        def clean(value: float) -> float | None:
            return None if np.isnan(value) else value

        return {
            "n": self.n,
            "accuracy": clean(self.accuracy),
            "macro_f1": clean(self.macro_f1),
            "balanced_accuracy": clean(self.balanced_accuracy),
            "accuracy_ci": [clean(v) for v in self.accuracy_ci],
            "macro_f1_ci": [clean(v) for v in self.macro_f1_ci],
            "recall": [clean(v) for v in self.recall],
            "confusion": [list(row) for row in self.confusion],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        """Inverse of :meth:`to_dict`."""

        def num(value: float | None) -> float:
            return float("nan") if value is None else float(value)

        low, high = data["accuracy_ci"]
        f_low, f_high = data["macro_f1_ci"]
        return cls(
            n=int(data["n"]),
            accuracy=num(data["accuracy"]),
            macro_f1=num(data["macro_f1"]),
            balanced_accuracy=num(data["balanced_accuracy"]),
            accuracy_ci=(num(low), num(high)),
            macro_f1_ci=(num(f_low), num(f_high)),
            recall=tuple(num(v) for v in data["recall"]),
            confusion=tuple(tuple(int(v) for v in row) for row in data["confusion"]),
        )

