"""The baselines for measured patterns: search-match and training on realism copies."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from baselines.lattice.augment import RealismAugmented
from baselines.lattice.search_match import (
    BestMatch,
    Blur,
    Floor,
    calibrate_temperature,
    make_search_match,
)
from competition.config import PRESETS
from xrd_bravais.contract.grid import GridError
from xrd_bravais.contract.labels import BRAVAIS_LATTICES, LATTICE_SYSTEMS

GRID = PRESETS["default"].to_grid()
TWO_THETA = GRID.two_theta_min + GRID.step * np.arange(GRID.n_points)


@parametrize_with_checks(
    [Blur(sigma=1.5), Blur(sigma=0), Floor(0.1), Floor(0.02, noise=3), BestMatch(0.1, chunk_size=7),
     BestMatch(),
     BestMatch(0.1, strain=0.01, strain_step=0.01, two_theta=(20.0, 20.0))]
)
def test_scikit_learn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def _pattern(peaks, heights, shift=0.0, width=0.03, background=0.0):
    """Gaussian peaks (sigma ``width`` degrees) on the default grid, maximum 1 + background."""
    y = sum(h * np.exp(-0.5 * ((TWO_THETA - p - shift) / width) ** 2)
            for p, h in zip(peaks, heights, strict=True))  # fmt: skip
    return (y / y.max() + background).astype(np.float32)


def test_blur_makes_a_shifted_pattern_match_and_a_flat_background_does_not_count():
    peaks, heights = (28.4, 47.3, 56.1, 69.1), (1.0, 0.6, 0.35, 0.1)
    reference = _pattern(peaks, heights)
    # 0.12 degrees off (a zero shift; four times the peaks' sigma), on a sloping background.
    query = _pattern(peaks, heights, shift=0.12) + np.linspace(0.3, 0.1, GRID.n_points)
    other = _pattern((30.0, 45.0, 60.0, 75.0), heights)

    def similarity(model, a, b):
        prepared = model[:-1].fit_transform(np.stack([a, b]).astype(np.float32))
        return float(prepared[0] @ prepared[1])

    blurred = make_search_match(GRID, sigma_degrees=0.1)
    sharp = make_search_match(GRID, sigma_degrees=0.0, pool=1)
    assert similarity(blurred, query, reference) > 0.6
    assert similarity(sharp, query, reference) < 0.3  # the raw peaks barely overlap
    assert similarity(blurred, query, other) < 0.1
    model = make_search_match(GRID).fit(np.stack([reference, other]), ["cF", "cP"])
    assert model.predict(query[None, :]).tolist() == ["cF"]


def test_the_noise_floor_rises_with_a_rows_noise_and_leaves_clean_rows_at_the_level(patterns):
    rng = np.random.default_rng(0)
    peaks = _pattern((28.4, 47.3, 56.1, 69.1), (1.0, 0.6, 0.35, 0.1))
    # Gaussian noise of 0.01 on a residual background of 0.05: the floor lies about
    # 3 x 0.01 above the median, whatever the peaks (a few points of the row).
    noisy = peaks + 0.05 + rng.normal(0, 0.01, GRID.n_points).astype(np.float32)
    floor = Floor(0.02, noise=3).fit(noisy[None, :])
    assert floor.levels(noisy[None, :])[0, 0] == pytest.approx(0.05 + 0.03, abs=0.003)
    np.testing.assert_allclose(floor.transform(noisy[None, :]),
                               np.maximum(noisy - floor.levels(noisy[None, :]), 0)[None, :][0])
    # A clean simulated pattern (median and noise 0) keeps the level: as without it.
    clean = make_search_match(GRID)[:2].fit_transform(patterns.X[:200])
    np.testing.assert_array_equal(Floor(0.02, noise=3).fit(clean).levels(clean), np.float32(0.02))
    np.testing.assert_array_equal(Floor(0.02, noise=3).fit_transform(clean),
                                  Floor(0.02).fit_transform(clean))
    for bad in (-1, float("nan"), float("inf"), True, "3"):
        with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
            Floor(noise=bad).fit(clean)
    with pytest.raises(ValueError, match="level must be a finite number >= 0"):
        Floor(level=-0.1).fit(clean)
    # Saved before it had a noise term: the level alone.
    import pickle

    state = Floor(0.05).fit(clean).__getstate__()
    del state["noise"]
    old = Floor.__new__(Floor)
    old.__setstate__(state)
    assert pickle.loads(pickle.dumps(old)).get_params() == {"level": 0.05, "noise": 0.0}


def test_search_match_names_the_best_match_and_scores_the_runner_up():
    rng = np.random.default_rng(0)
    families = {"cF": (28.4, 47.3, 56.1), "hP": (26.6, 43.3, 50.7), "tI": (32.0, 36.0, 61.0)}
    X, y = [], []
    for label, peaks in families.items():
        for _ in range(6):
            X.append(_pattern(peaks, rng.uniform(0.2, 1.0, 3), shift=rng.uniform(-0.05, 0.05)))
            y.append(label)
    # Held out against each other these references never mistake a family, so the
    # fitted temperature makes the vote near certain; 0.04 shows the shares better.
    assert make_search_match(GRID).fit(np.stack(X), y)[-1].temperature_ < 0.01
    model = make_search_match(GRID, temperature=0.04).fit(np.stack(X), y)
    queries = np.stack([_pattern(p, (1.0, 0.5, 0.3), shift=0.06, background=0.05)
                        for p in families.values()])  # fmt: skip
    assert model.predict(queries).tolist() == list(families)
    proba = model.predict_proba(queries)
    np.testing.assert_array_equal(proba.argmax(axis=1), [0, 1, 2])  # classes_ are sorted
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # A cF phase with some hP beside it: cF answers, hP keeps a share, tI has next to none.
    mixture = queries[0] + 0.9 * queries[1]
    share = model.predict_proba(mixture[None, :])[0]
    assert share[0] > share[1] > 0.02 > 1e-3 > share[2]
    # The temperature sets how sure it is, never what it answers.
    for temperature, most in ((1e-3, 1.0), (10.0, 0.36)):
        model.set_params(match__temperature=temperature).fit(np.stack(X), y)
        sure = model.predict_proba(queries)
        assert sure.max(axis=1).min() == pytest.approx(most, abs=0.03)
        assert model.predict(queries).tolist() == list(families)


def test_best_match_scores_each_label_by_its_best_reference():
    X = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [0.0, 0.6, 0.8]])
    model = BestMatch(temperature=0.5, chunk_size=1).fit(X, ["hP", "cF", "cF", "hP"])
    queries = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # cF's references are rows 1 and 2, hP's rows 0 and 3 (classes_ sorted: cF, hP).
    np.testing.assert_allclose(model.best_cosines(queries), [[0.8, 0.6], [0.6, 1.0]], rtol=1e-6)
    assert model.predict(queries).tolist() == ["cF", "hP"]
    # The odds of the better label: exp(difference / temperature).
    first, second = np.exp(0.2 / 0.5), np.exp(0.4 / 0.5)
    expected = [[first / (1 + first), 1 / (1 + first)], [1 / (1 + second), second / (1 + second)]]
    np.testing.assert_allclose(model.predict_proba(queries), expected)
    for bad in (0, -0.1, float("nan"), float("inf"), True, "0.04", "Auto"):
        with pytest.raises(ValueError, match="temperature must be 'auto' or a finite number > 0"):
            BestMatch(temperature=bad).fit(X, ["hP", "cF", "cF", "hP"])
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        BestMatch(chunk_size=0).fit(X, ["hP", "cF", "cF", "hP"])


def test_the_symmetry_window_answers_the_most_symmetric_lattice_near_the_best_match():
    # classes_ sorted: aP, cF, mP, oP. Query 0: aP 0.95, mP 0.94, cF 0.90, oP 0.30.
    X = np.eye(4)
    query = np.array([[0.95, 0.90, 0.94, 0.30], [0.20, 0.50, 0.40, 0.99]])
    labels = ["aP", "cF", "mP", "oP"]
    plain = BestMatch(temperature=0.1).fit(X, labels)
    assert plain.predict(query).tolist() == ["aP", "oP"]
    # A window of 0.5 reaches cF's 0.50 from oP's 0.99 too.
    expected = {0.005: ["aP", "oP"], 0.02: ["mP", "oP"], 0.06: ["cF", "oP"], 0.5: ["cF", "cF"]}
    for window, answers in expected.items():
        model = BestMatch(temperature=0.1, symmetry_window=window).fit(X, labels)
        assert model.predict(query).tolist() == answers, window
        # The answer swaps its cosine with the best match's: the others keep theirs,
        # and the probabilities agree with the answer.
        scores = model.answer_scores(query)
        np.testing.assert_allclose(np.sort(scores, axis=1), np.sort(query, axis=1))
        assert model.classes_[model.predict_proba(query).argmax(axis=1)].tolist() == answers
        if answers[1] == "oP":  # nothing more symmetric near oP's 0.99: nothing moves
            np.testing.assert_allclose(scores[1], query[1])
    assert BestMatch(temperature=0.1, symmetry_window=0.06).fit(X, labels).answer_scores(
        query)[0].tolist() == pytest.approx([0.90, 0.95, 0.94, 0.30])


def test_the_symmetry_window_ranks_space_groups_by_their_lattice_and_checks_its_labels():
    X = np.eye(3)
    # Groups 2 (aP), 14 (mP) and 15 (mS); the two monoclinic ones both near the best.
    query = np.array([[0.95, 0.93, 0.92]])
    model = BestMatch(temperature=0.1, symmetry_window=0.05).fit(X, [2, 14, 15])
    assert model.predict(query).tolist() == [15]
    # Among groups of one lattice, the better match: 14 and 13 are both mP.
    model = BestMatch(temperature=0.1, symmetry_window=0.05).fit(X, [2, 14, 13])
    assert model.predict(query).tolist() == [14]
    for bad in (-0.01, float("nan"), True, "0.02", "Auto"):
        with pytest.raises(ValueError, match="symmetry_window must be 'auto' or a number >= 0"):
            BestMatch(symmetry_window=bad).fit(X, ["aP", "cF", "mP"])
    with pytest.raises(ValueError, match="needs Bravais lattice symbols or space-group numbers"):
        BestMatch(symmetry_window=0.02).fit(X, ["aP", "cubic", "mP"])
    with pytest.raises(ValueError, match="got 231"):
        BestMatch(symmetry_window=0.02).fit(X, [2, 14, 231])
    with pytest.raises(ValueError, match=r"got '14\.5'"):  # refused, not read as group 14
        BestMatch(symmetry_window=0.02).fit(X, ["2", "14.5", "15"])
    # Groups as text or as whole floats rank as the numbers do.
    for groups in (["2", "14", "15"], [2.0, 14.0, 15.0]):
        model = BestMatch(temperature=0.1, symmetry_window=0.05).fit(X, groups)
        assert model.predict(query).tolist() == [groups[2]]
    BestMatch(symmetry_window=0).fit(X, ["a", "b", "c"])  # any labels without a window
    # "auto" answers such labels with no window rather than refusing them.
    assert BestMatch(symmetry_window="auto").fit(X, ["a", "b", "c"]).symmetry_window_ == 0.0


def _held(rows):
    """Held-out scores (aP, cF) and truths of ``rows``, a list of (aP, cF, truth) triples."""
    scores = np.array([[a, c] for a, c, _ in rows], dtype=float)
    truth = np.array([t for _, _, t in rows])
    return [scores], [truth], [np.arange(len(rows))]


def test_the_auto_window_is_kept_only_where_held_out_rows_clearly_gain():
    from baselines.lattice.search_match import WINDOWS, _choose_window

    ranks = np.array([0, 13])  # aP, cF
    # cF rows whose best match is aP 0.008 above: every window from 0.01 answers them.
    window, table = _choose_window(*_held([(0.950, 0.942, 1)] * 50), ranks)
    assert window == 0.01  # the smallest of the best
    assert table["0"] == table["0.005"] == 0.0 and table["0.01"] == table["0.04"] == 1.0
    assert table["rows"] == 50 and set(table) == {f"{w:g}" for w in WINDOWS} | {"rows"}
    # As many aP rows with a cF match as near: what one gains the other loses.
    both = [(0.950, 0.942, 1)] * 50 + [(0.950, 0.942, 0)] * 50
    assert _choose_window(*_held(both), ranks)[0] == 0.0
    # 60 gained and 20 lost of 1,000: gain 0.04, twice its standard error 0.018: kept.
    # 30 gained and 20 lost: gain 0.01 against 0.014: no window.
    for gained, kept in ((60, 0.01), (30, 0.0)):
        rows = ([(0.950, 0.942, 1)] * gained + [(0.950, 0.942, 0)] * 20
                + [(0.9, 0.5, 0)] * (1000 - gained - 20))  # fmt: skip
        assert _choose_window(*_held(rows), ranks)[0] == kept, gained
    # Only the build's own rows choose: the others here lose under any window.
    rows = [(0.950, 0.942, 1)] * 50 + [(0.950, 0.942, 0)] * 80
    own = np.arange(130) < 50
    assert _choose_window(*_held(rows), ranks)[0] == 0.0
    assert _choose_window(*_held(rows), ranks, own)[0] == 0.01
    assert _choose_window(*_held(rows), ranks, np.zeros(130, bool)) == (0.0, {})


def test_the_auto_window_is_chosen_on_the_held_out_matches_of_the_fit(patterns):
    from baselines.lattice.search_match import WINDOWS

    X, y, groups = patterns.X, patterns.target("bravais_lattice"), patterns.groups()
    model = make_search_match(GRID).fit(X, y, match__groups=groups)
    match = model[-1]
    assert match.symmetry_window == "auto" and match.symmetry_window_ in WINDOWS
    table = match.window_accuracy_
    assert table["rows"] > 200 and all(0 <= table[f"{w:g}"] <= 1 for w in WINDOWS)
    # It answers as a model given that window does, with the same temperature.
    fixed = make_search_match(GRID, symmetry_window=match.symmetry_window_).fit(
        X, y, match__groups=groups)
    assert fixed[-1].temperature_ == match.temperature_
    np.testing.assert_array_equal(model.predict_proba(X[:40]), fixed.predict_proba(X[:40]))
    import pickle

    again = pickle.loads(pickle.dumps(model))
    assert again[-1].symmetry_window_ == match.symmetry_window_
    np.testing.assert_array_equal(again.predict_proba(X[:40]), fixed.predict_proba(X[:40]))
    # The own-source rows are checked, and none of them leaves no window.
    with pytest.raises(ValueError, match=f"own_source must be {len(y)} booleans"):
        model.fit(X, y, match__own_source=np.ones(len(y) - 1, bool))
    with pytest.raises(ValueError, match="own_source must be"):
        model.fit(X, y, match__own_source=np.ones(len(y)))
    none = make_search_match(GRID).fit(X, y, match__groups=groups,
                                       match__own_source=np.zeros(len(y), bool))[-1]  # fmt: skip
    assert none.symmetry_window_ == 0.0 and none.window_accuracy_ == {}


def test_the_auto_temperature_gives_held_out_references_the_smallest_log_loss(patterns):
    from sklearn.base import clone
    from sklearn.metrics import log_loss
    from sklearn.model_selection import KFold

    from baselines.lattice.search_match import FALLBACK_TEMPERATURE

    X, y = patterns.X, patterns.target("bravais_lattice")
    model = make_search_match(GRID).fit(X, y)
    prepared, temperature = model[:-1].transform(X), model[-1].temperature_
    assert 1e-3 < temperature < 1.0

    def held_out_loss(t):  # the folds and matcher of the fit, scikit-learn's log-loss
        losses = []
        for train, held in KFold(3, shuffle=True, random_state=0).split(prepared):
            match = clone(model[-1]).set_params(temperature=t).fit(prepared[train], y[train])
            known = held[np.isin(y[held], match.classes_)]
            proba = match.predict_proba(prepared[known])
            losses.append(log_loss(y[known], proba, labels=match.classes_, normalize=False))
        return sum(losses)

    assert held_out_loss(temperature) < min(
        held_out_loss(temperature / 2), held_out_loss(temperature * 2)
    )
    # The same answers at any temperature; a fixed one is used as given.
    fixed = make_search_match(GRID, temperature=0.2).fit(X, y)
    assert fixed[-1].temperature_ == 0.2
    np.testing.assert_array_equal(fixed.predict(X[:50]), model.predict(X[:50]))
    # References that cannot be held out against each other keep the fallback.
    assert BestMatch().fit(prepared[:1], y[:1]).temperature_ == FALLBACK_TEMPERATURE
    one_each = np.unique(y, return_index=True)[1]
    assert BestMatch().fit(prepared[one_each], y[one_each]).temperature_ == FALLBACK_TEMPERATURE


CU_KA1 = 1.5406  # angstrom


def _cubic_f(a):
    """Peak positions (2theta, Cu K-alpha1) of a face-centred cubic cell of edge ``a``."""
    hkl = np.array([(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2), (4, 0, 0),
                    (3, 3, 1), (4, 2, 0), (4, 2, 2), (5, 1, 1)])  # fmt: skip
    d = a / np.sqrt((hkl**2).sum(axis=1))
    return tuple(np.degrees(2 * np.arcsin(CU_KA1 / (2 * d))))


def test_strain_matches_a_larger_cell_of_the_same_structure():
    heights = (1.0, 0.5, 0.6, 0.35, 0.1, 0.15, 0.2, 0.15, 0.2, 0.1)
    reference = _pattern(_cubic_f(5.43), heights)
    # The same structure with a cell 2.5 % larger: every peak lower, by 0.7 degrees at 28
    # degrees and 2.7 at 88, much further than the blur reaches.
    larger = _pattern(_cubic_f(5.43 * 1.025), heights)
    other = _pattern((21.0, 24.5, 36.0, 41.0, 51.0, 62.5, 65.5, 71.0, 79.0, 82.5), heights)

    def best(strain, step=0.005):
        model = make_search_match(GRID, temperature=0.05, strain=strain)
        model.set_params(match__strain_step=step).fit(np.stack([reference, other]), ["cF", "hP"])
        return model, model[-1].best_cosines(model[:-1].transform(larger[None, :]))[0]

    rigid, cosines = best(0.0)
    assert cosines[0] < 0.4
    strained, cosines = best(0.03)
    assert cosines[0] > 0.95 > 0.4 > cosines[1]
    assert strained.predict(larger[None, :]).tolist() == ["cF"]
    np.testing.assert_allclose(strained[-1].scales_, 1 + 0.005 * np.arange(-6, 7))
    # The copy at s = 1.025 is the pattern of the cell 1.025 times smaller: the reference.
    _, exact = best(0.025, step=0.025)
    assert exact[0] > 0.99
    _, wrong_way = best(0.025, step=0.05)  # 0.975 .. 1.025 in steps of 0.05: 1.0 alone
    assert wrong_way[0] == pytest.approx(rigid[-1].best_cosines(
        rigid[:-1].transform(larger[None, :]))[0, 0], abs=1e-6)


def test_strain_is_checked_before_fitting():
    X, y = np.eye(3), ["cF", "hP", "cF"]
    for bad in (-0.01, 0.5, np.nan, True, "3 %"):
        with pytest.raises(ValueError, match="strain must be"):
            BestMatch(strain=bad, two_theta=(10.0, 1.0)).fit(X, y)
    for bad in (0.0, -0.005, np.inf):
        with pytest.raises(ValueError, match="strain_step must be"):
            BestMatch(strain=0.02, strain_step=bad, two_theta=(10.0, 1.0)).fit(X, y)
    for bad in (None, (10.0,), (10.0, 0.0), ("10", "1")):
        with pytest.raises(ValueError, match="strain > 0 needs two_theta"):
            BestMatch(strain=0.02, two_theta=bad).fit(X, y)
    assert BestMatch().fit(X, y).scales_.tolist() == [1.0]  # no strain, no two_theta needed


def test_search_match_answers_as_its_one_neighbour_vote_did_on_real_patterns(patterns):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = patterns.X, patterns.target("bravais_lattice")
    model = make_search_match(GRID, strain=0.0).fit(X[:300], y[:300])
    # The search-match of an earlier release: the same preparation, one nearest neighbour.
    before = make_search_match(GRID, strain=0.0)
    before.steps[-1] = ("match", KNeighborsClassifier(n_neighbors=1, algorithm="brute"))
    before.fit(X[:300], y[:300])
    np.testing.assert_array_equal(model.predict(X[300:]), before.predict(X[300:]))


def test_the_calibrated_temperature_gives_held_out_rows_the_smallest_log_loss(patterns):
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedGroupKFold

    X, y, groups = patterns.X, patterns.target("bravais_lattice"), patterns.groups()
    temperature, loss = calibrate_temperature(make_search_match(GRID), X, y, groups, cv=3)
    assert 1e-3 < temperature < 1.0

    def held_out_loss(t):  # the same folds, scored with scikit-learn's log-loss
        total = 0.0
        for train, held in StratifiedGroupKFold(3, shuffle=True, random_state=0).split(
            X, y, groups
        ):
            model = make_search_match(GRID, temperature=t).fit(X[train], y[train])
            known = np.isin(y[held], model.classes_)
            proba = model.predict_proba(X[held][known])
            total += log_loss(y[held][known], proba, labels=model.classes_, normalize=False)
        return total / sum(
            np.isin(y[h], np.unique(y[t])).sum()
            for t, h in StratifiedGroupKFold(3, shuffle=True, random_state=0).split(X, y, groups)
        )

    assert held_out_loss(temperature) == pytest.approx(loss, rel=1e-4)
    assert held_out_loss(temperature) < min(
        held_out_loss(temperature / 2), held_out_loss(2 * temperature)
    )
    # Given the compounds, the auto temperature is fitted on these grouped folds.
    grouped = make_search_match(GRID).fit(X, y, match__groups=groups)
    assert grouped[-1].temperature_ == pytest.approx(temperature, rel=1e-9)
    assert grouped[-1].temperature_ != make_search_match(GRID).fit(X, y)[-1].temperature_
    with pytest.raises(ValueError, match="groups has 10 entries for 12 references"):
        BestMatch().fit(X[:12], y[:12], groups=groups[:10])
    # One compound cannot be held out against itself: the fallback.
    from baselines.lattice.search_match import FALLBACK_TEMPERATURE

    same = np.zeros(len(y))
    assert BestMatch().fit(X, y, groups=same).temperature_ == FALLBACK_TEMPERATURE


def test_the_temperature_fit_matches_a_seeded_sample_of_at_most_max_held_out_rows(patterns):
    from sklearn.base import clone

    from baselines.lattice.search_match import (
        _best_temperature,
        _held_out_scores,
        temperature_folds,
    )

    X, y, groups = patterns.X, patterns.target("bravais_lattice"), patterns.groups()
    model = make_search_match(GRID)
    prepared = np.asarray(model[:-1].fit_transform(X), dtype=np.float32)
    folds = temperature_folds(prepared, y, groups)
    every = _held_out_scores(prepared, y, folds, clone(model[-1]).set_params(max_held_out=None))
    n_every = sum(len(truth) for truth in every[1])
    assert n_every > 200
    sampled = _held_out_scores(prepared, y, folds, clone(model[-1]).set_params(max_held_out=100))
    assert 80 <= sum(len(truth) for truth in sampled[1]) <= 100  # less the unknown labels
    # The fit uses that sample; a cap above the row count changes nothing.
    fitted = {cap: make_search_match(GRID).set_params(match__max_held_out=cap)
              .fit(X, y, match__groups=groups)[-1].temperature_
              for cap in (None, len(y), 100)}  # fmt: skip
    assert fitted[None] == fitted[len(y)] == pytest.approx(_best_temperature(*every[:2])[0])
    assert fitted[100] == pytest.approx(_best_temperature(*sampled[:2])[0])
    assert fitted[100] != fitted[None]
    for bad in (0, -5, 2.5, True, "all"):
        with pytest.raises(ValueError, match="max_held_out must be None or an integer >= 1"):
            BestMatch(max_held_out=bad).fit(prepared[:4], y[:4])


@pytest.fixture(scope="module")
def patterns(cod_build):
    from baselines.data import read_patterns

    return read_patterns(cod_build.out / "public" / "train.parquet")


def _augmented(**changes):
    from baselines.lattice.boosting import BoostedTrees

    params = dict(estimator=BoostedTrees(n_estimators=20, n_jobs=1), grid=GRID, draws=2,
                  random_state=3)  # fmt: skip
    return RealismAugmented(**{**params, **changes})


def test_realism_augmented_fits_on_the_copies_and_predicts_the_rows_as_given(patterns):
    X, y = patterns.X[:60], patterns.target("bravais_lattice")[:60]
    model = _augmented().fit(X, y)
    assert model.n_augmented_ == 180 and model.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(model.classes_, np.unique(y))
    # Prediction passes the patterns straight to the fitted clone.
    np.testing.assert_array_equal(model.predict(X), model.estimator_.predict(X))
    proba = model.predict_proba(X[:5])
    assert proba.shape == (5, len(model.classes_))
    # Seeded: the same copies and the same fit; another seed draws other copies.
    again = _augmented().fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    other = _augmented(random_state=4).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), model.predict_proba(X))
    # The clean rows alone when no copies are asked for.
    assert _augmented(draws=0).fit(X, y).n_augmented_ == 60


def test_realism_augmented_refuses_a_missing_grid_and_searches_its_inner_parameters(patterns):
    X, y = patterns.X[:60], patterns.target("bravais_lattice")[:60]
    with pytest.raises(GridError, match="realism augmentation"):
        _augmented(grid=None).fit(X, y)
    with pytest.raises(ValueError, match="columns"):
        _augmented().fit(X[:, :100], y)
    keep = np.isin(y, [label for label, n in zip(*np.unique(y, return_counts=True),
                                                   strict=True) if n >= 2])  # fmt: skip
    search = GridSearchCV(_augmented(draws=1), {"estimator__max_depth": [2, 4]}, cv=2)
    search.fit(X[keep], y[keep])
    assert search.best_params_["estimator__max_depth"] in (2, 4)


def test_realism_augmented_draws_its_copies_from_a_stratified_sample_of_max_rows(patterns):
    import pickle

    from baselines.data import stratified_sample

    X, y = patterns.X[:90], patterns.target("bravais_lattice")[:90]
    model = _augmented(max_rows=40).fit(X, y)
    assert (model.n_rows_used_, model.n_augmented_) == (40, 120)
    np.testing.assert_array_equal(model.classes_, np.unique(y))  # every lattice kept
    # The very rows `baselines run --sample 40` takes with the same seed, and the same fit.
    rows = stratified_sample(y, 40, random_state=3)
    sampled = _augmented().fit(X[rows], y[rows])
    np.testing.assert_array_equal(model.predict_proba(X), sampled.predict_proba(X))
    # A cap above the rows changes nothing.
    whole, capped = _augmented().fit(X, y), _augmented(max_rows=500).fit(X, y)
    assert capped.n_rows_used_ == whole.n_rows_used_ == 90
    np.testing.assert_array_equal(capped.predict_proba(X), whole.predict_proba(X))
    for bad in (0, -5, 2.5, True, "10"):
        with pytest.raises(ValueError, match=r"max_rows must be a positive whole number"):
            _augmented(max_rows=bad).fit(X, y)
    with pytest.raises(ValueError, match="cannot hold every one"):
        _augmented(max_rows=3).fit(X, y)
    # A model pickled before max_rows existed loads with max_rows=None (every row, as it
    # was fitted) and predicts as before.
    old = pickle.loads(pickle.dumps(model))
    del old.__dict__["max_rows"]
    old = pickle.loads(pickle.dumps(old))
    assert old.get_params()["max_rows"] is None
    np.testing.assert_array_equal(old.predict(X), model.predict(X))


def test_realism_augmented_samples_the_builds_own_rows_first(patterns):
    from baselines.data import own_source_first_sample

    X, y = patterns.X[:90], patterns.target("bravais_lattice")[:90]
    own = np.arange(len(y)) % 6 == 0  # 15 rows of the build's own source
    model = _augmented(max_rows=40).fit(X, y, own_source=own)
    assert (model.n_rows_used_, model.n_own_used_) == (40, 15)
    np.testing.assert_array_equal(model.classes_, np.unique(y))
    rows = own_source_first_sample(y, own, 40, random_state=3)
    assert own[rows].sum() == 15 and len(rows) == 40
    # Fitted on exactly those rows, as a plain fit on them would be.
    sampled = _augmented().fit(X[rows], y[rows])
    np.testing.assert_array_equal(model.predict_proba(X), sampled.predict_proba(X))
    # Without a cap every row is used and the mask changes nothing.
    told, plain = _augmented().fit(X, y, own_source=own), _augmented().fit(X, y)
    assert (told.n_rows_used_, told.n_own_used_, plain.n_own_used_) == (90, 15, None)
    np.testing.assert_array_equal(told.predict_proba(X), plain.predict_proba(X))
    for bad in (own[:-1], own.astype(int)):
        with pytest.raises(ValueError, match="own_source must be 90 booleans"):
            _augmented(max_rows=40).fit(X, y, own_source=bad)


def test_an_own_source_first_sample_leaves_room_for_every_class_of_the_others():
    from baselines.data import own_source_first_sample

    y = np.repeat(["aP", "cF", "hP", "oP"], 25)
    own = y != "oP"  # 75 own rows; the other sources hold the oP ones
    rows = own_source_first_sample(y, own, 30, random_state=1)
    # More own rows than the sample: 29 of them, stratified, and room for one oP.
    assert len(rows) == len(set(rows)) == 30 and own[rows].sum() == 29
    counts = {label: int((y[rows] == label).sum()) for label in ("aP", "cF", "hP", "oP")}
    assert counts["oP"] == 1 and sorted(counts.values()) == [1, 9, 10, 10]  # stratified
    # Room enough: every own row, the rest a sample of the others.
    rows = own_source_first_sample(y, own, 85, random_state=1)
    assert len(rows) == 85 and own[rows].sum() == 75
    np.testing.assert_array_equal(own_source_first_sample(y, own, 85, random_state=1), rows)
    np.testing.assert_array_equal(own_source_first_sample(y, own, 100), np.arange(100))
    with pytest.raises(ValueError, match="cannot hold every one of 3 classes"):
        own_source_first_sample(y, own, 3)
    with pytest.raises(ValueError, match="own_source has 99 entries for 100 rows"):
        own_source_first_sample(y, own[:-1], 30)


def test_the_cleaning_layer_flattens_a_sloping_background_as_the_scikit_learn_steps_do():
    import torch

    from baselines.lattice.cleaning import Cleaning
    from baselines.lattice.features import Smooth, SubtractBackground

    rng = np.random.default_rng(0)
    slope = 0.3 + 0.2 * (TWO_THETA - TWO_THETA[0]) / (TWO_THETA[-1] - TWO_THETA[0])
    clean = _pattern([20.0, 35.0, 51.0], [1.0, 0.5, 0.25])
    noisy = clean + slope + rng.normal(0, 0.002, GRID.n_points).astype(np.float32)
    X = np.stack([noisy / noisy.max(), clean]).astype(np.float32)
    with torch.no_grad():
        out = Cleaning(9, 50)(torch.from_numpy(np.sqrt(X))[:, None, :]).numpy()[:, 0]
    expected = np.sqrt(SubtractBackground(50).fit_transform(Smooth(9).fit_transform(X)))
    # The background is gone (it was 0.55-0.75 in square root), the peaks are where
    # they were, and the result is the two transformers' (the layer's background is
    # estimated at half resolution, hence the tolerance).
    away = np.abs(TWO_THETA - 45.0) < 2
    assert np.sqrt(X[0, away]).min() > 0.5 and out[0, away].max() < 0.1
    assert np.argmax(out[0]) == np.argmax(clean) and out.max(axis=1) == pytest.approx(1)
    assert np.abs(out - expected).mean() < 0.01
    # No background, no smoothing: the identity on square roots (scaled to maximum 1).
    with torch.no_grad():
        same = Cleaning(0, 0)(torch.from_numpy(np.sqrt(X))[:, None, :]).numpy()[:, 0]
    np.testing.assert_allclose(same, np.sqrt(X / X.max(axis=1, keepdims=True)), atol=1e-6)


def _cleaning_cnn(**changes):
    from baselines.lattice.cnn1d import CNN1DClassifier

    params = dict(pool=8, channels=(8, 16), epochs=2, batch_size=32, verbose=0, grid=GRID,
                  augment="realism", smooth=9, background=50, precision="bfloat16",
                  random_state=1)  # fmt: skip
    return CNN1DClassifier(**{**params, **changes})


def test_a_cleaning_mixed_precision_cnn_repeats_round_trips_and_refuses_bad_settings(
    patterns, tmp_path
):
    import pickle

    from baselines.lattice.cleaning import Cleaning
    from baselines.lattice.cnn1d import CNN1DClassifier

    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    model = _cleaning_cnn().fit(X, y)
    assert isinstance(model.model_[0], Cleaning)
    expected = model.predict_proba(X[:30])
    # Seeded, realism draws and bfloat16 steps included.
    np.testing.assert_array_equal(_cleaning_cnn().fit(X, y).predict_proba(X[:30]), expected)
    restored = CNN1DClassifier.load(model.save(tmp_path / "cnn.pt"))
    assert (restored.smooth, restored.background, restored.precision) == (9, 50, "bfloat16")
    np.testing.assert_array_equal(restored.predict_proba(X[:30]), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X[:30]),
                                  expected)  # fmt: skip
    # The layer cleans a pattern at prediction time: a background added to the test
    # patterns moves the plain network's answers more than the cleaning one's.
    plain = _cleaning_cnn(smooth=0, background=0).fit(X, y)
    lifted = X[:30] + 0.3
    lifted /= lifted.max(axis=1, keepdims=True)
    moved = np.abs(model.predict_proba(lifted) - expected).mean()
    assert moved < np.abs(plain.predict_proba(lifted) - plain.predict_proba(X[:30])).mean()
    for bad, message in (({"precision": "float16"}, "precision must be"),
                         ({"smooth": 4}, "smooth must be 0 or an odd"),
                         ({"background": -1}, "background must be a non-negative")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            _cleaning_cnn(**bad).fit(X, y)


def test_a_time_budget_runs_the_epochs_that_fit_and_changes_nothing_when_all_of_them_fit(
    patterns,
):
    from baselines.lattice.cnn_training import budgeted_epochs

    # The plan: what fits at a pace, at least one, at most `epochs`.
    assert budgeted_epochs(60, 45, 75.0) == 36 and budgeted_epochs(60, 45, 30.0) == 60
    assert budgeted_epochs(60, 1, 61.0) == 1 and budgeted_epochs(8, None, 1e6) == 8
    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    # A budget no epoch fits in: the first epoch runs, and the fit ends there.
    tight = _cleaning_cnn(epochs=4, max_minutes=1e-6).fit(X, y)
    assert tight.history_["epoch"].tolist() == [1] and tight.best_epoch_ == 1
    # A budget every epoch fits in changes nothing: the same seeded fit, bit for bit.
    roomy = _cleaning_cnn(epochs=3, max_minutes=600).fit(X, y)
    plain = _cleaning_cnn(epochs=3).fit(X, y)
    assert len(roomy.history_) == 3
    np.testing.assert_array_equal(roomy.predict_proba(X[:20]), plain.predict_proba(X[:20]))
    for bad in (0, -1.0, float("nan"), float("inf"), True, "45"):
        with pytest.raises(ValueError, match="max_minutes must be a positive number"):
            _cleaning_cnn(max_minutes=bad).fit(X, y)


def test_epochs_of_fewer_rows_hold_every_row_of_the_builds_own_source(patterns, tmp_path):
    from baselines.lattice.cnn1d import CNN1DClassifier
    from baselines.lattice.cnn_training import epoch_rows

    rng = np.random.default_rng(0)
    train, own = np.arange(3, 103), np.arange(110) % 10 == 0  # rows 10, 20, ... 100 own
    first, second = (epoch_rows(train, own, 30, rng) for _ in range(2))
    for rows in (first, second):  # 30 distinct training rows, all ten own ones among them
        assert len(set(rows)) == 30 and set(rows) <= set(train)
        assert set(np.flatnonzero(own)) & set(train) <= set(rows)
    assert set(first) != set(second)  # the others drawn afresh each epoch
    assert sorted(epoch_rows(train, None, 500, rng)) == train.tolist()
    assert len(set(epoch_rows(train, None, 30, rng))) == 30
    assert len(epoch_rows(train, own, 5, rng)) == 5 and own[epoch_rows(train, own, 5, rng)].all()

    X, y = patterns.X[:120], patterns.target("bravais_lattice")[:120]
    own = np.arange(len(y)) % 8 == 0  # 15 rows
    # As many rows per epoch as there are rows: the same seeded fit, bit for bit.
    roomy = _cleaning_cnn(epochs=2, rows_per_epoch=120).fit(X, y, own_source=own)
    plain = _cleaning_cnn(epochs=2).fit(X, y)
    np.testing.assert_array_equal(roomy.predict_proba(X[:20]), plain.predict_proba(X[:20]))
    assert roomy.own_rows_per_epoch_ is None
    short = _cleaning_cnn(epochs=2, rows_per_epoch=40).fit(X, y, own_source=own)
    assert short.own_rows_per_epoch_ == 15 and len(short.history_) == 2
    assert not np.array_equal(short.predict_proba(X[:20]), plain.predict_proba(X[:20]))
    # The mask reaches the draw: told nothing, the 40 rows are drawn otherwise.
    untold = _cleaning_cnn(epochs=2, rows_per_epoch=40).fit(X, y)
    assert untold.own_rows_per_epoch_ is None
    assert not np.array_equal(short.predict_proba(X[:20]), untold.predict_proba(X[:20]))
    restored = CNN1DClassifier.load(short.save(tmp_path / "short.pt"))
    assert (restored.rows_per_epoch, restored.own_rows_per_epoch_) == (40, 15)
    for bad in (0, -3, 2.5, True, "40"):
        with pytest.raises(ValueError, match="rows_per_epoch must be a positive whole number"):
            _cleaning_cnn(rows_per_epoch=bad).fit(X, y)
    with pytest.raises(ValueError, match="own_source must be 120 booleans"):
        _cleaning_cnn(rows_per_epoch=40).fit(X, y, own_source=own[:-1])


def _schedule_on_a_budget():
    """A 60-epoch cosine schedule from a rate of 1, on a 10-minute budget."""
    from types import SimpleNamespace

    import torch
    from tqdm.auto import tqdm

    est = SimpleNamespace(epochs=60, max_minutes=10.0, verbose=0)
    optimiser = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=60)
    return est, optimiser, schedule, tqdm(total=60, disable=True)


def _train_on_a_budget(elapsed_after_each):
    """Step the schedule an epoch at a time, re-planning after each as the fit does.

    Returns the plan and the learning rate after each epoch run, and the budget's parts.
    """
    from baselines.lattice.cnn_training import _keep_to_budget

    est, optimiser, schedule, bar = _schedule_on_a_budget()
    planned, plans, rates = est.epochs, [], []
    for epoch, elapsed in enumerate(elapsed_after_each, start=1):
        optimiser.step()
        schedule.step()
        planned = _keep_to_budget(est, epoch, planned, elapsed, schedule, bar)
        plans.append(planned)
        rates.append(optimiser.param_groups[0]["lr"])
        if epoch >= planned:
            break
    return plans, rates, (est, schedule, bar)


def test_a_shortened_schedule_still_decays_to_zero():
    from baselines.lattice.cnn_training import _keep_to_budget

    est, optimiser, schedule, bar = _schedule_on_a_budget()
    rates = [optimiser.param_groups[0]["lr"]]
    optimiser.step()
    schedule.step()
    # 75 s for the first epoch of a 10-minute budget: 8 epochs in all.
    assert _keep_to_budget(est, 1, 60, 75.0, schedule, bar) == 8
    for _ in range(7):
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
    rates.append(optimiser.param_groups[0]["lr"])
    # From the second epoch on, the rate is the cosine of 8 epochs, 0 after the last.
    closed = [0.5 * (1 + np.cos(np.pi * t / 8)) for t in range(9)]
    np.testing.assert_allclose(rates[1:], closed[1:], rtol=1e-9, atol=1e-12)
    # A steady pace keeps the plan.
    assert _keep_to_budget(est, 4, 8, 300.0, schedule, bar) == 8


def test_a_budget_re_plans_when_epochs_slow_down_and_still_decays_to_zero():
    from baselines.lattice.cnn_training import _keep_to_budget

    # The first epoch takes 75 s (8 planned), the next ones 125 s each: after the second
    # (a mean of 100 s) 6 fit in 600 s, after the third (108 s) 5, after the fourth still 5.
    plans, rates, (est, schedule, bar) = _train_on_a_budget((75.0, 200.0, 325.0, 450.0, 575.0))
    assert plans == [8, 6, 5, 5, 5] and bar.total == 5
    # Each rate is the cosine of the plan made after its epoch, 0 at the end.
    cosine = [0.5 * (1 + np.cos(np.pi * t / n)) for t, n in enumerate(plans, start=1)]
    np.testing.assert_allclose(rates, cosine, rtol=1e-9, atol=1e-12)
    # Slower still: a plan below the epochs run ends the fit where it is.
    assert _keep_to_budget(est, 4, 8, 600.0, schedule, bar) == 4


def test_a_budget_plans_more_epochs_when_a_slow_first_one_is_followed_by_faster_ones():
    # 150 s for the first epoch (busy machine: 4 planned), then 50 s each: the mean pace
    # falls and the plan grows to 9 epochs, which end at 550 s, inside the 600 s.
    elapsed = [150.0 + 50.0 * k for k in range(60)]
    plans, rates, _ = _train_on_a_budget(elapsed)
    assert plans == [4, 6, 7, 8, 8, 8, 9, 9, 9] and elapsed[len(plans) - 1] == 550.0
    cosine = [0.5 * (1 + np.cos(np.pi * t / n)) for t, n in enumerate(plans, start=1)]
    np.testing.assert_allclose(rates, cosine, rtol=1e-9, atol=1e-12)
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)


def test_lattice_systems_are_seven_and_keep_the_crystal_family():
    assert set(LATTICE_SYSTEMS) == set(BRAVAIS_LATTICES)
    assert sorted(set(LATTICE_SYSTEMS.values())) == ["aP", "c", "hP", "hR", "m", "o", "t"]
    for lattice, system in LATTICE_SYSTEMS.items():
        assert system[0] == lattice[0]


def test_real_pattern_scores_count_a_wrong_centring_as_the_right_system():
    from benchmarks.real_patterns import lattice_scores

    truth = np.array(["mP", "mS", "cF", "hR"])
    scores, systems = lattice_scores(truth, np.array(["mS", "mS", "cP", "hP"]))
    assert scores.accuracy == pytest.approx(0.25) and scores.n == 4
    assert systems == pytest.approx(0.75)  # hR for hP is another system


def _benchmark(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.<name> args...`` from the repository root, output captured."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])


def test_the_real_pattern_benchmark_scores_a_space_group_baseline_and_the_lattice_it_implies(
    cod_build, tmp_path
):
    import re
    import shutil

    import pandas as pd
    from conftest import mark_measured
    from test_cli import run

    from xrd_bravais.contract.labels import bravais_lattice

    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    mark_measured(comp, 30)
    done = run("baselines", "run", "majority", "-c", str(comp), "--track", "spacegroup",
               "--cv", "0", "--quiet", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _benchmark("real_patterns", "--competition", str(comp), "--track", "spacegroup",
                      "--figures", str(tmp_path / "figures"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The majority group, and what it scores on the 30 Measured rows: as a group, and
    # as the lattice it implies.
    train = pd.read_parquet(comp / "public" / "train.parquet", columns=["spacegroup_number"])
    group = int(train["spacegroup_number"].mode().min())
    key = pd.read_csv(comp / "private" / "solution.csv")
    measured = key[key["Usage"] == "Measured"]
    as_group = 100 * (measured["spacegroup_number"] == group).mean()
    as_lattice = 100 * (measured["bravais_lattice"] == bravais_lattice(group)).mean()
    assert "| baseline | training rows | space group (95 % CI) | lattice from it |" in done.stdout
    row = next(line for line in done.stdout.splitlines() if "(majority class)" in line)
    found = [float(v) for v in re.findall(r"\| ([\d.]+) % \(", row)]
    assert found == [pytest.approx(as_group, abs=0.05), pytest.approx(as_lattice, abs=0.05)]
    assert (tmp_path / "figures" / "majority.png").is_file()


def test_the_report_shows_private_and_measured_scores_only_after_the_close(cod_build, tmp_path):
    import shutil

    from conftest import mark_measured
    from test_cli import run

    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    mark_measured(comp, 30)
    done = run("baselines", "run", "uniform", "majority", "-c", str(comp), "--cv", "0", "--quiet",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = comp / "baselines" / "bravais" / "report.md"
    assert "Final scores" not in report.read_text() and "Private" not in report.read_text()
    assert run("close", "-c", str(comp), cwd=tmp_path).returncode == 0
    done = run("baselines", "report", "-c", str(comp), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    final = text[text.index("## Final scores"):]
    header = final.splitlines()[4]
    assert "Private accuracy" in header and "Measured accuracy" in header
    assert "random guess (majority class)" in final and "random guess (uniform)" in final


def test_a_search_match_pickled_before_strain_still_matches_as_it_did():
    import pickle

    X = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    model = BestMatch(temperature=0.5).fit(X, ["hP", "cF", "cF"])
    state = model.__getstate__()
    for name in ("strain", "strain_step", "two_theta", "scales_", "max_held_out",
                 "symmetry_window", "symmetry_window_"):
        state.pop(name)  # as an earlier release saved it
    old = BestMatch.__new__(BestMatch)
    old.__setstate__(state)
    again = pickle.loads(pickle.dumps(old))
    assert again.get_params()["strain"] == 0.0
    assert again.get_params()["max_held_out"] is None  # it matched every held-out row
    assert again.get_params()["symmetry_window"] == 0.0
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_the_strain_benchmark_holds_out_whole_compounds_of_the_training_rows(patterns, cod_build):
    from sklearn.neighbors import KNeighborsClassifier

    from baselines.lattice.search_match import temperature_folds
    from benchmarks.search_match_strain import held_out_accuracy

    found = held_out_accuracy(patterns, [0.0, 0.03], [0.4], realism=False)
    assert set(found) == {(0.0, 0.4), (0.03, 0.4)}
    # At one cell size: the one-neighbour answers of the prepared rows, over the folds
    # of the temperature fit (compounds whole).
    y, groups = patterns.target("bravais_lattice"), patterns.groups()
    prepared = make_search_match(patterns.grid, sigma_degrees=0.4)[:-1].fit_transform(patterns.X)
    right = 0
    for kept, held in temperature_folds(prepared, y, groups):
        assert not set(groups[kept]) & set(groups[held])
        nearest = KNeighborsClassifier(1, algorithm="brute").fit(prepared[kept], y[kept])
        right += int(np.sum(nearest.predict(prepared[held]) == y[held]))
    assert found[(0.0, 0.4)] == pytest.approx(right / len(y))
    assert 0.0 < found[(0.03, 0.4)] <= 1.0
    done = _benchmark("search_match_strain", "--competition", str(cod_build.out), "--strain",
                      "0,0.03", "--blur", "0.4", "--rows", "300")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| queries | largest cell change | 0.4 degrees |" in done.stdout
    assert "| realism copies | 3 % |" in done.stdout


def test_the_floor_benchmark_scores_the_builds_own_held_out_rows_under_each_floor(cod_build):
    from baselines.data import read_patterns
    from benchmarks.search_match_floor import held_out_floors

    train = read_patterns(cod_build.out / "public" / "train.parquet")
    found = held_out_floors(cod_build.out, [(0.02, 0.0), (0.02, 3.0), (0.1, 0.0)], [0.0, 0.02],
                            n_folds=1)  # fmt: skip
    assert [(row["level"], row["noise"]) for row in found] == [(0.02, 0.0), (0.02, 3.0),
                                                               (0.1, 0.0)]  # fmt: skip
    # One fold of three: about a third of the rows, the same ones under every floor.
    assert len(train.ids) / 5 < found[0]["rows"] == found[1]["rows"] < len(train.ids) / 2
    for row in found:
        assert set(row) >= {"clean@0", "clean@0.02", "realism@0", "realism@0.02"}
        assert all(0 < row[key] <= 1 for key in row if "@" in key)
    # Clean rows have no noise: the noise-following floor is the 2 % floor for them.
    assert found[1]["clean@0"] == found[0]["clean@0"] != found[2]["clean@0"]
    done = _benchmark("search_match_floor", "--competition", str(cod_build.out), "--floors",
                      "0.02:0,0.02:3", "--windows", "0", "--folds", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| floor | clean@0 | realism@0 | s |" in done.stdout
    assert "| median + 3 x noise (at least 2 %) |" in done.stdout


def test_the_blend_weights_benchmark_scores_members_weights_and_the_any_member_ceiling(
    cod_build, patterns, tmp_path
):
    import re
    import shutil

    import pandas as pd
    from conftest import mark_measured
    from sklearn.dummy import DummyClassifier
    from sklearn.neighbors import KNeighborsClassifier

    from baselines.data import read_patterns
    from baselines.lattice.blend import LogPool, SoftVote
    from baselines.runner.run import save_model
    from xrd_bravais.contract.tasks import get_track

    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    mark_measured(comp, 30)
    X, y = patterns.X, patterns.target("bravais_lattice")
    # Two members that disagree: the commonest lattice, and the nearest training pattern.
    vote = SoftVote([("prior", DummyClassifier()), ("near", KNeighborsClassifier(1)),
                     ("off", "drop")], weights=[1, 3, 5]).fit(X, y)  # fmt: skip
    folder = comp / "baselines" / "bravais" / "my-blend"
    folder.mkdir(parents=True)
    save_model(vote, folder / "model.pkl", track=get_track("bravais"), grid=patterns.grid,
               baseline="my-blend")  # fmt: skip
    done = _benchmark("blend_weights", "--competition", str(comp), "--blend", "my-blend")
    assert done.returncode == 0, done.stderr

    test = read_patterns(comp / "public" / "test.parquet")
    key = pd.read_csv(comp / "private" / "solution.csv").set_index("id").loc[test.ids]
    truth, usage = key["bravais_lattice"].to_numpy(), key["Usage"].to_numpy()
    rows = {line.split(" | ")[0].strip("| "): line for line in done.stdout.splitlines()}

    def accuracies(label):
        return [float(v) for v in re.findall(r"([\d.]+) %", rows[label])]

    def expected(predicted):
        return [pytest.approx(100 * np.mean(predicted[usage == p] == truth[usage == p]),
                              abs=0.05) for p in ("Public", "Private", "Measured")]  # fmt: skip

    members = vote.estimators_
    assert accuracies("prior alone") == expected(members[0].predict(test.X))
    assert accuracies("near alone") == expected(members[1].predict(test.X))
    # The dropped member takes no weight: the fitted vote weighs 1 against 3.
    assert accuracies("my-blend as fitted, weights (1.0, 3.0)") == expected(vote.predict(test.X))
    ceiling = accuracies("any member right (no weights exceed it)")
    right = (members[0].predict(test.X) == truth) | (members[1].predict(test.X) == truth)
    assert ceiling == expected(np.where(right, truth, "none"))
    weighted = [label for label in rows if label.startswith("weights (")]
    assert len(weighted) == 3  # chosen on Public, best on Private, best on Measured
    for label in weighted:
        assert all(a <= c + 0.05 for a, c in zip(accuracies(label), ceiling, strict=True))
    # The pools: one fitted on each hidden portion, scored everywhere with the exponents shown.
    pools = [label for label in rows if label.startswith("log-linear pool")]
    assert [label.rsplit(" on the ", 1)[1] for label in pools] == ["Public rows", "Private rows"]
    floored = np.log(np.clip([m.predict_proba(test.X) for m in members], 1e-4, None))
    for label in pools:
        exponents = [float(w) for w in re.search(r"\(([^)]*)\)", label).group(1).split(", ")]
        assert all(w >= 0 for w in exponents)
        pooled = vote.classes_[np.tensordot(exponents, floored, axes=1).argmax(axis=1)]
        assert accuracies(label) == expected(pooled)

    # A blend that learned its exponents (LogPool) is shown as it pools.
    pool = LogPool([("prior", DummyClassifier()), ("near", KNeighborsClassifier(1))]).fit(X, y)
    save_model(pool, folder / "model.pkl", track=get_track("bravais"), grid=patterns.grid,
               baseline="my-blend")  # fmt: skip
    done = _benchmark("blend_weights", "--competition", str(comp), "--blend", "my-blend")
    assert done.returncode == 0, done.stderr
    shown = ", ".join(f"{w:.2f}" for w in pool.exponents_)
    label = (f"my-blend as fitted: log-linear pool, exponents ({shown}) learned on "
             f"{pool.n_held_out_:,} held-out training rows")  # fmt: skip
    rows = {line.split(" | ")[0].strip("| "): line for line in done.stdout.splitlines()}
    assert accuracies(label) == expected(pool.predict(test.X))

    # A vote with an indexing check is shown before the check and as it predicts.
    from baselines.lattice.indexing import CentringCheck

    checked = SoftVote([("prior", DummyClassifier()), ("near", KNeighborsClassifier(1))],
                       weights=[1, 3], centring=CentringCheck(patterns.grid)).fit(X, y)  # fmt: skip
    save_model(checked, folder / "model.pkl", track=get_track("bravais"), grid=patterns.grid,
               baseline="my-blend")  # fmt: skip
    done = _benchmark("blend_weights", "--competition", str(comp), "--blend", "my-blend")
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0].strip("| "): line for line in done.stdout.splitlines()}
    plain = checked.set_params(centring=None).predict(test.X)
    assert accuracies("my-blend as fitted, weights (1.0, 3.0), before its indexing check") == \
        expected(plain)  # fmt: skip
    checked.set_params(centring=CentringCheck(patterns.grid))
    assert accuracies("my-blend as fitted, weights (1.0, 3.0), then its indexing check") == \
        expected(checked.predict(test.X))
