"""Build a competition on disk: the last stage, which ties the others together.

:func:`build_competition` runs sources -> structures -> labels -> patterns ->
splits and writes the layout of DESIGN.md::

    <out>/manifest.json
    <out>/public/{train.parquet, train_sticks.parquet, train_meta.parquet, test.parquet,
                  sample_submission*.csv, DATA.md}
    <out>/private/{solution.csv, test_meta.parquet}
    <out>/reports/{rejects.csv, overview.png}

Every file is written atomically and ``manifest.json`` (with the sha256 of every
other file) is written last, so a folder with a manifest is a complete build.

Over 400 lines: :func:`assemble_competition` is the build's one sequence after the
per-structure work (dedup, balance, split, extras, measured rows, ids, write), read
top to bottom; the folder and the files are :mod:`competition.outdir` and
:mod:`competition.lattice.write`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from competition.config import SOURCE_SYMPREC, BuildConfig
from competition.lattice.cluster import ClusterError, parse_scheduler
from competition.lattice.outliers import OUTLIERS, OUTLIERS_PLOT
from competition.lattice.pipeline import run_pipeline
from competition.lattice.splits import (
    CELL_COLUMNS,
    balance,
    deduplicate,
    grouped_stratified_split,
    measured_public,
    opaque_ids,
    wanted_in_public,
    wanted_in_test,
)
from competition.lattice.spool import BLOCK, PatternSpool, RowView
from competition.lattice.summary import BuildSummary
from competition.lattice.worker import StructureRecord
from competition.lattice.write import (
    DRAW,
    SOURCE,
    _counts,
    _rejects_frame,
    _write_outputs,
    _write_sticks,
)
from competition.outdir import (
    BuildError,
    begin_writing,
    check_out_dir,
    end_writing,
    exclusive,
    leftovers,
    remove,
)
from competition.sources.catalog import Rejected, Source, SourceKind
from competition.sources.measured import MeasuredError, MeasuredPatterns, read_measured
from xrd_bravais.contract import layout
from xrd_bravais.contract.labels import bravais_lattice
from xrd_bravais.contract.layout import LATTICE
from xrd_bravais.contract.tasks import LATTICE_TASK

LAYOUT_FILES: Final = (
    layout.TRAIN, layout.TRAIN_STICKS, layout.TEST,
    *(layout.sample_submission(t) for t in LATTICE_TASK.track_names),
    layout.DATA_CARD, layout.SOLUTION, layout.TRAIN_META, layout.TEST_META,
    layout.REJECTS, layout.OVERVIEW, OUTLIERS, OUTLIERS_PLOT,
    layout.PUBLIC_OVERVIEW, layout.MEASURED_EXAMPLE,
)  # fmt: skip
"""Every file a build writes besides ``manifest.json``. Rebuilding under the live
folders of :data:`xrd_bravais.contract.layout.LIVE_FOLDERS` would mix scores graded on two keys."""

def _check_scheduler(scheduler: str | None, workers: int | None) -> None:
    """Refuse a bad ``--scheduler`` before any work (see :mod:`competition.lattice.cluster`)."""
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
    train_extra: Source | Sequence[Source] | None = None,
) -> BuildSummary:
    """Build a competition from a source of structures and write it to ``out``.

    Parameters
    ----------
    source : Source
        Where the structures come from (see :mod:`competition.sources.catalog`).
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
        (:mod:`competition.lattice.cluster`). The output is the same, byte for byte.
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
        :mod:`competition.sources.measured`): they join the test set as the Measured
        portion, scored apart and hidden until the competition is closed.
    train_extra : Source or list of Source, optional
        More structures for the *training* split only, such as pyxtal crystals of
        the rare lattices (:func:`competition.sources.catalog.rare_lattice_source`) or
        an archive of computed structures: computed like the others (each at its own
        kind's tolerance, :func:`competition.config.symprec_for`), never in the test
        set, dropped where their compound (formula and space group) is a test
        compound or they repeat a structure kept before them, and capped so that a
        lattice's training rows stay within ``config.per_class``.

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
    check_out_dir(out, LAYOUT_FILES, force)
    _check_scheduler(scheduler, workers)
    measured = None
    if measured_test is None and config.measured_public_fraction > 0:
        raise BuildError("--measured-public-fraction puts real measurements on the Public "
                         "board: give them with --measured-test DIR")  # fmt: skip
    if measured_test is not None:
        # Read first: a folder that cannot be used stops the build before hours of work.
        try:
            measured = read_measured(measured_test, config.pattern.to_grid())
        except MeasuredError as err:
            raise BuildError(f"--measured-test: {err}") from None
    with exclusive(out), PatternSpool(config.pattern.n_points) as spool:
        # Again: the folder may have changed meanwhile.
        stale = check_out_dir(out, LAYOUT_FILES, force)
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
                spool=spool,
            )
        except ClusterError as err:
            raise BuildError(str(err)) from None
        except sqlite3.OperationalError as err:
            raise BuildError(
                f"the result cache {cache_path} cannot be used ({err}): another build has held "
                "it for minutes; wait for it, or use --cache-dir elsewhere or --no-cache"
            ) from None
        extras = _extra_sources(train_extra)
        extra_results = []
        for extra in extras:
            tolerance = SOURCE_SYMPREC.get(str(extra.kind), config.symprec)
            results_x, n_extra_cached = run_pipeline(
                extra.entries(), config.with_(symprec=tolerance), workers=workers,
                cache_path=cache_path, total=extra.size, progress=progress,
                scheduler=scheduler, spool=spool,
            )  # fmt: skip
            extra_results.append((extra, results_x))
            n_cached += n_extra_cached
        # A source cut short (a truncated archive): what it gave is cached, then stop.
        for read in (source, *extras):
            if (problem := read.failure()) is not None:
                raise BuildError(problem)
        structures_seconds = time.perf_counter() - start
        summary = assemble_competition(
            results, source, out, config, stale=stale, measured=measured,
            train_extra=extra_results, spool=spool,
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
    train_extra: Sequence[tuple[Source, list[StructureRecord | Rejected]]] = (),
    spool: PatternSpool | None = None,
) -> BuildSummary:
    """Deduplicate, balance, split and write per-structure results to ``out``.

    This is the part of :func:`build_competition` after the per-structure work;
    it is deterministic given ``results`` (in entry-id order) and ``config.seed``.

    ``stale`` lists what a forced rebuild deletes (see :func:`build_competition`);
    ``measured`` real measurements that make the Measured portion of the test set;
    ``train_extra`` more sources and their per-structure results, added to the
    training split only, in order (see :func:`build_competition`); ``spool`` where the
    records' patterns were kept as they arrived (default: a new one, filled here from
    the records).

    Raises
    ------
    BuildError
        If no structure was accepted, or the accepted ones cannot fill a
        training set and both test portions.
    """
    own = PatternSpool(config.pattern.n_points) if spool is None else contextlib.nullcontext(spool)
    with own as kept:
        return _assemble(
            results, source, out, config, stale=stale, measured=measured,
            train_extra=train_extra, spool=kept,
        )  # fmt: skip


