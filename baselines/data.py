"""Read a built competition's parquet files into arrays for scikit-learn.

Patterns come back as a float32 matrix (one row per pattern, one column per
2theta grid point) with the grid they were sampled on, read from the parquet
schema metadata the builder writes. Nothing here needs pymatgen or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xrd_bravais.contract import layout
from xrd_bravais.contract.grid import SCHEMA_METADATA_KEY, Grid
from xrd_bravais.contract.layout import compound_key

# Columns of train.parquet besides the intensities (test.parquet has none of them).
LABEL_COLUMNS = layout.TRAIN_LABEL_COLUMNS[1:]


@dataclass(frozen=True)
class Patterns:
    """Patterns of one parquet file.

    Attributes
    ----------
    ids : ndarray of str
        Row ids (``r000001`` or ``t000001``).
    X : ndarray of float32, shape (n_patterns, n_points)
        Intensities on the grid, maximum 1 per row.
    labels : DataFrame or None
        ``cod_id``, ``formula``, ``spacegroup_number`` and ``bravais_lattice``,
        where the file has them.
    grid : Grid or None
        Where the columns lie in 2theta, from the file's schema metadata (``None``
        for a file that does not record it).
    """

    ids: np.ndarray
    X: np.ndarray
    labels: pd.DataFrame | None
    grid: Grid | None

    def groups(self) -> np.ndarray:
        """Compound keys (formula and space group) of the rows.

        The builder's split keeps a compound on one side; cross-validation folds
        grouped on these keys do the same, so they do not leak a compound.
        """
        if self.labels is None or not {"formula", "spacegroup_number"} <= set(self.labels):
            raise ValueError("these patterns have no formula and space-group columns")
        return compound_key(self.labels[layout.FORMULA], self.labels[layout.SPACEGROUP])

    def target(self, column: str) -> np.ndarray:
        """The label column ``column`` (e.g. ``"bravais_lattice"``) as an array."""
        if self.labels is None or column not in self.labels:
            raise ValueError(f"these patterns have no {column!r} column (a test file?)")
        return self.labels[column].to_numpy()


def pattern_columns(names: list[str]) -> list[str]:
    """The intensity columns ``y0 .. y{N-1}`` among ``names``, in grid order.

    Raises
    ------
    ValueError
        If there are none, or they are not exactly ``y0`` to ``y{N-1}``.
    """
    columns = [n for n in names if n.startswith("y") and n[1:].isdigit()]
    if not columns:
        raise ValueError("no intensity columns y0 .. y{N-1} found")
    expected = [f"y{i}" for i in range(len(columns))]
    if sorted(columns, key=lambda n: int(n[1:])) != expected:
        raise ValueError(
            f"intensity columns must be y0 .. y{len(columns) - 1} without gaps, "
            f"found {len(columns)} columns named y*"
        )
    return expected


def read_patterns(path: str | Path) -> Patterns:
    """Read a patterns parquet file (``train.parquet``, ``test.parquet`` or alike).

    Parameters
    ----------
    path : str or Path
        A parquet file with an ``id`` column and ``y0 .. y{N-1}`` intensities.

    Returns
    -------
    Patterns

    Raises
    ------
    FileNotFoundError
        If the file is absent.
    ValueError
        If it lacks ``id`` or the intensity columns.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    schema = pq.read_schema(path)
    if "id" not in schema.names:
        raise ValueError(f"{path} has no 'id' column")
    columns = pattern_columns(schema.names)
    label_columns = [c for c in LABEL_COLUMNS if c in schema.names]
    # One contiguous float32 block (155,000 x 4,251 patterns are 2.6 GB), filled a row
    # group at a time, so the Arrow copy never holds more than one group.
    parquet = pq.ParquetFile(path)
    X = np.empty((parquet.metadata.num_rows, len(columns)), dtype=np.float32)
    start = 0
    for group in range(parquet.num_row_groups):
        part = parquet.read_row_group(group, columns=columns)
        stop = start + part.num_rows
        for i, name in enumerate(columns):
            X[start:stop, i] = part.column(name).to_numpy()
        start = stop
    table = parquet.read(columns=["id", *label_columns])
    metadata = schema.metadata or {}
    grid = Grid.from_parquet(path) if SCHEMA_METADATA_KEY in metadata else None
    labels = table.select(label_columns).to_pandas() if label_columns else None
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)
    return Patterns(ids=ids, X=X, labels=labels, grid=grid)


