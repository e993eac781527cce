"""Benchmark realism: simulated measured-profile patterns beside real ones, statistic by statistic.

The realism model (:mod:`competition.physics.realism`) is calibrated against the
**aggregate** statistics of the real powder patterns of ``../shared/data/measured``
(152 RRUFF measurements), never against single files. This script draws one
``measured``-profile pattern for each real one, from an AMCSD structure of the
same Bravais lattice (so the two sets have the same lattice mix), puts both
through the same statistics and prints them side by side:

* **peak width**: FWHM (degrees) of the five strongest peaks of each pattern,
  below 35 degrees and from 35 degrees up (median and 10th percentile);
* **peaks**: how many peaks stand above 5 % of the maximum;
* **noise**: point-to-point scatter in units of the maximum, ``1.4826 *
  median(|y[i+1] - y[i]|) / sqrt(2)`` (a robust standard deviation that peaks
  barely move), on the competition's grid (real patterns averaged over its bins,
  as the build reads them);
* **floor**: each pattern's 10th-percentile intensity (the background left).

A figure (``--figure``) draws peak width against angle and the distributions of
the other statistics for both sets.

Run from the repository root::

    .venv/bin/python benchmarks/realism_calibration.py
    .venv/bin/python benchmarks/realism_calibration.py --pool 3000 --figure realism.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from competition.config import BuildConfig
from competition.physics.realism import RealismRanges
from competition.sources.measured import read_measured
from xrd_bravais.contract.grid import Grid

DEFAULT_REAL = REPO.parent / "shared" / "data" / "measured"
SPLIT_ANGLE = 35.0
"""Degrees 2theta: peak widths are reported below and from here up."""
STRONGEST = 5
"""Peaks per pattern whose width is measured."""
PEAK_HEIGHT = 0.05
"""A peak counts when it stands above this share of the maximum."""


def peak_table(X: np.ndarray, grid: Grid) -> pd.DataFrame:
    """Position and FWHM of the :data:`STRONGEST` strongest peaks of every pattern.

    Peaks are local maxima above :data:`PEAK_HEIGHT` with as much prominence and
    at least two grid points wide (a lone noise spike is not a peak); widths at
    half of each peak's prominence (``scipy.signal.peak_widths``), in degrees.

    Returns
    -------
    DataFrame
        ``pattern``, ``two_theta``, ``fwhm``, one row per peak.
    """
    from scipy.signal import find_peaks, peak_widths

    x = grid.two_theta()
    rows = []
    for i, y in enumerate(X):
        y = np.asarray(y, dtype=np.float64) / max(float(np.max(y)), 1e-12)
        peaks, props = find_peaks(y, height=PEAK_HEIGHT, prominence=PEAK_HEIGHT, width=2)
        strongest = peaks[np.argsort(props["peak_heights"])[::-1][:STRONGEST]]
        if not len(strongest):
            continue
        widths = peak_widths(y, strongest, rel_height=0.5)[0] * grid.step
        rows += [(i, x[p], w) for p, w in zip(strongest, widths, strict=True)]
    return pd.DataFrame(rows, columns=["pattern", "two_theta", "fwhm"])


def pattern_table(X: np.ndarray) -> pd.DataFrame:
    """Peak count, noise and floor of every pattern (see the module's docstring)."""
    from scipy.signal import find_peaks

    rows = []
    for y in X:
        y = np.asarray(y, dtype=np.float64) / max(float(np.max(y)), 1e-12)
        n_peaks = len(find_peaks(y, height=PEAK_HEIGHT, prominence=PEAK_HEIGHT, width=2)[0])
        noise = 1.4826 * float(np.median(np.abs(np.diff(y)))) / np.sqrt(2)
        rows.append((n_peaks, noise, float(np.percentile(y, 10))))
    return pd.DataFrame(rows, columns=["peaks", "noise", "floor"])


def summary(X: np.ndarray, grid: Grid) -> dict[str, float]:
    """The figures printed for one set of patterns."""
    peaks = peak_table(X, grid)
    low = peaks[peaks["two_theta"] < SPLIT_ANGLE]["fwhm"]
    high = peaks[peaks["two_theta"] >= SPLIT_ANGLE]["fwhm"]
    per = pattern_table(X)
    return {
        f"FWHM < {SPLIT_ANGLE:g} deg, median": float(low.median()),
        f"FWHM < {SPLIT_ANGLE:g} deg, 10th percentile": float(low.quantile(0.1)),
        f"FWHM >= {SPLIT_ANGLE:g} deg, median": float(high.median()),
        f"FWHM >= {SPLIT_ANGLE:g} deg, 10th percentile": float(high.quantile(0.1)),
        f"peaks above {PEAK_HEIGHT:.0%}, median": float(per["peaks"].median()),
        "noise (share of max), median": float(per["noise"].median()),
        "noise (share of max), 90th percentile": float(per["noise"].quantile(0.9)),
        "floor (10th percentile), median": float(per["floor"].median()),
        "floor (10th percentile), 90th percentile": float(per["floor"].quantile(0.9)),
    }


def simulated_like(lattices: np.ndarray, pool: int, config: BuildConfig,
                   seed: int) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """A measured-profile pattern per entry of ``lattices``, from an AMCSD structure of it.

    The first ``pool`` AMCSD entries of a seeded shuffle are simulated with
    ``config`` (profile ``measured``); for each wanted lattice an unused structure
    of it is drawn (once all are used, they are drawn again). Lattices the pool
    lacks are left out (and named).
    """
    from competition.lattice.pipeline import run_pipeline
    from competition.lattice.worker import StructureRecord
    from competition.sources.catalog import amcsd_source

    entries = list(amcsd_source().entries())
    rng = np.random.default_rng(seed)
    chosen = [entries[i] for i in rng.permutation(len(entries))[:pool]]
    results, _ = run_pipeline(chosen, config, total=len(chosen))
    by_lattice: dict[str, list[np.ndarray]] = {}
    for record in results:
        if isinstance(record, StructureRecord):
            by_lattice.setdefault(record.bravais_lattice, []).append(record.pattern)
    unused = {lattice: list(found) for lattice, found in by_lattice.items()}
    rows, missing = [], []
    for lattice in map(str, lattices):
        if lattice not in by_lattice:
            missing.append(lattice)
            continue
        if not unused[lattice]:
            unused[lattice] = list(by_lattice[lattice])
        rows.append(unused[lattice].pop(int(rng.integers(len(unused[lattice])))))
    return np.stack(rows), missing


def draw_figure(real: np.ndarray, simulated: np.ndarray, grid: Grid, path: Path) -> None:
    """Peak width against angle, and the distributions of peaks, noise and floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    colours = {"real (RRUFF)": "tab:blue", "simulated (measured profile)": "tab:orange"}
    tables = dict(zip(colours, (real, simulated), strict=True))
    bins = np.arange(5, 95, 10)
    for name, X in tables.items():
        peaks = peak_table(X, grid)
        axes[0].scatter(peaks["two_theta"], peaks["fwhm"], s=5, alpha=0.3, color=colours[name])
        where = np.digitize(peaks["two_theta"], bins)
        medians = [peaks["fwhm"][where == k].median() for k in range(1, len(bins))]
        axes[0].plot(bins[:-1] + 5, medians, "-o", color=colours[name], label=name)
        per = pattern_table(X)
        axes[1].hist(per["peaks"], bins=np.arange(0, 61, 3), alpha=0.5, color=colours[name])
        axes[2].hist(np.log10(per["noise"] + 1e-5), bins=30, alpha=0.5, color=colours[name])
        axes[3].hist(per["floor"], bins=np.linspace(0, 0.3, 31), alpha=0.5, color=colours[name])
    axes[0].set(xlabel="2theta (deg)", ylabel="FWHM (deg)", ylim=(0, 0.6),
                title=f"width of the {STRONGEST} strongest peaks")  # fmt: skip
    axes[0].legend()
    axes[1].set(xlabel=f"peaks above {PEAK_HEIGHT:.0%} of the maximum", ylabel="patterns")
    axes[2].set(xlabel="log10 noise (share of the maximum)")
    axes[3].set(xlabel="floor: 10th-percentile intensity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def realism_overrides(settings: list[str]) -> RealismRanges:
    """The default :class:`RealismRanges` with ``FIELD=LOW,HIGH`` (or ``FIELD=P``) changes."""
    from dataclasses import fields, replace

    known = {f.name: f for f in fields(RealismRanges)}
    changes: dict[str, object] = {}
    for setting in settings:
        name, _, text = setting.partition("=")
        if name not in known:
            raise SystemExit(f"--set {setting}: no range {name!r}; choose from {', '.join(known)}")
        numbers = [float(v) for v in text.split(",")]
        kind = type(getattr(RealismRanges(), name))
        changes[name] = tuple(kind(v) if kind is not tuple else v for v in numbers) \
            if len(numbers) > 1 else numbers[0]  # fmt: skip
    return replace(RealismRanges(), **changes)  # type: ignore[arg-type]


def main() -> None:
    """Draw the simulated set, print both sets' statistics, save the figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--pool", type=int, default=2000,
                        help="AMCSD structures simulated to draw the matching set from",
                        )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=Path("realism_calibration.png"))
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="FIELD=LOW,HIGH",
        help="a range of RealismRanges to try instead of its default (one number for a "
        "probability), e.g. --set strain=0,5e-4 --set kalpha2_probability=0.5",
    )
    args = parser.parse_args()

    ranges = realism_overrides(args.overrides)
    config = BuildConfig(profile="measured", seed=args.seed, realism=ranges)
    grid = config.pattern.to_grid()
    real = read_measured(args.real, grid)
    start = time.perf_counter()
    simulated, missing = simulated_like(real.bravais_lattice, args.pool, config, args.seed)
    seconds = time.perf_counter() - start
    print(f"real: {len(real.files)} patterns of {args.real}; simulated: {len(simulated)} "
          f"measured-profile patterns of AMCSD structures of the same lattices ({seconds:.0f} s)"
          + (f"; no structure in the pool for {', '.join(sorted(set(missing)))}" if missing
             else ""))  # fmt: skip
    figures = {"real": summary(real.X, grid), "simulated": summary(simulated, grid)}
    print(f"\n| statistic | real ({len(real.files)}) | simulated ({len(simulated)}) | ratio |")
    print("|---|---:|---:|---:|")
    for name in figures["real"]:
        a, b = figures["real"][name], figures["simulated"][name]
        print(f"| {name} | {a:.4g} | {b:.4g} | {b / a if a else float('nan'):.2f} |")
    draw_figure(real.X, simulated, grid, args.figure)
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