def _assemble(
    results: list[StructureRecord | Rejected],
    source: Source,
    out: Path,
    config: BuildConfig,
    *,
    stale: list[Path] | None,
    measured: MeasuredPatterns | None,
    train_extra: Sequence[tuple[Source, list[StructureRecord | Rejected]]],
    spool: PatternSpool,
) -> BuildSummary:
    """:func:`assemble_competition` with its spool."""
    seconds: dict[str, float] = {}
    results = [spool.keep(r) if isinstance(r, StructureRecord) else r for r in results]
    train_extra = [(extra, [spool.keep(r) if isinstance(r, StructureRecord) else r
                            for r in found]) for extra, found in train_extra]  # fmt: skip
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
    meta = _meta_frame(records).assign(**{SOURCE: source.label})
    agreement = label_agreement(meta)
    # A fifth stream leaves the first four as they were (children depend on their index).
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5)]
    rng_balance, rng_split, rng_public, rng_ids, rng_measured = streams

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
    minimum = config.min_test_per_lattice
    in_test = grouped_stratified_split(
        meta, config.test_fraction, rng_split,
        wanted_in_test(config.test_fraction, minimum, _trained_elsewhere(train_extra, minimum)),
    )  # fmt: skip
    train = meta[~in_test].reset_index(drop=True)
    test = meta[in_test].reset_index(drop=True)
    in_public = grouped_stratified_split(
        test, config.public_fraction, rng_public, wanted_in_public(config.public_fraction, minimum)
    )
    test[layout.USAGE] = np.where(in_public, *layout.PORTIONS)
    train, extra_rejected, added = _add_training_extras(train, test, train_extra, config,
                                                        rng_balance)  # fmt: skip
    rejected += extra_rejected
    generated = next((a for a in added if a["kind"] == "generated"), None)
    _check_makes_a_competition(train, test, len(records))
    train, near = _drop_near_copies(train, test, spool, config)
    rejected += near
    if measured is not None:
        train, shared = _drop_measured_compounds(train, measured)
        rejected += shared
        rejected += measured.rejected
        for entry, row in zip(measured.entry_ids(), measured.X, strict=True):
            spool.add(entry, row)
        shown = measured_public(measured.bravais_lattice, config.measured_public_fraction,
                                rng_measured)  # fmt: skip
        test = pd.concat([test, _measured_frame(measured, shown)], ignore_index=True)
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
    remove([*(stale or []), *leftovers(out)], out)
    rejects = _rejects_frame(rejected)
    counts = {
        "train": _counts(train[train[DRAW] == 0]),
        "public": _counts(test[test[layout.USAGE] == layout.PUBLIC_PORTION]),
        "private": _counts(test[test[layout.USAGE] == layout.PRIVATE_PORTION]),
    }
    if measured is not None:
        real = test[layout.USAGE].isin([layout.MEASURED_PORTION, layout.MEASURED_PUBLIC_PORTION])
        counts[layout.MEASURED_SPLIT] = _counts(test[real])
        if (test[layout.USAGE] == layout.MEASURED_PUBLIC_PORTION).any():
            counts[layout.MEASURED_PUBLIC_SPLIT] = _counts(
                test[test[layout.USAGE] == layout.MEASURED_PUBLIC_PORTION])
    _write_outputs(out, config, train, test, spool, rejects)
    _write_sticks(train, spool, out / layout.TRAIN_STICKS)
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
        train_extra=[a for a in added if a["kind"] != "generated"],
    )
    from competition.lattice.report import write_data_card, write_overview_figure
    from competition.manifest import write_manifest

    write_data_card(out / layout.DATA_CARD, config, summary, source.kind, source.description)
    write_overview_figure(
        out / layout.OVERVIEW, summary, train, spool, config.pattern.grid()
    )
    _write_public_figures(out, config, train, spool, measured)
    _screen_outliers(out, train, test, spool, config)
    write_manifest(out, config, source, summary)
    end_writing(out)
    summary.seconds["write"] = time.perf_counter() - start
    return summary


