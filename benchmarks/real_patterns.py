"""Benchmark every fitted baseline of a build on real measured patterns.

The baselines ``xrd-bravais baselines run`` fitted on a competition (their
``baselines/<track>/<name>/model.pkl``) predict real powder patterns, and this
prints, per baseline: Bravais-lattice accuracy with its 95 % (Wilson) interval,
macro-F1, the lattice-system accuracy (seven classes: aP / m / o / t / hR / hP / c,
:data:`xrd_bravais.contract.labels.LATTICE_SYSTEMS`), the seconds per pattern, the
three lattices it predicts most, and then the recall of each lattice on the real
patterns; a confusion-matrix image per baseline goes to ``--figures``. With
``--track spacegroup`` it scores the space-group baselines the same way: the
space-group accuracy with its interval first, then the same figures for the
lattice each predicted group implies.

Run from the repository root::

    # a build whose Measured portion is the real patterns (their compounds are then
    # kept out of training), its baselines, then the figures
    .venv/bin/xrd-bravais build --out comp --measured-test ../shared/data/measured
    .venv/bin/xrd-bravais baselines run search-match xgboost xgboost-realism --competition comp
    .venv/bin/python -m benchmarks.real_patterns --competition comp

The real patterns are, by default, the build's own Measured portion (test rows
``Usage == Measured``, labels from ``private/solution.csv``: an organiser's tool).
``--real DIR`` reads another folder of measurements instead (``.xy`` files and a
``labels.csv``, as ``build --measured-test`` takes them); a build that did not keep
that folder's compounds out of training says so in a warning, since a model may
then have seen a computed pattern of the very compound it is asked about.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from baselines.data import read_patterns
from baselines.runner.report import training_rows
from baselines.runner.run import load_model, registry
from scoring.metrics import Scores, confusion_matrix, wilson_interval
from xrd_bravais.contract import layout
from xrd_bravais.contract.labels import BRAVAIS_LATTICES, LATTICE_SYSTEMS, bravais_lattice


def measured_portion(competition: Path, column: str = layout.LATTICE
                     ) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """The Measured test rows of a build and their hidden labels (``column``), or None."""
    test = read_patterns(competition / layout.TEST)
    key = pd.read_csv(competition / layout.SOLUTION).set_index(layout.ID)
    usage = key.loc[test.ids, layout.USAGE].to_numpy()
    rows = usage == layout.MEASURED_PORTION
    if not rows.any():
        return None
    return test.X[rows], key.loc[test.ids[rows], column].to_numpy()


def real_folder(competition: Path, folder: Path, column: str = layout.LATTICE
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The patterns of a folder of measurements, on the build's grid, and their labels."""
    from competition.sources.measured import read_measured

    grid = read_patterns(competition / layout.TEST).grid
    if grid is None:
        raise SystemExit(f"{competition / layout.TEST} records no grid")
    real = read_measured(folder, grid)
    manifest = json.loads((competition / "manifest.json").read_text())
    kept_out = (manifest.get("measured_test") or {}).get("sha256")
    if kept_out != real.description["sha256"]:
        print(f"warning: {competition} was not built with --measured-test {folder}: its "
              "training rows may hold compounds of these patterns")  # fmt: skip
    labels = real.spacegroup_number if column == layout.SPACEGROUP else real.bravais_lattice
    return real.X, np.asarray(labels)


def lattice_scores(truth: np.ndarray, predicted: np.ndarray) -> tuple[Scores, float]:
    """Every figure of the predictions, and the lattice-system accuracy."""
    codes = {label: i for i, label in enumerate(BRAVAIS_LATTICES)}
    cm = confusion_matrix([codes[t] for t in truth], [codes[p] for p in predicted],
                          len(BRAVAIS_LATTICES))  # fmt: skip
    systems = np.mean([LATTICE_SYSTEMS[t] == LATTICE_SYSTEMS[p]
                       for t, p in zip(truth, predicted, strict=True)])  # fmt: skip
    return Scores.from_confusion(cm), float(systems)


