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
from competition.lattice.spool import BLOCK, PatternSpool, RowView
from competition.outdir import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from competition.sources.catalog import Rejected
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import atomic_path, atomic_write_text
from xrd_bravais.contract.labels import BRAVAIS_LATTICES
from xrd_bravais.contract.layout import PATTERN_QUANTUM, PATTERN_QUANTUM_KEY
from xrd_bravais.contract.references import majority_label
from xrd_bravais.contract.tasks import LATTICE_TASK, TASK_METADATA_KEY

REJECT_COLUMNS: Final = ("entry_id", "source_file", "stage", "reason", "kept_id")
DRAW: Final = "draw"
"""Column of ``train_meta.parquet``: which measured draw of its structure a row is."""
SOURCE: Final = "source"
"""Column of ``train_meta.parquet``: where each training row's structure came from
(:attr:`competition.sources.catalog.Source.label`: ``amcsd``, ``archive:mp_cifs.tar.xz`` ...)."""
ROW_GROUP: Final = BLOCK
"""Rows per parquet row group: what the write holds in memory at once."""



def _rejects_frame(rejected: list[Rejected]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(r) for r in rejected], columns=list(REJECT_COLUMNS))
    return frame.sort_values(["entry_id", "stage"], kind="stable").reset_index(drop=True)


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = Counter(frame["bravais_lattice"])
    return {lattice: int(counts.get(lattice, 0)) for lattice in BRAVAIS_LATTICES}


def quantize(X: np.ndarray) -> np.ndarray:
    """Patterns rounded to multiples of :data:`PATTERN_QUANTUM` of each row's maximum, float32.

    A row of maximum 1 (every pattern the builder writes) becomes numbers of at most
    eleven significant bits and exact zeros in the tails, which zstd packs about
    four times tighter than float32 noise (8.3 KB a clean AMCSD row before, 2.0 KB
    after); students still read float32 values, off by at most half a quantum.
    """
    X = np.asarray(X, dtype=np.float32)
    scale = X.max(axis=1, keepdims=True) if X.size else np.ones((len(X), 1), np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    step = scale * np.float32(PATTERN_QUANTUM)
    return (np.rint(X / step) * step).astype(np.float32)


def _write_parquet(
    frame: pd.DataFrame, rows: RowView, path: Path, config: BuildConfig
) -> None:
    """Write ``frame``'s columns and its patterns, :data:`ROW_GROUP` rows at a time.

    Only one row group's patterns are in memory, whatever the number of rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = config.pattern.column_names()
    grid = config.pattern.to_grid().schema_metadata()
    task = {TASK_METADATA_KEY: json.dumps(LATTICE_TASK.to_dict(), sort_keys=True).encode()}
    quantum = {PATTERN_QUANTUM_KEY: json.dumps(PATTERN_QUANTUM).encode()}
    schema = None
    with atomic_path(path) as tmp:
        writer = None
        try:
            for start in range(0, max(len(frame), 1), ROW_GROUP):
                part = frame.iloc[start:start + ROW_GROUP]
                X = quantize(rows[start:start + ROW_GROUP]) if len(part) else np.empty(
                    (0, len(names)), np.float32)  # fmt: skip
                columns = {name: pa.array(part[name]) for name in part.columns}
                columns |= {name: pa.array(X[:, i]) for i, name in enumerate(names)}
                table = pa.table(columns)
                if schema is None:
                    schema = table.schema.with_metadata({**grid, **task, **quantum})
                    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
                assert writer is not None
                writer.write_table(table.cast(schema))
        finally:
            if writer is not None:
                writer.close()


def _write_sticks(train: pd.DataFrame, spool: PatternSpool, path: Path) -> None:
    """``train_sticks.parquet``: the reflections of each training row, rows in id order.

    Only training rows: the reflections of a test structure would give its answer.
    Written :data:`ROW_GROUP` training rows at a time.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field(layout.ID, pa.string())] + [
        pa.field(name, pa.int16() if name in ("h", "k", "l") else pa.float32())
        for name in layout.STICK_COLUMNS
    ]
    schema = pa.schema(fields)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for start in range(0, len(train), ROW_GROUP):
            part = train.iloc[start:start + ROW_GROUP]
            tables = [spool.sticks(entry) for entry in part["entry_id"]]
            lengths = np.array([len(t) for t in tables], dtype=np.int64)
            values = np.concatenate(tables) if tables else np.empty((0, len(fields) - 1))
            ids = np.repeat(part[layout.ID].to_numpy(dtype=object), lengths)
            columns = [pa.array(ids, pa.string())]
            for k, field in enumerate(fields[1:]):
                column = np.rint(values[:, k]) if field.type == pa.int16() else values[:, k]
                columns.append(pa.array(column.astype(field.type.to_pandas_dtype()), field.type))
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _write_csv(frame: pd.DataFrame, path: Path, mode: int | None = None) -> None:
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"), mode=mode)


def _write_outputs(
    out: Path,
    config: BuildConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    spool: PatternSpool,
    rejects: pd.DataFrame,
) -> None:
    """Write the data files of the layout (everything but DATA.md, the PNG, the manifest)."""

    def rows(frame: pd.DataFrame) -> RowView:
        return RowView(spool, frame["entry_id"], frame.get(DRAW))

    labelled = train[list(layout.TRAIN_LABEL_COLUMNS)]
    _write_parquet(labelled, rows(train), out / layout.TRAIN, config)
    _write_parquet(test[[layout.ID]], rows(test), out / layout.TEST, config)

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
    # Provenance of every row: of test rows for the owner only; of training rows for
    # everyone (which source, which entry, which measured draw), without the paths of
    # the organiser's files.
    with atomic_path(out / layout.TEST_META, mode=PRIVATE_FILE_MODE) as tmp:
        test[meta_columns].to_parquet(tmp, index=False, compression="zstd")
    train_columns = [layout.ID, SOURCE, *(c for c in meta_columns[1:] if c != "source_file"),
                     DRAW]  # fmt: skip
    with atomic_path(out / layout.TRAIN_META) as tmp:
        train[train_columns].to_parquet(tmp, index=False, compression="zstd")
    _write_csv(rejects, out / layout.REJECTS)

