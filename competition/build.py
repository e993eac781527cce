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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from competition.config import SCHEMA_METADATA_KEY, BuildConfig
from competition.io import atomic_path, atomic_write_text
from competition.lattices import BRAVAIS_LATTICES, bravais_lattice
from competition.manifest import BUILT_FOLDERS, MANIFEST_NAME
from competition.pipeline import StructureRecord, run_pipeline
from competition.sources import Rejected, Source
from competition.splits import (
    CELL_COLUMNS,
    balance,
    deduplicate,
    grouped_stratified_split,
    opaque_ids,
)

REJECT_COLUMNS: Final = ("entry_id", "source_file", "stage", "reason", "kept_id")
PORTIONS: Final = ("train", "public", "private")


class BuildError(RuntimeError):
    """The build cannot go on (bad output folder, nothing accepted ...)."""


@dataclass
class BuildSummary:
    """What a build produced, for the command line and for tests."""

    out: Path
    n_input: int
    n_accepted: int
    counts: dict[str, dict[str, int]]
    rejected_by_stage: dict[str, int]
    label_agreement: dict[str, Any]
    n_cached: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def class_table(self) -> pd.DataFrame:
        """Structures per lattice and portion, with totals (rows in canonical order)."""
        table = pd.DataFrame(self.counts).reindex(BRAVAIS_LATTICES).fillna(0).astype(int)
        table = table.reindex(columns=list(PORTIONS), fill_value=0)
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
        return table


LIVE_FOLDERS: Final = ("leaderboard", "baselines", "submissions")
"""Folders that the grader and the baselines add to a built competition: a running
course. Rebuilding under them would mix scores graded on two answer keys."""
LAYOUT_FILES: Final = (
    "public/train.parquet", "public/test.parquet", "public/sample_submission.csv",
    "public/sample_submission_spacegroup.csv", "public/DATA.md",
    "private/solution.csv", "private/train_meta.parquet", "private/test_meta.parquet",
    "reports/rejects.csv", "reports/overview.png",
)  # fmt: skip
"""Every file a build writes besides ``manifest.json``."""
PRIVATE_FOLDER: Final = "private"
# Owner-only modes for the answer key and the provenance that identifies test rows.
PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600


