"""The methods the course teaches, shown on a competition's training data.

* a **learning curve**: the random forest's training and validation accuracy as
  the training set grows (a gap that stays open is over-fitting; two low curves
  that meet, under-fitting; a validation curve still rising, more data helps);
* a **validation curve**: the RBF-SVM's accuracy against its regularisation
  parameter ``C`` (small ``C``: both scores low; large ``C``: training accuracy
  near 100 % while validation stalls or falls);
* **PCA and k-means**: the patterns projected on their first two principal
  components, coloured by the true label, and a k-means clustering with one
  cluster per label compared with the labels by the adjusted Rand index (0: no
  better than chance; 1: the clusters are the labels).

Every cross-validation is grouped by compound, as the builder's split and the
baselines' searches are, so no compound is on both sides of a fold.
:func:`run_methods` writes ``baselines/<track>/methods/``: a CSV per curve,
``methods.json`` and three PNG figures; the baselines report shows them.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from baselines.runner.run import grouped_folds
from xrd_bravais.contract import layout

TRAIN_SIZES: Final = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
"""Shares of the training folds in the learning curve."""
C_VALUES: Final = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
"""The SVM's regularisation parameter in the validation curve."""
METHODS_FOLDER: Final = "methods"


def _frame(x_name: str, x: npt.ArrayLike, train: np.ndarray, valid: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        x_name: np.asarray(x),
        "train_accuracy": train.mean(axis=1), "train_std": train.std(axis=1),
        "validation_accuracy": valid.mean(axis=1), "validation_std": valid.std(axis=1),
    })  # fmt: skip


def learning_curve_frame(estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                         cv: int = 3, random_state: int = 0,
                         sizes: tuple[float, ...] = TRAIN_SIZES) -> pd.DataFrame:  # fmt: skip
    """Mean and spread of training and validation accuracy per training-set size."""
    from sklearn.model_selection import learning_curve

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        n, train, valid = learning_curve(
            estimator, X, y, groups=groups, train_sizes=np.array(sizes),
            cv=grouped_folds(cv, random_state), scoring="accuracy", shuffle=True,
            random_state=random_state, error_score="raise",
        )  # fmt: skip
    return _frame("train_rows", n, train, valid)


def validation_curve_frame(estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                           param: str, values: tuple[Any, ...], cv: int = 3,
                           random_state: int = 0) -> pd.DataFrame:  # fmt: skip
    """Mean and spread of training and validation accuracy per value of ``param``."""
    from sklearn.model_selection import validation_curve

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        train, valid = validation_curve(
            estimator, X, y, param_name=param, param_range=list(values), groups=groups,
            cv=grouped_folds(cv, random_state), scoring="accuracy", error_score="raise",
        )  # fmt: skip
    return _frame(param.split("__")[-1], values, train, valid)


