"""The per-structure work run over many structures, in parallel and cached.

:func:`run_pipeline` runs :func:`competition.lattice.worker.process_entry` over a
process pool (or a dask cluster, :mod:`competition.lattice.cluster`) with a time
limit per structure, a progress bar and the resumable result cache.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from competition.config import BuildConfig
from competition.lattice.cache import ResultCache, result_key
from competition.lattice.spool import PatternSpool
from competition.lattice.worker import (
    StructureRecord,
    init_worker,
    outcome,
    process_entry,
    warm_imports,
)
from competition.sources.catalog import RawEntry, Rejected


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



def _run_pool(
    entries: Iterable[RawEntry], config: BuildConfig, workers: int
) -> Iterator[tuple[RawEntry, StructureRecord | Rejected, bool]]:
    """Yield ``(entry, result, cacheable)`` as workers finish; kill what runs too long.

    At most ``4 * workers`` structures are in flight, so memory stays flat
    however large the source is.
    """
    from pebble import ProcessPool

    warm_imports()
    # A worker is replaced after this many structures, which bounds the memory
    # that pymatgen's per-process caches can accumulate on a long build.
    pool = ProcessPool(
        max_workers=workers, max_tasks=500, initializer=init_worker, context=_pool_context()
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
                yield (entry, *outcome(future, entry, config))



Outcome = tuple[RawEntry, "StructureRecord | Rejected", bool]
Runner = Callable[[Iterable[RawEntry]], Iterator[Outcome]]


@contextlib.contextmanager
def _executor(config: BuildConfig, workers: int | None, scheduler: str | None) -> Iterator[Runner]:
    """What runs the structures: the local process pool, or a dask cluster's client."""
    if scheduler is None:
        yield lambda entries: _run_pool(entries, config, workers or available_cpus())
        return
    from competition.lattice.cluster import connect, run_on_cluster

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
    spool: PatternSpool | None = None,
) -> tuple[list[StructureRecord | Rejected], int]:
    """Process every entry, in parallel, reusing cached results.

    Parameters
    ----------
    entries : iterable of RawEntry or Rejected
        From a :class:`competition.sources.catalog.Source`; early rejections pass through.
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
        scheduler address (:mod:`competition.lattice.cluster`); ``workers`` must then be
        left unset.
    spool : PatternSpool, optional
        Where the patterns and reflections of accepted structures go as they arrive;
        the records returned are then light (their arrays ``None``), so memory does
        not grow with the number of structures. Default: kept in the records.

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

    def light(result: StructureRecord | Rejected) -> StructureRecord | Rejected:
        if spool is None or not isinstance(result, StructureRecord):
            return result
        return spool.keep(result)

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
                results.append(light(cached))
                bar.update()
                continue
            yield entry

    context = ResultCache(cache_path) if cache_path else contextlib.nullcontext(None)
    with context as cache, bar, _executor(config, workers, scheduler) as run:
        for entry, result, cacheable in run(todo(cache)):
            if cache is not None and cacheable:
                cache.put(keys.pop(entry.entry_id), result)
            results.append(light(result))
            bar.update()
    return sorted(results, key=lambda r: r.entry_id), n_cached

