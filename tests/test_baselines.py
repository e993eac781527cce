"""Baselines: the estimator contract, golden features, and each model end to end on a real build."""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from test_cli import run  # noqa: E402

from baselines.data import read_patterns, stratified_sample  # noqa: E402
from baselines.lattice.blend import LogPool, SoftVote  # noqa: E402
from baselines.lattice.boosting import BoostedTrees  # noqa: E402
from baselines.lattice.cnn1d import CNN1DClassifier  # noqa: E402
from baselines.lattice.features import (  # noqa: E402
    IntensityTransform,
    PeakFeatures,
    PeakRelations,
    Pool,
    Smooth,
    SubtractBackground,
)
from baselines.lattice.indexing import CentringCheck  # noqa: E402
from baselines.runner.report import write_report  # noqa: E402
from baselines.runner.run import (  # noqa: E402
    load_model,
    registry,
    resolve_names,
    run_baseline,
    same_settings,
    training_fingerprint,
)
from competition.config import PRESETS  # noqa: E402
from scoring.grade import grade  # noqa: E402
from scoring.submission import validate_submission  # noqa: E402
from xrd_bravais.contract.grid import GridError  # noqa: E402

# A CNN small enough for the estimator checks' toy data: no pooling or stem, two
# thin blocks, no augmentation or hold-out (the checks fit 2-feature blobs and
# expect a training accuracy above 0.83, which 30 epochs give).
SMALL_CNN = dict(pool=1, stem=0, channels=(8, 8), epochs=30, augment=False,
                 validation_fraction=0.0, test_time_strains=())  # fmt: skip
# The grid of the default preset: where the columns of the COD build lie in 2theta.
DEFAULT_GRID = PRESETS["default"].to_grid()


@parametrize_with_checks(
    [
        IntensityTransform(),
        IntensityTransform("log"),
        Pool(factor=3),
        Pool(factor=2, method="mean"),
        PeakFeatures(n_peaks=3, grid=DEFAULT_GRID),
        PeakRelations(n_peaks=3, n_sum_peaks=3, grid=DEFAULT_GRID),
        SubtractBackground(half_width=3),
        Smooth(window=3, order=1),
        BoostedTrees(n_estimators=10, n_jobs=1),
        CNN1DClassifier(**SMALL_CNN, verbose=0),
        # The vote's own contract; its members here are quick and exact (the CNN's
        # convolutions differ by a float32 ulp from one batch size to another).
        SoftVote([("trees", BoostedTrees(n_estimators=10, n_jobs=1)),
                  ("linear", LogisticRegression())], weights=[1, 2]),
        LogPool([("trees", BoostedTrees(n_estimators=10, n_jobs=1)),
                 ("linear", LogisticRegression())]),
    ]
)
def test_scikit_learn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


# -- features: golden values ----------------------------------------------------


def _gaussian_pattern(two_theta_peaks, heights):
    preset = PRESETS["default"]
    grid = preset.grid()
    y = np.zeros_like(grid)
    for centre, height in zip(two_theta_peaks, heights, strict=True):
        y += height * np.exp(-0.5 * ((grid - centre) / preset.sigma) ** 2)
    return (y / y.max()).astype(np.float32)[None, :]


def test_peak_ratios_index_a_cubic_f_pattern():
    # Aluminium, cubic F, a = 4.0495 A, Cu K-alpha: 111, 200, 220, 311, 222 reflections.
    # sin^2(theta) is proportional to h^2 + k^2 + l^2 = 3, 4, 8, 11, 12.
    wavelength, a = 1.54184, 4.0495
    hkl_sums = np.array([3, 4, 8, 11, 12])
    two_theta = np.degrees(2 * np.arcsin(wavelength * np.sqrt(hkl_sums) / (2 * a)))
    X = _gaussian_pattern(two_theta, [1.0, 0.47, 0.22, 0.24, 0.07])
    features = PeakFeatures(n_peaks=5, grid=DEFAULT_GRID).fit_transform(X)[0]
    sin2, heights, ratios = features[:5], features[5:10], features[10:]
    np.testing.assert_allclose(ratios, hkl_sums / 3, rtol=2e-4)
    np.testing.assert_allclose(sin2, (wavelength / (2 * a)) ** 2 * hkl_sums, rtol=2e-4)
    np.testing.assert_allclose(heights, [1.0, 0.47, 0.22, 0.24, 0.07], atol=0.01)


def test_peak_features_keep_the_strongest_and_pad_missing():
    X = _gaussian_pattern([20.0, 30.0, 40.0], [0.2, 1.0, 0.5])
    features = PeakFeatures(n_peaks=4, min_height=0.3, grid=DEFAULT_GRID).fit_transform(X)[0]
    # 20 degrees is below min_height: two peaks in angle order, then zero padding.
    np.testing.assert_allclose(features[:4], np.sin(np.radians([15.0, 20.0, 0, 0])) ** 2, atol=1e-5)
    np.testing.assert_allclose(features[4:8], [1.0, 0.5, 0, 0], atol=1e-4)
    assert features[8] == pytest.approx(1.0) and features[10:].tolist() == [0.0, 0.0]


def _reflections_pattern(lattice, hkls):
    """A Cu K-alpha pattern with one peak of height 1 at each reflection of ``lattice``."""
    two_theta = [np.degrees(2 * np.arcsin(1.54184 / (2 * lattice.d_hkl(hkl)))) for hkl in hkls]
    return _gaussian_pattern(two_theta, [1.0] * len(hkls))


REFLECTIONS = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)]


def _sums(features, relations, tolerance="0.002"):
    names = relations.get_feature_names_out()
    return (features[names == f"sums_{tolerance}"][0],
            features[names == f"sum_share_{tolerance}"][0])  # fmt: skip


def test_peak_relations_find_the_sums_of_perpendicular_axes():
    from pymatgen.core import Lattice

    # Orthorhombic 3 x 4 x 5 A: s(110) = s(100) + s(010), s(101), s(011) likewise, and
    # s(111) = s(110) + s(001) = s(101) + s(010) = s(011) + s(100): 6 triples, and 4 of
    # the 7 peaks are sums. No two other peaks add up within 0.2 %.
    X = _reflections_pattern(Lattice.orthorhombic(3, 4, 5), REFLECTIONS)
    relations = PeakRelations(n_sum_peaks=7, grid=DEFAULT_GRID).fit(X)
    assert _sums(relations.transform(X)[0], relations) == (6, pytest.approx(4 / 7))
    # Monoclinic, beta = 100 degrees: a and c no longer perpendicular, so 101 and 10-1
    # are no sums, while b still is: 110, 011, 111 = 101 + 010, 11-1 = 10-1 + 010.
    monoclinic = [*REFLECTIONS, (1, 0, -1), (1, 1, -1)]
    X = _reflections_pattern(Lattice.monoclinic(3, 4, 5, 100), monoclinic)
    relations = PeakRelations(n_sum_peaks=9, grid=DEFAULT_GRID).fit(X)
    assert _sums(relations.transform(X)[0], relations) == (4, pytest.approx(4 / 9))


def test_peak_relations_histogram_holds_every_pair_once_and_ignores_the_cell_size():
    from pymatgen.core import Lattice

    small = _reflections_pattern(Lattice.orthorhombic(3, 4, 5), REFLECTIONS)
    large = _reflections_pattern(Lattice.orthorhombic(3.3, 4.4, 5.5), REFLECTIONS)
    relations = PeakRelations(n_peaks=7, grid=DEFAULT_GRID).fit(small)
    histogram = relations.transform(np.vstack([small, large]))[:, : relations._n_nodes()]
    # 21 pairs, all with ratios below 9, each weighing sqrt(h_i h_j) (heights near 1,
    # as sampled on the grid); a cell 10 % larger moves every peak but no ratio.
    heights = PeakFeatures(n_peaks=7, grid=DEFAULT_GRID).fit_transform(small)[0, 7:14]
    i, j = np.triu_indices(7, 1)
    assert histogram[0].sum() == pytest.approx(np.sqrt(heights[i] * heights[j]).sum(), rel=1e-5)
    np.testing.assert_allclose(histogram[0], histogram[1], atol=0.02)


@pytest.mark.parametrize("setting", [{"n_peaks": 1}, {"n_sum_peaks": 0}, {"bin_width": 0.0},
                                     {"max_ratio": 1.0}, {"tolerances": (0.0,)}])
