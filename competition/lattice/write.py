"""Writing a lattice build's files: the parquet tables, the sticks, the CSVs.

Every file is written atomically (a temporary name, then a rename); the answer key
and the provenance of rows are owner-only.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from competition.config import BuildConfig
from competition.lattice.splits import CELL_COLUMNS
from competition.outdir import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from competition.sources.catalog import Rejected
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import atomic_path, atomic_write_text
from xrd_bravais.contract.labels import BRAVAIS_LATTICES
from xrd_bravais.contract.references import majority_label
from xrd_bravais.contract.tasks import LATTICE_TASK, TASK_METADATA_KEY

REJECT_COLUMNS: Final = ("entry_id", "source_file", "stage", "reason", "kept_id")
DRAW: Final = "draw"
"""Column of ``train_meta.parquet``: which measured draw of its structure a row is."""



def _rejects_frame(rejected: list[Rejected]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(r) for r in rejected], columns=list(REJECT_COLUMNS))
    return frame.sort_values(["entry_id", "stage"], kind="stable").reset_index(drop=True)


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = Counter(frame["bravais_lattice"])
    return {lattice: int(counts.get(lattice, 0)) for lattice in BRAVAIS_LATTICES}


def _write_parquet(
    frame: pd.DataFrame, patterns: np.ndarray, path: Path, config: BuildConfig
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: pa.array(frame[name]) for name in frame.columns}
    names = config.pattern.column_names()
    columns |= {name: pa.array(patterns[:, i]) for i, name in enumerate(names)}
    table = pa.table(columns)
    grid = config.pattern.to_grid().schema_metadata()
    task = {TASK_METADATA_KEY: json.dumps(LATTICE_TASK.to_dict(), sort_keys=True).encode()}
    table = table.replace_schema_metadata({**grid, **task})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _write_sticks(train: pd.DataFrame, sticks: dict[str, np.ndarray], path: Path) -> None:
    """``train_sticks.parquet``: the reflections of each training row, rows in id order.

    Only training rows: the reflections of a test structure would give its answer.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [sticks[entry] for entry in train["entry_id"]]
    lengths = np.array([len(t) for t in tables], dtype=np.int64)
    values = (np.concatenate(tables) if tables else np.empty((0, len(layout.STICK_COLUMNS))))
    ids = np.repeat(train[layout.ID].to_numpy(dtype=object), lengths)
    columns: dict[str, pa.Array] = {layout.ID: pa.array(ids, pa.string())}
    for k, name in enumerate(layout.STICK_COLUMNS):
        kind = pa.int16() if name in ("h", "k", "l") else pa.float32()
        column = np.rint(values[:, k]) if kind == pa.int16() else values[:, k]
        columns[name] = pa.array(column.astype(kind.to_pandas_dtype()), kind)
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp, compression="zstd")


def _write_csv(frame: pd.DataFrame, path: Path, mode: int | None = None) -> None:
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"), mode=mode)


def _write_outputs(
    out: Path,
    config: BuildConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    patterns: dict[str, np.ndarray],
    rejects: pd.DataFrame,
    extra_draws: dict[str, np.ndarray] | None = None,
) -> None:
    """Write the data files of the layout (everything but DATA.md, the PNG, the manifest)."""
    extra_draws = extra_draws or {}

    def pattern(entry: str, draw: int) -> np.ndarray:
        return patterns[entry] if draw == 0 else extra_draws[entry][draw - 1]

    def stack(frame: pd.DataFrame) -> np.ndarray:
        empty = np.empty((0, config.pattern.n_points), dtype=np.float32)  # type: ignore[union-attr]
        draws = frame[DRAW] if DRAW in frame else np.zeros(len(frame), dtype=int)
        rows = [pattern(e, int(d)) for e, d in zip(frame["entry_id"], draws, strict=True)]
        return np.stack(rows) if rows else empty

    labelled = train[list(layout.TRAIN_LABEL_COLUMNS)]
    _write_parquet(labelled, stack(train), out / layout.TRAIN, config)
    _write_parquet(test[[layout.ID]], stack(test), out / layout.TEST, config)

    # The sample submissions predict the commonest training label for every row:
    # a valid file to start from, computed from public data only.
    top_lattice = majority_label(list(_counts(train).values()), BRAVAIS_LATTICES)
    top_group = int(train[layout.SPACEGROUP].mode().sort_values().iloc[0])
    for track, value in (("bravais", top_lattice), ("spacegroup", top_group)):
        column = LATTICE_TASK.track(track).column
        sample = test[[layout.ID]].assign(**{column: value})
        _write_csv(sample, out / layout.sample_submission(track))

    # The answer key and the provenance of test rows: for the owner only.
    (out / layout.PRIVATE).mkdir(parents=True, exist_ok=True)
    os.chmod(out / layout.PRIVATE, PRIVATE_DIR_MODE)
    _write_csv(test[list(layout.SOLUTION_COLUMNS)], out / layout.SOLUTION, mode=PRIVATE_FILE_MODE)
    meta_columns = [
        layout.ID, layout.COD_ID, layout.FORMULA, "source_file", "entry_id",
        "declared_spacegroup", "n_sites", "symprec_used", *CELL_COLUMNS,
    ]  # fmt: skip
    # Provenance of every row, for organisers: where each structure came from
    # (and, for training rows, which measured draw of it).
    for path, frame, columns in [(layout.TRAIN_META, train, [*meta_columns, DRAW]),
                                 (layout.TEST_META, test, meta_columns)]:  # fmt: skip
        with atomic_path(out / path, mode=PRIVATE_FILE_MODE) as tmp:
            frame[columns].to_parquet(tmp, index=False, compression="zstd")
    _write_csv(rejects, out / layout.REJECTS)

