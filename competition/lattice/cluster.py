"""The per-structure work on a ``dask.distributed`` cluster.

``--scheduler tcp://HOST:PORT`` sends each structure to an existing cluster;
``--scheduler local:N`` starts a ``LocalCluster`` of N single-threaded worker
processes for the build. Either way the build's output is byte-identical to the
local process pool's: the same :func:`competition.lattice.pipeline.process_entry` runs
on the same input, and the results are sorted by entry id before anything is
written.

The per-structure time limit needs a process that can be killed, so each dask
worker runs its structures in a child process of its own (a pebble pool of one
process per worker thread, started once per worker): a structure past
``--timeout`` kills that child and is rejected as on a local build, and a child
that dies (out of memory, say) rejects its structure with the reason. A dask
worker that dies is replaced by the cluster and its structures are re-run on
another worker; one that dies on the same structure again and again rejects it
(``crash``, after the scheduler's ``allowed-failures``, 3 by default).

Workers that are daemonic processes cannot start children: start them with
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (``local:N`` does this itself).
A script that builds with ``scheduler="local:N"`` needs the usual
``if __name__ == "__main__":`` guard, since the workers are spawned processes
that import the script.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from competition.config import BuildConfig
from competition.sources.catalog import RawEntry, Rejected

if TYPE_CHECKING:
    from distributed import Client

    from competition.lattice.worker import StructureRecord

LOCAL_PREFIX: Final = "local:"
BATCH: Final = 8
"""Structures per dask task: 8 cut the cluster's overhead per structure (the
scheduler's bookkeeping, one message each way) to an eighth, while a batch of
small cells still takes well under a second."""
DAEMON_HINT: Final = (
    "start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False (each worker runs its "
    "structures in a child process, so that one past --timeout can be killed), or "
    "`dask worker --no-nanny`"
)


class ClusterError(Exception):
    """The cluster cannot be reached or used; the message says what to do."""


SCHEMES: Final = ("tcp", "tls", "ucx", "inproc", "ws", "wss")
"""The address schemes of a dask scheduler (``distributed.comm``)."""
MAX_LOCAL_WORKERS: Final = 256
"""The most processes ``local:N`` starts (each loads pymatgen: about 150 MB)."""


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """``("local", n_workers)`` for ``local:N``, else ``("address", text)``.

    Raises
    ------
    ClusterError
        For ``local:`` without a positive worker count, or an address without a
        scheme (``tcp://``, ``tls://``, ``ucx://``, ``inproc://``).
    """
    if text.startswith(LOCAL_PREFIX):
        count = text[len(LOCAL_PREFIX):]
        # ASCII digits only: "²".isdigit() is true, but int("²") fails.
        if not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ClusterError(
                f"--scheduler local:N needs a positive worker count of at most "
                f"{MAX_LOCAL_WORKERS}, got {text!r}"
            )
        return "local", int(count)
    scheme, sep, rest = text.partition("://")
    if scheme in ("http", "https"):
        raise ClusterError(
            f"--scheduler {text!r} is a web address, like that of the dask dashboard (port "
            "8787); give the scheduler's own address, e.g. tcp://10.0.0.5:8786"
        )
    if not sep or scheme not in SCHEMES or not rest.strip("/"):
        raise ClusterError(
            f"--scheduler takes local:N or a scheduler address such as tcp://10.0.0.5:8786 "
            f"({', '.join(f'{s}://' for s in SCHEMES)}), got {text!r}"
        )
    return "address", text


@contextlib.contextmanager
def connect(scheduler: str, timeout: float = 30.0) -> Iterator[Client]:
    """A client of the cluster that ``scheduler`` names (see :func:`parse_scheduler`).

    A ``local:N`` cluster lives as long as the context; an existing cluster is
    left running.

    Raises
    ------
    ClusterError
        When dask is not installed, the scheduler cannot be reached, it has no
        workers, or its workers are daemonic.
    """
    kind, value = parse_scheduler(scheduler)
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "--scheduler needs dask.distributed: pip install 'xrd-bravais[cluster]'"
        ) from None
    with contextlib.ExitStack() as stack:
        if kind == "local":
            stack.enter_context(dask.config.set({"distributed.worker.daemon": False}))
            cluster = stack.enter_context(LocalCluster(
                n_workers=int(value), threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=40,
            ))  # fmt: skip
            client = stack.enter_context(Client(cluster, timeout=timeout))
        else:
            try:
                client = stack.enter_context(Client(str(value), timeout=timeout))
            except OSError as err:
                raise ClusterError(f"cannot reach the dask scheduler at {value}: {err}") from None
        _check_workers(client, scheduler)
        yield client


def _check_workers(client: Client, scheduler: str) -> None:
    threads = client.nthreads()
    if not threads:
        raise ClusterError(f"the dask cluster at {scheduler} has no workers; start some first")
    daemonic = client.run(_is_daemon)
    if any(daemonic.values()):
        raise ClusterError(f"the dask workers at {scheduler} are daemonic processes: {DAEMON_HINT}")


def _is_daemon() -> bool:
    return bool(multiprocessing.current_process().daemon)


# --- worker side -------------------------------------------------------------------

_POOL: Any = None
_POOL_LOCK = threading.Lock()


def _child_context() -> multiprocessing.context.BaseContext:
    # A dask worker runs threads (its event loop, the task thread); forking such a
    # process can copy a held lock into the child. A fork server is a clean,
    # single-threaded process that imports pymatgen once and forks from there.
    if sys.platform.startswith("linux"):
        from competition.lattice.worker import WARM_MODULES

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["competition.lattice.worker", *WARM_MODULES])
        return context
    return multiprocessing.get_context("spawn")  # pragma: no cover - not on Linux


def _worker_pool() -> Any:
    """The pool of child processes of this dask worker, one per worker thread (made once)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from distributed import get_worker
            from pebble import ProcessPool

            from competition.lattice.worker import init_worker

            _POOL = ProcessPool(
                max_workers=get_worker().state.nthreads, max_tasks=500,
                initializer=init_worker, context=_child_context(),
            )  # fmt: skip
        return _POOL


def process_on_worker(
    entries: list[RawEntry], config: BuildConfig
) -> list[tuple[StructureRecord | Rejected, bool]]:
    """Run a batch of structures in the child processes of this worker.

    Returns ``(result, cacheable)`` for each entry, in order.
    """
    from competition.lattice.worker import outcome, process_entry

    if _is_daemon():  # a worker restarted without the setting its first start had
        raise ClusterError(f"this dask worker is a daemonic process: {DAEMON_HINT}")
    pool = _worker_pool()
    futures = [pool.schedule(process_entry, (entry, config), timeout=config.timeout)
               for entry in entries]  # fmt: skip
    # outcome waits for each child and turns a time-out or a crash into a reject.
    return [outcome(future, entry, config) for future, entry in zip(futures, entries, strict=True)]


# --- client side -------------------------------------------------------------------


def run_on_cluster(
    entries: Iterable[RawEntry], config: BuildConfig, client: Client, batch: int = BATCH
) -> Iterator[tuple[RawEntry, StructureRecord | Rejected, bool]]:
    """Yield ``(entry, result, cacheable)`` as the cluster finishes structures.

    Structures travel in batches of ``batch`` (one dask task each), which spreads
    the scheduler's cost per task; each structure keeps its own time limit. At
    most four batches per worker thread are in flight, so the client's memory
    stays flat however large the source is.
    """
    import itertools

    from distributed import wait

    limit = 4 * sum(client.nthreads().values())
    pending: dict[Any, list[RawEntry]] = {}
    iterator = iter(entries)
    try:
        while True:
            while len(pending) < limit and (chunk := list(itertools.islice(iterator, batch))):
                pending[client.submit(process_on_worker, chunk, config, pure=False)] = chunk
            if not pending:
                return
            done = wait(list(pending), return_when="FIRST_COMPLETED").done
            for future in sorted(done, key=lambda f: pending[f][0].entry_id):
                chunk = pending.pop(future)
                for entry, outcome in zip(chunk, _cluster_outcomes(future, chunk), strict=True):
                    yield (entry, *outcome)
    finally:
        if pending:
            client.cancel(list(pending))


def _cluster_outcomes(
    future: Any, chunk: list[RawEntry]
) -> list[tuple[StructureRecord | Rejected, bool]]:
    try:
        return future.result()
    except Exception as err:
        from distributed.scheduler import KilledWorker

        if isinstance(err, KilledWorker):
            reason = "the dask workers running it died again and again (KilledWorker)"
        else:
            from competition.sources.structures import _short

            reason = f"worker failed: {type(err).__name__}: {_short(str(err))}"
        return [(Rejected(e.entry_id, e.source_file, "crash", reason), False) for e in chunk]