def plot_confusion(scores: Scores, title: str, path: Path) -> Path:
    """The confusion matrix of the real patterns (counts; colour: the true lattice's share)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(scores.confusion, dtype=float)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6.5), layout="constrained")
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(BRAVAIS_LATTICES))
    ax.set_xticks(ticks, BRAVAIS_LATTICES)
    ax.set_yticks(ticks, BRAVAIS_LATTICES)
    for i, j in zip(*np.nonzero(cm), strict=True):
        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: {scores.n} real patterns, {100 * scores.accuracy:.1f} % correct",
                 fontsize=10)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def main() -> None:
    """Predict the real patterns with each fitted baseline and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competition", type=Path, required=True)
    parser.add_argument("--real", type=Path, help="a folder of measurements (default: the "
                        "build's Measured portion)")  # fmt: skip
    parser.add_argument("--track", default=layout.DEFAULT_TRACK_NAME)
    parser.add_argument("--names", nargs="*", help="baselines (default: every fitted one)")
    parser.add_argument("--figures", type=Path, default=Path("real-patterns"),
                        help="folder of the confusion-matrix images")  # fmt: skip
    args = parser.parse_args()

    groups = args.track == "spacegroup"
    column = layout.SPACEGROUP if groups else layout.LATTICE
    if args.real is not None:
        X, truth = real_folder(args.competition, args.real, column)
    else:
        found = measured_portion(args.competition, column)
        if found is None:
            raise SystemExit(f"{args.competition} has no Measured portion: build it with "
                             "--measured-test DIR, or pass --real DIR")  # fmt: skip
        X, truth = found
    # The space-group track is scored on the groups, then on the lattices they imply.
    group_truth = truth.astype(int) if groups else None
    if groups:
        truth = np.array([bravais_lattice(int(g)) for g in group_truth])
    folder = args.competition / layout.BASELINES / args.track
    names = args.names or [name for name in registry() if (folder / name / "model.pkl").is_file()]
    if not names:
        raise SystemExit(f"no fitted baseline under {folder}: run `xrd-bravais baselines run`")
    commonest, count = Counter(truth).most_common(1)[0]
    print(f"{len(truth)} real patterns; the commonest lattice, {commonest}, is "
          f"{100 * count / len(truth):.1f} % of them (a majority guess)\n")  # fmt: skip
    first = "space group (95 % CI) | lattice from it" if groups else "accuracy (95 % CI)"
    print(f"| baseline | training rows | {first} | macro-F1 | lattice system "
          "| s / pattern | most predicted |")  # fmt: skip
    print("|---|---:|---|" + ("---:|" if groups else "") + "---:|---:|---:|---|")
    recalls = {}
    for name in names:
        bundle = load_model(folder / name / "model.pkl")
        result = json.loads((folder / name / "result.json").read_text())
        start = time.perf_counter()
        predicted = np.asarray(bundle["estimator"].predict(X))
        seconds = (time.perf_counter() - start) / len(truth)
        group_cell = ""
        if groups:
            right = int(np.sum(predicted.astype(int) == group_truth))
            low, high = wilson_interval(right, len(truth))
            group_cell = (f"{100 * right / len(truth):.1f} % ({100 * low:.1f}-{100 * high:.1f})"
                          " | ")  # fmt: skip
            predicted = np.array([bravais_lattice(int(g)) for g in predicted])
        predicted = predicted.astype(str)
        scores, systems = lattice_scores(truth, predicted)
        low, high = scores.accuracy_ci
        top = ", ".join(f"{label} {100 * n / len(predicted):.0f} %"
                        for label, n in Counter(predicted).most_common(3))  # fmt: skip
        print(f"| {result['title']} | {training_rows(result)} | {group_cell}"
              f"{100 * scores.accuracy:.1f} % ({100 * low:.1f}-{100 * high:.1f}) | "
              f"{scores.macro_f1:.3f} | {100 * systems:.1f} % | {seconds:.4f} | {top} |",
              flush=True)  # fmt: skip
        recalls[name] = scores.recall
        plot_confusion(scores, result["title"], args.figures / f"{name}.png")
    present = [i for i, label in enumerate(BRAVAIS_LATTICES) if label in set(truth)]
    counts = Counter(truth)
    print("\nRecall per lattice on the real patterns (patterns of it in brackets):\n")
    print("| baseline | " + " | ".join(f"{BRAVAIS_LATTICES[i]} ({counts[BRAVAIS_LATTICES[i]]})"
                                       for i in present) + " |")  # fmt: skip
    print("|---|" + "---:|" * len(present))
    for name, recall in recalls.items():
        print(f"| {name} | " + " | ".join(f"{100 * recall[i]:.0f} %" for i in present) + " |")
    print(f"\nconfusion matrices: {args.figures}/<baseline>.png")


if __name__ == "__main__":
    main()
