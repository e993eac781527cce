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

With ``--compare`` it sets the pymatgen pipeline and the new one side by side on
the same files in the same run: the pipeline with pymatgen's CIF reader and
pattern engine (``--reader pymatgen --engine pymatgen``) and with the defaults
(:mod:`competition.sources.reader`, :mod:`competition.physics.diffraction`) on one worker, the
defaults on ``--workers`` local processes and on a dask ``LocalCluster`` of as
many workers, and the plain serial reference. Per input set it prints structures per second per
core for each stage and end to end, the ratios, the pattern stage's peak memory on
the largest cell (tracemalloc), the largest difference between the two engines'
max-normalised patterns and whether every label is equal.

With ``--archive FILE --sizes 20000 80000 all`` it builds the first N structures of an
archive of CIFs (``xrd-bravais build --source archive --limit N --no-cache``, the
default grid, ``--profile`` clean unless told, no ``--per-class`` cap) under
``/usr/bin/time -v``, once per size, and prints the wall time, structures per second,
the peak resident memory of the largest process (``time -v``) and of the whole process
tree (sampled every 0.2 s), the write stage's seconds, bytes per row of
``train.parquet`` and ``test.parquet``, and how long
:func:`baselines.data.read_patterns` takes to read the training file.

Usage::

    .venv/bin/python -m benchmarks.build_throughput [--workers 2] [--amcsd-n 500]
    .venv/bin/python -m benchmarks.build_throughput --compare [--amcsd-n 500]
    .venv/bin/python -m benchmarks.build_throughput --archive ../shared/data/mp/mp_cifs.tar.xz \
        --sizes 20000 80000 all [--profile measured]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from competition.config import BuildConfig
from competition.lattice.build import assemble_competition
from competition.lattice.pipeline import run_pipeline
from competition.lattice.worker import StructureRecord
from competition.sources.catalog import RawEntry, Source, amcsd_source, cod_dir_source

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


def _timed_run(entries: list, config: BuildConfig, **how) -> dict:
    """One pipeline run: wall seconds, records by id, CPU seconds per stage."""
    start = time.perf_counter()
    results, _ = run_pipeline(entries, config, progress=False, **how)
    wall = time.perf_counter() - start
    records = {r.entry_id: r for r in results if isinstance(r, StructureRecord)}
    stages = {k: sum(r.seconds.get(k, 0.0) for r in records.values())
              for k in ("parse", "symmetry", "pattern")}  # fmt: skip
    return {"wall": wall, "records": records, "stages": stages, "n": len(results)}


def _pattern_peak_mib(structure, config: BuildConfig, engine: str) -> float:
    """Peak memory traced while one engine computes one pattern, in MiB."""
    import tracemalloc

    from competition.physics.patterns import xrd_pattern

    tracemalloc.start()
    xrd_pattern(structure, config.pattern, engine)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def compare(name: str, source: Source, config: BuildConfig, workers: int, scheduler: str) -> dict:
    """Both engines, one and ``workers`` processes and the dask cluster, on ``source``."""
    from competition.sources.structures import parse_structure

    entries = list(source.entries())
    runs = {
        "pymatgen throughout, 1 worker": _timed_run(
            entries, config.with_(engine="pymatgen", reader="pymatgen"), workers=1),
        "defaults, 1 worker": _timed_run(entries, config, workers=1),
        f"defaults, {workers} workers": _timed_run(entries, config, workers=workers),
        f"defaults, dask {workers} workers": _timed_run(entries, config, scheduler=scheduler),
    }  # fmt: skip
    cores = {label: (1 if "1 worker" in label else workers) for label in runs}
    reference, mine = runs["pymatgen throughout, 1 worker"], runs["defaults, 1 worker"]
    common = sorted(set(reference["records"]) & set(mine["records"]))
    worst = max(float(np.abs(reference["records"][i].pattern - mine["records"][i].pattern).max())
                for i in common)  # fmt: skip
    labels_equal = all(
        (reference["records"][i].spacegroup_number, reference["records"][i].bravais_lattice)
        == (mine["records"][i].spacegroup_number, mine["records"][i].bravais_lattice)
        for i in common
    ) and set(reference["records"]) == set(mine["records"])
    accepted = [e for e in entries if isinstance(e, RawEntry) and e.entry_id in mine["records"]]
    largest = max(accepted, key=lambda e: mine["records"][e.entry_id].n_sites)
    structure = parse_structure(largest.text, config.max_sites).structure
    plain = reference_seconds(accepted, config)
    return {
        "input": name, "entries": len(entries), "accepted": len(mine["records"]),
        "runs": runs, "cores": cores, "plain_per_s": 1 / plain, "worst": worst,
        "labels_equal": labels_equal, "largest_sites": len(structure),
        "peak_mib": {e: _pattern_peak_mib(structure, config, e)
                     for e in ("pymatgen", "vectorised")},
    }  # fmt: skip


