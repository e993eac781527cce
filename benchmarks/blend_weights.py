"""How much a fitted blend could gain from other weights, and how much no weights can.

A blend baseline votes with fixed weights (``blend-realism``: a
:class:`baselines.lattice.blend.SoftVote`, equal weights) or with exponents learned
on held-out training rows (``blend``: a :class:`baselines.lattice.blend.LogPool`).
This benchmark asks each of its fitted members once for
its class probabilities on every test row of the build, then prints, per portion
(Public, Private and, where the build has them, the portions of real patterns:
Measured, and MeasuredPublic under ``--measured-public-fraction``), the accuracy
and macro-F1 of:

- each member alone, and the blend as fitted (a vote with an indexing check,
  ``centring``, before and after it: every other row is of votes without it);
- the weights that do best on the **Public** rows, among a grid of weights (each
  member 0, 0.5, 1, 1.5 or 2): the weights a student would pick from the public
  board, so their Private and Measured figures are what such tuning earns;
- the best weights of the grid on each portion itself: a ceiling, since they are
  chosen on the rows they are scored on, never a choice to ship;
- a log-linear pool (the product of the members' probabilities, each raised to an
  exponent fitted by cross-entropy) fitted on the Public rows and one fitted on the
  Private rows: a stacker with one free number per member, so each one's figures
  on the *other* hidden portion are what a combiner learned on held-out rows of
  the test's kind would earn;
- the rows on which *any* member is right: what no weighting can exceed.

It reads the hidden labels (``private/solution.csv``): an organiser's tool.

Run from the repository root::

    .venv/bin/xrd-bravais baselines run blend-realism --competition comp
    .venv/bin/python -m benchmarks.blend_weights --competition comp
    .venv/bin/python -m benchmarks.blend_weights --competition comp --track spacegroup
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd

from baselines.data import read_patterns
from baselines.lattice.blend import (
    POOL_FLOOR,
    LogPool,
    SoftVote,
    aligned_proba,
    is_dropped,
    pool_exponents,
)
from baselines.runner.run import load_model
from scoring.metrics import accuracy_score, confusion_matrix, macro_f1_score
from xrd_bravais.contract import layout

GRID_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0)
"""The weights each member may take in the grid."""

def member_probabilities(vote: SoftVote, X: np.ndarray) -> dict[str, np.ndarray]:
    """Each kept member's class probabilities, columns in the vote's ``classes_`` order."""
    names = [name for name, member in vote.estimators if not is_dropped(member)]
    return {name: aligned_proba(member, X, vote.classes_)
            for name, member in zip(names, vote.estimators_, strict=True)}  # fmt: skip


def weight_grid(n_members: int) -> list[tuple[float, ...]]:
    """Every weighting of the grid, one per direction (``(1, 1)`` and ``(2, 2)`` are one).

    Examples
    --------
    >>> grid = weight_grid(2)
    >>> len(grid), grid[:4]
    (13, [(0.0, 0.5), (0.5, 0.0), (0.5, 0.5), (0.5, 1.0)])
    """
    seen, grid = set(), []
    for weights in itertools.product(GRID_WEIGHTS, repeat=n_members):
        total = sum(weights)
        if total == 0:
            continue
        direction = tuple(round(w / total, 6) for w in weights)
        if direction not in seen:
            seen.add(direction)
            grid.append(weights)
    return grid


def scores(truth: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro-F1 (the grader's definitions) of ``predicted`` against ``truth``."""
    codes = {label: i for i, label in enumerate(labels)}
    cm = confusion_matrix([codes[t] for t in truth], [codes[p] for p in predicted], len(labels))
    return accuracy_score(cm), macro_f1_score(cm)