def test_peak_relations_refuse_a_bad_setting(setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        PeakRelations(grid=DEFAULT_GRID, **setting).fit(np.ones((2, 10)))


@pytest.mark.parametrize("name", ["random-forest", "svm", "xgboost", "xgboost-realism"])
def test_every_feature_baseline_reads_the_peak_relations(name):
    model = registry()[name].make(DEFAULT_GRID, 0)
    pipeline = getattr(model, "estimator", model)  # xgboost-realism wraps its pipeline
    steps = dict(pipeline.named_steps["features"].transformer_list)
    assert isinstance(steps["relations"], PeakRelations)
    # A model saved before it read them predicts otherwise: a blend must refit it.
    assert registry()[name].revision >= 2


def test_tree_features_without_relations_keep_the_earlier_columns():
    from baselines.lattice.forest import pattern_features

    X = np.vstack([_gaussian_pattern([20.0, 30.0, 40.0], [0.2, 1.0, 0.5]),
                   _gaussian_pattern([25.0, 35.0], [1.0, 0.7])])
    with_relations = pattern_features(DEFAULT_GRID).fit(X).transform(X)
    without = pattern_features(DEFAULT_GRID, relations=False).fit(X).transform(X)
    assert with_relations.shape[1] == without.shape[1] + 226
    np.testing.assert_array_equal(with_relations[:, : without.shape[1]], without)


def test_snip_and_smoothing_give_the_same_rows_block_by_block(monkeypatch):
    # They work on blocks of rows to bound their float64 temporaries on large builds.
    from baselines.lattice import features

    rng = np.random.default_rng(4)
    X = (rng.random((10, 300)) ** 4).astype(np.float32)
    snip, smooth = SubtractBackground(20).fit(X), Smooth(7).fit(X)
    whole = snip.transform(X), snip.background(X), smooth.transform(X)
    monkeypatch.setattr(features, "BLOCK_ROWS", 3)  # blocks of 3, 3, 3 and 1 rows
    np.testing.assert_array_equal(snip.transform(X), whole[0])  # elementwise: the same bits
    np.testing.assert_array_equal(snip.background(X), whole[1])
    # Savitzky-Golay fits the edges by least squares over the rows it is given: equal to
    # float32 rounding.
    np.testing.assert_allclose(smooth.transform(X), whole[2], rtol=1e-6, atol=1e-7)
    assert whole[0].dtype == whole[2].dtype == np.float32 and whole[1].dtype == np.float64


def test_snip_removes_a_smooth_background_and_keeps_the_peaks():
    grid = DEFAULT_GRID.two_theta()
    peaks = _gaussian_pattern([30.0, 60.0], [1.0, 0.4])[0]
    background = 0.3 + 0.002 * (grid - 5) + 0.2 * np.exp(-grid / 10)
    flat = SubtractBackground(half_width=50).fit_transform((peaks + background)[None, :])[0]
    np.testing.assert_allclose(flat, peaks, atol=0.02)
    assert np.argmax(flat) == np.argmax(peaks)


def test_smoothing_suppresses_noise_and_keeps_a_peak():
    rng = np.random.default_rng(0)
    clean = _gaussian_pattern([40.0], [1.0])[0]
    noisy = clean + rng.normal(0, 0.02, clean.size)
    smooth = Smooth(window=9).fit_transform(noisy[None, :])[0]
    # A 9-point quadratic Savitzky-Golay filter passes about half of white noise.
    assert np.std(smooth - clean) < 0.6 * np.std(noisy - clean)
    assert abs(np.argmax(smooth) - np.argmax(clean)) <= 1
    with pytest.raises(ValueError, match="odd integer"):
        Smooth(window=8).fit(noisy[None, :])


def test_intensity_and_pool_golden_values():
    X = np.array([[0.0, 0.01, 1.0, 0.25, 0.5]])
    np.testing.assert_allclose(IntensityTransform("sqrt").fit_transform(X), np.sqrt(X))
    log = IntensityTransform("log", floor=0.01).fit_transform(X)
    assert log[0, 0] == 0 and log[0, 2] == pytest.approx(1.0) and 0.1 < log[0, 1] < 0.2
    np.testing.assert_allclose(Pool(2).fit_transform(X), [[0.01, 1.0, 0.5]])
    np.testing.assert_allclose(Pool(2, "mean").fit_transform(X), [[0.005, 0.625, 0.5]])
    with pytest.raises(ValueError, match="func must be"):
        IntensityTransform("cube").fit(X)


def test_the_grid_goes_into_nested_peak_features_explicitly():
    nano = PRESETS["nano281"].to_grid()
    for name in ("random-forest", "xgboost"):
        params = registry()[name].make(nano, 0).get_params()
        assert params["features__peaks__grid"] == nano
    assert registry()["cnn1d"].make(nano, 0).grid == nano


def test_no_silent_default_grid():
    """Issue 18: without a grid, PeakFeatures used the default preset's angles."""
    X = _gaussian_pattern([20.0, 30.0], [1.0, 0.5])
    with pytest.raises(GridError, match="PeakFeatures needs the 2theta grid"):
        PeakFeatures(n_peaks=2).fit(X)
    with pytest.raises(GridError, match="PeakRelations needs the 2theta grid"):
        PeakRelations().fit(X)
    with pytest.raises(GridError, match=r"CNN1DClassifier\(augment=True\) needs the 2theta grid"):
        CNN1DClassifier(epochs=1).fit(np.repeat(X, 4, axis=0), ["a", "b", "a", "b"])


def test_peak_positions_are_at_the_right_angles_on_a_nano281_build(cod_cifs, tmp_path):
    """Issue 18: on a nano281 build the peak features used the default grid's angles."""
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import cod_dir_source

    summary = build_competition(cod_dir_source(cod_cifs).head(40), tmp_path / "nano",
                                BuildConfig(preset="nano281"), workers=2,
                                progress=False)  # fmt: skip
    patterns = read_patterns(summary.out / "public" / "train.parquet")
    assert patterns.grid == PRESETS["nano281"].to_grid()
    estimator = registry()["random-forest"].make(patterns.grid, 0)
    peaks = estimator.named_steps["features"].transformer_list[1][1]
    strongest = PeakFeatures(n_peaks=1, grid=peaks.grid).fit_transform(patterns.X)[:, 0]
    found = 2 * np.degrees(np.arcsin(np.sqrt(strongest)))
    expected = patterns.grid.two_theta()[patterns.X.argmax(axis=1)]
    # The parabola refines within a grid step of the highest point.
    np.testing.assert_allclose(found, expected, atol=patterns.grid.step)
    default = PeakFeatures(n_peaks=1, grid=DEFAULT_GRID).fit_transform(patterns.X)[:, 0]
    assert np.abs(2 * np.degrees(np.arcsin(np.sqrt(default))) - expected).max() > 10


def test_unknown_baseline_names_are_listed():
    with pytest.raises(ValueError, match=r"unknown baseline.*forest.*choose from uniform"):
        resolve_names(["uniform", "forest"])
    assert [b.name for b in resolve_names(["all"])] == list(registry())


def test_stratified_sample_keeps_every_class():
    y = np.array(["a"] * 90 + ["b"] * 9 + ["c"])
    rows = stratified_sample(y, 20, random_state=1)
    assert len(rows) == 20 and set(y[rows]) == {"a", "b", "c"}
    assert rows.tolist() == stratified_sample(y, 20, random_state=1).tolist()
    # Leaving out fewer rows than there are classes: they come from the largest class.
    rows = stratified_sample(y, 99, random_state=1)
    assert len(set(rows)) == 99 and np.sum(y[rows] == "a") == 89 and set(y[rows]) == set(y)


# -- the CNN --------------------------------------------------------------------


@pytest.fixture(scope="module")
def patterns(cod_build):
    return read_patterns(cod_build.out / "public" / "train.parquet")


def _cnn(**changes):
    params = dict(pool=8, channels=(8, 16), epochs=4, batch_size=32, verbose=0, patience=2,
                  validation_fraction=0.1, grid=DEFAULT_GRID)  # fmt: skip
    return CNN1DClassifier(**{**params, **changes})


def test_cnn_history_has_a_row_per_epoch_and_a_seeded_fit_repeats(patterns, tmp_path):
    X, y = patterns.X[:200], patterns.target("bravais_lattice")[:200]
    # With augmentation: its random draws are seeded too.
    first = _cnn(random_state=5, augment=True).fit(X, y)
    second = _cnn(random_state=5, augment=True).fit(X, y)
    history = first.history_
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))
    assert 1 <= len(history) <= 4 and first.best_epoch_ in history["epoch"].tolist()
    assert history[["train_loss", "val_loss", "train_accuracy"]].notna().all().all()
    pd.testing.assert_frame_equal(history.drop(columns="seconds"),
                                  second.history_.drop(columns="seconds"))  # fmt: skip
    np.testing.assert_array_equal(first.predict_proba(X[:50]), second.predict_proba(X[:50]))
    other = _cnn(random_state=6, augment=True).fit(X, y)
    assert not np.array_equal(first.predict_proba(X[:50]), other.predict_proba(X[:50]))

    restored = CNN1DClassifier.load(first.save(tmp_path / "cnn.pt"))
    np.testing.assert_array_equal(restored.predict_proba(X[:50]), first.predict_proba(X[:50]))
    pd.testing.assert_frame_equal(restored.history_, first.history_)
    unpickled = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(unpickled.predict(X[:50]), first.predict(X[:50]))