def _write_public_figures(
    out: Path, config: BuildConfig, train: pd.DataFrame, spool: PatternSpool,
    measured: MeasuredPatterns | None,
) -> None:
    """The students' overview, and with real measurements the organisers' example of one."""
    from competition.lattice.example import choose_example
    from competition.lattice.report import write_measured_example, write_public_overview

    write_public_overview(out / layout.PUBLIC_OVERVIEW, train, spool, config.pattern.grid())
    example = None if measured is None else choose_example(
        measured, train[train[DRAW] == 0], spool, config.pattern.to_grid(), config.realism,
        config.seed,
    )  # fmt: skip
    if example is None:  # a rebuild without measurements keeps no earlier example
        (out / layout.MEASURED_EXAMPLE).unlink(missing_ok=True)
    else:
        write_measured_example(out / layout.MEASURED_EXAMPLE, example)


def _trained_elsewhere(
    extras: Sequence[tuple[Source, list[StructureRecord | Rejected]]], minimum: int
) -> frozenset[str]:
    """Lattices of which the extra sources accepted at least ``2 * minimum`` structures.

    Those may give all their main-source structures to the test set: the extras
    train them (see :func:`competition.lattice.splits.wanted_in_test`).
    """
    counts = Counter(r.bravais_lattice for _, results in extras for r in results
                     if isinstance(r, StructureRecord))  # fmt: skip
    return frozenset(lattice for lattice, n in counts.items() if n >= max(2 * minimum, 1))


def _extra_sources(train_extra: Source | Sequence[Source] | None) -> list[Source]:
    """The extra training sources as a list, each with ids of its own.

    Generated crystals keep their ``train-generated:`` ids; any other source's ids
    get ``train-extra:`` (``train-extra2:`` ... for the second and later), so two
    archives holding a ``1000000.cif`` each stay two entries.
    """
    if train_extra is None:
        return []
    extras = [train_extra] if isinstance(train_extra, Source) else list(train_extra)
    named = []
    for k, extra in enumerate(extras):
        if extra.kind == SourceKind.generated:
            named.append(extra)
        else:
            named.append(extra.prefixed(f"{layout.EXTRA_ENTRY_PREFIX}{k + 1 if k else ''}"))
    return named