def main() -> None:
    """Print the table of members, weights and the any-member ceiling per portion."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competition", type=Path, required=True)
    parser.add_argument("--track", default=layout.DEFAULT_TRACK_NAME)
    parser.add_argument("--blend", default="blend-realism", help="the fitted blend baseline")
    args = parser.parse_args()

    path = args.competition / layout.BASELINES / args.track / args.blend / "model.pkl"
    vote = load_model(path)["estimator"]
    if not isinstance(vote, SoftVote):
        raise SystemExit(f"{path} holds a {type(vote).__name__}, not a blend (SoftVote)")
    test = read_patterns(args.competition / layout.TEST)
    key = pd.read_csv(args.competition / layout.SOLUTION).set_index(layout.ID)
    column = layout.SPACEGROUP if args.track == "spacegroup" else layout.LATTICE
    truth = key.loc[test.ids, column].to_numpy()
    usage = key.loc[test.ids, layout.USAGE].to_numpy()
    labels = np.union1d(vote.classes_, np.unique(truth))

    start = time.perf_counter()
    members = member_probabilities(vote, test.X)
    print(f"{len(members)} members asked about {len(test.ids):,} test rows in "
          f"{time.perf_counter() - start:.0f} s\n")  # fmt: skip
    names = list(members)
    stacked = np.stack([members[name] for name in names])
    portions = [p for p in layout.ALL_PORTIONS if (usage == p).any()]

    def voted(weights: tuple[float, ...]) -> np.ndarray:
        mean = np.tensordot(np.asarray(weights), stacked, axes=1)
        return np.asarray(vote.classes_[mean.argmax(axis=1)])

    def row(label: str, predicted: np.ndarray) -> str:
        cells = []
        for portion in portions:
            rows = usage == portion
            accuracy, f1 = scores(truth[rows], predicted[rows], labels)
            cells.append(f"{100 * accuracy:.1f} % / {f1:.3f}")
        return f"| {label} | " + " | ".join(cells) + " |"

    print("| predictions | " + " | ".join(f"{p} (accuracy / macro-F1)" for p in portions) + " |")
    print("|---|" + "---:|" * len(portions))
    for i, name in enumerate(names):
        print(row(f"{name} alone", voted(tuple(float(j == i) for j in range(len(names))))))
    if isinstance(vote, LogPool):  # the pool as fitted: exponents from held-out training rows
        pooled = np.tensordot(vote.exponents_, np.log(np.clip(stacked, vote.floor, None)), axes=1)
        shown = ", ".join(f"{w:.2f}" for w in vote.exponents_)
        print(row(f"{args.blend} as fitted: log-linear pool, exponents ({shown}) learned on "
                  f"{vote.n_held_out_:,} held-out training rows",
                  np.asarray(vote.classes_[pooled.argmax(axis=1)])))  # fmt: skip
    else:
        kept = [not is_dropped(member) for _, member in vote.estimators]
        weights = np.ones(len(kept)) if vote.weights is None else np.asarray(vote.weights, float)
        shipped = tuple(float(w) for w, keep in zip(weights, kept, strict=True) if keep)
        check = getattr(vote, "centring", None)
        before = ", before its indexing check" if check is not None else ""
        print(row(f"{args.blend} as fitted, weights {shipped}{before}", voted(shipped)))
        if check is not None:
            mean = np.tensordot(np.asarray(shipped), stacked, axes=1) / sum(shipped)
            checked = check.refine(test.X, mean, vote.classes_)
            print(row(f"{args.blend} as fitted, weights {shipped}, then its indexing check",
                      np.asarray(vote.classes_[checked.argmax(axis=1)])))  # fmt: skip
    grid = weight_grid(len(names))
    predictions = {weights: voted(weights) for weights in grid}
    for portion in portions:
        rows = usage == portion
        best = max(grid, key=lambda w: np.mean(predictions[w][rows] == truth[rows]))
        kind = "chosen on the Public rows" if portion == layout.PUBLIC_PORTION else \
            f"best on the {portion} rows themselves (a ceiling)"  # fmt: skip
        print(row(f"weights {best}, {kind}", predictions[best]))
    # A test label no member was trained on is a row no member can get right (nor a pool fit).
    known = np.isin(truth, vote.classes_)
    code = np.where(known, np.searchsorted(vote.classes_, truth), -1)
    log_probabilities = np.log(np.clip(stacked, POOL_FLOOR, None))
    for portion in (layout.PUBLIC_PORTION, layout.PRIVATE_PORTION):
        rows = (usage == portion) & known
        if not rows.any():
            continue
        exponents = pool_exponents(log_probabilities[:, rows], code[rows])
        pooled = np.tensordot(exponents, log_probabilities, axes=1).argmax(axis=1)
        shown = ", ".join(f"{w:.2f}" for w in exponents)
        print(row(f"log-linear pool, exponents ({shown}), fitted on the {portion} rows",
                  np.asarray(vote.classes_[pooled])))  # fmt: skip
    any_right = (stacked.argmax(axis=2) == code[None]).any(axis=0)
    print("| any member right (no weights exceed it) | " + " | ".join(
        f"{100 * any_right[usage == p].mean():.1f} %" for p in portions) + " |")  # fmt: skip
    print(f"\nmembers in weight order: {', '.join(names)}; grid: each of {GRID_WEIGHTS}")


if __name__ == "__main__":
    main()
