"""Large builds: patterns kept on disk until the write, written a row group at a time.

Stored as multiples of a quantum of each row's maximum, read back a row group at a time.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from competition.config import BuildConfig
from competition.lattice.spool import PatternSpool, RowView
from competition.lattice.worker import StructureRecord
from xrd_bravais.contract.layout import PATTERN_QUANTUM, PATTERN_QUANTUM_KEY, STICK_COLUMNS


def _record(entry: str, rng: np.random.Generator, draws: int = 1) -> StructureRecord:
    n_sticks = int(rng.integers(1, 9))
    return StructureRecord(
        entry_id=entry, cod_id=None, source_file=f"{entry}.cif", formula="NaCl",
        spacegroup_number=225, spacegroup_symbol="Fm-3m", declared_spacegroup=225,
        bravais_lattice="cF", n_sites=8, conventional_cell=(5.6, 5.6, 5.6, 90, 90, 90),
        pattern=rng.random(7, dtype=np.float32),
        sticks=rng.random((n_sticks, len(STICK_COLUMNS)), dtype=np.float32),
        extra_draws=rng.random((draws - 1, 7), dtype=np.float32) if draws > 1 else None,
    )  # fmt: skip


def test_the_spool_gives_back_every_array_in_any_order_and_leaves_nothing():
    rng = np.random.default_rng(0)
    records = [_record(f"e{k}", rng, draws=1 + k % 3) for k in range(50)]
    with PatternSpool(7) as spool:
        light = [spool.keep(r) for r in records]
        folder = spool._dir
        assert all(r.pattern is None and r.sticks is None and r.extra_draws is None
                   for r in light)  # fmt: skip
        assert light[3] == dataclasses.replace(records[3], pattern=None, sticks=None,
                                               extra_draws=None)  # fmt: skip
        order = rng.permutation(50)
        ids = [f"e{k}" for k in order]
        np.testing.assert_array_equal(spool.patterns(ids), [records[k].pattern for k in order])
        # Draw d of a record is its pattern (d = 0) or extra draw d - 1.
        draws = [k % 3 for k in order]
        expected = [records[k].pattern if d == 0 else records[k].extra_draws[d - 1]
                    for k, d in zip(order, draws, strict=True)]  # fmt: skip
        np.testing.assert_array_equal(spool.patterns(ids, draws), expected)
        for record in records:
            np.testing.assert_array_equal(spool.sticks(record.entry_id), record.sticks)
            np.testing.assert_array_equal(spool[record.entry_id], record.pattern)
        with pytest.raises(KeyError, match="draw"):
            spool.patterns(["e0"], [1])  # e0 has one draw
        with pytest.raises(ValueError, match="points"):
            spool.add("wrong", np.zeros(6))
        # A record kept twice is stored once (the same id from the cache and a rerun).
        assert spool.keep(records[0]).pattern is None and len(spool) == 50
        view = RowView(spool, ids, draws)
        np.testing.assert_array_equal(view[5:9], expected[5:9])
        np.testing.assert_array_equal(view[np.array([7, 2])], [expected[7], expected[2]])
        np.testing.assert_array_equal(view[4], expected[4])
        assert view.shape == (50, 7)
        np.testing.assert_array_equal(np.concatenate(list(view.blocks(16))), expected)
    assert not folder.exists()
    with pytest.raises(RuntimeError, match="with"):
        spool.patterns(["e0"])


def test_quantized_values_are_float32_within_half_a_quantum_of_the_row_maximum():
    from competition.lattice.write import quantize

    rng = np.random.default_rng(1)
    X = rng.random((40, 300), dtype=np.float32) ** 6 * rng.uniform(0.5, 100, (40, 1))
    X[3] = 0.0  # an empty row stays empty
    Q = quantize(X)
    assert Q.dtype == np.float32
    scale = np.maximum(X.max(axis=1, keepdims=True), 1e-30)
    assert np.abs(Q - X).max() <= 0.5 * PATTERN_QUANTUM * scale.max()
    assert (np.abs(Q - X) <= 0.5 * PATTERN_QUANTUM * scale * (1 + 1e-5)).all()
    np.testing.assert_array_equal(Q[3], 0.0)
    steps = Q / (scale * PATTERN_QUANTUM)
    np.testing.assert_allclose(steps, np.rint(steps), atol=1e-3)
    # A row of maximum 1 holds exact multiples of the quantum: no noise left in the low bits.
    unit = quantize(X / scale)
    assert (unit / PATTERN_QUANTUM == np.rint(unit / PATTERN_QUANTUM)).all()


def test_row_groups_of_the_write_hold_the_same_table_as_one_and_read_back_alike(
    tmp_path, monkeypatch
):
    from baselines.data import read_patterns
    from competition.lattice import write

    config = BuildConfig()
    n_points = config.pattern.n_points
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"id": [f"r{k:06d}" for k in range(23)],
                          "entry_id": [f"e{k}" for k in range(23)]})  # fmt: skip
    X = rng.random((23, n_points), dtype=np.float32)
    X /= X.max(axis=1, keepdims=True)
    with PatternSpool(n_points) as spool:
        for entry, row in zip(frame["entry_id"], X, strict=True):
            spool.add(entry, row)
        rows = RowView(spool, frame["entry_id"])
        write._write_parquet(frame[["id"]], rows, tmp_path / "one.parquet", config)
        monkeypatch.setattr(write, "ROW_GROUP", 5)
        write._write_parquet(frame[["id"]], rows, tmp_path / "five.parquet", config)
    one, five = (pq.ParquetFile(tmp_path / name) for name in ("one.parquet", "five.parquet"))
    assert (one.num_row_groups, five.num_row_groups) == (1, 5)
    assert one.read().equals(five.read())
    assert json.loads(five.schema_arrow.metadata[PATTERN_QUANTUM_KEY]) == PATTERN_QUANTUM
    read = read_patterns(tmp_path / "five.parquet")
    assert read.X.dtype == np.float32 and read.X.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(read.X, write.quantize(X))
    assert np.abs(read.X - X).max() <= PATTERN_QUANTUM / 2
    # A student's pandas reads the same float32 values.
    frame_read = pd.read_parquet(tmp_path / "five.parquet")
    assert frame_read["y0"].dtype == np.float32
    np.testing.assert_array_equal(frame_read[[f"y{i}" for i in range(n_points)]].to_numpy(),
                                  read.X)  # fmt: skip


def test_a_killed_builds_spool_is_removed_by_the_next_and_a_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from competition.lattice.spool import PREFIX

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"{PREFIX}{done.stdout.strip()}-abc"
    alive = tmp_path / f"{PREFIX}{os.getpid()}-def"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "patterns.f32").write_bytes(b"\0" * 64)
    with PatternSpool(7, tmp_path) as spool:
        assert spool._dir.parent == tmp_path and spool._dir.name.startswith(PREFIX)
    assert not dead.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]
