"""Copied submissions: pairs of teams whose wrong answers agree more than chance allows.

Two teams that share predictions (or one student with two accounts) are invisible
on any board. Agreement on *right* answers says little (both models are good);
agreement on the same *wrong* label is the evidence, as in the answer-copying
indices of exam proctoring.

The statistic
-------------
For two submissions *a* and *b* on the same test rows, take the rows both get
wrong (``both_wrong``) and count those where they give the same wrong label
(``same_wrong``). The *shared-error share* is

    kappa = (same_wrong - expected) / (both_wrong - expected),

where ``expected`` is the count if, on a row of true class *y* that both get wrong,
each team drew its wrong label independently from its own confusions on class *y*
(its per-class accuracy and error pattern, estimated from the submission itself):
``pi(y) = sum over l != y of q_a(l | y) q_b(l | y)``. kappa is 0 for teams whose
wrong answers are independent given the true class and 1 for a copy.

The null model
--------------
Independent models trained on the same data are *not* independent given the class:
the same hard patterns fool them the same way (measured on the demo build: a forest,
an SVM and XGBoost share 31-39 % of their errors beyond the class-conditional
expectation). The null hypothesis is therefore that the two teams share at most a
share ``kappa0`` of their errors: on each row both get wrong, with probability
``kappa0`` the row makes them err alike, otherwise they draw independently, so

    same_wrong ~ sum over classes y of Binomial(both_wrong(y), kappa0 + (1 - kappa0) pi(y)).

The p-value is that distribution's upper tail at the observed count (exact, by
convolving the binomials, up to :data:`EXACT_LIMIT` jointly wrong rows; a normal
approximation with a continuity correction above). A pair is flagged when the
p-value times the number of submission pairs compared (Bonferroni) is below
``alpha``. Identical files from two teams are flagged whatever the statistic.

Pure functions on label codes: :mod:`scoring.leaderboard` feeds them the stored
submissions (``xrd-bravais integrity``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

SHARED_ERRORS: Final = 0.6
"""Default ``kappa0``: the share of errors two independent teams may share. Above the
largest share measured between independent reference models (0.39, a forest and
XGBoost on the demo build) and below a copy with 5 % of rows changed (0.95)."""

ALPHA: Final = 0.01
"""Default family-wise error rate of the flags (Bonferroni over the pairs compared)."""

EXACT_LIMIT: Final = 5000
"""Up to this many jointly wrong rows the p-value is exact; a normal approximation above."""

COLUMNS: Final = (
    "team_a", "team_b", "submission_a", "submission_b", "rows", "accuracy_a", "accuracy_b",
    "agreement", "both_wrong", "same_wrong", "expected_same_wrong", "shared_errors",
    "p_value", "p_adjusted", "identical_file", "flagged", "baseline_pair",
)  # fmt: skip
"""The columns of :func:`integrity_report`."""


@dataclass(frozen=True)
class PairEvidence:
    """The evidence of copying between two submissions.

    Attributes
    ----------
    both_wrong : int
        Rows both submissions get wrong.
    same_wrong : int
        Of those, rows where they give the same wrong label.
    expected_same_wrong : float
        ``same_wrong`` expected if their wrong labels were independent given the
        true class.
    shared_errors : float
        ``kappa``: the share of errors shared beyond that expectation (0 to 1; NaN
        when nothing is both wrong).
    p_value : float
        Upper tail of ``same_wrong`` under the null of at most ``kappa0`` shared errors.
    """

    both_wrong: int
    same_wrong: int
    expected_same_wrong: float
    shared_errors: float
    p_value: float


def wrong_label_distributions(
    predictions: npt.ArrayLike, truth: npt.ArrayLike, n_labels: int
) -> npt.NDArray[np.float64]:
    """Per true class, how a submission's wrong answers spread over the other labels.

    Returns
    -------
    numpy.ndarray
        ``(n_labels, n_labels)``: row *y* is ``q(l | y, wrong)``, zero on the
        diagonal; a row of zeros where the submission never errs on class *y*.
    """
    pred = np.asarray(predictions, dtype=np.int64)
    true = np.asarray(truth, dtype=np.int64)
    counts = np.zeros((n_labels, n_labels), dtype=np.float64)
    np.add.at(counts, (true, pred), 1.0)
    np.fill_diagonal(counts, 0.0)
    totals = counts.sum(axis=1, keepdims=True)
    shares: npt.NDArray[np.float64] = np.divide(
        counts, totals, out=np.zeros_like(counts), where=totals > 0
    )
    return shares


def shared_error_test(
    pred_a: npt.ArrayLike,
    pred_b: npt.ArrayLike,
    truth: npt.ArrayLike,
    n_labels: int,
    shared: float = SHARED_ERRORS,
) -> PairEvidence:
    """Test whether two submissions share more than ``shared`` of their errors.

    Parameters
    ----------
    pred_a, pred_b, truth : array-like of int
        Label codes of the same rows.
    n_labels : int
    shared : float
        ``kappa0`` of the null model (see the module's documentation).

    Returns
    -------
    PairEvidence

    Examples
    --------
    >>> truth = [0, 0, 0, 1, 1, 1, 2, 2, 2] * 20
    >>> copy = [1, 2, 0, 2, 0, 1, 0, 1, 2] * 20
    >>> evidence = shared_error_test(copy, copy, truth, 3)
    >>> evidence.both_wrong, evidence.same_wrong, evidence.expected_same_wrong
    (120, 120, 60.0)
    >>> evidence.shared_errors, evidence.p_value < 1e-6
    (1.0, True)
    """
    a = np.asarray(pred_a, dtype=np.int64)
    b = np.asarray(pred_b, dtype=np.int64)
    true = np.asarray(truth, dtype=np.int64)
    both = (a != true) & (b != true)
    per_class = np.bincount(true[both], minlength=n_labels)
    same = int((both & (a == b)).sum())
    pi = (wrong_label_distributions(a, true, n_labels)
          * wrong_label_distributions(b, true, n_labels)).sum(axis=1)  # fmt: skip
    return _evidence(per_class, pi, same, shared)


def _evidence(
    per_class: npt.NDArray[np.int64], pi: npt.NDArray[np.float64], same: int, shared: float
) -> PairEvidence:
    both = int(per_class.sum())
    expected = float((per_class * pi).sum())
    kappa = (same - expected) / (both - expected) if both - expected > 1e-9 else float("nan")
    p = upper_tail(per_class, shared + (1.0 - shared) * pi, same)
    return PairEvidence(both, same, expected, float(kappa), p)


def upper_tail(
    trials: npt.ArrayLike, probabilities: npt.ArrayLike, observed: int
) -> float:
    """``P(X >= observed)`` for X a sum of independent binomials ``Binomial(n_i, p_i)``.

    Exact (the binomials convolved) up to :data:`EXACT_LIMIT` trials in all; a normal
    approximation with a continuity correction above.

    Examples
    --------
    >>> round(upper_tail([10], [0.5], 8), 4)  # 56 / 1024
    0.0547
    """
    n = np.asarray(trials, dtype=np.int64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    if observed <= 0:
        return 1.0
    total = int(n.sum())
    if observed > total:
        return 0.0
    if total <= EXACT_LIMIT:
        pmf = np.ones(1)
        for trials_i, p_i in zip(n, p, strict=True):
            if trials_i > 0:
                pmf = np.convolve(pmf, _binomial_pmf(int(trials_i), float(p_i)))
        return float(min(1.0, pmf[observed:].sum()))
    mean = float((n * p).sum())
    sd = math.sqrt(max(float((n * p * (1 - p)).sum()), 1e-12))
    return 0.5 * math.erfc((observed - 0.5 - mean) / (sd * math.sqrt(2)))


def _binomial_pmf(n: int, p: float) -> npt.NDArray[np.float64]:
    k = np.arange(n + 1)
    if p <= 0.0 or p >= 1.0:
        edge: npt.NDArray[np.float64] = (k == (0 if p <= 0.0 else n)).astype(np.float64)
        return edge
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    log_pmf = (log_factorial[n] - log_factorial[k] - log_factorial[n - k]
               + k * math.log(p) + (n - k) * math.log1p(-p))  # fmt: skip
    pmf: npt.NDArray[np.float64] = np.exp(log_pmf)
    return pmf


def integrity_report(
    predictions: Mapping[int, npt.ArrayLike],
    teams: Mapping[int, str],
    truth: npt.ArrayLike,
    n_labels: int,
    *,
    baselines: Sequence[str] = (),
    files: Mapping[int, str] | None = None,
    shared: float = SHARED_ERRORS,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Every pair of teams, with the most suspicious pair of their submissions.

    Parameters
    ----------
    predictions : mapping of submission id to label codes
        Every submission compared, each in the same row order as ``truth``.
    teams : mapping of submission id to team name
    truth : array-like of int
    n_labels : int
    baselines : sequence of str
        Teams that are the organisers' reference models: pairs of two baselines are
        reported (``baseline_pair``: how much independent models share) but never
        flagged.
    files : mapping of submission id to sha256, optional
        Identical files from two teams are flagged whatever the statistic.
    shared, alpha : float
        ``kappa0`` of the null model, and the family-wise error rate of the flags.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, one row per pair of teams, most suspicious first.
    """
    ids = [int(i) for i in predictions]
    if not 0.0 <= shared < 1.0:
        raise ValueError(f"the null model's shared-error share must be in [0, 1), got {shared}")
    true = np.asarray(truth, dtype=np.int64)
    pred = np.stack([np.asarray(predictions[i], dtype=np.int64) for i in ids]) if ids else (
        np.zeros((0, true.size), dtype=np.int64))  # fmt: skip
    owner = np.array([teams[i] for i in ids], dtype=object)
    pairs = _pair_statistics(pred, true, n_labels)
    cross = owner[:, None] != owner[None, :]
    n_tests = int(np.triu(cross, 1).sum())
    rows = []
    for team_a, team_b in _team_pairs(owner):
        ia = np.flatnonzero(owner == team_a)
        ib = np.flatnonzero(owner == team_b)
        best = _most_suspicious(pairs, ia, ib, shared)
        i, j = int(ia[best[0]]), int(ib[best[1]])
        per_class = pairs["per_class"][:, i, j].astype(np.int64)
        evidence = _evidence(per_class, pairs["pi"][:, i, j], int(pairs["same"][i, j]), shared)
        identical = files is not None and files.get(ids[i]) == files.get(ids[j])
        baseline_pair = team_a in baselines and team_b in baselines
        p_adjusted = min(1.0, evidence.p_value * max(n_tests, 1))
        rows.append({
            "team_a": team_a, "team_b": team_b, "submission_a": ids[i], "submission_b": ids[j],
            "rows": int(true.size),
            "accuracy_a": float((pred[i] == true).mean()),
            "accuracy_b": float((pred[j] == true).mean()),
            "agreement": float((pred[i] == pred[j]).mean()),
            "both_wrong": evidence.both_wrong, "same_wrong": evidence.same_wrong,
            "expected_same_wrong": evidence.expected_same_wrong,
            "shared_errors": evidence.shared_errors,
            "p_value": evidence.p_value, "p_adjusted": p_adjusted,
            "identical_file": bool(identical),
            "flagged": (not baseline_pair) and (bool(identical) or p_adjusted < alpha),
            "baseline_pair": baseline_pair,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if frame.empty:
        return frame
    frame = frame.sort_values(["flagged", "p_value", "shared_errors"],
                              ascending=[False, True, False], kind="stable")  # fmt: skip
    return frame.reset_index(drop=True)


def _team_pairs(owner: npt.NDArray[np.object_]) -> list[tuple[str, str]]:
    names = list(dict.fromkeys(str(t) for t in owner))
    return [(a, b) for k, a in enumerate(names) for b in names[k + 1:]]


def _pair_statistics(
    pred: npt.NDArray[np.int64], true: npt.NDArray[np.int64], n_labels: int
) -> dict[str, npt.NDArray[np.float64]]:
    """Jointly wrong rows per class, same wrong labels and ``pi``, for every pair at once.

    ``pi`` is the class-conditional chance of the same wrong label.

    Matrix products over the rows (one per class and one per label), so a few
    hundred submissions of a few thousand rows take seconds.
    """
    m = pred.shape[0]
    classes = np.unique(true)  # only the classes the rows hold (a few of 230 space groups)
    wrong = (pred != true[None, :]).astype(np.float32)
    per_class = np.zeros((classes.size, m, m), dtype=np.float32)
    for k, label in enumerate(classes):
        block = wrong[:, true == label]
        per_class[k] = block @ block.T
    same = np.zeros((m, m), dtype=np.float64)
    for label in np.unique(pred):
        said = wrong * (pred == label)
        same += said @ said.T
    q = np.stack([wrong_label_distributions(p, true, n_labels)[classes] for p in pred]) if m else (
        np.zeros((0, classes.size, n_labels)))  # fmt: skip
    # pi[y, i, j] = sum over l of q_i(l | y) q_j(l | y)
    pi = np.einsum("iyl,jyl->yij", q, q, optimize=True).astype(np.float32)
    return {"per_class": per_class, "same": same, "pi": pi}


def _most_suspicious(
    pairs: dict[str, npt.NDArray[np.float64]], ia: npt.NDArray[np.intp],
    ib: npt.NDArray[np.intp], shared: float,
) -> tuple[int, int]:  # fmt: skip
    """The pair of submissions with the largest z-score of shared errors under the null.

    Positions in ``ia`` and ``ib``.
    """
    per_class = pairs["per_class"][:, ia][:, :, ib]
    pi = pairs["pi"][:, ia][:, :, ib]
    null = shared + (1.0 - shared) * pi
    mean = (per_class * null).sum(axis=0)
    sd = np.sqrt(np.maximum((per_class * null * (1 - null)).sum(axis=0), 1e-12))
    z = (pairs["same"][np.ix_(ia, ib)] - mean) / sd
    # Pairs with nothing both wrong carry no evidence.
    z = np.where(per_class.sum(axis=0) > 0, z, -np.inf)
    flat = int(np.argmax(z))
    return divmod(flat, len(ib))
