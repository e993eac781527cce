"""Build throughput: structures per second end to end and per stage, and peak memory.

Runs on three real inputs and prints one table:

* ``cod_cifs``: the 526 real COD entries of ../shared/data/cod_cifs;
* ``edge-organic``: the organic and metal-organic structures (C and H present)
  among ../shared/data/cif_edge_cases, with --max-sites 2000 so the large
  molecular cells are timed rather than rejected;
* ``amcsd``: the first N entries of the embedded AMCSD source.

For each: the whole per-structure stage through the process pool (end to end),
the CPU seconds of each stage summed over structures (parse, symmetry, pattern),
the write stage (dedup, split, parquet, figure, manifest), peak memory of the
main process and of the largest worker, and the ratio against the reference
implementation in the same run: a plain serial loop of pymatgen's CifParser,
SpacegroupAnalyzer and XRDCalculator with dense Gaussian broadening, over the
same accepted entries ("x ref" = our structures per second / the reference's).

Usage::

    .venv/bin/python -m benchmarks.build_throughput [--workers 2] [--amcsd-n 500]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from competition.build import assemble_competition
from competition.config import BuildConfig
from competition.pipeline import StructureRecord, run_pipeline
from competition.sources import RawEntry, Source, amcsd_source, cod_dir_source

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def reference_seconds(entries: list[RawEntry], config: BuildConfig) -> float:
    """Seconds per structure of the plain serial pymatgen loop (accepted entries only)."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.io.cif import CifParser
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    grid = config.pattern.grid()
    sigma = config.pattern.sigma
    start = time.perf_counter()
    for entry in entries:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = CifParser.from_str(entry.text).parse_structures(primitive=False)[0]
            SpacegroupAnalyzer(structure, symprec=config.symprec).get_space_group_number()
            calculator = XRDCalculator("CuKa")
            p = calculator.get_pattern(structure, scaled=False, two_theta_range=(4, 91))
        x, y = np.asarray(p.x), np.asarray(p.y)
        profile = (y[:, None] * np.exp(-0.5 * ((grid - x[:, None]) / sigma) ** 2)).sum(0)
        _ = (profile / profile.max()).astype(np.float32)
    return (time.perf_counter() - start) / max(1, len(entries))


def measure(name: str, source: Source, config: BuildConfig, workers: int, n_ref: int) -> dict:
    """Build ``source`` and time each stage and the serial reference on it."""
    entries = list(source.entries())
    start = time.perf_counter()
    results, _ = run_pipeline(entries, config, workers=workers, progress=False)
    wall = time.perf_counter() - start
    records = [r for r in results if isinstance(r, StructureRecord)]
    stage = {
        k: sum(r.seconds.get(k, 0.0) for r in records) for k in ("parse", "symmetry", "pattern")
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        assemble_competition(results, source, Path(tmp) / "out", config)
        write = time.perf_counter() - start
    accepted = {r.entry_id for r in records}
    sample = [e for e in entries if isinstance(e, RawEntry) and e.entry_id in accepted]
    sample = sample[:n_ref] if n_ref else sample
    ref = reference_seconds(sample, config)
    n = len(results)
    return {
        "input": name,
        "entries": n,
        "accepted": len(records),
        "wall_s": wall,
        "per_s": n / wall,
        "parse_per_s": len(records) / stage["parse"],
        "symmetry_per_s": len(records) / stage["symmetry"],
        "pattern_per_s": len(records) / stage["pattern"],
        "write_s": write,
        "ref_per_s": 1 / ref,
        "ratio": ref * len(records) / wall,
        "sites_median": float(np.median([r.n_sites for r in records])),
    }


def organic_edge_cases() -> Source:
    """Edge cases whose text declares both C and H in the formula (molecular crystals)."""
    source = cod_dir_source(SHARED / "cif_edge_cases")
    picked = []
    for entry in source.entries():
        if not isinstance(entry, RawEntry):
            continue
        formula = next(
            (line for line in entry.text.splitlines() if line.startswith("_chemical_formula_sum")),
            "",
        )
        tokens = formula.replace("'", " ").split()[1:]
        symbols = {t.rstrip("0123456789.") for t in tokens}
        if {"C", "H"} <= symbols:
            picked.append(entry)
    return Source("cod-dir", {"kind": "edge-organic"}, lambda: picked, len(picked))


def main() -> int:
    """Measure every input set and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--amcsd-n", type=int, default=500)
    parser.add_argument(
        "--reference-n", type=int, default=60, help="entries in the serial reference"
    )
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent", file=sys.stderr)
        return 1
    config = BuildConfig()
    rows = [
        measure(
            "cod_cifs", cod_dir_source(SHARED / "cod_cifs"), config,
            args.workers, args.reference_n,
        ),
        measure(
            "edge-organic", organic_edge_cases(), config.with_(max_sites=2000),
            args.workers, args.reference_n,
        ),
        measure(
            "amcsd", amcsd_source().head(args.amcsd_n), config, args.workers, args.reference_n
        ),
    ]  # fmt: skip
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    header = (
        f"{'input':<13} {'entries':>7} {'accepted':>8} {'median sites':>12} {'wall s':>7} "
        f"{'struct/s':>8} {'parse/s':>8} {'sym/s':>8} {'pattern/s':>9} {'write s':>7} "
        f"{'ref/s':>6} {'x ref':>6}"
    )
    print(f"workers={args.workers}; per-stage rates are per CPU (one worker)")
    print(header)
    for r in rows:
        print(
            f"{r['input']:<13} {r['entries']:>7} {r['accepted']:>8} {r['sites_median']:>12.0f} "
            f"{r['wall_s']:>7.1f} {r['per_s']:>8.1f} {r['parse_per_s']:>8.1f} "
            f"{r['symmetry_per_s']:>8.0f} {r['pattern_per_s']:>9.1f} {r['write_s']:>7.1f} "
            f"{r['ref_per_s']:>6.1f} {r['ratio']:>6.2f}"
        )
    print(f"peak RSS: main process {self_mb:.0f} MiB, largest worker {child_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
