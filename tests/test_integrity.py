"""Copied submissions: the shared-error statistic, its null model, and the organisers' report."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.integrity import (
    EXACT_LIMIT,
    integrity_report,
    shared_error_test,
    upper_tail,
    wrong_label_distributions,
)
from scoring.leaderboard import Leaderboard

# -- the statistic on hand-built answers -------------------------------------------------


def test_wrong_label_distributions_are_per_class_shares_of_the_errors() -> None:
    truth = [0, 0, 0, 0, 1, 1]
    pred = [0, 1, 2, 2, 1, 0]
    q = wrong_label_distributions(pred, truth, 3)
    np.testing.assert_allclose(q[0], [0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(q[1], [1, 0, 0])
    np.testing.assert_allclose(q[2], [0, 0, 0])  # no row of class 2: nothing to spread


def test_golden_counts_of_a_hand_built_pair() -> None:
    # Class 0, four rows both get wrong: a says 1, 1, 2, 2; b says 1, 2, 2, 1.
    truth = [0, 0, 0, 0, 1]
    a = [1, 1, 2, 2, 1]
    b = [1, 2, 2, 1, 1]
    evidence = shared_error_test(a, b, truth, 3, shared=0.0)
    assert (evidence.both_wrong, evidence.same_wrong) == (4, 2)
    # q_a(.|0) = q_b(.|0) = (0, 1/2, 1/2): pi = 1/2, so 2 of 4 expected; kappa 0.
    assert evidence.expected_same_wrong == pytest.approx(2.0)
    assert evidence.shared_errors == pytest.approx(0.0)
    # P(Binomial(4, 1/2) >= 2) = 11/16.
    assert evidence.p_value == pytest.approx(11 / 16)


def test_upper_tail_is_exact_for_sums_of_binomials() -> None:
    # Binomial(2, 1/2) + Binomial(1, 1/4): P(X >= 3) = 1/4 * 1/4.
    assert upper_tail([2, 1], [0.5, 0.25], 3) == pytest.approx(1 / 16)
    assert upper_tail([2, 1], [0.5, 0.25], 0) == 1.0
    assert upper_tail([2, 1], [0.5, 0.25], 4) == 0.0
    assert upper_tail([5], [0.0], 1) == 0.0
    assert upper_tail([5], [1.0], 5) == pytest.approx(1.0)


def test_the_normal_approximation_above_the_exact_limit_is_close() -> None:
    n = [EXACT_LIMIT // 2, EXACT_LIMIT // 2]
    p = [0.3, 0.6]
    mean = 0.3 * n[0] + 0.6 * n[1]
    exact = upper_tail(n, p, int(mean + 80))
    approximate = upper_tail([n[0] + 1, n[1]], p, int(mean + 80))  # one trial over: normal
    assert 0 < exact < 0.05
    assert approximate == pytest.approx(exact, rel=0.25)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_answers_drawn_independently_given_the_class_share_no_errors(seed: int) -> None:
    """Two submissions whose wrong labels are independent draws: kappa near 0, never flagged."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, 3000)

    def model() -> np.ndarray:
        pred = truth.copy()
        wrong = rng.random(truth.size) < 0.5
        pred[wrong] = (truth[wrong] + rng.integers(1, 6, wrong.sum())) % 6
        return pred

    evidence = shared_error_test(model(), model(), truth, 6)
    assert abs(evidence.shared_errors) < 0.1
    assert evidence.p_value > 1e-3


def test_a_copy_shares_every_error_and_a_copy_with_changes_most() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 14, 2000)
    model = np.where(rng.random(2000) < 0.5, truth, rng.integers(0, 14, 2000))
    assert shared_error_test(model, model, truth, 14).shared_errors == pytest.approx(1.0)
    changed = model.copy()
    rows = rng.random(2000) < 0.05
    changed[rows] = rng.integers(0, 14, rows.sum())
    evidence = shared_error_test(model, changed, truth, 14)
    assert evidence.shared_errors > 0.9
    assert evidence.p_value < 1e-100


def test_report_flags_identical_files_and_never_a_pair_of_baselines() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, 300)
    same = np.where(rng.random(300) < 0.6, truth, rng.integers(0, 5, 300))
    other = np.where(rng.random(300) < 0.6, truth, rng.integers(0, 5, 300))
    report = integrity_report(
        {1: same, 2: same, 3: other, 4: other},
        {1: "rf", 2: "svm", 3: "alpha", 4: "beta"},
        truth, 5, baselines=["rf", "svm"], files={1: "x", 2: "x", 3: "y", 4: "y"},
    )  # fmt: skip
    pairs = {(r.team_a, r.team_b): r for r in report.itertuples()}
    assert pairs[("rf", "svm")].baseline_pair and not pairs[("rf", "svm")].flagged
    assert pairs[("alpha", "beta")].flagged and pairs[("alpha", "beta")].identical_file
    assert not pairs[("rf", "alpha")].flagged
    assert report["flagged"].iloc[0]  # flagged pairs first
    with pytest.raises(ValueError, match="shared-error share"):
        integrity_report({1: same}, {1: "a"}, truth, 5, shared=1.0)


