"""The per-structure work (parse, label, pattern) and its parallel, cached execution.

:func:`process_entry` is a pure function of one raw entry and the build settings,
so it can run anywhere; :func:`run_pipeline` runs it over a process pool with a
time limit per structure, a progress bar and the resumable result cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from competition.cache import ResultCache, result_key
from competition.config import BuildConfig
from competition.sources import RawEntry, Rejected
from competition.structures import RejectError


@dataclass
class StructureRecord:
    """Everything the build keeps about one accepted structure."""

    entry_id: str
    cod_id: int | None
    source_file: str
    formula: str
    spacegroup_number: int
    spacegroup_symbol: str
    declared_spacegroup: int | None
    bravais_lattice: str
    n_sites: int
    conventional_cell: tuple[float, ...]
    pattern: np.ndarray
    sticks: np.ndarray
    """The reflections (``contract.layout.STICK_COLUMNS``), float32; published for
    training rows only."""
    extra_draws: np.ndarray | None = None
    """Draws 1 .. K-1 of a measured build with ``draws=K`` (shape (K-1, n_points))."""
    seconds: dict[str, float] = field(default_factory=dict)
    extra_blocks: tuple[str, ...] = ()
    symprec_used: float | None = None


def process_entry(entry: RawEntry, config: BuildConfig) -> StructureRecord | Rejected:
    """Parse, label and simulate one structure; reject it with a reason on failure.

    Parameters
    ----------
    entry : RawEntry
        The CIF text and where it came from.
    config : BuildConfig
        Tolerances, site limit and pattern grid.

    Returns
    -------
    StructureRecord or Rejected
    """
    from competition.labels import ladder_labels
    from competition.patterns import xrd_pattern_and_sticks
    from competition.structures import parse_structure

    seconds: dict[str, float] = {}
    try:
        start = time.perf_counter()
        parsed = parse_structure(entry.text, config.max_sites, config.reader)
        seconds["parse"] = time.perf_counter() - start
        start = time.perf_counter()
        labels = ladder_labels(
            parsed.structure, config.symprec, config.symprec_ladder,
            parsed.declared_spacegroup, config.angle_tolerance,
        )  # fmt: skip
        seconds["symmetry"] = time.perf_counter() - start
        start = time.perf_counter()
        extra_draws = None
        if config.profile == "measured":
            drawn, sticks = measured_entry_pattern(parsed.structure, entry.entry_id, config)
            pattern, extra_draws = drawn[0], (drawn[1:] if len(drawn) > 1 else None)
        else:
            pattern, sticks = xrd_pattern_and_sticks(
                parsed.structure, config.pattern, config.engine
            )
        seconds["pattern"] = time.perf_counter() - start
    except RejectError as err:
        return Rejected(entry.entry_id, entry.source_file, err.stage, err.reason)
    except Exception as err:  # a bug or an unforeseen input must not stop the build
        return Rejected(
            entry.entry_id, entry.source_file, "error", f"unexpected {type(err).__name__}: {err}"
        )
    structure = parsed.structure
    return StructureRecord(
        entry_id=entry.entry_id,
        cod_id=entry.cod_id,
        source_file=entry.source_file,
        formula=structure.composition.reduced_formula,
        spacegroup_number=labels.spacegroup_number,
        spacegroup_symbol=labels.spacegroup_symbol,
        declared_spacegroup=parsed.declared_spacegroup,
        bravais_lattice=labels.bravais_lattice,
        n_sites=len(structure),
        conventional_cell=labels.conventional_cell,
        pattern=pattern,
        sticks=sticks.astype(np.float32),
        extra_draws=extra_draws,
        seconds=seconds,
        extra_blocks=parsed.extra_blocks,
        symprec_used=labels.symprec,
    )


def entry_rng(entry_id: str, seed: int) -> np.random.Generator:
    """The random generator of one structure's measurement.

    Seeded by the build's seed and the entry id, so a pattern does not depend on
    which worker drew it or in which order.
    """
    digest = hashlib.sha256(entry_id.encode("utf-8", "surrogatepass")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def measured_entry_pattern(
    structure: Any, entry_id: str, config: BuildConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The ``measured`` profile's patterns of one structure and its reflections' table.

    ``config.draws`` patterns, shape (draws, n_points), drawn one after another
    from the entry's generator (so draw 0 does not depend on ``draws``). See
    :mod:`competition.realism` and :func:`competition.patterns.stick_table`.

    Raises
    ------
    RejectError
        With stage ``pattern`` when pymatgen fails or no peak falls on the grid.
    """
    from competition.patterns import reflections_and_sticks
    from competition.realism import measured_pattern

    grid = config.pattern.to_grid()  # type: ignore[union-attr]
    d, intensity, normals, sticks = reflections_and_sticks(structure, grid, config.engine)
    rng = entry_rng(entry_id, config.seed)
    try:
        drawn = [measured_pattern(d, intensity, grid, rng, config.realism, normals)
                 for _ in range(config.draws)]  # fmt: skip
        return np.stack(drawn), sticks
    except ValueError as err:
        raise RejectError("pattern", str(err)) from None