def print_comparison(rows: list[dict]) -> None:
    """The ``--compare`` table: per input set, one line per run, then the checks."""
    header = (f"{'input':<13} {'run':<28} {'wall s':>7} {'/s/core':>8} {'parse/s':>8} "
              f"{'sym/s':>7} {'pattern/s':>9} {'x pymatgen':>12} {'x plain ref':>11}")
    print("per-core rates: structures per second divided by the cores the run used; "
          "stage rates are per CPU")  # fmt: skip
    print(header)
    for row in rows:
        base = None
        for label, run in row["runs"].items():
            per_core = run["n"] / run["wall"] / row["cores"][label]
            base = base or per_core
            n = len(run["records"])
            stage = {k: n / v if v else float("inf") for k, v in run["stages"].items()}
            print(f"{row['input']:<13} {label:<28} {run['wall']:>7.1f} {per_core:>8.1f} "
                  f"{stage['parse']:>8.1f} {stage['symmetry']:>7.0f} {stage['pattern']:>9.1f} "
                  f"{per_core / base:>12.2f} {per_core / row['plain_per_s']:>11.2f}")  # fmt: skip
        runs = list(row["runs"].values())
        scaling = runs[0 + 1]["wall"] / runs[2]["wall"]
        print(f"{row['input']:<13} plain serial reference: {row['plain_per_s']:.1f}/s; "
              f"{row['cores'][list(row['runs'])[2]]} workers = {scaling:.2f}x one worker; "
              f"max |pattern difference| {row['worst']:.2e}; labels equal: "
              f"{row['labels_equal']}; pattern peak memory on the largest cell "
              f"({row['largest_sites']} sites): pymatgen {row['peak_mib']['pymatgen']:.0f} MiB, "
              f"vectorised {row['peak_mib']['vectorised']:.0f} MiB")  # fmt: skip


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
    parser.add_argument("--compare", action="store_true",
                        help="both pattern engines, one and several workers, and dask")  # fmt: skip
    parser.add_argument("--archive", type=Path, help="an archive of CIFs to build at --sizes")
    parser.add_argument("--sizes", nargs="+", default=["20000", "80000", "all"],
                        help="structures per archive build (a number or 'all')")  # fmt: skip
    parser.add_argument("--profile", default="clean", help="clean or measured (--archive)")
    parser.add_argument("--keep", type=Path, help="keep each archive build in KEEP/N")
    parser.add_argument("--per-class", type=int, default=1_000_000,
                        help="--per-class of the archive builds (default: no cap)")  # fmt: skip
    args = parser.parse_args()
    if args.archive is not None:
        return _main_archive(args)
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent", file=sys.stderr)
        return 1
    config = BuildConfig()
    if args.compare:
        return _main_compare(args, config)
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


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        process = int(status.parent.name)
        children.setdefault(int(fields[1]), []).append(process)
        rss[process] = int(fields[21]) * resource.getpagesize()
    total, todo = 0, [pid]
    while todo:
        process = todo.pop()
        total += rss.get(process, 0)
        todo += children.get(process, [])
    return total