def own_source_rows(competition: str | Path, ids: np.ndarray) -> np.ndarray | None:
    """Which training rows come from the build's own source, by row id.

    A build can add training structures from other sources (``--train-extra``,
    ``--train-generated``); its test rows are all of its own source, so a model
    tuned on held-out rows should be tuned on those alike (search-match's
    ``symmetry_window="auto"``). Read from ``public/train_meta.parquet``'s
    ``entry_id``, which the builder prefixes for every other source.

    Parameters
    ----------
    competition : str or Path
        The competition root.
    ids : ndarray of str
        The training rows' ids, in the order the mask is wanted.

    Returns
    -------
    ndarray of bool or None
        None where the build has no other source, or no ``train_meta.parquet`` says
        so (every row is then of its own kind).

    Raises
    ------
    ValueError
        If ``train_meta.parquet`` lacks one of ``ids``.
    """
    path = Path(competition) / layout.TRAIN_META
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    if "entry_id" not in pq.read_schema(path).names:
        return None
    meta = pd.read_parquet(path, columns=[layout.ID, "entry_id"]).set_index(layout.ID)
    missing = pd.Index(ids).difference(meta.index)
    if len(missing):
        raise ValueError(f"{path} has no row for {len(missing)} training ids, e.g. {missing[0]}")
    entry = meta.loc[ids, "entry_id"].astype(str)
    other = entry.str.startswith((layout.EXTRA_ENTRY_PREFIX, layout.GENERATED_ENTRY_PREFIX))
    own = ~other.to_numpy()
    return None if own.all() or not own.any() else own


def stratified_sample(y: np.ndarray, n: int, random_state: int = 0) -> np.ndarray:
    """Indices of a seeded, class-stratified sample of ``n`` rows (all rows if fewer).

    Every class keeps at least one row, so a 10,000-row sample of a 42,000-row
    training set still has all 14 lattices.
    """
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        return np.arange(len(y))
    index = np.arange(len(y))
    _, counts = np.unique(y, return_counts=True)
    # train_test_split cannot stratify on singletons; those rows are always kept.
    classes, inverse = np.unique(y, return_inverse=True)
    single = np.isin(inverse, np.flatnonzero(counts < 2))
    rest = index[~single]
    n_rest = n - int(single.sum())
    if n_rest < len(np.unique(y[rest])):
        raise ValueError(f"a sample of {n} rows cannot hold every one of {len(classes)} classes")
    if len(rest) - n_rest < len(np.unique(y[rest])):
        # train_test_split cannot leave out fewer rows than classes: the few rows to
        # leave out come one at a time from the class with the most rows left.
        rng = np.random.default_rng(random_state)
        kept = list(rest)
        for _ in range(len(rest) - n_rest):
            labels, counts = np.unique(y[kept], return_counts=True)
            largest = np.flatnonzero(y[kept] == labels[counts.argmax()])
            kept.pop(int(rng.choice(largest)))
        return np.sort(np.concatenate([index[single], kept]))
    chosen, _ = train_test_split(
        rest, train_size=n_rest, stratify=y[rest], random_state=random_state
    )
    return np.sort(np.concatenate([index[single], chosen]))


def checked_own_source(own_source: Any, n_rows: int) -> np.ndarray | None:
    """``own_source`` as a boolean array of one entry per row, or None if None.

    What an estimator's ``fit(..., own_source=...)`` takes (:func:`own_source_rows`).

    Raises
    ------
    ValueError
        If it is not ``n_rows`` booleans.

    Examples
    --------
    >>> checked_own_source([True, False], 2).tolist(), checked_own_source(None, 2)
    ([True, False], None)
    """
    if own_source is None:
        return None
    own = np.asarray(own_source)
    if own.shape != (n_rows,) or own.dtype != bool:
        raise ValueError(f"own_source must be {n_rows} booleans, one per row, got "
                         f"shape {own.shape} of {own.dtype}")  # fmt: skip
    return own


def own_source_first_sample(y: np.ndarray, own_source: np.ndarray, n: int,
                            random_state: int = 0) -> np.ndarray:  # fmt: skip
    """Indices of ``n`` rows, the build's own source first (all rows if fewer).

    A build with ``--train-extra`` may hold thirty computed structures for each
    of its own: a stratified sample of all its rows then holds few of the kind
    its test rows are. This one takes every own-source row, and fills the rest
    of ``n`` with a stratified sample (:func:`stratified_sample`) of the others;
    where the own rows alone exceed that, a stratified sample of them, leaving
    room for one row of each class of the others, so no class is lost.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        The labels.
    own_source : ndarray of bool, shape (n_rows,)
        Which rows are of the build's own source
        (:func:`own_source_rows`).
    n : int
        Rows wanted.
    random_state : int, default=0
        Seeds both samples.

    Returns
    -------
    ndarray of int
        Sorted row indices.

    Examples
    --------
    >>> y = np.array(["cF", "cF", "hP", "hP", "hP", "hP"])
    >>> own = np.array([True, False, True, False, False, False])
    >>> own_source_first_sample(y, own, 4).tolist()  # both own rows, two of the others
    [0, 1, 2, 5]
    """
    y, own_source = np.asarray(y), np.asarray(own_source, dtype=bool)
    if own_source.shape != y.shape:
        raise ValueError(f"own_source has {own_source.size} entries for {y.size} rows")
    if n >= len(y):
        return np.arange(len(y))
    own, other = np.flatnonzero(own_source), np.flatnonzero(~own_source)
    room = len(np.unique(y[other]))  # one row of each class of the other sources
    if n < room:
        raise ValueError(f"a sample of {n} rows cannot hold every one of {room} classes")
    kept = own if len(own) <= n - room else own[stratified_sample(y[own], n - room, random_state)]
    rest = n - len(kept)
    chosen = other[stratified_sample(y[other], rest, random_state)] if rest else other[:0]
    return np.sort(np.concatenate([kept, chosen]))
