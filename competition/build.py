"""Build a competition on disk: the last stage, which ties the others together.

:func:`build_competition` runs sources -> structures -> labels -> patterns ->
splits and writes the layout of DESIGN.md::

    <out>/manifest.json
    <out>/public/{train.parquet, test.parquet, sample_submission*.csv, DATA.md}
    <out>/private/{solution.csv, train_meta.parquet, test_meta.parquet}
    <out>/reports/{rejects.csv, overview.png}

Every file is written atomically and ``manifest.json`` (with the sha256 of every
other file) is written last, so a folder with a manifest is a complete build.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from competition.cluster import ClusterError, parse_scheduler
from competition.config import BuildConfig
from competition.measured import MeasuredError, MeasuredPatterns, read_measured
from competition.outliers import OUTLIERS, OUTLIERS_PLOT
from competition.pipeline import StructureRecord, run_pipeline
from competition.sources import Rejected, Source
from competition.splits import (
    CELL_COLUMNS,
    balance,
    deduplicate,
    grouped_stratified_split,
    opaque_ids,
)
from competition.summary import BuildSummary
from contract import layout
from contract.io import atomic_path, atomic_write_text
from contract.labels import BRAVAIS_LATTICES, bravais_lattice
from contract.layout import BUILT_FOLDERS, LIVE_FOLDERS, MANIFEST
from contract.references import majority_label
from contract.tasks import LATTICE_TASK, TASK_METADATA_KEY

REJECT_COLUMNS: Final = ("entry_id", "source_file", "stage", "reason", "kept_id")
DRAW: Final = "draw"
"""Column of ``train_meta.parquet``: which measured draw of its structure a row is."""


class BuildError(RuntimeError):
    """The build cannot go on (bad output folder, nothing accepted ...)."""


LAYOUT_FILES: Final = (
    layout.TRAIN, layout.TRAIN_STICKS, layout.TEST,
    *(layout.sample_submission(t) for t in LATTICE_TASK.track_names),
    layout.DATA_CARD, layout.SOLUTION, layout.TRAIN_META, layout.TEST_META,
    layout.REJECTS, layout.OVERVIEW, OUTLIERS, OUTLIERS_PLOT,
)  # fmt: skip
"""Every file a build writes besides ``manifest.json``. Rebuilding under the live
folders of :data:`contract.layout.LIVE_FOLDERS` would mix scores graded on two keys."""
UNFINISHED: Final = ".unfinished-build"
"""The mark of a build whose write phase has begun and not ended: while it is there,
the folder's files are the build's own (an earlier build's being replaced), so any
later build may write over them without ``--force``; the folder has no manifest, so
no grader takes it for a competition."""
# Owner-only modes for the answer key and the provenance that identifies test rows.
PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600


def _check_out_dir(
    out: Path, force: bool = False, files: tuple[str, ...] = LAYOUT_FILES
) -> list[Path]:
    """Refuse an unsuitable output folder; return what a forced rebuild must remove.

    ``files`` are those the build writes (the lattice task's by default).

    Raises
    ------
    BuildError
        If ``out`` is a file (or below one), a non-empty folder that holds no
        earlier build, or an earlier build that is in use (a leaderboard,
        baselines, submissions or files the build did not write) and ``force``
        is not given.
    """
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise BuildError(f"--out {out}: {parent} is a file, not a folder; give a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return []
    if not (out / MANIFEST).is_file() and not (out / UNFINISHED).is_file():
        raise BuildError(
            f"--out {out} is not empty and holds no earlier build (no manifest.json); "
            "choose an empty or new folder so nothing of yours is overwritten"
        )
    stale = _foreign_entries(out, files)
    if stale and not force:
        shown = ", ".join(p.relative_to(out).as_posix() for p in stale[:5])
        more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
        raise BuildError(
            f"--out {out} holds a competition in use ({shown}{more}): a rebuild makes a new "
            "answer key, so stored scores, baselines and files made for the old one would "
            "mix with the new; build into a new folder, or pass --force to delete them "
            "and rebuild"
        )
    return stale


def _foreign_entries(out: Path, files: tuple[str, ...] = LAYOUT_FILES) -> list[Path]:
    """What a rebuild at ``out`` would not write: live folders, added or amended files."""
    found = [out / name for name in LIVE_FOLDERS if (out / name).exists()]
    expected = {MANIFEST, UNFINISHED, *files}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if any(path.is_relative_to(f) for f in found):
            continue
        if path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an interrupted write's leftover: removed by any rebuild
        added_file = not path.is_dir() and relative not in expected
        # Folders beside the build's own; within them, their files count one by one.
        added_folder = path.is_dir() and relative.split("/")[0] not in BUILT_FOLDERS
        if added_file or added_folder:
            found.append(path)
    return found


def begin_writing(out: Path, task: str) -> None:
    """Mark ``out`` as a build being written (:data:`UNFINISHED`), then drop its manifest.

    From here until :func:`end_writing`, an interruption leaves a folder that the
    same command (or any build) resumes: "run it again" is true at every moment.
    """
    note = {"task": task, "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(out / UNFINISHED, json.dumps(note) + "\n")
    # An earlier build's manifest goes first: if writing fails half-way, the folder
    # has no manifest and so is not taken for a complete build.
    (out / MANIFEST).unlink(missing_ok=True)


def end_writing(out: Path) -> None:
    """The build at ``out`` is complete (its manifest is written): drop the mark."""
    (out / UNFINISHED).unlink(missing_ok=True)


def _remove(paths: list[Path], out: Path) -> None:
    """Delete ``paths``, then the folders this leaves empty inside the build's folders."""
    built = {out / name for name in BUILT_FOLDERS}
    parents = set()
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        parents.update(p for p in path.parents if any(p.is_relative_to(b) for b in built))
    for folder in sorted(parents - built, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder while a build writes to it.

    Two builds into one folder would interleave their files; the second is
    refused at once. The lock is the kernel's (``flock`` on the folder itself),
    so it leaves no file behind and dies with the process that held it.
    """
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(
                f"another build is writing to {out} right now; wait for it to finish, "
                "or build into another folder"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _check_scheduler(scheduler: str | None, workers: int | None) -> None:
    """Refuse a bad ``--scheduler`` before any work (see :mod:`competition.cluster`)."""
    if scheduler is None:
        return
    if workers is not None:
        raise BuildError(
            "--workers counts local processes and --scheduler names a dask cluster; give one"
        )
    try:
        parse_scheduler(scheduler)
    except ClusterError as err:
        raise BuildError(str(err)) from None


def _rejects_frame(rejected: list[Rejected]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(r) for r in rejected], columns=list(REJECT_COLUMNS))
    return frame.sort_values(["entry_id", "stage"], kind="stable").reset_index(drop=True)


def _meta_frame(records: list[StructureRecord]) -> pd.DataFrame:
    rows = [
        {
            "entry_id": r.entry_id,
            "cod_id": r.cod_id,
            "source_file": r.source_file,
            "formula": r.formula,
            "spacegroup_number": r.spacegroup_number,
            "declared_spacegroup": r.declared_spacegroup,
            "bravais_lattice": r.bravais_lattice,
            "n_sites": r.n_sites,
            "symprec_used": r.symprec_used,
            **dict(zip(CELL_COLUMNS, r.conventional_cell, strict=True)),
        }
        for r in records
    ]
    meta = pd.DataFrame(rows)
    meta["cod_id"] = meta["cod_id"].astype("Int64")
    meta["declared_spacegroup"] = meta["declared_spacegroup"].astype("Int64")
    return meta


def label_agreement(meta: pd.DataFrame) -> dict[str, Any]:
    """How often spglib's space group equals the one the CIF declares.

    Returns counts and the rate over the entries that declare a space group, and
    the same for the Bravais lattice implied by each.
    """
    declared = meta.dropna(subset=["declared_spacegroup"])
    n = len(declared)
    same_group = int((declared["declared_spacegroup"] == declared["spacegroup_number"]).sum())
    same_lattice = int(
        sum(
            bravais_lattice(int(d)) == found
            for d, found in zip(
                declared["declared_spacegroup"], declared["bravais_lattice"], strict=True
            )
        )
    )
    # Which tolerance labelled how many entries (several only with a symprec ladder).
    used = meta["symprec_used"].dropna() if "symprec_used" in meta else pd.Series([])
    by_symprec = {f"{t:g}": int(n) for t, n in sorted(Counter(used).items())}
    return {
        "n_declared": n,
        "n_spacegroup_agree": same_group,
        "spacegroup_agreement": round(same_group / n, 4) if n else None,
        "n_lattice_agree": same_lattice,
        "lattice_agreement": round(same_lattice / n, 4) if n else None,
        "labelled_at_symprec": by_symprec,
    }


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


def build_competition(
    source: Source,
    out: str | Path,
    config: BuildConfig | None = None,
    *,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    force: bool = False,
    measured_test: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    train_extra: Source | None = None,
) -> BuildSummary:
    """Build a competition from a source of structures and write it to ``out``.

    Parameters
    ----------
    source : Source
        Where the structures come from (see :mod:`competition.sources`).
    out : path
        Output folder; created if missing. An existing folder must be empty or
        hold an earlier build, which is overwritten file by file.
    config : BuildConfig, optional
        Grid, tolerances, caps, fractions and seed; default ``BuildConfig()``.
    workers : int, optional
        Worker processes; default all available CPUs.
    scheduler : str, optional
        Run the per-structure work on a dask cluster instead: ``local:N`` or a
        scheduler address such as ``tcp://10.0.0.5:8786``
        (:mod:`competition.cluster`). The output is the same, byte for byte.
    cache_dir : Path, optional
        Folder of the resumable per-structure cache; ``None`` disables it.
    progress : bool
        Show progress bars.
    force : bool
        Rebuild over a competition in use: its leaderboard, baselines,
        submissions and any file the earlier build did not write are deleted
        (only once the new build is ready to be written).
    measured_test : path, optional
        A folder of real measurements and their ``labels.csv`` (see
        :mod:`competition.measured`): they join the test set as the Measured
        portion, scored apart and hidden until the competition is closed.
    train_extra : Source, optional
        More structures for the *training* split only, such as pyxtal crystals of
        the rare lattices (:func:`competition.sources.generated_source`): computed
        like the others, never balanced away, never in the test set, and dropped
        where their compound (formula and space group) is a test compound.

    Returns
    -------
    BuildSummary

    Raises
    ------
    BuildError
        If the output folder is unsuitable, is in use by another build or a
        running course, if the cache is locked, if the accepted structures
        cannot make a competition, or if ``measured_test`` holds no usable
        measurement.
    """
    config = config or BuildConfig()
    out = Path(out)
    _check_out_dir(out, force)
    _check_scheduler(scheduler, workers)
    measured = None
    if measured_test is not None:
        # Read first: a folder that cannot be used stops the build before hours of work.
        try:
            measured = read_measured(measured_test, config.pattern.to_grid())
        except MeasuredError as err:
            raise BuildError(f"--measured-test: {err}") from None
    with _exclusive(out):
        stale = _check_out_dir(out, force)  # again: the folder may have changed meanwhile
        start = time.perf_counter()
        cache_path = None if cache_dir is None else Path(cache_dir) / "results.sqlite"
        try:
            results, n_cached = run_pipeline(
                source.entries(),
                config,
                workers=workers,
                cache_path=cache_path,
                total=source.size,
                progress=progress,
                scheduler=scheduler,
            )
        except ClusterError as err:
            raise BuildError(str(err)) from None
        except sqlite3.OperationalError as err:
            raise BuildError(
                f"the result cache {cache_path} cannot be used ({err}): another build has held "
                "it for minutes; wait for it, or use --cache-dir elsewhere or --no-cache"
            ) from None
        extra = None
        if train_extra is not None:
            extra, n_extra_cached = run_pipeline(
                train_extra.entries(), config, workers=workers, cache_path=cache_path,
                total=train_extra.size, progress=progress, scheduler=scheduler,
            )  # fmt: skip
            n_cached += n_extra_cached
        structures_seconds = time.perf_counter() - start
        summary = assemble_competition(
            results, source, out, config, stale=stale, measured=measured,
            train_extra=extra, train_extra_source=train_extra,
        )  # fmt: skip
    summary.n_cached = n_cached
    summary.seconds = {"structures": structures_seconds, **summary.seconds}
    return summary


def assemble_competition(
    results: list[StructureRecord | Rejected],
    source: Source,
    out: Path,
    config: BuildConfig,
    *,
    stale: list[Path] | None = None,
    measured: MeasuredPatterns | None = None,
    train_extra: list[StructureRecord | Rejected] | None = None,
    train_extra_source: Source | None = None,
) -> BuildSummary:
    """Deduplicate, balance, split and write per-structure results to ``out``.

    This is the part of :func:`build_competition` after the per-structure work;
    it is deterministic given ``results`` (in entry-id order) and ``config.seed``.

    ``stale`` lists what a forced rebuild deletes (see :func:`build_competition`);
    ``measured`` real measurements that make the Measured portion of the test set;
    ``train_extra`` the per-structure results of ``train_extra_source``, added to the
    training split only (see :func:`build_competition`).

    Raises
    ------
    BuildError
        If no structure was accepted, or the accepted ones cannot fill a
        training set and both test portions.
    """
    seconds: dict[str, float] = {}
    records = [r for r in results if isinstance(r, StructureRecord)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    rejected += [
        Rejected(
            f"{r.entry_id}#{block}", r.source_file, "parse",
            f"data block {block!r} not used: one structure per file is taken "
            "(the first block with a structure)", r.entry_id,
        )
        for r in records
        for block in r.extra_blocks
    ]  # fmt: skip
    if not records:
        reasons = Counter(r.reason for r in rejected).most_common(3)
        raise BuildError(
            f"no structure was accepted out of {len(results)}; commonest reasons: "
            + "; ".join(f"{reason} ({n})" for reason, n in reasons)
        )

    start = time.perf_counter()
    patterns = {r.entry_id: r.pattern for r in records}
    sticks = {r.entry_id: r.sticks for r in records}
    extra_draws = {r.entry_id: r.extra_draws for r in records if r.extra_draws is not None}
    meta = _meta_frame(records)
    agreement = label_agreement(meta)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)]
    rng_balance, rng_split, rng_public, rng_ids = streams

    meta, repeats = deduplicate(meta, config.dedup_length_rtol, config.dedup_angle_atol)
    rejected += [
        Rejected(
            row.entry_id, row.source_file, "dedup",
            f"repeat of {row.kept_id}: same formula {row.formula}, space group "
            f"{row.spacegroup_number} and conventional cell", row.kept_id,
        )
        for row in repeats.itertuples()
    ]  # fmt: skip
    meta, capped = balance(meta, config.per_class, rng_balance)
    rejected += [
        Rejected(
            row.entry_id, row.source_file, "balance",
            f"not drawn: {row.bravais_lattice} is capped at --per-class {config.per_class}",
        )
        for row in capped.itertuples()
    ]  # fmt: skip

    meta = meta.reset_index(drop=True)
    in_test = grouped_stratified_split(meta, config.test_fraction, rng_split)
    train = meta[~in_test].reset_index(drop=True)
    test = meta[in_test].reset_index(drop=True)
    in_public = grouped_stratified_split(test, config.public_fraction, rng_public)
    test[layout.USAGE] = np.where(in_public, *layout.PORTIONS)
    _check_makes_a_competition(train, test, len(records))
    generated = None
    if train_extra is not None:
        extra, extra_rejected = _training_extras(train_extra, test)
        rejected += extra_rejected
        patterns |= {r.entry_id: r.pattern for r in extra}
        sticks |= {r.entry_id: r.sticks for r in extra}
        extra_draws |= {r.entry_id: r.extra_draws for r in extra if r.extra_draws is not None}
        if extra:
            train = pd.concat([train, _meta_frame(extra)], ignore_index=True)
        generated = {
            "source": train_extra_source.description if train_extra_source else None,
            "n": len(extra),
            "per_lattice": _counts(_meta_frame(extra)) if extra else {},
        }
    if measured is not None:
        rejected += measured.rejected
        patterns |= dict(zip(measured.entry_ids(), measured.X, strict=True))
        test = pd.concat([test, _measured_frame(measured)], ignore_index=True)
    # Several measured draws of a training structure are rows of their own.
    train = train.loc[train.index.repeat(config.draws)].reset_index(drop=True)
    train[DRAW] = np.tile(np.arange(config.draws), len(train) // config.draws)
    train["id"] = opaque_ids(len(train), "r", rng_ids)
    # One draw for every test row: a measured row's id is like any other's.
    test["id"] = opaque_ids(len(test), "t", rng_ids)
    train = train.sort_values("id").reset_index(drop=True)
    test = test.sort_values("id").reset_index(drop=True)
    seconds["split"] = time.perf_counter() - start

    start = time.perf_counter()
    # Anything that fails before this line leaves an earlier build untouched.
    begin_writing(out, LATTICE_TASK.name)
    # A forced rebuild: nothing of the old competition may survive beside the new key,
    # and files a crashed build left (temporary names) go too.
    _remove([*(stale or []), *_leftovers(out)], out)
    rejects = _rejects_frame(rejected)
    counts = {
        "train": _counts(train[train[DRAW] == 0]),
        "public": _counts(test[test[layout.USAGE] == layout.PUBLIC_PORTION]),
        "private": _counts(test[test[layout.USAGE] == layout.PRIVATE_PORTION]),
    }
    if measured is not None:
        counts[layout.MEASURED_SPLIT] = _counts(test[test[layout.USAGE] == layout.MEASURED_PORTION])
    _write_outputs(out, config, train, test, patterns, rejects, extra_draws)
    _write_sticks(train, sticks, out / layout.TRAIN_STICKS)
    summary = BuildSummary(
        out=out,
        n_input=len(results),
        n_accepted=len(records),
        counts=counts,
        rejected_by_stage=dict(sorted(Counter(rejects["stage"]).items())),
        label_agreement=agreement,
        seconds=seconds,
        measured_test=None if measured is None else measured.description,
        train_generated=generated,
    )
    from competition.manifest import write_manifest
    from competition.report import write_data_card, write_overview_figure

    write_data_card(out / layout.DATA_CARD, config, summary, source.kind)
    write_overview_figure(
        out / layout.OVERVIEW, summary, train, patterns, config.pattern.grid()
    )
    _screen_outliers(out, train, test, patterns, config)
    write_manifest(out, config, source, summary)
    end_writing(out)
    summary.seconds["write"] = time.perf_counter() - start
    return summary


def _training_extras(
    results: list[StructureRecord | Rejected], test: pd.DataFrame
) -> tuple[list[StructureRecord], list[Rejected]]:
    """The extra training structures that may join: none shares a test compound."""
    rejected = [r for r in results if isinstance(r, Rejected)]
    records = [r for r in results if isinstance(r, StructureRecord)]
    if not records:
        return [], rejected
    keys = layout.compound_key(
        pd.Series([r.formula for r in records]), pd.Series([r.spacegroup_number for r in records])
    )
    in_test = set(layout.compound_key(test[layout.FORMULA], test[layout.SPACEGROUP]))
    kept = []
    for record, key in zip(records, keys, strict=True):
        if key in in_test:
            rejected.append(Rejected(
                record.entry_id, record.source_file, "dedup",
                f"extra training structure left out: {record.formula} in space group "
                f"{record.spacegroup_number} is a test compound",
            ))  # fmt: skip
        else:
            kept.append(record)
    return kept, rejected


def _screen_outliers(out: Path, train: pd.DataFrame, test: pd.DataFrame,
                     patterns: dict[str, np.ndarray], config: BuildConfig) -> None:  # fmt: skip
    """``reports/outliers.csv`` and its plot: each structure once (training: its first draw)."""
    from competition.outliers import write_outlier_report

    columns = [layout.ID, "split", "entry_id", layout.FORMULA, layout.SPACEGROUP, layout.LATTICE]
    first = train[train[DRAW] == 0].assign(split="train")
    rows = pd.concat([first, test.assign(split=test[layout.USAGE])], ignore_index=True)[columns]
    X = np.stack([patterns[entry] for entry in rows["entry_id"]])
    write_outlier_report(out, rows, X, config.pattern.grid(), config.seed)


def _measured_frame(measured: MeasuredPatterns) -> pd.DataFrame:
    """Test rows of the Measured portion, with the columns of the structures' rows."""
    n = len(measured)
    return pd.DataFrame({
        "entry_id": measured.entry_ids(),
        "cod_id": pd.array([pd.NA] * n, dtype="Int64"),
        "source_file": measured.files,
        "formula": [""] * n,
        "spacegroup_number": measured.spacegroup_number,
        "declared_spacegroup": pd.array(measured.spacegroup_number, dtype="Int64"),
        "bravais_lattice": measured.bravais_lattice,
        "n_sites": pd.array([pd.NA] * n, dtype="Int64"),
        "symprec_used": np.full(n, np.nan),
        **{column: np.full(n, np.nan) for column in CELL_COLUMNS},
        layout.USAGE: [layout.MEASURED_PORTION] * n,
    })  # fmt: skip


def _check_makes_a_competition(train: pd.DataFrame, test: pd.DataFrame, n_kept: int) -> None:
    """Refuse a split that has no training rows or leaves a test portion empty."""
    portions = {
        "training": len(train),
        **{f"{portion} test": int((test[layout.USAGE] == portion).sum())
           for portion in layout.PORTIONS},
    }
    empty = [name for name, n in portions.items() if n == 0]
    if empty:
        raise BuildError(
            f"these structures cannot make a competition: {n_kept} kept after removing "
            f"repeats and capping, which leaves the {' and '.join(empty)} set(s) empty "
            f"({', '.join(f'{k} {v}' for k, v in portions.items())}); add structures "
            "(at least a few per lattice) or change --test-fraction / --public-fraction"
        )


def _leftovers(out: Path) -> list[Path]:
    """Temporary files that an interrupted write left in the build's folders."""
    return [p for folder in BUILT_FOLDERS for p in (out / folder).glob(".*.tmp")]


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