def test_cnn_probabilities_are_float32_and_do_not_depend_on_the_batch(patterns):
    # Issue 10, item 0: float32 kernels pick their summation order by batch size,
    # so probabilities agree across batches to float32 precision only; returning
    # them as float64 made the subset-invariance check compare them at 1e-7.
    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    model = _cnn(epochs=1).fit(X, y)
    full = model.predict_proba(X)
    assert full.dtype == np.float32
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-5)
    by_row = np.concatenate([model.predict_proba(X[i : i + 1]) for i in range(0, 120, 7)])
    np.testing.assert_allclose(by_row, full[::7], rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(model.predict(X[::7]), model.predict(X)[::7])


def test_cnn_works_in_grid_search_and_cross_validation(patterns):
    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    scores = cross_val_score(_cnn(epochs=2), X, y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    search = GridSearchCV(_cnn(epochs=2), {"kernel_size": [3, 5]}, cv=2).fit(X, y)
    assert search.best_params_["kernel_size"] in (3, 5)
    assert clone(search.best_estimator_).get_params()["kernel_size"] in (3, 5)


def test_cnn_stops_early_and_keeps_the_best_epoch(patterns):
    X, y = patterns.X[:150], patterns.target("bravais_lattice")[:150]
    # A learning rate this high makes the validation loss climb: patience ends it.
    model = _cnn(epochs=30, patience=2, learning_rate=0.3, augment=False).fit(X, y)
    assert len(model.history_) < 30
    best = model.history_.loc[model.history_["val_loss"].idxmin(), "epoch"]
    assert model.best_epoch_ == best


def test_cnn_refuses_cuda_when_there_is_none(patterns):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        _cnn(device="cuda").fit(patterns.X[:40], patterns.target("bravais_lattice")[:40])


# -- end to end on a real build ---------------------------------------------------


@pytest.fixture(scope="module")
def competition(cod_build, cod_cifs, tmp_path_factory):
    """The COD build with the plain shares of each lattice, apart from the shared one.

    The default tops every lattice up to 10 test rows a leaderboard, which on these
    513 structures sends a third of them (and half of the rare lattices) to the test
    set; the baselines are checked on the 80/20 split they were measured on. Built
    from the shared build's cache: the patterns are the same.
    """
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import cod_dir_source

    root = tmp_path_factory.mktemp("baselines") / "comp"
    build_competition(
        cod_dir_source(cod_cifs), root, BuildConfig(min_test_per_lattice=0), workers=2,
        cache_dir=cod_build.out.parent / "cache", progress=False,
    )
    return root


# Quicker than the defaults on two cores. The CNN's augmentation is for thousands
# of patterns; on these ~400 (measured with the earlier early-stopping defaults)
# it scored 21 % on the whole test set, against 31 % without it. The realism CNN
# keeps its realism draws and cleaning layer but not the strain augmentation: 35 %
# (with strains and 30 epochs it scored 22 %, too close to the 3 / 14 bar).
QUICK = {"xgboost": {"model__n_estimators": 60}, "cnn1d": {"augment": False},
         "xgboost-realism": {"estimator__model__n_estimators": 60},
         "cnn1d-realism": {"max_strain": 0.0, "max_shift": 0.0, "max_broadening": 0.0}}


@pytest.mark.parametrize("name", ["majority", "search-match", "random-forest", "svm", "xgboost",
                                  "xgboost-realism", "cnn1d", "cnn1d-realism"])
def test_each_baseline_runs_end_to_end_and_beats_the_uniform_guess(competition, name):
    cv = 0 if name.startswith("cnn1d") else 2
    result = run_baseline(competition, name, cv=cv, verbose=False, params=QUICK.get(name))
    path = competition / result.submission
    assert path == competition / "submissions" / f"{name}.csv"
    valid = validate_submission(path, competition)  # the grader's validator
    assert len(valid.ids) == result.n_test
    assert (competition / result.model).is_file() and result.public is not None
    # Whole test set (organiser-side check): a clear margin over 1/14.
    scores = grade(path, competition)
    public, private = scores.public, scores.private
    accuracy = (public.accuracy * public.n + private.accuracy * private.n) / (public.n + private.n)
    if name == "majority":
        assert accuracy < 0.3
    else:
        assert accuracy > 3 / 14, f"{name} reached only {accuracy:.3f}"
        searched = cv > 0 and bool(registry()[name].param_grid)
        assert bool(result.best_params) == searched


def test_the_blend_votes_with_the_members_fitted_on_the_same_rows(competition):
    cnn = {**QUICK["cnn1d"], "epochs": 5}
    for name, params in (("xgboost", QUICK["xgboost"]), ("cnn1d", cnn)):
        run_baseline(competition, name, cv=0, record=False, verbose=False, params=params)
    result = run_baseline(competition, "blend", cv=0, record=False, verbose=False)
    assert result.extras["members"] == {"xgboost": "reused", "cnn1d": "reused"}

    test = read_patterns(competition / "public" / "test.parquet")
    folder = competition / "baselines" / "bravais"
    trees, cnn = (load_model(folder / n / "model.pkl")["estimator"] for n in ("xgboost", "cnn1d"))
    blend = load_model(competition / result.model)["estimator"]
    # It pools the two saved models with the exponents it learned on held-out rows.
    pool = result.extras["pool"]
    assert list(pool["exponents"]) == ["xgboost", "cnn1d"] and pool["held_out"] > 0
    np.testing.assert_allclose(list(pool["exponents"].values()), blend.exponents_, atol=1e-4)
    score = sum(w * np.log(np.clip(m.predict_proba(test.X), blend.floor, None))
                for w, m in zip(blend.exponents_, (trees, cnn), strict=True))
    expected = np.exp(score - score.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(blend.predict_proba(test.X), expected, atol=1e-6)
    submitted = pd.read_csv(competition / result.submission)["bravais_lattice"]
    assert (submitted.to_numpy() == blend.classes_[expected.argmax(axis=1)]).all()

    # A --set for one member asks for a new fit of that one only.
    again = run_baseline(competition, "blend", cv=0, record=False, verbose=False,
                         params={"xgboost__model__n_estimators": 20})  # fmt: skip
    assert again.extras["members"] == {"xgboost": "fitted", "cnn1d": "reused"}
    # Other training rows: nothing fitted on them yet, so both are fitted.
    sampled = run_baseline(competition, "blend", cv=0, sample=150, record=False, verbose=False,
                           params={"cnn1d__epochs": 2, "cnn1d__augment": False,
                                   "xgboost__model__n_estimators": 20})  # fmt: skip
    assert sampled.extras["members"] == {"xgboost": "fitted", "cnn1d": "fitted"}
    assert sampled.extras["train_fingerprint"] != result.extras["train_fingerprint"]
    report = write_report(competition, "bravais").read_text()
    assert "votes with: `xgboost` (fitted here), `cnn1d` (fitted here)" in report
    assert re.search(r"- pooled with exponents learned on [\d,]+ held-out training rows .*: "
                     r"`xgboost` \d\.\d\d, `cnn1d` \d\.\d\d", report)  # fmt: skip
    # The CNN ran its whole schedule (no validation split): the report says which loss.
    assert re.search(r"trained 5 epochs on \w+, kept epoch [1-5] \(lowest training loss\)", report)


def test_the_blend_reuses_its_members_on_the_space_group_track_too(competition):
    # The track's own setting for the CNN member (unweighted) is no reason to refit it.
    for name, params in (("xgboost", {"model__n_estimators": 5}),
                         ("cnn1d", {"epochs": 1, "augment": False})):  # fmt: skip
        run_baseline(competition, name, track="spacegroup", cv=0, record=False, verbose=False,
                     params=params)  # fmt: skip
    result = run_baseline(competition, "blend", track="spacegroup", cv=0, record=False,
                          verbose=False)  # fmt: skip
    assert result.extras["members"] == {"xgboost": "reused", "cnn1d": "reused"}


def test_the_measured_pattern_blend_votes_without_the_trees_on_the_space_group_track(
        competition):  # fmt: skip
    # xgboost-realism is dropped there: neither fitted nor asked, though never run.
    for name, params in (("search-match", None),
                         ("cnn1d-realism", {**QUICK["cnn1d-realism"], "epochs": 1})):  # fmt: skip
        run_baseline(competition, name, track="spacegroup", cv=0, record=False, verbose=False,
                     params=params)  # fmt: skip
    assert not (competition / "baselines" / "spacegroup" / "xgboost-realism").exists()
    result = run_baseline(competition, "blend-realism", track="spacegroup", cv=0,
                          record=False, verbose=False)  # fmt: skip
    assert result.extras["members"] == {"search-match": "reused", "xgboost-realism": "dropped",
                                        "cnn1d-realism": "reused"}  # fmt: skip
    assert result.title == "search-match + 1D-CNN on realism (soft vote)"
    report = write_report(competition, "spacegroup").read_text()
    # With what the CNN's own run was set (the track's class_weight is the registry's).
    assert ("- votes with: `search-match` (the model fitted by its own run), `cnn1d-realism` "
            "(the model fitted by its own run; set: `max_strain=0.0`, `max_shift=0.0`, "
            "`max_broadening=0.0`, `epochs=1`)\n- left out on this track: `xgboost-realism`"
            in report)  # fmt: skip
    test = read_patterns(competition / "public" / "test.parquet")
    folder = competition / "baselines" / "spacegroup"
    blend = load_model(competition / result.model)["estimator"]
    assert len(blend.estimators_) == 2
    probas = []
    for name in ("search-match", "cnn1d-realism"):  # each knows its own groups: align them
        model = load_model(folder / name / "model.pkl")["estimator"]
        aligned = np.zeros((len(test.ids), len(blend.classes_)))
        aligned[:, np.searchsorted(blend.classes_, model.classes_)] = model.predict_proba(test.X)
        probas.append(aligned)
    np.testing.assert_allclose(blend.predict_proba(test.X), sum(probas) / 2, atol=1e-6)
    submitted = pd.read_csv(competition / result.submission)["spacegroup_number"]
    assert (submitted.to_numpy() == blend.predict(test.X)).all()


def test_the_measured_pattern_blend_votes_with_its_three_members(competition):
    # The CNN member on a time budget no epoch fits in: it runs one epoch of its three,
    # of 100 rows drawn from the training rows. The trees on copies of a 200-row sample
    # (max_rows), and both say so.
    members = {"search-match": None,
               "xgboost-realism": {**QUICK["xgboost-realism"], "max_rows": 200},
               "cnn1d-realism": {**QUICK["cnn1d-realism"], "epochs": 3, "max_minutes": 1e-6,
                                 "rows_per_epoch": 100}}
    done = {name: run_baseline(competition, name, cv=0, record=False, verbose=False,
                               params=params) for name, params in members.items()}  # fmt: skip
    assert done["cnn1d-realism"].extras["time_budget"] == {"minutes": 1e-6, "epochs": 3}
    assert done["cnn1d-realism"].extras["epochs_run"] == 1
    # One source: the 100 rows are drawn at random, with no own rows to put first.
    assert done["cnn1d-realism"].extras["rows_per_epoch"] == {"rows": 100, "own": None}
    assert done["xgboost-realism"].extras["rows_used"] == 200
    assert "rows_used" not in done["search-match"].extras
    report = write_report(competition, "bravais").read_text()
    assert ("- trained 1 epoch of 3 (time budget 1e-06 min), each of 100 training rows "
            "drawn afresh at random on ") in report
    n_train = done["xgboost-realism"].n_train
    assert f"| {n_train:,} (200 used) |" in report and n_train > 200
    result = run_baseline(competition, "blend-realism", cv=0, record=False, verbose=False)
    assert result.extras["members"] == dict.fromkeys(members, "reused")
    # It says with what its members were set (search-match ran with the registry's).
    assert result.extras["member_settings"] == {
        name: json.loads(json.dumps(params)) for name, params in members.items() if params
    }
    report = write_report(competition, "bravais").read_text()
    assert "`xgboost-realism` (the model fitted by its own run; set: " in report
    assert "`max_rows=200`" in report
    assert "`search-match` (the model fitted by its own run)," in report

    test = read_patterns(competition / "public" / "test.parquet")
    folder = competition / "baselines" / "bravais"
    fitted = [load_model(folder / name / "model.pkl")["estimator"] for name in members]
    mean = sum(model.predict_proba(test.X) for model in fitted) / 3
    blend = load_model(competition / result.model)["estimator"]
    # The mean, then the centring that indexing shows within the system it chose.
    assert isinstance(blend.centring, CentringCheck)
    expected = CentringCheck(test.grid).refine(test.X, mean, blend.classes_)
    np.testing.assert_allclose(blend.predict_proba(test.X), expected, atol=1e-6)
    submitted = pd.read_csv(competition / result.submission)["bravais_lattice"]
    assert (submitted.to_numpy() == blend.classes_[expected.argmax(axis=1)]).all()
    # search-match scores every lattice, so it does not always cast a whole vote for one.
    assert (fitted[0].predict_proba(test.X).max(axis=1) < 0.9).any()

    # A search-match saved by the earlier version (a one-neighbour vote) on the same rows
    # is fitted anew rather than voting the old way; the other two are still reused.
    from sklearn.neighbors import KNeighborsClassifier

    path = folder / "search-match" / "model.pkl"
    bundle = load_model(path)
    bundle["estimator"].steps[-1] = ("match", KNeighborsClassifier(1, algorithm="brute"))
    train = read_patterns(competition / "public" / "train.parquet")
    bundle["estimator"].fit(train.X, train.target("bravais_lattice"))
    path.write_bytes(pickle.dumps(bundle))
    again = run_baseline(competition, "blend-realism", cv=0, record=False, verbose=False)
    assert again.extras["members"] == {"search-match": "fitted", "xgboost-realism": "reused",
                                       "cnn1d-realism": "reused"}  # fmt: skip
    refitted = load_model(competition / again.model)["estimator"]
    np.testing.assert_allclose(refitted.predict_proba(test.X), expected, atol=1e-6)
    # Both fits held out whole compounds for search-match's temperature.
    from baselines.lattice.search_match import calibrate_temperature

    calibrated, _ = calibrate_temperature(fitted[0], train.X, train.target("bravais_lattice"),
                                          train.groups())  # fmt: skip
    for model in (fitted[0], refitted.estimators_[0]):
        assert model[-1].temperature_ == pytest.approx(calibrated, rel=1e-9)
    assert done["search-match"].extras["temperature"] == {"value": fitted[0][-1].temperature_,
                                                          "fitted": True}  # fmt: skip
    assert (f"- probabilities: softmax of each label's best match at temperature "
            f"{calibrated:.3g} (fitted on held-out compounds of the training rows)"
            in report)  # fmt: skip
    # Its symmetry window was chosen on the same held-out rows (all of the build's own).
    window = done["search-match"].extras["symmetry_window"]
    assert window["value"] == fitted[0][-1].symmetry_window_ and window["fitted"]
    assert window["held_out"] == fitted[0][-1].window_accuracy_
    assert f"- symmetry window: {window['value']:g} (chosen on {window['held_out']['rows']:,} " \
        "held-out training rows of the build's own source" in report


def test_a_blend_refits_a_member_saved_by_an_earlier_revision_or_default(competition):
    # A search-match saved by an earlier revision (none in the bundle: revision 1), or
    # with another value than the registry's for one of its parameters (the names all
    # the same), is fitted anew rather than voting the old way; the current one, one
    # whose own run chose another value by a search, and the CNN with its own run's
    # --set values, are reused.
    cnn = {**QUICK["cnn1d-realism"], "epochs": 1}
    done = {name: run_baseline(competition, name, cv=0, record=False, verbose=False, params=params)
            for name, params in (("search-match", None), ("cnn1d-realism", cnn))}  # fmt: skip
    blend = {"xgboost-realism": "drop"}
    result = run_baseline(competition, "blend-realism", cv=0, record=False, verbose=False,
                          params=blend)  # fmt: skip
    assert result.extras["members"] == {"search-match": "reused", "xgboost-realism": "dropped",
                                        "cnn1d-realism": "reused"}  # fmt: skip
    path = competition / done["search-match"].model
    saved = load_model(path)
    assert saved["revision"] == registry()["search-match"].revision == 3
    test = read_patterns(competition / "public" / "test.parquet")
    expected = saved["estimator"].predict_proba(test.X)
    other_default = pickle.loads(pickle.dumps(saved))
    other_default["estimator"].set_params(match__strain=0.02)
    for bundle in ({k: v for k, v in saved.items() if k != "revision"}, other_default):
        path.write_bytes(pickle.dumps(bundle))
        again = run_baseline(competition, "blend-realism", cv=0, record=False, verbose=False,
                             params=blend)  # fmt: skip
        assert again.extras["members"] == {"search-match": "fitted",
                                           "xgboost-realism": "dropped",
                                           "cnn1d-realism": "reused"}  # fmt: skip
        refitted = load_model(competition / again.model)["estimator"].estimators_[0]
        assert refitted[-1].strain == 0.03
        np.testing.assert_allclose(refitted.predict_proba(test.X), expected, atol=1e-6)
    # What a search chose (the result's best_params) is the member's own setting.
    result_path = path.parent / "result.json"
    searched = {**json.loads(result_path.read_text()), "best_params": {"match__strain": 0.02}}
    result_path.write_text(json.dumps(searched))
    path.write_bytes(pickle.dumps(other_default))
    again = run_baseline(competition, "blend-realism", cv=0, record=False, verbose=False,
                         params=blend)  # fmt: skip
    assert again.extras["members"]["search-match"] == "reused"
    assert load_model(competition / again.model)["estimator"].estimators_[0][-1].strain == 0.02


def test_same_settings_compares_values_and_the_kinds_of_steps():
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    class Center(TransformerMixin, BaseEstimator):
        def __init__(self, by=0.0):  # type: ignore[no-untyped-def]
            self.by = by

    class Shift(Center):
        pass

    def pipe(scaler=None, **model):  # type: ignore[no-untyped-def]
        return Pipeline([("scale", scaler or StandardScaler()),
                         ("model", LogisticRegression(**model))])  # fmt: skip

    assert same_settings(pipe(), pipe())
    assert not same_settings(pipe(C=2.0), pipe())
    assert same_settings(pipe(C=2.0), pipe(), {"model__C": 2.0})  # its own run's --set
    assert same_settings(pipe(C=2.0), pipe(), {"model": "set as a whole"})
    assert not same_settings(pipe(C=2.0, tol=1e-3), pipe(), {"model__C": 2.0})
    assert same_settings(pipe(verbose=2), pipe())  # how it reports, not what it learns
    assert not same_settings(pipe(MinMaxScaler()), pipe(StandardScaler()))  # other names
    # The same parameter names and values, another kind of step.
    assert not same_settings(pipe(Center()), pipe(Shift()))
    assert not same_settings(pipe(class_weight={0: 1.0, 1: 2.0}), pipe(class_weight=None))
    assert same_settings(pipe(class_weight={0: 1.0}), pipe(class_weight={0: 1.0}))


def test_realism_accuracy_scores_one_seeded_copy_of_each_row(patterns):
    from sklearn.neighbors import KNeighborsClassifier

    from baselines.lattice.augment import RealismAccuracy, realism_copies

    X, y = patterns.X[:60], patterns.target("bravais_lattice")[:60]
    model = KNeighborsClassifier(1).fit(X, y)
    scorer = RealismAccuracy(DEFAULT_GRID, random_state=3)
    copies, _ = realism_copies(X, y, DEFAULT_GRID, draws=1, keep_clean=False, random_state=3)
    expected = float(np.mean(model.predict(copies) == y))
    assert scorer(model, X, y) == scorer(model, X, y) == pytest.approx(expected)
    assert model.score(X, y) == 1.0 and expected < 1.0  # a copy is not the row it came from


def test_search_match_chooses_its_blur_on_realism_copies_unless_told(competition):
    from baselines.lattice.augment import RealismAccuracy
    from baselines.runner.run import grouped_folds

    train = read_patterns(competition / "public" / "train.parquet")
    X, y, groups = train.X, train.target("bravais_lattice"), train.groups()
    found = {}
    for search_on in ("realism", "clean"):
        result = run_baseline(competition, "search-match", cv=2, record=False, verbose=False,
                              search_on=None if search_on == "realism" else search_on)  # fmt: skip
        assert result.extras["search_on"] == search_on
        found[search_on] = result
        table = pd.read_csv(competition / "baselines" / "bravais" / "search-match" / "search.csv")
        assert len(table) == len(registry()["search-match"].param_grid["blur__sigma"])
        report = write_report(competition, "bravais").read_text()
        assert (" % (realism copies) |" in report) == (search_on == "realism")
    # The realism search's figure is the chosen blur's accuracy on realism copies of
    # the held-out folds, as cross-validation with the scorer gives it.
    chosen = registry()["search-match"].make(train.grid, 0).set_params(
        **found["realism"].best_params
    )
    scores = cross_val_score(chosen, X, y, groups=groups, cv=grouped_folds(2, 0),
                             scoring=RealismAccuracy(train.grid, 0),
                             params={"match__groups": groups})  # fmt: skip
    assert found["realism"].cv_accuracy == pytest.approx(scores.mean())
    assert found["realism"].cv_accuracy != found["clean"].cv_accuracy
    with pytest.raises(ValueError, match="search_on must be one of clean, realism"):
        run_baseline(competition, "search-match", cv=2, record=False, verbose=False,
                     search_on="noisy")  # fmt: skip


def test_cli_lists_the_blends_with_their_members(tmp_path):
    done = run("baselines", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.splitlines()[-2:]] == [
        ["blend", "1D-CNN", "+", "XGBoost", "(log-linear", "pool)", "votes", "with", "xgboost,",
         "cnn1d"],
        ["blend-realism", "search-match", "+", "XGBoost", "+", "1D-CNN", "on", "realism", "(vote",
         "+", "indexing)", "votes", "with", "search-match,", "xgboost-realism,", "cnn1d-realism",
         "(spacegroup:", "without", "xgboost-realism)"],
    ]  # fmt: skip


def test_the_training_fingerprint_changes_with_any_row_label_pattern_or_track():
    ids, X, y = np.array(["r1", "r2"]), np.zeros((2, 3), np.float32), np.array(["cF", "hP"])
    first = training_fingerprint("bravais", ids, X, y)
    assert first == training_fingerprint("bravais", ids.copy(), X.astype(np.float64), y.copy())
    changed_X = X.copy()
    changed_X[1, 2] = 1e-6
    for other in (training_fingerprint("spacegroup", ids, X, y),
                  training_fingerprint("bravais", ids[::-1], X, y),
                  training_fingerprint("bravais", ids, X, y[::-1]),
                  training_fingerprint("bravais", ids, changed_X, y)):  # fmt: skip
        assert other != first


def test_soft_vote_weights_align_classes_and_refuse_bad_settings():
    from sklearn.dummy import DummyClassifier
    from sklearn.frozen import FrozenEstimator

    X, y = np.arange(8.0)[:, None], np.array(["a", "a", "b", "b", "b", "c", "c", "c"])
    # A frozen member that knows two of the three labels: its columns go to theirs.
    partial = DummyClassifier(strategy="prior").fit(X[:5], y[:5])  # a 2/5, b 3/5
    prior = DummyClassifier(strategy="prior")  # a 2/8, b 3/8, c 3/8
    vote = SoftVote([("partial", FrozenEstimator(partial)), ("prior", prior)],
                    weights=[3, 1]).fit(X, y)  # fmt: skip
    expected = (3 * np.array([0.4, 0.6, 0.0]) + np.array([0.25, 0.375, 0.375])) / 4
    np.testing.assert_allclose(vote.predict_proba(X[:1])[0], expected)
    assert vote.predict(X[:1]).tolist() == ["b"]
    assert vote.get_params()["prior__strategy"] == "prior"
    bad = (([1], "2 non-negative"), ([1, -1], "non-negative"), ([0, 0], "not all zero"))
    for weights, match in bad:
        with pytest.raises(ValueError, match=match):
            SoftVote([("partial", prior), ("prior", prior)], weights=weights).fit(X, y)
    with pytest.raises(ValueError, match="at least one"):
        SoftVote([]).fit(X, y)
    with pytest.raises(ValueError, match="unique"):
        SoftVote([("m", prior), ("m", prior)]).fit(X, y)
    # A frozen member fitted on labels the rows do not have is refused by name.
    with pytest.raises(ValueError, match=r"member 'partial' predicts labels.*b"):
        SoftVote([("partial", FrozenEstimator(partial))]).fit(X[:2], y[:2])


def test_log_pool_learns_its_exponents_on_held_out_rows_and_pools_as_it_says():
    from scipy.special import softmax
    from sklearn.dummy import DummyClassifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.where(X[:, 0] > 0, "b", "a")
    y[X[:, 1] > 1.2] = "c"
    near = KNeighborsClassifier(5).fit(X, y)
    prior = DummyClassifier(strategy="prior")
    pool = LogPool([("near", FrozenEstimator(near)), ("prior", prior)], random_state=1)
    pool.fit(X, y)
    # One fold of five held out; the member that knows the data weighs more.
    assert pool.n_held_out_ == 40
    assert pool.exponents_[0] > 0.5 > pool.exponents_[1]
    # The frozen member votes as it was fitted: the held-out fit was of a clone.
    assert pool.estimators_[0].estimator is near
    # Its probabilities: the softmax of the floored log-probabilities, weighed.
    expected = softmax(sum(w * np.log(np.clip(m.predict_proba(X[:5]), pool.floor, None))
                           for w, m in zip(pool.exponents_, pool.estimators_, strict=True)),
                       axis=1)  # fmt: skip
    np.testing.assert_allclose(pool.predict_proba(X[:5]), expected)
    assert (pool.predict(X) == y).mean() > 0.9
    # Seeded: the same fold and exponents; another seed holds out other rows.
    again = LogPool([("near", FrozenEstimator(near)), ("prior", prior)], random_state=1)
    np.testing.assert_array_equal(again.fit(X, y).exponents_, pool.exponents_)
    assert not np.array_equal(pool._held_out(y, None),
                              pool.set_params(random_state=2)._held_out(y, None))  # fmt: skip


def test_log_pool_holds_out_whole_compounds_cuts_row_parameters_and_refuses_bad_settings():
    from sklearn.dummy import DummyClassifier

    X = np.arange(60.0)[:, None]
    y = np.array(["a", "b", "c"] * 20)
    groups = np.arange(60) // 4  # compounds of four rows
    pool = LogPool([("prior", DummyClassifier(strategy="prior")),
                    ("uniform", DummyClassifier(strategy="uniform"))])  # fmt: skip
    held = pool._held_out(y, groups)
    assert 0 < held.sum() < 60
    for compound in np.unique(groups):
        assert len(set(held[groups == compound])) == 1  # never split
    # A parameter with one entry per row reaches the held-out fit cut to its rows
    # (the prior would refuse 60 weights for 48 rows) and the final fit whole.
    weights = np.where(y == "a", 5.0, 1.0)
    pool.fit(X, y, groups=groups, prior__sample_weight=weights)
    np.testing.assert_allclose(pool.estimators_[0].class_prior_, [100 / 140, 20 / 140, 20 / 140])
    bad = ((dict(validation_fraction=0.0), "validation_fraction must be in"),
           (dict(validation_fraction=0.7), "validation_fraction must be in"),
           (dict(floor=0.0), "floor must be in"),
           (dict(floor=1.0), "floor must be in"))  # fmt: skip
    for params, match in bad:
        with pytest.raises(ValueError, match=match):
            LogPool(pool.estimators, **params).fit(X, y)
    with pytest.raises(ValueError, match="groups has 10 entries for 60 rows"):
        pool.fit(X, y, groups=groups[:10])
    with pytest.raises(ValueError, match="every member of the vote is dropped"):
        LogPool([("prior", "drop")]).fit(X, y)


def test_soft_vote_leaves_a_dropped_member_out():
    from sklearn.dummy import DummyClassifier

    X, y = np.arange(8.0)[:, None], np.array(["a", "a", "b", "b", "b", "c", "c", "c"])
    prior, uniform = DummyClassifier(strategy="prior"), DummyClassifier(strategy="uniform")
    # Set as scikit-learn's VotingClassifier takes it; the dropped member's weight is ignored.
    vote = SoftVote([("prior", prior), ("uniform", uniform)], weights=[1, 3])
    vote.set_params(uniform="drop").fit(X, y)
    assert len(vote.estimators_) == 1 and vote.get_params()["uniform"] == "drop"
    np.testing.assert_allclose(vote.predict_proba(X[:2]), [[0.25, 0.375, 0.375]] * 2)
    # Back in, it counts three times.
    vote.set_params(uniform=uniform).fit(X, y)
    expected = (np.array([0.25, 0.375, 0.375]) + 3 * np.full(3, 1 / 3)) / 4
    np.testing.assert_allclose(vote.predict_proba(X[:1])[0], expected)
    with pytest.raises(ValueError, match="every member of the vote is dropped: prior, uniform"):
        SoftVote([("prior", "drop"), ("uniform", "drop")]).fit(X, y)
    with pytest.raises(ValueError, match="not all zero among the members kept"):
        SoftVote([("prior", prior), ("uniform", "drop")], weights=[0, 1]).fit(X, y)
    with pytest.raises(ValueError, match=r"an estimator or 'drop', not uniform='passthrough'"):
        SoftVote([("prior", prior), ("uniform", "passthrough")]).fit(X, y)


def test_soft_vote_passes_fit_parameters_to_the_member_they_name():
    from sklearn.dummy import DummyClassifier

    X, y = np.arange(8.0)[:, None], np.array(["a", "a", "b", "b", "b", "c", "c", "c"])
    # Weights that make "a" the prior's commonest label: they reached the prior only.
    weights = np.array([5.0, 5, 1, 1, 1, 1, 1, 1])
    vote = SoftVote([("prior", DummyClassifier(strategy="prior")),
                     ("uniform", DummyClassifier(strategy="uniform"))])  # fmt: skip
    vote.fit(X, y, prior__sample_weight=weights)
    np.testing.assert_allclose(vote.estimators_[0].class_prior_, [10 / 16, 3 / 16, 3 / 16])
    for key in ("trees__sample_weight", "sample_weight", "prior__"):
        with pytest.raises(ValueError, match=f"fit parameter '{key}' is not <member>__<param"):
            vote.fit(X, y, **{key: weights})
    # Blends pass the training rows' compounds on to search-match's temperature.
    from baselines.runner.run import group_parameters

    assert group_parameters(registry()["search-match"]) == ["match__groups"]
    assert group_parameters(registry()["blend-realism"]) == ["search-match__match__groups"]
    # The pool holds out whole compounds to learn its exponents.
    assert group_parameters(registry()["blend"]) == ["groups"]
    # And which rows are the build's own, on which its symmetry window is chosen and
    # from which xgboost-realism draws its sample and cnn1d-realism its epochs first.
    assert group_parameters(registry()["blend-realism"], "fit_own_source") == [
        "search-match__match__own_source", "xgboost-realism__own_source",
        "cnn1d-realism__own_source"]
    assert group_parameters(registry()["xgboost"], "fit_own_source") == []


def test_the_blends_keep_the_cnn_unweighted_on_the_space_group_track():
    for name, cnn in (("blend", "cnn1d"), ("blend-realism", "cnn1d-realism")):
        blend = registry()[name]
        model = blend.make(DEFAULT_GRID, 0).set_params(**blend.track_params["spacegroup"])
        assert model.get_params()[f"{cnn}__class_weight"] is None
        assert [member for member, _ in model.estimators] == list(blend.members)
    # The measured-pattern blend votes without its trees on ~220 space groups (too slow).
    blend = registry()["blend-realism"]
    model = blend.make(DEFAULT_GRID, 0).set_params(**blend.track_params["spacegroup"])
    assert [name for name, m in model.estimators if m == "drop"] == ["xgboost-realism"]
    # cnn1d-realism keeps to a time budget by default, in the blend too.
    assert registry()["cnn1d-realism"].make(DEFAULT_GRID, 0).max_minutes == 40
    assert model.get_params()["cnn1d-realism__max_minutes"] == 40
    # Each blend after its members, so that `all` has fitted them and the blend reuses them.
    order = list(registry())
    for baseline in registry().values():
        assert all(order.index(m) < order.index(baseline.name) for m in baseline.members)
    assert {b.name for b in registry().values() if b.members} == {"blend", "blend-realism"}


def test_every_baseline_title_fits_the_leaderboard():
    from scoring.leaderboard import MAX_TEAM_NAME

    # The title is the baseline's team name on the board, on every track.
    for baseline in registry().values():
        for title in (baseline.title, *baseline.track_titles.values()):
            assert 1 <= len(title) <= MAX_TEAM_NAME, title


def test_seeded_forest_runs_repeat_exactly(competition):
    first = run_baseline(competition, "random-forest", cv=0, record=False, verbose=False)
    a = (competition / first.submission).read_bytes()
    run_baseline(competition, "random-forest", cv=0, record=False, verbose=False)
    assert (competition / first.submission).read_bytes() == a


# -- the command line ---------------------------------------------------------------


def test_cli_runs_guesses_records_them_and_writes_a_report(competition, tmp_path):
    done = run("baselines", "run", "uniform", "majority", "--competition", str(competition),
               "--cv", "0", "--quiet", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "uniform: Public accuracy" in done.stdout and "Report:" in done.stdout
    folder = competition / "baselines" / "bravais"
    report = (folder / "report.md").read_text()
    assert "random guess (majority class)" in report and "comparison.png" in report
    assert (folder / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    for result in folder.glob("*/result.json"):  # Public scores only, never Private
        assert "private" not in result.read_text().lower()
    board = run("leaderboard", "--competition", str(competition), "--format", "csv", cwd=tmp_path)
    assert "random guess (uniform)" in board.stdout

    model = folder / "majority" / "model.pkl"
    out = tmp_path / "predictions.csv"
    done = run("baselines", "predict", "--model", str(model), "--input",
               str(competition / "public" / "test.parquet"), "--out", str(out),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (competition / "submissions" / "majority.csv").read_bytes()


def test_cli_predict_refuses_patterns_on_another_grid(competition, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run_baseline(competition, "prior", cv=0, record=False, verbose=False)
    short = pa.table({"id": ["x1", "x2"], **{f"y{i}": [0.0, 1.0] for i in range(180)}})
    pq.write_table(short, tmp_path / "nano.parquet")
    done = run("baselines", "predict", "--model",
               str(competition / "baselines" / "bravais" / "prior" / "model.pkl"),
               "--input", str(tmp_path / "nano.parquet"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert "trained on 4251 grid points but the input has 180" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "predictions.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forest"], "unknown baseline(s): forest; choose from uniform"),
        (["uniform", "--set", "cnn1d:epochs=3"], "cnn1d is not among the baselines"),
        (["uniform", "--set", "uniform=3"], "--set takes NAME:PARAM=VALUE"),
        (["prior", "--set", "prior:depth=3", "--cv", "0"], "cannot set {'depth': 3} on prior"),
        (["uniform", "--search-on", "noisy"], "--search-on takes clean or realism, got 'noisy'"),
    ],
)
def test_cli_user_errors_are_one_line(competition, tmp_path, args, message):

    done = run("baselines", "run", *args, "--competition", str(competition), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_cli_refuses_a_folder_that_is_not_a_competition(tmp_path):

    done = run("baselines", "run", "uniform", "--competition", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "is not a built competition" in done.stderr


def test_cli_output_paths_that_are_folders_are_one_line_errors(competition, tmp_path):
    """Issue 10, item 14: both ended in a traceback."""
    run_baseline(competition, "prior", cv=0, record=False, verbose=False)
    model = competition / "baselines" / "bravais" / "prior" / "model.pkl"
    (tmp_path / "folder").mkdir()
    done = run("baselines", "predict", "--model", str(model), "--input",
               str(competition / "public" / "test.parquet"), "--out", str(tmp_path / "folder"),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "is a folder" in done.stderr
    assert "Traceback" not in done.stderr
    kit = run("starter-kit", "-c", str(competition), "--out", str(tmp_path / "folder"),
              cwd=tmp_path)  # fmt: skip
    assert kit.returncode == 2 and "is a folder" in kit.stderr and "Traceback" not in kit.stderr


def test_cli_baselines_on_a_base_install_say_what_to_install(tmp_path):
    """Students install scoring alone; `baselines list` ended in an ImportError traceback."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"torch", "sklearn", "xgboost", "matplotlib"}:
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        from xrd_bravais.cli import app
        sys.argv = ["xrd-bravais", "baselines", "list"]
        app()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'xrd-bravais[baselines]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_strain_augmentation_moves_peaks_as_braggs_law_says():
    from baselines.lattice.cnn_training import _warp

    preset = PRESETS["default"]
    X = _gaussian_pattern([40.0, 80.0], [1.0, 0.6])[:, None, :]
    strain = np.array([0.02])
    moved = _warp(torch.from_numpy(X), strain, np.array([0.0]),
                  (preset.two_theta_min, preset.step)).numpy()[0, 0]  # fmt: skip
    grid = preset.grid()
    for centre in (40.0, 80.0):
        expected = 2 * np.degrees(np.arcsin(np.sin(np.radians(centre / 2)) / 1.02))
        window = np.abs(grid - expected) < 1.0
        found = grid[window][np.argmax(moved[window])]
        assert found == pytest.approx(expected, abs=preset.step)
    shifted = _warp(torch.from_numpy(X), np.array([0.0]), np.array([3.0]),
                    (preset.two_theta_min, preset.step)).numpy()[0, 0]  # fmt: skip
    assert np.argmax(shifted) == np.argmax(X[0, 0]) + 3


def test_on_the_log_d_axis_a_larger_cell_only_shifts_the_pattern():
    from baselines.lattice.log_d import LogD

    # Three reflections of a cubic cell (d = a, a/sqrt 2, a/sqrt 3), then the same
    # cell 3 % larger: on the ln d axis every peak moves by ln(1.03) / (bin width).
    d = 3.0 / np.sqrt([1.0, 2.0, 3.0])

    def resampled(scale):
        angles = 2 * np.degrees(np.arcsin(1.54184 / (2 * d * scale)))
        x = torch.from_numpy(_gaussian_pattern(list(angles), [1.0, 0.8, 0.6])[:, None, :])
        return LogD(DEFAULT_GRID, 1000)(x).numpy()[0, 0]

    def peak_bins(y):
        local = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]) & (y[1:-1] > 0.3)
        return np.flatnonzero(local) + 1

    u = np.log(np.sin(np.radians([DEFAULT_GRID.two_theta_min, DEFAULT_GRID.two_theta_max]) / 2))
    width = (u[1] - u[0]) / (1000 - 1 / 16)  # 1,000 bins of 16 evenly spaced samples
    before, after = resampled(1.0), resampled(1.03)
    # Samples fall between grid points, so a peak top may read a little under 1.
    assert before.shape == (1000,) and 0.95 < before.max() <= 1.0
    assert len(peak_bins(before)) == len(peak_bins(after)) == 3
    np.testing.assert_allclose(peak_bins(before) - peak_bins(after), np.log(1.03) / width, atol=1)


def test_a_log_d_cnn_saves_loads_and_pickles_and_a_bad_axis_is_refused(patterns, tmp_path):
    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    model = _cnn(epochs=1, axis="log-d").fit(X, y)
    expected = model.predict_proba(X[:30])
    restored = CNN1DClassifier.load(model.save(tmp_path / "cnn.pt"))
    np.testing.assert_array_equal(restored.predict_proba(X[:30]), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X[:30]), expected)
    with pytest.raises(ValueError, match="axis must be 'two-theta' or 'log-d'"):
        _cnn(axis="q").fit(X, y)
    with pytest.raises(GridError, match=r"axis='log-d'\) needs the 2theta grid"):
        _cnn(axis="log-d", augment=False, grid=None).fit(X, y)


def test_the_stem_tells_apart_a_doublet_that_the_pooling_alone_merges():
    from baselines.lattice.cnn_network import network as _network

    torch.manual_seed(0)
    single = torch.zeros(1, 1, 400)
    single[0, 0, 16] = 1.0
    doublet = single.clone()
    doublet[0, 0, 19] = 1.0  # 0.06 degrees away, inside the same bin of 8 points
    for stem, differ in ((0, False), (16, True)):
        net = _network(400, 3, 8, (8, 8), 3, 0.0, stem=stem).eval()
        with torch.no_grad():
            same = torch.equal(net(single), net(doublet))
        assert same is not differ, f"stem={stem}"


def test_a_cnn_with_a_stem_round_trips_and_bad_settings_are_refused(patterns, tmp_path):
    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    model = _cnn(epochs=1, stem=8).fit(X, y)
    assert model.model_[1].out_channels == 8  # max-pool by 2, then the stem
    restored = CNN1DClassifier.load(model.save(tmp_path / "cnn.pt"))
    np.testing.assert_array_equal(restored.predict_proba(X[:30]), model.predict_proba(X[:30]))
    with pytest.raises(ValueError, match="pool must be a multiple of 2"):
        _cnn(pool=3).fit(X, y)
    with pytest.raises(ValueError, match="stem must be a non-negative integer"):
        _cnn(stem=-1).fit(X, y)
    # A checkpoint or pickle written before the stem, test-time strains, the cleaning
    # layer and the time budget existed (no such keys) loads as the network it was:
    # stem-less, predicting as given.
    newer = ("stem", "test_time_strains", "smooth", "background", "precision", "max_minutes")
    old = _cnn(epochs=1, stem=0, test_time_strains=()).fit(X, y)
    checkpoint = torch.load(old.save(tmp_path / "old.pt"), weights_only=True)
    for key in newer:
        del checkpoint["params"][key]
    torch.save(checkpoint, tmp_path / "old.pt")
    expected = old.predict_proba(X[:30])
    loaded = CNN1DClassifier.load(tmp_path / "old.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X[:30]), expected)
    state = old.__getstate__()
    for key in newer:
        del state[key]
    unpickled = CNN1DClassifier.__new__(CNN1DClassifier)
    unpickled.__setstate__(state)
    np.testing.assert_array_equal(unpickled.predict_proba(X[:30]), expected)
    for model in (loaded, unpickled):
        assert model.get_params()["max_minutes"] is None and model.get_params()["stem"] == 0


def test_test_time_strains_average_the_strained_copies(patterns):
    from baselines.lattice.cnn_training import _warp

    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    model = _cnn(epochs=3, augment=False, test_time_strains=()).fit(X, y)
    plain = model.predict_proba(X[:40])
    # No strain is the pattern itself (up to the resampling's rounding).
    np.testing.assert_allclose(model.set_params(test_time_strains=(0.0,)).predict_proba(X[:40]),
                               plain, atol=1e-5)  # fmt: skip
    averaged = model.set_params(test_time_strains=(-0.01, 0.01)).predict_proba(X[:40])
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-5)
    grid = (DEFAULT_GRID.two_theta_min, DEFAULT_GRID.step)
    copies = []
    for strain in (-0.01, 0.01):
        warped = _warp(torch.from_numpy(X[:40, None].copy()), np.full(40, strain),
                       np.zeros(40), grid)[:, 0].numpy()  # fmt: skip
        copies.append(model.set_params(test_time_strains=()).predict_proba(
            warped / warped.max(axis=1, keepdims=True)))  # fmt: skip
    np.testing.assert_allclose(averaged, (copies[0] + copies[1]) / 2, atol=1e-5)
    # Strained copies change the answer: by far more than the rounding bounded above.
    assert np.abs(averaged - plain).max() > 1e-4
    with pytest.raises(ValueError, match="test_time_strains"):
        _cnn(test_time_strains=(0.7,)).fit(X, y)


def test_realism_augmentation_draws_a_share_of_each_batch_and_is_seeded(patterns):
    from baselines.lattice.cnn_training import _realism

    X = torch.from_numpy(patterns.X[:64, None, :].copy())
    drawn = _realism(X, np.random.default_rng(0), DEFAULT_GRID, 0.5).numpy()[:, 0]
    changed = ~np.all(drawn == patterns.X[:64], axis=1)
    assert 16 < changed.sum() < 48  # about half the rows
    # A drawn row has its maximum at 1 and, unless drawn background-subtracted (a
    # fifth of them, RealismRanges.background_subtracted_probability), a background.
    assert np.mean(np.median(drawn[changed], axis=1) > 0) > 0.6
    np.testing.assert_allclose(drawn[changed].max(axis=1), 1.0)
    again = _realism(X, np.random.default_rng(0), DEFAULT_GRID, 0.5).numpy()[:, 0]
    np.testing.assert_array_equal(drawn, again)
    untouched = _realism(X, np.random.default_rng(0), DEFAULT_GRID, 0.0)
    assert untouched is X


def test_cnn_trains_with_realism_augmentation_and_refuses_bad_settings(patterns):
    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    model = _cnn(epochs=2, augment="realism", realism_fraction=0.5).fit(X, y)
    assert len(model.history_) == 2
    with pytest.raises(ValueError, match="augment must be"):
        _cnn(augment="strong").fit(X, y)
    with pytest.raises(ValueError, match="realism_fraction"):
        _cnn(augment="realism", realism_fraction=1.5).fit(X, y)


def test_realism_copies_keep_labels_and_add_measured_looking_rows(patterns):
    from baselines.lattice.augment import realism_copies

    X, y = patterns.X[:30], patterns.target("bravais_lattice")[:30]
    X_new, y_new = realism_copies(X, y, DEFAULT_GRID, draws=2, random_state=1)
    assert X_new.shape == (90, X.shape[1]) and X_new.dtype == np.float32
    np.testing.assert_array_equal(X_new[:30], X)
    np.testing.assert_array_equal(y_new, np.concatenate([y, y, y]))
    # A background under most copies (a fifth are drawn background-subtracted, and a
    # short scan of one of those can count zero at most points).
    assert np.mean(np.median(X_new[30:], axis=1) > 0) > 0.7
    assert not np.any(np.all(X_new[30:60] == X, axis=1))
    assert not np.array_equal(X_new[30:60], X_new[60:])
    only, _ = realism_copies(X, y, DEFAULT_GRID, draws=1, keep_clean=False)
    assert only.shape == X.shape
    with pytest.raises(ValueError, match="columns"):
        realism_copies(X[:, :100], y, DEFAULT_GRID)


def test_boosting_stops_early_on_held_out_rows_and_keeps_rare_labels_whole():
    rng = np.random.default_rng(0)
    # Three easy classes and one with a single row (as the space-group track has).
    X = np.vstack([rng.normal(c * 3, 1, (60, 5)) for c in range(3)] + [rng.normal(9, 1, (1, 5))])
    y = np.array([0] * 60 + [1] * 60 + [2] * 60 + [7])
    model = BoostedTrees(n_estimators=400, early_stopping_rounds=5, n_jobs=1).fit(X, y)
    assert model.n_rounds_ < 400  # stopped: the held-out loss stops improving early
    held = model._held_out(np.unique(y, return_inverse=True)[1])
    assert held.sum() == 18 and not held[-1]  # 10 % of each big class; the single row trains
    assert list(model.classes_) == [0, 1, 2, 7]
    assert (model.predict(X) == y).mean() > 0.95
    full = BoostedTrees(n_estimators=40, n_jobs=1).fit(X, y)
    assert full.n_rounds_ == 40
    with pytest.raises(ValueError, match="held-out rows"):
        BoostedTrees(early_stopping_rounds=5, n_jobs=1).fit(X[:4], np.array([0, 1, 2, 3]))


def test_the_cnn_is_unweighted_on_the_space_group_track_unless_told(competition):

    quick = {"epochs": 1, "augment": False}
    result = run_baseline(competition, "cnn1d", track="spacegroup", cv=0, record=False,
                          verbose=False, params=quick)  # fmt: skip
    model = load_model(competition / result.model)["estimator"]
    assert model.class_weight is None
    result = run_baseline(competition, "cnn1d", track="spacegroup", cv=0, record=False,
                          verbose=False, params={**quick, "class_weight": "balanced"})  # fmt: skip
    assert load_model(competition / result.model)["estimator"].class_weight == "balanced"
    result = run_baseline(competition, "cnn1d", cv=0, record=False, verbose=False, params=quick)
    assert load_model(competition / result.model)["estimator"].class_weight == "balanced"


def test_a_run_keeps_what_the_caller_set_and_the_report_and_board_say_it(competition, tmp_path):
    import shutil

    from scoring.leaderboard import Leaderboard

    comp = Path(shutil.copytree(competition, tmp_path / "comp"))
    done = run("baselines", "run", "search-match", "-c", str(comp), "--cv", "0", "--quiet",
               "--set", "search-match:match__symmetry_window=0.02", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = comp / "baselines" / "bravais" / "search-match"
    result = json.loads((folder / "result.json").read_text())
    assert result["extras"]["set"] == {"match__symmetry_window": 0.02}
    assert result["extras"]["symmetry_window"] == {"value": 0.02, "fitted": False, "held_out": {}}
    assert load_model(folder / "model.pkl")["estimator"][-1].symmetry_window == 0.02
    report = (comp / "baselines" / "bravais" / "report.md").read_text()
    assert "- set for this run (`--set`): `match__symmetry_window=0.02`" in report
    assert "- symmetry window: 0.02 (as set)" in report
    with Leaderboard.open(comp) as board:
        title = registry()["search-match"].title
        row = board.team_submission(title, result["submission_id"])
    assert row.message.endswith("; symmetry_window=0.02")
    # A run without --set records nothing of the kind.
    plain = run_baseline(comp, "majority", cv=0, record=False, verbose=False)
    assert "set" not in plain.extras


def test_a_build_of_one_source_has_no_own_source_mask(competition, tmp_path):
    from baselines.data import own_source_rows

    train = read_patterns(competition / "public" / "train.parquet")
    assert own_source_rows(competition, train.ids) is None
    assert own_source_rows(tmp_path, train.ids) is None  # no train_meta.parquet
    with pytest.raises(ValueError, match=r"has no row for 1 training ids, e\.g\. r999999"):
        own_source_rows(competition, np.append(train.ids, "r999999"))


def test_a_title_the_board_refuses_stops_the_run_before_the_fit(competition, tmp_path):
    import dataclasses
    import shutil

    comp = Path(shutil.copytree(competition, tmp_path / "comp"))
    long = dataclasses.replace(registry()["majority"], name="majority-long", title="m" * 65)
    with pytest.raises(ValueError, match="cannot name a board row: team name must have 1 to 64"):
        run_baseline(comp, long, cv=0, verbose=False)
    assert not (comp / "baselines" / "bravais" / "majority-long").exists()
    assert not (comp / "submissions" / "majority-long.csv").exists()
    # Not recorded, nothing to refuse: it runs.
    assert run_baseline(comp, long, cv=0, record=False, verbose=False).submission_id is None


def test_a_board_that_fails_after_the_fit_leaves_the_model_and_its_result_together(
    competition, tmp_path
):
    import shutil

    from scoring.leaderboard import LeaderboardError

    comp = Path(shutil.copytree(competition, tmp_path / "comp"))
    first = run_baseline(comp, "majority", cv=0, verbose=False)
    assert first.submission_id is not None
    board = comp / "leaderboard" / "leaderboard.sqlite"
    board.write_bytes(b"not a database" * 100)  # a damaged board file
    sample = 100  # other rows than the first run's: a new fit, a new fingerprint
    with pytest.raises(LeaderboardError, match="not a readable leaderboard"):
        run_baseline(comp, "majority", cv=0, sample=sample, verbose=False)
    folder = comp / "baselines" / "bravais" / "majority"
    saved = json.loads((folder / "result.json").read_text())
    assert saved["n_train"] == sample and saved["submission_id"] is None
    assert saved["extras"]["train_fingerprint"] != first.extras["train_fingerprint"]
    assert load_model(folder / "model.pkl")["estimator"] is not None
    # Through the CLI: the error, said once, and what was kept.
    done = run("baselines", "run", "majority", "-c", str(comp), "--cv", "0", "--quiet",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "majority: not recorded on the board" in done.stderr
    assert "not a readable leaderboard" in done.stderr and "Traceback" not in done.stderr