def available_cpus() -> int:
    """CPUs this process may use (respects affinity masks and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not on Linux


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers with pymatgen already imported (about 2 s saved per
    # worker); macOS and Windows lack a safe fork, so they keep their default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


WARM_MODULES: tuple[str, ...] = (
    "pymatgen.analysis.diffraction.xrd", "pymatgen.io.cif", "pymatgen.symmetry.analyzer",
    "scipy.spatial", "competition.diffraction", "competition.labels", "competition.patterns",
    "competition.reader", "competition.structures",
)  # fmt: skip
"""What every structure needs, imported before the workers start (about 2 s)."""


def _warm_imports() -> None:
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)


def _init_worker() -> None:
    """Keep each worker's BLAS to one thread, and its library warnings off the terminal.

    The arrays of one structure are small, so BLAS threads only compete with the
    other workers (measured: 17 % more structures per second on 2 cores). The
    limit is set at run time because forked workers inherit an already-loaded
    BLAS, which ignores OMP_NUM_THREADS.
    """
    import warnings

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    # pymatgen and spglib warn per structure ("No Pauling electronegativity for Ne",
    # occupancy roundings ...): thousands of lines on the organiser's terminal that
    # say nothing actionable. What matters becomes a reject with its reason.
    warnings.simplefilter("ignore")


def _run_pool(
    entries: Iterable[RawEntry], config: BuildConfig, workers: int
) -> Iterator[tuple[RawEntry, StructureRecord | Rejected, bool]]:
    """Yield ``(entry, result, cacheable)`` as workers finish; kill what runs too long.

    At most ``4 * workers`` structures are in flight, so memory stays flat
    however large the source is.
    """
    from pebble import ProcessPool

    _warm_imports()
    # A worker is replaced after this many structures, which bounds the memory
    # that pymatgen's per-process caches can accumulate on a long build.
    pool = ProcessPool(
        max_workers=workers, max_tasks=500, initializer=_init_worker, context=_pool_context()
    )
    with pool:
        pending: dict[Future[object], RawEntry] = {}
        iterator = iter(entries)
        while True:
            for entry in itertools.islice(iterator, 4 * workers - len(pending)):
                future = pool.schedule(process_entry, (entry, config), timeout=config.timeout)
                pending[future] = entry
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f].entry_id):
                entry = pending.pop(future)
                yield (entry, *_outcome(future, entry, config))


def _outcome(
    future: Future[object], entry: RawEntry, config: BuildConfig
) -> tuple[StructureRecord | Rejected, bool]:
    """Turn a finished future into a result; time-outs and crashes are not cached."""
    from pebble import ProcessExpired

    try:
        return future.result(), True  # type: ignore[return-value]
    except FutureTimeout:
        reason = f"timed out after {config.timeout:g} s (raise --timeout to allow more)"
        return Rejected(entry.entry_id, entry.source_file, "timeout", reason), False
    except ProcessExpired as err:
        reason = f"worker process died (exit code {err.exitcode}), e.g. out of memory"
        return Rejected(entry.entry_id, entry.source_file, "crash", reason), False
    except Exception as err:
        reason = f"worker failed: {type(err).__name__}: {err}"
        return Rejected(entry.entry_id, entry.source_file, "crash", reason), False


Outcome = tuple[RawEntry, "StructureRecord | Rejected", bool]
Runner = Callable[[Iterable[RawEntry]], Iterator[Outcome]]


@contextlib.contextmanager
def _executor(config: BuildConfig, workers: int | None, scheduler: str | None) -> Iterator[Runner]:
    """What runs the structures: the local process pool, or a dask cluster's client."""
    if scheduler is None:
        yield lambda entries: _run_pool(entries, config, workers or available_cpus())
        return
    from competition.cluster import connect, run_on_cluster

    with connect(scheduler) as client:
        yield lambda entries: run_on_cluster(entries, config, client)


def run_pipeline(
    entries: Iterable[RawEntry | Rejected],
    config: BuildConfig,
    *,
    workers: int | None = None,
    cache_path: Path | None = None,
    total: int | None = None,
    progress: bool = True,
    scheduler: str | None = None,
) -> tuple[list[StructureRecord | Rejected], int]:
    """Process every entry, in parallel, reusing cached results.

    Parameters
    ----------
    entries : iterable of RawEntry or Rejected
        From a :class:`competition.sources.Source`; early rejections pass through.
    config : BuildConfig
    workers : int, optional
        Worker processes; default all available CPUs.
    cache_path : Path, optional
        SQLite result cache; ``None`` disables caching.
    total : int, optional
        Number of entries, for the progress bar.
    progress : bool
        Show a tqdm progress bar on stderr.
    scheduler : str, optional
        Run on a dask cluster instead of local processes: ``local:N`` or a
        scheduler address (:mod:`competition.cluster`); ``workers`` must then be
        left unset.

    Returns
    -------
    results : list
        One result per entry, sorted by entry id (so the order does not depend
        on which worker finished first).
    n_cached : int
        How many of them came from the cache.
    """
    from tqdm.auto import tqdm

    if scheduler is not None and workers is not None:
        raise ValueError("give workers (local processes) or scheduler (a dask cluster), not both")
    settings_key = config.structure_key()
    results: list[StructureRecord | Rejected] = []
    n_cached = 0
    bar = tqdm(total=total, desc="structures", unit="cif", disable=not progress, smoothing=0.05)

    keys: dict[str, str] = {}  # entry id -> cache key, hashed once per entry

    def todo(cache: ResultCache | None) -> Iterator[RawEntry]:
        nonlocal n_cached
        for entry in entries:
            if isinstance(entry, Rejected):
                results.append(entry)
                bar.update()
                continue
            cached = None
            if cache is not None:
                keys[entry.entry_id] = result_key(entry.entry_id, entry.text, settings_key)
                cached = cache.get(keys[entry.entry_id])
            if cached is not None:
                n_cached += 1
                results.append(cached)
                bar.update()
                continue
            yield entry

    context = ResultCache(cache_path) if cache_path else contextlib.nullcontext(None)
    with context as cache, bar, _executor(config, workers, scheduler) as run:
        for entry, result, cacheable in run(todo(cache)):
            if cache is not None and cacheable:
                cache.put(keys.pop(entry.entry_id), result)
            results.append(result)
            bar.update()
    return sorted(results, key=lambda r: r.entry_id), n_cached
