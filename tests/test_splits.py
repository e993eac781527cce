"""Deduplication, balancing and the grouped, stratified split on hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from competition.lattice.splits import (
    balance,
    deduplicate,
    group_keys,
    grouped_stratified_split,
    opaque_ids,
    wanted_in_public,
    wanted_in_test,
)


def _row(entry_id, formula, sg, lattice, a=5.0, b=5.0, c=5.0, alpha=90.0, beta=90.0, gamma=90.0):
    return dict(
        entry_id=entry_id, formula=formula, spacegroup_number=sg, bravais_lattice=lattice,
        a=a, b=b, c=c, alpha=alpha, beta=beta, gamma=gamma,
    )  # fmt: skip


def test_dedup_keeps_first_and_names_it():
    meta = pd.DataFrame([
        _row("e3", "NaCl", 225, "cF", 5.640, 5.640, 5.640),
        _row("e1", "NaCl", 225, "cF", 5.641, 5.641, 5.641),  # repeat within 0.2 %
        _row("e2", "NaCl", 225, "cF", 5.800, 5.800, 5.800),  # same compound, other cell
        _row("e4", "KCl", 225, "cF", 5.640, 5.640, 5.640),   # other formula
        _row("e5", "NaCl", 221, "cP", 5.640, 5.640, 5.640),  # other space group
    ])  # fmt: skip
    kept, dropped = deduplicate(meta, length_rtol=2e-3, angle_atol=0.2)
    assert list(kept["entry_id"]) == ["e1", "e2", "e4", "e5"]
    assert list(dropped["entry_id"]) == ["e3"] and list(dropped["kept_id"]) == ["e1"]


def test_dedup_angle_tolerance():
    meta = pd.DataFrame([
        _row("a", "X", 14, "mP", beta=100.0), _row("b", "X", 14, "mP", beta=100.5),
    ])  # fmt: skip
    assert len(deduplicate(meta, 2e-3, 0.2)[0]) == 2
    assert len(deduplicate(meta, 2e-3, 1.0)[0]) == 1


def test_balance_caps_each_lattice_and_is_seeded():
    meta = pd.DataFrame(
        [_row(f"c{i:02d}", f"F{i}", 225, "cF") for i in range(10)]
        + [_row(f"m{i:02d}", f"G{i}", 14, "mP") for i in range(3)]
    )
    kept, dropped = balance(meta, per_class=4, rng=np.random.default_rng(1))
    assert kept["bravais_lattice"].value_counts().to_dict() == {"cF": 4, "mP": 3}
    assert len(dropped) == 6
    again, _ = balance(meta, per_class=4, rng=np.random.default_rng(1))
    assert list(again["entry_id"]) == list(kept["entry_id"])


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    lattices=st.lists(st.sampled_from(["cF", "mP", "hR"]), min_size=40, max_size=40),
    fraction=st.floats(0.1, 0.5),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_never_cuts_a_compound(sizes, lattices, fraction, seed):
    rows = [
        _row(f"e{g}-{k}", f"C{g}", {"cF": 225, "mP": 14, "hR": 166}[lattices[g]], lattices[g])
        for g, size in enumerate(sizes)
        for k in range(size)
    ]
    meta = pd.DataFrame(rows)
    chosen = grouped_stratified_split(meta, fraction, np.random.default_rng(seed))
    keys = group_keys(meta)
    assert set(keys[chosen]).isdisjoint(set(keys[~chosen]))


def test_split_is_stratified_and_near_the_target():
    rng = np.random.default_rng(0)
    rows = []
    for lattice, sg, n in [("cF", 225, 500), ("mP", 14, 200), ("hR", 166, 60)]:
        for i in range(n):
            rows.append(_row(f"{lattice}{i}", f"{lattice}-{i // 2}", sg, lattice))
    meta = pd.DataFrame(rows)
    chosen = grouped_stratified_split(meta, 0.2, rng)
    share = meta[chosen]["bravais_lattice"].value_counts() / meta["bravais_lattice"].value_counts()
    assert share.to_dict() == pytest.approx({"cF": 0.2, "mP": 0.2, "hR": 0.2}, abs=0.02)


def test_opaque_ids_are_unique_random_and_fixed_width():
    ids = opaque_ids(1000, "t", np.random.default_rng(0))
    assert len(set(ids)) == 1000 and all(len(i) == 7 for i in ids)
    numbers = np.array([int(i[1:]) for i in ids])
    assert sorted(numbers) == list(range(1000))
    # Row i does not get id i: the order is a random permutation.
    assert abs(np.corrcoef(numbers, np.arange(1000))[0, 1]) < 0.1


def test_near_copies_finds_training_patterns_almost_equal_to_a_test_pattern():
    from competition.lattice.splits import NEAR_COPY_COSINE, near_copies

    x = np.linspace(5, 90, 4251)

    def peaks(*centres):
        return sum(np.exp(-0.5 * ((x - c) / 0.05) ** 2) for c in centres)

    test = np.stack([peaks(20, 30, 40), peaks(25, 50)])
    train = np.stack([
        peaks(60, 70),                 # unrelated
        peaks(20, 30, 40) * 0.5,       # the same pattern at another scale: a copy
        peaks(20.01, 30.01, 40.01),    # a hair apart: a near-copy
        peaks(20.3, 30.3, 40.3),       # shifted by several widths: a different pattern
        peaks(25, 50, 80),             # shares two of three peaks
    ])  # fmt: skip
    rows, nearest, similarity = near_copies(train, test, block=2)
    assert rows.tolist() == [1, 2] and nearest.tolist() == [0, 0]
    assert np.all(similarity >= NEAR_COPY_COSINE)
    empty = near_copies(train[:0], test)
    assert all(len(a) == 0 for a in empty)
    # Test rows a block at a time give the same answer; of two equal test rows (row 0
    # repeated as row 2) either may be named, as rounding in each block decides.
    repeated = np.concatenate([test, test[:1]])
    for test_block in (1, 2, 3):
        found = near_copies(train, repeated, block=2, test_block=test_block)
        assert found[0].tolist() == [1, 2] and set(found[1].tolist()) <= {0, 2}
        np.testing.assert_allclose(found[2], similarity, rtol=1e-6)
    assert near_copies(train, test[::-1], test_block=1)[1].tolist() == [1, 1]


def test_dedup_in_a_given_order_keeps_the_first_source_whatever_the_ids():
    meta = pd.DataFrame([
        _row("a-extra", "NaCl", 225, "cF", 5.640, 5.640, 5.640),
        _row("z-main", "NaCl", 225, "cF", 5.641, 5.641, 5.641),
    ]).assign(rank=[1, 0])  # fmt: skip
    kept, dropped = deduplicate(meta, 2e-3, 0.2, order=("rank", "entry_id"))
    assert list(kept["entry_id"]) == ["z-main"] and list(dropped["kept_id"]) == ["z-main"]


@pytest.mark.parametrize(
    ("n", "take_all", "wanted"),
    [(1000, False, 200), (100, False, 20), (57, False, 20), (30, False, 15), (12, False, 6),
     (12, True, 12), (30, True, 20), (3, False, 1)],
)  # fmt: skip
def test_a_scarce_lattice_sends_enough_rows_to_the_test_set_as_far_as_it_can(n, take_all, wanted):
    elsewhere = frozenset({"aP"} if take_all else ())
    assert wanted_in_test(0.2, 10, elsewhere)("aP", n) == wanted
    # A lattice no other source trains keeps at least half of its structures.
    assert wanted_in_test(0.2, 10, elsewhere)("cF", n) == max(round(0.2 * n), min(20, n // 2))
    assert wanted_in_test(0.2, 0, elsewhere)("aP", n) == round(0.2 * n)  # 0: the plain share


@pytest.mark.parametrize(("n", "wanted"), [(200, 60), (40, 12), (20, 10), (25, 10), (12, 6),
                                           (7, 3)])  # fmt: skip
def test_each_leaderboard_gets_the_minimum_or_half_of_what_there_is(n, wanted):
    public = wanted_in_public(0.3, 10)("aP", n)
    assert public == wanted
    assert min(public, n - public) >= min(10, n // 2)
    assert wanted_in_public(0.3, 0)("aP", n) == round(0.3 * n)


def test_the_split_with_a_minimum_gives_every_lattice_its_rows_on_both_boards():
    rows = [_row(f"{lattice}{k:03d}", f"X{k}{lattice}", sg, lattice)
            for lattice, sg, n in (("aP", 2, 57), ("cF", 225, 900), ("oF", 70, 24))
            for k in range(n)]  # fmt: skip
    meta = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    in_test = grouped_stratified_split(meta, 0.2, rng, wanted_in_test(0.2, 10))
    test = meta[in_test]
    counts = test["bravais_lattice"].value_counts()
    assert (counts["aP"], counts["cF"], counts["oF"]) == (20, 180, 12)
    in_public = grouped_stratified_split(test, 0.3, rng, wanted_in_public(0.3, 10))
    public = test[in_public]["bravais_lattice"].value_counts()
    private = test[~in_public]["bravais_lattice"].value_counts()
    assert (public["aP"], private["aP"]) == (10, 10)
    assert (public["oF"], private["oF"]) == (6, 6)
    assert (public["cF"], private["cF"]) == (54, 126)