def _check_out_dir(out: Path, force: bool = False) -> list[Path]:
    """Refuse an unsuitable output folder; return what a forced rebuild must remove.

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
    if not (out / MANIFEST_NAME).is_file():
        raise BuildError(
            f"--out {out} is not empty and holds no earlier build (no manifest.json); "
            "choose an empty or new folder so nothing of yours is overwritten"
        )
    stale = _foreign_entries(out)
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


def _foreign_entries(out: Path) -> list[Path]:
    """What a rebuild at ``out`` would not write: live folders, added or amended files."""
    found = [out / name for name in LIVE_FOLDERS if (out / name).exists()]
    expected = {MANIFEST_NAME, *LAYOUT_FILES}
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
    grid = json.dumps(config.pattern.describe(), sort_keys=True).encode()
    table = table.replace_schema_metadata({SCHEMA_METADATA_KEY: grid})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


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
    cache_dir : Path, optional
        Folder of the resumable per-structure cache; ``None`` disables it.
    progress : bool
        Show progress bars.
    force : bool
        Rebuild over a competition in use: its leaderboard, baselines,
        submissions and any file the earlier build did not write are deleted
        (only once the new build is ready to be written).

    Returns
    -------
    BuildSummary

    Raises
    ------
    BuildError
        If the output folder is unsuitable, is in use by another build or a
        running course, if the cache is locked, or if the accepted structures
        cannot make a competition.
    """
    config = config or BuildConfig()
    out = Path(out)
    _check_out_dir(out, force)
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
            )
        except sqlite3.OperationalError as err:
            raise BuildError(
                f"the result cache {cache_path} cannot be used ({err}): another build has held "
                "it for minutes; wait for it, or use --cache-dir elsewhere or --no-cache"
            ) from None
        structures_seconds = time.perf_counter() - start
        summary = assemble_competition(results, source, out, config, stale=stale)
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
) -> BuildSummary:
    """Deduplicate, balance, split and write per-structure results to ``out``.

    This is the part of :func:`build_competition` after the per-structure work;
    it is deterministic given ``results`` (in entry-id order) and ``config.seed``.

    ``stale`` lists what a forced rebuild deletes (see :func:`build_competition`).

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
    test["Usage"] = np.where(
        grouped_stratified_split(test, config.public_fraction, rng_public), "Public", "Private"
    )
    train["id"] = opaque_ids(len(train), "r", rng_ids)
    test["id"] = opaque_ids(len(test), "t", rng_ids)
    train = train.sort_values("id").reset_index(drop=True)
    test = test.sort_values("id").reset_index(drop=True)
    _check_makes_a_competition(train, test, len(records))
    seconds["split"] = time.perf_counter() - start

    start = time.perf_counter()
    # An earlier build's manifest goes first: if writing fails half-way, the folder
    # has no manifest and so is not taken for a complete build. (Anything that fails
    # before this line leaves the earlier build untouched.)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    # A forced rebuild: nothing of the old competition may survive beside the new key,
    # and files a crashed build left (temporary names) go too.
    _remove([*(stale or []), *_leftovers(out)], out)
    rejects = _rejects_frame(rejected)
    counts = {
        "train": _counts(train),
        "public": _counts(test[test["Usage"] == "Public"]),
        "private": _counts(test[test["Usage"] == "Private"]),
    }
    _write_outputs(out, config, train, test, patterns, rejects)
    summary = BuildSummary(
        out=out,
        n_input=len(results),
        n_accepted=len(records),
        counts=counts,
        rejected_by_stage=dict(sorted(Counter(rejects["stage"]).items())),
        label_agreement=agreement,
        seconds=seconds,
    )
    from competition.manifest import write_manifest
    from competition.report import write_data_card, write_overview_figure

    write_data_card(out / "public" / "DATA.md", config, summary, source.kind)
    write_overview_figure(
        out / "reports" / "overview.png", summary, train, patterns, config.pattern.grid()
    )
    write_manifest(out, config, source, summary)
    summary.seconds["write"] = time.perf_counter() - start
    return summary


def _check_makes_a_competition(train: pd.DataFrame, test: pd.DataFrame, n_kept: int) -> None:
    """Refuse a split that has no training rows or leaves a test portion empty."""
    portions = {
        "training": len(train),
        "Public test": int((test["Usage"] == "Public").sum()),
        "Private test": int((test["Usage"] == "Private").sum()),
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
) -> None:
    """Write the data files of the layout (everything but DATA.md, the PNG, the manifest)."""
    public, private, reports = out / "public", out / "private", out / "reports"

    def stack(frame: pd.DataFrame) -> np.ndarray:
        empty = np.empty((0, config.pattern.n_points), dtype=np.float32)
        return np.stack([patterns[e] for e in frame["entry_id"]]) if len(frame) else empty

    train_columns = ["id", "cod_id", "formula", "spacegroup_number", "bravais_lattice"]
    _write_parquet(train[train_columns], stack(train), public / "train.parquet", config)
    _write_parquet(test[["id"]], stack(test), public / "test.parquet", config)

    # The sample submissions predict the commonest training label for every row:
    # a valid file to start from, computed from public data only.
    from competition.report import majority_lattice

    top_lattice = majority_lattice(np.array(list(_counts(train).values())))
    top_group = int(train["spacegroup_number"].mode().sort_values().iloc[0])
    _write_csv(test[["id"]].assign(bravais_lattice=top_lattice), public / "sample_submission.csv")
    _write_csv(
        test[["id"]].assign(spacegroup_number=top_group),
        public / "sample_submission_spacegroup.csv",
    )

    # The answer key and the provenance of test rows: for the owner only.
    private.mkdir(parents=True, exist_ok=True)
    os.chmod(private, PRIVATE_DIR_MODE)
    solution = test[["id", "bravais_lattice", "spacegroup_number", "Usage"]]
    _write_csv(solution, private / "solution.csv", mode=PRIVATE_FILE_MODE)
    meta_columns = [
        "id", "cod_id", "formula", "source_file", "entry_id",
        "declared_spacegroup", "n_sites", "symprec_used", *CELL_COLUMNS,
    ]  # fmt: skip
    # Provenance of every row, for organisers: where each structure came from.
    for name, frame in [("train_meta.parquet", train), ("test_meta.parquet", test)]:
        with atomic_path(private / name, mode=PRIVATE_FILE_MODE) as tmp:
            frame[meta_columns].to_parquet(tmp, index=False, compression="zstd")
    _write_csv(rejects, reports / "rejects.csv")