def _add_training_extras(
    train: pd.DataFrame,
    test: pd.DataFrame,
    extras: Sequence[tuple[Source, list[StructureRecord | Rejected]]],
    config: BuildConfig,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, list[Rejected], list[dict[str, Any]]]:
    """Add each extra source's structures to the training rows, in order.

    An extra structure is left out when its compound is a test compound, when it
    repeats a structure kept before it (same formula, space group and cell: the
    main source's training rows first, then earlier extras), or when its lattice
    already has ``config.per_class`` training rows (drawn at random among the rest).

    Returns
    -------
    train : DataFrame
        The training rows with the extras kept (column ``source`` says whose).
    rejected : list of Rejected
    added : list of dict
        Per source: its description, kind, label, tolerance, entries read, accepted,
        kept, the reasons of those left out and the rows kept per lattice.
    """
    rejected: list[Rejected] = []
    added = []
    for extra, results in extras:
        kept, left_out = _training_extras(results, test)
        rejected += left_out
        n_read = len(results)
        n_accepted = sum(isinstance(r, StructureRecord) for r in results)
        if kept:
            frame = _meta_frame(kept).assign(**{SOURCE: extra.label})
            together = pd.concat([train.assign(_rank=0), frame.assign(_rank=1)],
                                 ignore_index=True)  # fmt: skip
            unique, repeats = deduplicate(
                together, config.dedup_length_rtol, config.dedup_angle_atol,
                order=("_rank", "entry_id"),
            )  # fmt: skip
            rejected += [
                Rejected(row.entry_id, row.source_file, "dedup",
                         f"extra training structure left out: repeat of {row.kept_id} (same "
                         f"formula {row.formula}, space group {row.spacegroup_number} and cell)",
                         row.kept_id)
                for row in repeats.itertuples()
            ]  # fmt: skip
            frame = unique[unique["_rank"] == 1].drop(columns="_rank")
            frame, capped = _cap_extras(train, frame, config.per_class, rng)
            rejected += [
                Rejected(row.entry_id, row.source_file, "balance",
                         f"extra training structure not drawn: {row.bravais_lattice} has "
                         f"--per-class {config.per_class} training rows")
                for row in capped.itertuples()
            ]  # fmt: skip
            train = pd.concat([train, frame], ignore_index=True)
        else:
            frame = pd.DataFrame(columns=[LATTICE])
        added.append({
            "kind": str(extra.kind), "label": extra.label, "source": extra.description,
            "symprec": SOURCE_SYMPREC.get(str(extra.kind), config.symprec),
            "read": n_read, "accepted": n_accepted, "n": len(frame),
            "per_lattice": _counts(frame) if len(frame) else {},
        })  # fmt: skip
    return train, rejected, added


