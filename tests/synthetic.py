"""A competition in the built layout with random labels, for the tests and benchmarks.

Not part of the product: it lives with the tests (``from synthetic import ...``
in a test, ``from tests.synthetic import ...`` in a benchmark run as
``python -m benchmarks.grading_speed``).

:func:`make_synthetic_competition` writes ``public/``, ``private/solution.csv`` and
a ``manifest.json`` with the file hashes, exactly as the builder lays them out,
without any crystal structure: the grader can then be exercised at any size
(a million test rows for the benchmark) in seconds. The patterns are noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from xrd_bravais.contract import layout
from xrd_bravais.contract.labels import BRAVAIS_LATTICES, SPACEGROUP_NUMBERS, bravais_lattice
from xrd_bravais.contract.manifest import FORMAT, hashed_files, write_manifest_dict
from xrd_bravais.contract.tasks import LATTICE_TASK


def make_synthetic_competition(
    out: str | os.PathLike[str],
    n_test: int = 1400,
    n_train: int = 2800,
    public_fraction: float = 0.3,
    n_points: int = 8,
    seed: int = 0,
    balanced: bool = True,
) -> Path:
    """Write a competition folder with random labels and return its path.

    Parameters
    ----------
    out : path
        Folder to create.
    n_test, n_train : int
        Rows of the test and training sets.
    public_fraction : float
        Share of test rows on the Public portion.
    n_points : int
        Pattern columns ``y0 .. y{n_points-1}`` (random noise).
    seed : int
        Seed of every random choice.
    balanced : bool
        Equal Bravais classes (space groups drawn inside each lattice); otherwise
        space groups are drawn uniformly from 1..230.
    """
    root = Path(out)
    rng = np.random.default_rng(seed)
    groups = np.array(SPACEGROUP_NUMBERS)
    lattices = np.array([bravais_lattice(int(g)) for g in groups])
    bravais = BRAVAIS_LATTICES

    def draw(n: int) -> np.ndarray:
        if not balanced:
            return rng.choice(groups, n)
        classes = np.resize(np.arange(len(bravais)), n)
        rng.shuffle(classes)
        out_groups = np.empty(n, dtype=np.int64)
        for code, lattice in enumerate(bravais):
            mask = classes == code
            out_groups[mask] = rng.choice(groups[lattices == lattice], int(mask.sum()))
        return out_groups

    def lattice_of(numbers: np.ndarray) -> np.ndarray:
        return lattices[numbers - groups[0]]

    width = max(6, len(str(max(n_test, n_train))))
    test_groups, train_groups = draw(n_test), draw(n_train)
    test_ids = np.array([f"t{i:0{width}d}" for i in range(n_test)], dtype=object)
    usage = np.where(rng.random(n_test) < public_fraction, *layout.PORTIONS)
    solution = pd.DataFrame({
        layout.ID: test_ids,
        layout.LATTICE: lattice_of(test_groups),
        layout.SPACEGROUP: test_groups,
        layout.USAGE: usage,
    })  # fmt: skip
    noise = {f"y{k}": rng.random(n_test, dtype=np.float32) for k in range(n_points)}
    test = pd.DataFrame({layout.ID: test_ids, **noise})
    train = pd.DataFrame({
        layout.ID: [f"r{i:0{width}d}" for i in range(n_train)],
        layout.COD_ID: pd.array([None] * n_train, dtype="Int64"),
        layout.FORMULA: "X",
        layout.SPACEGROUP: train_groups,
        layout.LATTICE: lattice_of(train_groups),
        **{f"y{k}": rng.random(n_train, dtype=np.float32) for k in range(n_points)},
    })  # fmt: skip
    site = layout.Layout(root)
    site.public.mkdir(parents=True, exist_ok=True)
    site.private.mkdir(parents=True, exist_ok=True)
    test.to_parquet(site.test, index=False)
    train.to_parquet(site.train, index=False)
    common = train[layout.LATTICE].mode()[0]
    for track, value in (("bravais", common), ("spacegroup", 1)):
        column = LATTICE_TASK.track(track).column
        frame = pd.DataFrame({layout.ID: test_ids, column: value})
        frame.to_csv(site.sample_submission(track), index=False)
    solution.to_csv(site.solution, index=False, lineterminator="\n")
    manifest = {"format": FORMAT, "seed": seed, "synthetic": True,
                "task": LATTICE_TASK.to_dict(), "files": hashed_files(root)}  # fmt: skip
    write_manifest_dict(root, manifest)
    return root
