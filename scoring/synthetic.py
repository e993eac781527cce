"""A competition in the built layout with random labels, for tests and benchmarks.

:func:`make_synthetic_competition` writes ``public/``, ``private/solution.csv`` and
a ``manifest.json`` with the file hashes, exactly as the builder lays them out,
without any crystal structure: the grader can then be exercised at any size
(a million test rows for the benchmark) in seconds. The patterns are noise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from competition.io import atomic_write_text, sha256_file
from competition.lattices import bravais_lattice
from scoring.tracks import TRACKS


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
    groups = np.arange(1, 231)
    lattices = np.array([bravais_lattice(int(g)) for g in groups])
    bravais = TRACKS["bravais"].labels

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

    width = max(6, len(str(max(n_test, n_train))))
    test_groups, train_groups = draw(n_test), draw(n_train)
    test_ids = np.array([f"t{i:0{width}d}" for i in range(n_test)], dtype=object)
    usage = np.where(rng.random(n_test) < public_fraction, "Public", "Private")
    solution = pd.DataFrame({
        "id": test_ids,
        "bravais_lattice": lattices[test_groups - 1],
        "spacegroup_number": test_groups,
        "Usage": usage,
    })  # fmt: skip
    noise = {f"y{k}": rng.random(n_test, dtype=np.float32) for k in range(n_points)}
    test = pd.DataFrame({"id": test_ids, **noise})
    train = pd.DataFrame({
        "id": [f"r{i:0{width}d}" for i in range(n_train)],
        "cod_id": pd.array([None] * n_train, dtype="Int64"),
        "formula": "X",
        "spacegroup_number": train_groups,
        "bravais_lattice": lattices[train_groups - 1],
        **{f"y{k}": rng.random(n_train, dtype=np.float32) for k in range(n_points)},
    })  # fmt: skip
    (root / "public").mkdir(parents=True, exist_ok=True)
    (root / "private").mkdir(parents=True, exist_ok=True)
    test.to_parquet(root / "public" / "test.parquet", index=False)
    train.to_parquet(root / "public" / "train.parquet", index=False)
    common = train["bravais_lattice"].mode()[0]
    pd.DataFrame({"id": test_ids, "bravais_lattice": common}).to_csv(
        root / "public" / "sample_submission.csv", index=False
    )
    pd.DataFrame({"id": test_ids, "spacegroup_number": 1}).to_csv(
        root / "public" / "sample_submission_spacegroup.csv", index=False
    )
    solution.to_csv(root / "private" / "solution.csv", index=False, lineterminator="\n")
    files = {
        p.relative_to(root).as_posix(): sha256_file(p)
        for folder in ("public", "private")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }
    manifest = {"format": "xrd-bravais-competition/1", "seed": seed, "synthetic": True,
                "files": files}  # fmt: skip
    atomic_write_text(root / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return root
