"""From accepted structures to a fair competition: deduplicate, balance, split.

All functions take and return pandas DataFrames with one row per structure and
the columns ``entry_id``, ``formula``, ``spacegroup_number``, ``bravais_lattice``
and the conventional cell ``a b c alpha beta gamma``. Every random choice takes a
``numpy.random.Generator`` so the build is reproducible from one seed.

Leakage is controlled by *groups*: a compound is its formula per formula unit
(:func:`competition.lattice.labels.compound_formula`) plus its space group, and a
compound never straddles train and test (or the Public and Private portions).
Different compounds whose patterns are near-copies are caught apart
(:func:`near_copies`): the training row is dropped.

A group has a single space group, hence a single lattice, so
splitting each lattice's groups separately is both grouped and stratified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import pandas as pd

from xrd_bravais.contract import layout
from xrd_bravais.contract.layout import compound_key

CELL_COLUMNS: Final = ("a", "b", "c", "alpha", "beta", "gamma")
NEAR_COPY_COSINE: Final = 0.95
"""Cosine similarity of two clean patterns at or above which they are near-copies.

Over the clean patterns of all of AMCSD only 18 pairs of different compounds reach
0.95 (CdTe and InSb 0.998, B2O3 in groups 152 and 144 1.000, ...): isostructural
compounds of almost equal cells and scattering power, which a model cannot tell
apart and which would score a test row by its copy in training."""


def group_keys(meta: pd.DataFrame) -> pd.Series:
    """The compound of each row: ``"<reduced formula>|<space-group number>"``."""
    keys = compound_key(meta[layout.FORMULA], meta[layout.SPACEGROUP])
    return pd.Series(keys, index=meta.index, dtype=object)


def _same_cell(a: np.ndarray, b: np.ndarray, length_rtol: float, angle_atol: float) -> bool:
    lengths = np.all(np.abs(a[:3] - b[:3]) <= length_rtol * np.maximum(a[:3], b[:3]))
    return bool(lengths and np.all(np.abs(a[3:] - b[3:]) <= angle_atol))


def deduplicate(
    meta: pd.DataFrame, length_rtol: float, angle_atol: float,
    order: tuple[str, ...] = ("entry_id",),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop repeated entries of the same structure, keeping the first by ``order``.

    Two rows are repeats when they share the reduced formula and space group and
    their conventional cells agree: lengths within ``length_rtol`` (relative) and
    angles within ``angle_atol`` degrees.

    Returns
    -------
    kept : DataFrame
        One row per distinct structure, sorted by ``order`` (default: entry id).
    dropped : DataFrame
        The repeats, with a ``kept_id`` column naming the entry kept instead.
    """
    meta = meta.sort_values(list(order), kind="stable")
    keys = group_keys(meta).to_numpy()
    cells = meta[list(CELL_COLUMNS)].to_numpy(dtype=float)
    ids = meta["entry_id"].to_numpy()
    representatives: dict[str, list[int]] = {}
    kept_id = np.full(len(meta), "", dtype=object)
    for row, key in enumerate(keys):
        reps = representatives.setdefault(key, [])
        match = next(
            (r for r in reps if _same_cell(cells[r], cells[row], length_rtol, angle_atol)), None
        )
        if match is None:
            reps.append(row)
        else:
            kept_id[row] = ids[match]
    is_repeat = kept_id != ""
    dropped = meta[is_repeat].assign(kept_id=kept_id[is_repeat])
    return meta[~is_repeat], dropped