def pca_kmeans(X: np.ndarray, y: np.ndarray, random_state: int = 0
               ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:  # fmt: skip
    """Two principal components, k-means labels (one cluster per label) and the figures.

    The patterns are square-rooted and standardised first, as for the SVM, so
    that strong peaks do not carry the whole variance.

    Returns
    -------
    embedding : ndarray, shape (n, 2)
    clusters : ndarray, shape (n,)
    figures : dict
        ``explained_variance`` of the two components, ``ari`` of the clusters
        against the labels, ``ari_shuffled`` of the same clusters against the
        labels in a random order (what chance gives), ``n_clusters``.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(np.sqrt(np.clip(X, 0, None)))
    pca = PCA(n_components=min(20, Z.shape[1]), random_state=random_state).fit(Z)
    reduced = pca.transform(Z)
    k = len(np.unique(y))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(reduced)
    shuffled = np.random.default_rng(random_state).permutation(y)
    figures = {
        "explained_variance": float(pca.explained_variance_ratio_[:2].sum()),
        "ari": float(adjusted_rand_score(y, clusters)),
        "ari_shuffled": float(adjusted_rand_score(shuffled, clusters)),
        "n_clusters": k,
    }
    return reduced[:, :2], clusters, figures


# --------------------------------------------------------------------------- figures
def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from xrd_bravais.contract.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_curve(frame: pd.DataFrame, title: str, path: Path, log_x: bool = False) -> Path:
    """Training and validation accuracy (mean +- one std) against the frame's first column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = frame.iloc[:, 0].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for split, label in (("train", "training"), ("validation", "validation")):
        mean = 100 * frame[f"{split}_accuracy"].to_numpy()
        std = 100 * frame[f"{split}_std"].to_numpy()
        ax.plot(x, mean, "o-", label=label)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(frame.columns[0].replace("_", " "))
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_pca(embedding: np.ndarray, y: np.ndarray, figures: dict[str, float], path: Path) -> Path:
    """The first two principal components, one colour per true label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
    labels = list(dict.fromkeys(sorted(y.tolist(), key=str)))
    colours = plt.get_cmap("tab20")
    for i, label in enumerate(labels):
        rows = y == label
        ax.scatter(embedding[rows, 0], embedding[rows, 1], s=6, color=colours(i % 20),
                   label=str(label), alpha=0.7)  # fmt: skip
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"PCA of the training patterns ({100 * figures['explained_variance']:.0f} % "
                 f"of the variance); k-means ARI {figures['ari']:.3f}")  # fmt: skip
    if len(labels) <= 20:
        ax.legend(markerscale=3, fontsize=7, ncols=2)
    return _save(fig, path)


# --------------------------------------------------------------------------- run
def run_methods(competition: str | Path, track: str | None = None, *, sample: int | None = 3000,
                cv: int = 3, random_state: int = 0) -> dict[str, Any]:  # fmt: skip
    """Compute the three views on the training set and write them under ``baselines/``.

    Parameters
    ----------
    sample : int, optional
        Use a stratified sample of this many training rows (None: all).

    Returns
    -------
    dict
        What ``methods.json`` holds: the curves' points, the PCA and k-means figures,
        the rows used and the seconds each step took.
    """
    from baselines.data import read_patterns, stratified_sample
    from baselines.lattice.forest import make_forest
    from baselines.lattice.svm import make_svm
    from xrd_bravais.contract.io import atomic_write_text
    from xrd_bravais.contract.tasks import load_task

    root = Path(competition)
    spec = load_task(root).track(track)
    train = read_patterns(root / layout.TRAIN)
    if train.grid is None:
        raise ValueError(f"{root / layout.TRAIN} records no grid: is it an XRD competition?")
    y_all = train.target(spec.column)
    rows = (stratified_sample(y_all, sample, random_state) if sample and sample < len(y_all)
            else np.arange(len(y_all)))  # fmt: skip
    X, y, groups = train.X[rows], y_all[rows], train.groups()[rows]
    out = root / layout.BASELINES / spec.name / METHODS_FOLDER
    seconds = {}
    start = time.perf_counter()
    learning = learning_curve_frame(make_forest(train.grid, random_state, n_jobs=-1), X, y,
                                    groups, cv, random_state)  # fmt: skip
    seconds["learning_curve"] = time.perf_counter() - start
    start = time.perf_counter()
    validation = validation_curve_frame(make_svm(train.grid, random_state), X, y, groups,
                                        "model__C", C_VALUES, cv, random_state)  # fmt: skip
    seconds["validation_curve"] = time.perf_counter() - start
    start = time.perf_counter()
    embedding, _, figures = pca_kmeans(X, y, random_state)
    seconds["pca_kmeans"] = time.perf_counter() - start
    for name, frame in (("learning_curve", learning), ("validation_curve", validation)):
        atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False, lineterminator="\n"))
    plot_curve(learning, "Learning curve: random forest", out / "learning_curve.png")
    plot_curve(validation, "Validation curve: RBF-SVM against C", out / "validation_curve.png",
               log_x=True)  # fmt: skip
    plot_pca(embedding, y, figures, out / "pca.png")
    summary = {
        "track": spec.name, "rows": len(y), "cv": cv,
        "learning_curve": learning.to_dict(orient="list"),
        "validation_curve": validation.to_dict(orient="list"),
        **figures, "seconds": seconds,
    }  # fmt: skip
    atomic_write_text(out / "methods.json", json.dumps(summary, indent=2))
    return summary