def _cap_extras(train: pd.DataFrame, extra: pd.DataFrame, per_class: int,
                rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Keep at most ``per_class`` training rows per lattice, drawing extras at random."""
    have = Counter(train[LATTICE])
    keep = np.zeros(len(extra), dtype=bool)
    lattices = extra[LATTICE].to_numpy()
    for lattice in sorted(set(lattices)):
        rows = np.flatnonzero(lattices == lattice)
        room = max(per_class - have.get(lattice, 0), 0)
        if len(rows) > room:
            rows = np.sort(rng.choice(rows, size=room, replace=False))
        keep[rows] = True
    return extra[keep].reset_index(drop=True), extra[~keep]


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


def _drop_near_copies(
    train: pd.DataFrame, test: pd.DataFrame, spool: PatternSpool, config: BuildConfig
) -> tuple[pd.DataFrame, list[Rejected]]:
    """Drop training rows whose clean pattern is a near-copy of a test row's.

    Patterns are compared clean (each structure's reflections broadened on the
    grid), whatever the profile, so noise does not hide a copy; see
    :func:`competition.lattice.splits.near_copies` for the threshold.
    """
    from competition.lattice.splits import NEAR_COPY_COSINE, near_copies
    from competition.physics.patterns import broaden

    def clean(entries: pd.Series) -> np.ndarray:
        tables = (spool.sticks(e) for e in entries)
        rows = [broaden(t[:, 0].astype(np.float64), t[:, 2].astype(np.float64),
                        config.pattern).astype(np.float32) for t in tables]  # fmt: skip
        return np.stack(rows) if rows else np.empty((0, config.pattern.n_points), np.float32)

    # Both sides a block at a time: the test set's clean patterns wait on disk, and
    # memory stays at one training block (2,048 x 4,251 float32, 35 MB) beside one
    # test block, whatever the sizes (a whole-archive build has 31,000 test rows).
    with PatternSpool(config.pattern.n_points) as test_spool:
        for start in range(0, len(test), BLOCK):
            entries = test["entry_id"].iloc[start:start + BLOCK]
            for entry, row in zip(entries, clean(entries), strict=True):
                test_spool.add(entry, row)
        test_clean = RowView(test_spool, test["entry_id"])
        found = [near_copies(clean(train["entry_id"].iloc[start:start + BLOCK]), test_clean)
                 for start in range(0, len(train), BLOCK)]  # fmt: skip
    rows = np.concatenate([f[0] + k * BLOCK for k, f in enumerate(found)] or [np.empty(0, int)])
    nearest = np.concatenate([f[1] for f in found] or [np.empty(0, int)])
    similarity = np.concatenate([f[2] for f in found] or [np.empty(0)])
    rejected = [
        Rejected(
            train.at[r, "entry_id"], train.at[r, "source_file"], "near-copy",
            f"its clean pattern is a near-copy of test entry {test.at[t, 'entry_id']} "
            f"({test.at[t, layout.FORMULA]}, space group {test.at[t, layout.SPACEGROUP]}): "
            f"cosine {value:.4f} >= {NEAR_COPY_COSINE}", test.at[t, "entry_id"],
        )
        for r, t, value in zip(train.index[rows], test.index[nearest], similarity, strict=True)
    ]  # fmt: skip
    return train.drop(index=train.index[rows]).reset_index(drop=True), rejected


def measured_compounds(measured: MeasuredPatterns) -> dict[str, str]:
    """``{compound key: file}`` of the measurements whose ``labels.csv`` gives a formula."""
    from pymatgen.core import Composition

    from competition.lattice.labels import compound_formula

    keys = {}
    for name, formula, group in zip(measured.files, measured.formula,
                                    measured.spacegroup_number, strict=True):  # fmt: skip
        try:
            normal = compound_formula(Composition(formula)) if formula else ""
        except Exception:  # pymatgen raises several kinds for a formula it cannot read
            normal = ""
        if normal:
            keys[str(layout.compound_key([normal], [int(group)])[0])] = name
    return keys


def _drop_measured_compounds(
    train: pd.DataFrame, measured: MeasuredPatterns
) -> tuple[pd.DataFrame, list[Rejected]]:
    """Drop training rows of a compound a measurement's ``formula`` names (same group too)."""
    keys = measured_compounds(measured)
    if not keys or train.empty:
        return train, []
    train_keys = layout.compound_key(train[layout.FORMULA], train[layout.SPACEGROUP])
    shared = np.isin(train_keys, list(keys))
    rejected = [
        Rejected(row.entry_id, row.source_file, "measured-compound",
                 f"the compound of measured test file {keys[key]} ({row.formula}, space group "
                 f"{row.spacegroup_number}): kept out of training")
        for row, key in zip(train[shared].itertuples(), train_keys[shared], strict=True)
    ]  # fmt: skip
    return train[~shared].reset_index(drop=True), rejected


def _screen_outliers(out: Path, train: pd.DataFrame, test: pd.DataFrame,
                     spool: PatternSpool, config: BuildConfig) -> None:  # fmt: skip
    """``reports/outliers.csv`` and its plot: each structure once (training: its first draw)."""
    from competition.lattice.outliers import write_outlier_report

    columns = [layout.ID, "split", "entry_id", layout.FORMULA, layout.SPACEGROUP, layout.LATTICE]
    first = train[train[DRAW] == 0].assign(split="train")
    rows = pd.concat([first, test.assign(split=test[layout.USAGE])], ignore_index=True)[columns]
    X = RowView(spool, rows["entry_id"])
    write_outlier_report(out, rows, X, config.pattern.grid(), config.seed)


def _measured_frame(measured: MeasuredPatterns, public: np.ndarray) -> pd.DataFrame:
    """Test rows of the real measurements, with the columns of the structures' rows.

    ``public`` marks those scored on the Public board (MeasuredPublic); the others
    are the Measured portion, hidden until the close.
    """
    n = len(measured)
    return pd.DataFrame({
        "entry_id": measured.entry_ids(),
        "cod_id": pd.array([pd.NA] * n, dtype="Int64"),
        "source_file": measured.files,
        "formula": list(measured.formula),
        "spacegroup_number": measured.spacegroup_number,
        "declared_spacegroup": pd.array(measured.spacegroup_number, dtype="Int64"),
        "bravais_lattice": measured.bravais_lattice,
        "n_sites": pd.array([pd.NA] * n, dtype="Int64"),
        "symprec_used": np.full(n, np.nan),
        **{column: np.full(n, np.nan) for column in CELL_COLUMNS},
        layout.USAGE: np.where(public, layout.MEASURED_PUBLIC_PORTION, layout.MEASURED_PORTION),
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