def archive_build(archive: Path, size: str, out: Path, workers: int, profile: str,
                  per_class: int) -> dict:  # fmt: skip
    """One ``xrd-bravais build --source archive`` under ``/usr/bin/time -v``, measured."""
    import json
    import re
    import subprocess

    command = [
        "/usr/bin/time", "-v", str(Path(sys.executable).with_name("xrd-bravais")), "build",
        "--source", "archive", "--input", str(archive), "--out", str(out),
        "--no-cache", "--quiet", "--workers", str(workers), "--profile", profile,
        "--per-class", str(per_class),
        *([] if size == "all" else ["--limit", size]),
    ]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    peak_tree = 0
    while process.poll() is None:
        peak_tree = max(peak_tree, _tree_rss(process.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"build of {size} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)[1])
    manifest = json.loads((out / "manifest.json").read_text())
    portions = manifest["counts"]["per_portion"]
    n_train = sum(portions["train"].values()) * manifest["config"].get("draws", 1)
    n_test = sum(sum(portions[k].values()) for k in ("public", "private"))
    n_input = manifest["counts"]["input"]
    train_bytes = (out / "public" / "train.parquet").stat().st_size
    test_bytes = (out / "public" / "test.parquet").stat().st_size
    from baselines.data import read_patterns

    start = time.perf_counter()
    read = read_patterns(out / "public" / "train.parquet")
    read_s = time.perf_counter() - start
    assert len(read.X) == n_train, (len(read.X), n_train)
    del read
    written = re.search(r"write ([0-9.]+) s", stdout)
    write_s = float(written[1]) if written else None
    return {
        "size": size, "entries": n_input, "train": n_train, "test": n_test, "wall_s": wall,
        "per_s": (n_input or 0) / wall, "peak_mib": peak_kib / 1024,
        "tree_mib": peak_tree / 2**20, "write_s": write_s,
        "train_b_row": train_bytes / max(n_train, 1), "test_b_row": test_bytes / max(n_test, 1),
        "read_s": read_s,
    }  # fmt: skip


def _main_archive(args: argparse.Namespace) -> int:
    if not args.archive.exists():
        print(f"skipped: {args.archive} is absent", file=sys.stderr)
        return 1
    print(f"archive {args.archive}; workers={args.workers}; profile {args.profile}; "
          f"default grid; --per-class {args.per_class}; no cache")  # fmt: skip
    print(f"{'size':>7} {'entries':>7} {'train':>7} {'test':>6} {'wall s':>7} {'struct/s':>8} "
          f"{'peak MiB':>8} {'tree MiB':>8} {'write s':>7} {'train B/row':>11} "
          f"{'test B/row':>10} {'read s':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            out = (args.keep / size) if args.keep else Path(tmp) / size
            r = archive_build(args.archive, size, out, args.workers, args.profile,
                              args.per_class)  # fmt: skip
            write = f"{r['write_s']:>7.1f}" if r["write_s"] is not None else f"{'-':>7}"
            print(f"{r['size']:>7} {r['entries']:>7} {r['train']:>7} {r['test']:>6} "
                  f"{r['wall_s']:>7.0f} {r['per_s']:>8.1f} {r['peak_mib']:>8.0f} "
                  f"{r['tree_mib']:>8.0f} {write} {r['train_b_row']:>11.0f} "
                  f"{r['test_b_row']:>10.0f} {r['read_s']:>6.1f}", flush=True)  # fmt: skip
            if not args.keep:
                import shutil

                shutil.rmtree(out)
    return 0


def _main_compare(args: argparse.Namespace, config: BuildConfig) -> int:
    from competition.lattice.cluster import connect

    inputs = [
        ("cod_cifs", cod_dir_source(SHARED / "cod_cifs"), config),
        ("edge-organic", organic_edge_cases(), config.with_(max_sites=2000)),
        ("amcsd", amcsd_source().head(args.amcsd_n) if args.amcsd_n else amcsd_source(),
         config),
    ]  # fmt: skip
    # The cluster is started and warmed up (each worker's fork server imports
    # pymatgen once, a few seconds) before the clock runs.
    with connect(f"local:{args.workers}") as client:
        address = client.scheduler.address
        warm = list(itertools.islice(inputs[0][1].entries(), 8 * args.workers))
        run_pipeline(warm, config, scheduler=address, progress=False)
        rows = [compare(name, source, cfg, args.workers, address)
                for name, source, cfg in inputs]  # fmt: skip
    print_comparison(rows)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: main process {self_mb:.0f} MiB, largest local worker {child_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
