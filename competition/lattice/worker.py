"""The per-structure work: a pure function of one raw entry and the build settings.

:func:`process_entry` parses, labels and draws the pattern of one structure, so it
runs anywhere: in a worker of the local pool (:mod:`competition.lattice.pipeline`)
or of a dask cluster (:mod:`competition.lattice.cluster`), which both start their
workers with :func:`init_worker` and read a finished task with :func:`outcome`.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from competition.config import BuildConfig
from competition.sources.catalog import RawEntry, Rejected
from competition.sources.structures import RejectError


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
    pattern: np.ndarray | None
    """The pattern (draw 0); ``None`` once the arrays are kept on disk
    (:meth:`competition.lattice.spool.PatternSpool.keep`)."""
    sticks: np.ndarray | None
    """The reflections (``xrd_bravais.contract.layout.STICK_COLUMNS``), float32; published for
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
    from competition.lattice.labels import compound_formula, ladder_labels
    from competition.physics.patterns import xrd_pattern_and_sticks
    from competition.sources.structures import parse_structure

    seconds: dict[str, float] = {}
    try:
        start = time.perf_counter()
        parsed = parse_structure(entry.text, config.max_sites, config.reader)
        seconds["parse"] = time.perf_counter() - start
        start = time.perf_counter()
        # A file written in P1 (computed structures with every atom explicit, such as
        # the Materials Project's) declares no symmetry: no group to agree with.
        declared = parsed.declared_spacegroup if parsed.declared_spacegroup != 1 else None
        labels = ladder_labels(
            parsed.structure, config.symprec, config.symprec_ladder,
            declared, config.angle_tolerance,
        )  # fmt: skip
        if declared is None and labels.spacegroup_number == 1:
            declared = parsed.declared_spacegroup  # a triclinic P1 crystal agrees with it
        seconds["symmetry"] = time.perf_counter() - start
        start = time.perf_counter()
        extra_draws = None
        if config.profile == "measured":
            drawn, sticks = measured_entry_pattern(
                parsed.structure, entry.entry_id, config, parsed.debye_waller, labels.rotations
            )
            pattern, extra_draws = drawn[0], (drawn[1:] if len(drawn) > 1 else None)
        else:
            pattern, sticks = xrd_pattern_and_sticks(
                parsed.structure, config.pattern, config.engine, parsed.debye_waller
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
        formula=compound_formula(structure.composition),
        spacegroup_number=labels.spacegroup_number,
        spacegroup_symbol=labels.spacegroup_symbol,
        declared_spacegroup=declared,
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
    structure: Any, entry_id: str, config: BuildConfig,
    debye_waller: dict[str, float] | None = None, rotations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The ``measured`` profile's patterns of one structure and its reflections' table.

    ``config.draws`` patterns, shape (draws, n_points), drawn one after another
    from the entry's generator (so draw 0 does not depend on ``draws``). See
    :mod:`competition.physics.realism` and :func:`competition.physics.patterns.stick_table`.
    ``rotations`` are the labelled space group's (fractional, the structure's cell),
    for the texture; default: found again at symprec 0.01.

    Raises
    ------
    RejectError
        With stage ``pattern`` when pymatgen fails or no peak falls on the grid.
    """
    from competition.physics.patterns import reflections_and_sticks
    from competition.physics.realism import measured_pattern

    grid = config.pattern.to_grid()  # type: ignore[union-attr]
    d, intensity, normals, sticks = reflections_and_sticks(structure, grid, config.engine,
                                                           debye_waller, rotations)  # fmt: skip
    rng = entry_rng(entry_id, config.seed)
    try:
        drawn = [measured_pattern(d, intensity, grid, rng, config.realism, normals)
                 for _ in range(config.draws)]  # fmt: skip
        return np.stack(drawn), sticks
    except ValueError as err:
        raise RejectError("pattern", str(err)) from None



WARM_MODULES: tuple[str, ...] = (
    "pymatgen.analysis.diffraction.xrd", "pymatgen.io.cif", "pymatgen.symmetry.analyzer",
    "scipy.spatial", "competition.physics.diffraction", "competition.lattice.labels",
    "competition.physics.patterns",
    "competition.sources.reader", "competition.sources.structures",
)  # fmt: skip
"""What every structure needs, imported before the workers start (about 2 s)."""


def warm_imports() -> None:
    """Import :data:`WARM_MODULES`, so forked workers start with them loaded."""
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)


def init_worker() -> None:
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



def outcome(
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