# -- real models on a real build -----------------------------------------------------------


@pytest.fixture(scope="module")
def models(cod_build):
    """A forest and an SVM trained on the COD build, and their test predictions."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from baselines.data import read_patterns

    out = cod_build.out
    train = read_patterns(out / "public" / "train.parquet")
    test = read_patterns(out / "public" / "test.parquet")

    def features(x: np.ndarray) -> np.ndarray:
        pooled = x[:, : x.shape[1] // 10 * 10].reshape(len(x), -1, 10).max(axis=2)
        return np.sqrt(np.clip(pooled, 0, None))

    y = train.labels["bravais_lattice"].to_numpy()
    forest = RandomForestClassifier(300, random_state=0, n_jobs=2).fit(features(train.X), y)
    svm = make_pipeline(StandardScaler(), SVC(C=10, random_state=0)).fit(features(train.X), y)
    frame = {
        name: pd.DataFrame({"id": test.ids, "bravais_lattice": model.predict(features(test.X))})
        for name, model in (("forest", forest), ("svm", svm))
    }
    return out, frame


def _copy_with_changes(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    rows = rng.random(len(out)) < share
    labels = sorted(out["bravais_lattice"].unique())
    out.loc[rows, "bravais_lattice"] = rng.choice(labels, rows.sum())
    return out


@pytest.fixture
def store(models, tmp_path):
    """A copy of the COD build's public and private parts with an empty store."""
    import shutil

    out, frame = models
    root = tmp_path / "comp"
    shutil.copytree(out, root, ignore=shutil.ignore_patterns("leaderboard", "baselines"))
    return root, frame


def test_copies_are_flagged_and_independent_models_are_not(store) -> None:
    root, frame = store
    with Leaderboard.open(root) as board:
        board.set_rules(daily_quota=20)
        board.submit(frame["forest"], "forest-team")
        board.submit(frame["svm"], "svm-team")
        board.submit(_copy_with_changes(frame["forest"], 0.05, 1), "copier")
        board.submit(frame["svm"], "second-account")
        report = board.integrity()
    pairs = {frozenset((r.team_a, r.team_b)): r for r in report.itertuples()}
    independent = pairs[frozenset(("forest-team", "svm-team"))]
    accuracies = (independent.accuracy_a, independent.accuracy_b)
    assert abs(accuracies[0] - accuracies[1]) < 0.15  # of about equal accuracy
    assert not independent.flagged, independent
    assert independent.shared_errors < 0.6
    copied = pairs[frozenset(("forest-team", "copier"))]
    assert copied.flagged and not copied.identical_file
    assert copied.shared_errors > 0.8 and copied.p_adjusted < 1e-6
    twin = pairs[frozenset(("svm-team", "second-account"))]
    assert twin.flagged and twin.identical_file
    assert not pairs[frozenset(("svm-team", "copier"))].flagged


def test_integrity_command_lists_the_flagged_pairs(store) -> None:
    root, frame = store
    with Leaderboard.open(root) as board:
        board.submit(frame["forest"], "forest-team")
        board.submit(frame["svm"], "svm-team")
        board.submit(_copy_with_changes(frame["forest"], 0.05, 2), "copier")
    done = subprocess.run(
        [sys.executable, "-m", "xrd_bravais", "integrity", "-c", str(root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "1 flagged pair(s) of 3" in done.stdout
    flagged = [line for line in done.stdout.splitlines() if line.startswith("FLAGGED")]
    assert len(flagged) == 1 and "forest-team" in flagged[0] and "copier" in flagged[0]
    every = subprocess.run(
        [sys.executable, "-m", "xrd_bravais", "integrity", "-c", str(root), "--all",
         "--format", "csv", "--submissions", "final"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = pd.read_csv(io.StringIO(every))
    assert len(rows) == 3 and (rows["Flag"] == "FLAGGED").sum() == 1
    bad = subprocess.run(
        [sys.executable, "-m", "xrd_bravais", "integrity", "-c", str(root), "--shared-errors",
         "1.5"], capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--shared-errors" in bad.stderr


def test_p_values_are_probabilities() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, 500)
    for _ in range(20):
        a = np.where(rng.random(500) < 0.5, truth, rng.integers(0, 4, 500))
        b = np.where(rng.random(500) < 0.5, truth, rng.integers(0, 4, 500))
        p = shared_error_test(a, b, truth, 4, shared=0.3).p_value
        assert 0.0 <= p <= 1.0 and not math.isnan(p)