def balance(
    meta: pd.DataFrame, per_class: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep at most ``per_class`` rows per Bravais lattice, chosen at random.

    Returns
    -------
    kept, dropped : DataFrame
        Both in entry-id order.
    """
    meta = meta.sort_values("entry_id", kind="stable")
    chosen = np.zeros(len(meta), dtype=bool)
    positions = np.arange(len(meta))
    for lattice in sorted(meta["bravais_lattice"].unique()):
        rows = positions[(meta["bravais_lattice"] == lattice).to_numpy()]
        if len(rows) > per_class:
            rows = rng.choice(rows, size=per_class, replace=False)
        chosen[rows] = True
    return meta[chosen], meta[~chosen]


def grouped_stratified_split(
    meta: pd.DataFrame, fraction: float, rng: np.random.Generator,
    target: Callable[[str, int], int] | None = None,
) -> np.ndarray:
    """Choose about ``fraction`` of each lattice's rows, taking whole compounds.

    For each lattice the compounds are shuffled and taken one by one while taking
    the next brings the count closer to ``round(fraction * n)``, or to
    ``target(lattice, n)`` where given (:func:`wanted_in_test`, :func:`wanted_in_public`).

    Returns
    -------
    numpy.ndarray of bool
        True for the rows chosen, aligned with ``meta``.
    """
    keys = group_keys(meta).to_numpy()
    lattices = meta["bravais_lattice"].to_numpy()
    chosen = np.zeros(len(meta), dtype=bool)
    for lattice in sorted(set(lattices)):
        in_lattice = lattices == lattice
        groups, sizes = np.unique(keys[in_lattice], return_counts=True)
        n = int(in_lattice.sum())
        goal = round(fraction * n) if target is None else target(lattice, n)
        taken: list[str] = []
        count = 0
        for i in rng.permutation(len(groups)):
            if abs(count + sizes[i] - goal) < abs(count - goal):
                taken.append(groups[i])
                count += int(sizes[i])
        chosen |= in_lattice & np.isin(keys, taken)
    return chosen


def wanted_in_test(
    fraction: float, minimum: int, trained_elsewhere: frozenset[str] = frozenset()
) -> Callable[[str, int], int]:
    """Test rows wanted of a lattice of ``n``: its share, or ``2 * minimum`` if more.

    Never more than half the lattice, so that training keeps as many, unless the
    lattice is in ``trained_elsewhere`` (other sources give it training rows).
    """

    def wanted(lattice: str, n: int) -> int:
        share = round(fraction * n)
        if minimum == 0 or share >= 2 * minimum:
            return share
        return max(share, min(2 * minimum, n if lattice in trained_elsewhere else n // 2))

    return wanted


def wanted_in_public(fraction: float, minimum: int) -> Callable[[str, int], int]:
    """Public rows wanted of a lattice's ``n`` test rows: its share, or ``minimum`` if more.

    Never so many that Private gets fewer than ``minimum``, unless both cannot
    have that many: then each gets about half.
    """

    def wanted(lattice: str, n: int) -> int:
        return min(max(round(fraction * n), minimum), max(n - minimum, n // 2))

    return wanted


def measured_public(lattices: np.ndarray, fraction: float, rng: np.random.Generator
                    ) -> np.ndarray:  # fmt: skip
    """Which real measurements go on the Public board: ``fraction`` of each lattice.

    Each lattice gives ``round(fraction * n)`` of its ``n`` measurements, drawn at
    random, so the Public ones have the lattice mix of the whole set.

    Examples
    --------
    >>> rows = measured_public(np.array(["cF"] * 4 + ["mP"] * 6), 0.5, np.random.default_rng(0))
    >>> int(rows[:4].sum()), int(rows[4:].sum())
    (2, 3)
    """
    lattices = np.asarray(lattices)
    mask = np.zeros(len(lattices), dtype=bool)
    for lattice in sorted(set(lattices.tolist())):
        rows = np.flatnonzero(lattices == lattice)
        take = round(fraction * len(rows))
        mask[rng.choice(rows, take, replace=False)] = True
    return mask


def opaque_ids(n: int, prefix: str, rng: np.random.Generator) -> np.ndarray:
    """Ids ``{prefix}000000 ..`` in a random order, to label ``n`` rows.

    Row ``i`` gets the id at position ``i`` of a random permutation, so once rows
    are sorted by id their order is random: neither the id nor the position says
    anything about the label or the source entry.
    """
    width = max(6, len(str(n - 1)))
    return np.array([f"{prefix}{k:0{width}d}" for k in rng.permutation(n)], dtype=object)


def near_copies(
    train: np.ndarray, test: np.ndarray, threshold: float = NEAR_COPY_COSINE, block: int = 2048,
    test_block: int = 8192,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training patterns whose cosine similarity to a test pattern reaches ``threshold``.

    Parameters
    ----------
    train, test : arrays (n, n_points) and (m, n_points)
        Non-negative patterns; ``test`` may be anything that slices into arrays (a
        :class:`competition.lattice.spool.RowView` of patterns on disk). Compared
        ``block`` training rows against ``test_block`` test rows at a time, so
        memory stays at ``block * test_block`` similarities whatever the sizes.

    Returns
    -------
    rows : int array
        Positions in ``train`` of the near-copies.
    nearest : int array
        For each, the position in ``test`` of its most similar test pattern.
    similarity : array
        That similarity.
    """
    def unit(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(norms > 0, norms, 1.0)

    rows, nearest, similarity = [], [], []
    for start in range(0, len(train) if len(test) else 0, block):
        train_unit = unit(train[start:start + block])
        best = np.full(len(train_unit), -np.inf, dtype=np.float32)
        where = np.zeros(len(train_unit), dtype=np.int64)
        for first in range(0, len(test), test_block):
            cosine = train_unit @ unit(test[first:first + test_block]).T
            column = cosine.argmax(axis=1)
            value = cosine[np.arange(len(column)), column]
            better = value > best
            best[better], where[better] = value[better], column[better] + first
        hit = np.flatnonzero(best >= threshold)
        rows.append(start + hit)
        nearest.append(where[hit])
        similarity.append(best[hit])
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(rows), np.concatenate(nearest), np.concatenate(similarity)
