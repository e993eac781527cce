"""Regenerate starter_kit/starter_notebook.ipynb (stored without outputs) from the cells below.

.venv/bin/python tools/make_notebook.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# Starter notebook: Bravais lattices from powder XRD patterns

From nothing to a validated `submission.csv`, the course's way:

1. look at the data;
2. start on a 10,000-row sample;
3. search the parameters of two model types with cross-validation;
4. compare them with random guessing;
5. write the submission and check it with the grader's own validator.

Run it from the unpacked kit (the folder with `public/`). Needs
`pip install -r requirements.txt` (the versions the organisers tested this kit with)."""),
    ("code", """from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

DATA = Path(".")          # the unpacked kit
SAMPLE_SIZE = 10_000      # rows to explore with; 0 for every row
CV = 3                    # cross-validation folds
SEED = 0"""),
    ("md", """## 1. Look at the data

Each row is one pattern: intensities `y0 .. y{N-1}` on a 2theta grid, the
strongest point scaled to 1. The grid is stored in the parquet file itself."""),
    ("code", """from baselines.data import read_patterns

# One float32 matrix per file (.X), read a row group at a time, with the labels and the
# grid the builder stored: 112,776 training rows take 1.9 GB, where pd.read_parquet
# (which works too) peaks at 9.2 GB.
train = read_patterns(DATA / "public" / "train.parquet")
test = read_patterns(DATA / "public" / "test.parquet")
labels = train.labels  # formula, spacegroup_number, bravais_lattice (and cod_id)
grid = train.grid
two_theta = grid.two_theta()
print(f"{len(train.X):,} training and {len(test.X):,} test patterns of {grid.n_points:,} points, "
      f"{grid.two_theta_min:g}..{grid.two_theta_max:g} degrees 2theta, {grid.wavelength}")
labels.assign(id=train.ids)[["id", "formula", "spacegroup_number", "bravais_lattice"]].head()"""),
    ("code", """from xrd_bravais.contract.labels import BRAVAIS_LATTICES

counts = labels["bravais_lattice"].value_counts().reindex(BRAVAIS_LATTICES, fill_value=0)
ax = counts.plot.bar(figsize=(8, 3), color="#4c72b0", title="Training patterns per lattice")
ax.set_ylabel("patterns")
plt.show()"""),
    ("code", """fig, axes = plt.subplots(7, 2, figsize=(10, 12), sharex=True)
lattice_of_row = labels["bravais_lattice"].to_numpy()
for ax, lattice in zip(axes.T.ravel(), BRAVAIS_LATTICES, strict=True):
    rows = np.flatnonzero(lattice_of_row == lattice)
    if len(rows):
        row = labels.iloc[rows[0]]
        ax.plot(two_theta, train.X[rows[0]], lw=0.7)
        title = f"{lattice}: {row['formula']} (space group {row['spacegroup_number']})"
        ax.set_title(title, fontsize=8)
    else:
        ax.set_title(f"{lattice}: no training pattern", fontsize=8)
    ax.set_yticks([])
for ax in axes[-1]:
    ax.set_xlabel("2theta (degrees)")
fig.tight_layout()
plt.show()"""),
    ("md", """## 2. A 10,000-row sample

Searching parameters on every row is slow; a stratified sample keeps each
lattice's share. Cross-validation folds keep each compound (formula and space
group) on one side, as the organisers' train/test split does: otherwise the
same compound in two folds flatters the score."""),
    ("code", """from sklearn.model_selection import StratifiedGroupKFold

from xrd_bravais.contract.layout import compound_key

positions = labels.reset_index(drop=True)
if SAMPLE_SIZE and len(positions) > SAMPLE_SIZE:
    share = SAMPLE_SIZE / len(positions)
    # One draw per lattice, at least one row each (a loop, not groupby().apply,
    # which drops the grouping column on pandas 3).
    rows = np.sort(np.concatenate([
        g.sample(max(1, round(share * len(g))), random_state=SEED).index.to_numpy()
        for _, g in positions.groupby("bravais_lattice", sort=True)]))
    X = train.X[rows]
else:
    rows = np.arange(len(positions))
    X = train.X  # every row: no copy
sample = positions.iloc[rows]
y = sample["bravais_lattice"].to_numpy()
groups = compound_key(sample["formula"], sample["spacegroup_number"])  # formula|space group
folds = StratifiedGroupKFold(n_splits=CV, shuffle=True, random_state=SEED)
print(f"training on {len(sample):,} rows")"""),
    ("md", """## 3. Random guessing: the score to beat"""),
    ("code", """from sklearn.dummy import DummyClassifier
from sklearn.model_selection import cross_val_score

results = {}
for name, strategy in [("uniform guess", "uniform"), ("prior-matched guess", "stratified"),
                       ("majority guess", "most_frequent")]:
    scores = cross_val_score(DummyClassifier(strategy=strategy, random_state=SEED), X, y,
                             cv=folds, groups=groups)
    results[name] = scores.mean()
pd.Series(results, name="CV accuracy").round(3)"""),
    ("md", """## 4. Two model types, with a parameter search

Both start with the same preprocessing from `baselines.lattice.features`: the square
root of the intensities (weak peaks count beside the strongest) and pooling to
0.2-degree bins (features that survive small peak shifts)."""),
    ("code", """from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from baselines.lattice.features import IntensityTransform, Pool

forest = Pipeline([("sqrt", IntensityTransform("sqrt")), ("pool", Pool(10)),
                   ("model", RandomForestClassifier(n_estimators=200, class_weight="balanced",
                                                    n_jobs=-1, random_state=SEED))])
forest_search = GridSearchCV(forest, {"model__max_features": ["sqrt", 0.05],
                                      "model__min_samples_leaf": [1, 2]},
                             cv=folds, scoring="accuracy")
forest_search.fit(X, y, groups=groups)
results["random forest"] = forest_search.best_score_
SEARCH_COLUMNS = ["params", "mean_test_score", "std_test_score", "rank_test_score"]
pd.DataFrame(forest_search.cv_results_)[SEARCH_COLUMNS]"""),
    ("code", """svm = Pipeline([("sqrt", IntensityTransform("sqrt")), ("pool", Pool(10)),
                ("scale", StandardScaler()),
                ("model", SVC(class_weight="balanced", random_state=SEED))])
svm_search = GridSearchCV(svm, {"model__C": [1.0, 10.0, 100.0]}, cv=folds, scoring="accuracy")
svm_search.fit(X, y, groups=groups)
results["SVM (RBF)"] = svm_search.best_score_
pd.DataFrame(svm_search.cv_results_)[SEARCH_COLUMNS]"""),
    ("md", """## 5. Compared with random guessing"""),
    ("code", """comparison = pd.Series(results, name="CV accuracy").sort_values()
ax = comparison.mul(100).plot.barh(figsize=(7, 3), color="#4c72b0")
ax.set_xlabel("cross-validated accuracy (%)")
plt.show()
comparison.round(3)"""),
    ("code", """from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import cross_val_predict

best_name, best = max([("random forest", forest_search), ("SVM (RBF)", svm_search)],
                      key=lambda item: item[1].best_score_)
predicted = cross_val_predict(best.best_estimator_, X, y, cv=folds, groups=groups)
present = [lat for lat in BRAVAIS_LATTICES if lat in set(y) | set(predicted)]
fig, ax = plt.subplots(figsize=(7, 7))
ConfusionMatrixDisplay.from_predictions(y, predicted, labels=present, ax=ax, colorbar=False)
ax.set_title(f"{best_name}: out-of-fold predictions")
plt.show()"""),
    ("md", """## 6. Predict the test set, write the submission, validate it

`GridSearchCV` has already refitted the best parameters on the whole sample."""),
    ("code", """submission = pd.DataFrame({"id": test.ids, "bravais_lattice": best.predict(test.X)})
submission.to_csv("submission.csv", index=False)
submission["bravais_lattice"].value_counts().head()"""),
    ("code", """from scoring.submission import validate_submission

valid = validate_submission("submission.csv", DATA)   # raises SubmissionError listing every problem
print(f"submission.csv is valid: {len(valid.ids):,} rows ({best_name}).")"""),
    ("md", """## 7. Over-fitting, under-fitting, and structure in the data

Three views the course asks about, on the same sample and the same grouped folds
(`baselines.runner.methods` has them; `xrd-bravais baselines methods` puts them in the
organisers' report):

- a **learning curve**: the forest's training and validation accuracy as the
  training set grows. A gap that stays open is over-fitting; a validation curve
  still rising says more data would help;
- a **validation curve**: the SVM against its regularisation parameter `C`:
  too small under-fits (both scores low), too large over-fits;
- **PCA and k-means**: do the lattices form clusters of whole patterns? The
  adjusted Rand index says how well 14 k-means clusters match the 14 lattices
  (0: chance, 1: perfect)."""),
    ("code", """# Over- and under-fitting: the forest against its training size, the SVM against C.
from baselines.runner.methods import learning_curve_frame, pca_kmeans, validation_curve_frame

learning = learning_curve_frame(forest_search.best_estimator_, X, y, groups, cv=CV,
                                random_state=SEED)
validation = validation_curve_frame(svm_search.best_estimator_, X, y, groups, "model__C",
                                    (0.01, 0.1, 1.0, 10.0, 100.0), cv=CV, random_state=SEED)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, frame, log in ((axes[0], learning, False), (axes[1], validation, True)):
    x = frame.iloc[:, 0]
    for split in ("train", "validation"):
        ax.plot(x, 100 * frame[f"{split}_accuracy"], "o-", label=split)
    ax.set_xscale("log" if log else "linear")
    ax.set_xlabel(frame.columns[0])
    ax.set_ylabel("accuracy (%)")
    ax.legend()
axes[0].set_title("learning curve: random forest")
axes[1].set_title("validation curve: SVM")
plt.show()"""),
    ("code", """embedding, clusters, figures = pca_kmeans(X, y, random_state=SEED)
fig, ax = plt.subplots(figsize=(7, 5))
for lattice in BRAVAIS_LATTICES:
    rows = y == lattice
    if rows.any():
        ax.scatter(embedding[rows, 0], embedding[rows, 1], s=5, label=lattice)
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
ax.legend(ncols=2, fontsize=7, markerscale=3)
plt.show()
print(f"2 components hold {100 * figures['explained_variance']:.1f} % of the variance; "
      f"k-means ARI {figures['ari']:.3f} "
      f"(against shuffled labels: {figures['ari_shuffled']:.3f})")"""),
    ("md", """## Where next

- Submit: `xrd-bravais submit submission.csv --team YOUR_TEAM --competition COMPETITION`
  where the grader runs (your organisers say where).
- Train on every row (`SAMPLE_SIZE = 0`) once the parameters are chosen.
- Try `baselines.lattice.features.PeakFeatures`: peak positions in sin²θ and their ratios,
  the quantities a crystallographer indexes a pattern with, and `PeakRelations`: the ratios
  of every pair of peaks and the peaks whose sin²θ is the sum of two others' (the random
  forest, SVM and XGBoost baselines read them: 10 to 15 points more on the demo board).
- Try a 1D-CNN: `baselines.lattice.cnn1d.CNN1DClassifier` works with `GridSearchCV` too
  (it needs PyTorch: `pip install torch`).
- Blend models that err differently:
  `baselines.lattice.blend.SoftVote([("trees", m1), ("cnn", m2)])` averages their
  class probabilities; `baselines.lattice.blend.LogPool([("trees", m1), ("cnn", m2)])`
  learns on a held-out fifth of your training rows how much to trust each (the `blend`
  baseline pools the CNN and XGBoost so, and scores above both on the demo board).
- Keep a note of what you tried: the course asks for your parameter searches and
  the comparison with random guessing."""),
]


def main() -> None:
    """Write the notebook, validated, without outputs."""
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    path = Path(__file__).resolve().parents[1] / "starter_kit" / "starter_notebook.ipynb"
    nbformat.validate(notebook)
    path.write_text(nbformat.writes(notebook) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
