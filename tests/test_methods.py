"""The course's methods on a competition: learning and validation curves, PCA and k-means."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import run

from baselines.runner.methods import learning_curve_frame, pca_kmeans, validation_curve_frame


def test_k_means_finds_separated_classes_and_chance_gives_zero():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1, (3, 40))
    X = np.vstack([c + rng.normal(0, 0.01, (50, 40)) for c in centres])
    y = np.repeat(np.array(["a", "b", "c"]), 50)
    embedding, clusters, figures = pca_kmeans(X, y)
    assert embedding.shape == (150, 2) and figures["n_clusters"] == 3
    assert len(set(zip(clusters, y, strict=True))) == 3  # one cluster per class
    assert figures["ari"] == pytest.approx(1.0)
    assert abs(figures["ari_shuffled"]) < 0.05
    assert figures["explained_variance"] > 0.9  # three tight clusters: two axes hold them


def test_curves_show_over_and_under_fitting():
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (300, 8))
    y = (X[:, 0] + 0.8 * rng.normal(0, 1, 300) > 0).astype(int)  # noisy: a tree over-fits
    groups = np.arange(300)
    learning = learning_curve_frame(DecisionTreeClassifier(random_state=0), X, y, groups)
    assert list(learning.columns) == ["train_rows", "train_accuracy", "train_std",
                                      "validation_accuracy", "validation_std"]  # fmt: skip
    assert learning["train_rows"].is_monotonic_increasing
    assert (learning["train_accuracy"] == 1.0).all()
    assert (learning["validation_accuracy"] < 0.85).all()  # the gap: over-fitting
    curve = validation_curve_frame(SVC(), X, y, groups, "C", (1e-4, 1.0))
    assert list(curve["C"]) == [1e-4, 1.0]
    small, large = curve.iloc[0], curve.iloc[1]
    assert small["validation_accuracy"] < large["validation_accuracy"]  # C tiny: under-fits


def test_the_command_writes_the_curves_and_the_figures(cod_build, tmp_path):
    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    done = run("baselines", "methods", "-c", str(comp), "--sample", "0", "--cv", "2",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "learning curve (random forest)" in done.stdout and "k-means ARI" in done.stdout
    out = comp / "baselines" / "bravais" / "methods"
    for name in ("learning_curve.csv", "validation_curve.csv", "methods.json",
                 "learning_curve.png", "validation_curve.png", "pca.png"):  # fmt: skip
        assert (out / name).is_file(), name
    summary = json.loads((out / "methods.json").read_text())
    assert summary["rows"] > 300 and summary["n_clusters"] >= 10
    assert summary["ari"] > summary["ari_shuffled"]
    # With a baseline run, the report gains the section.
    assert run("baselines", "run", "majority", "-c", str(comp), "--cv", "0", "-q",
               cwd=tmp_path).returncode == 0  # fmt: skip
    report = (comp / "baselines" / "bravais" / "report.md").read_text()
    assert "## Methods the course teaches" in report and "methods/pca.png" in report
