"""One real measurement beside the simulated patterns of its best-matching training structure.

A build with real measurements shows what the realism model is for: a training
structure's clean pattern, the same reflections drawn through the realism model
(:func:`competition.physics.realism.measured_pattern`), and a real measurement of
the same space group whose pattern it matches best. The real patterns are hidden
test rows, so the picture goes to ``reports/`` and is shown to students only after
the close (a row known to be real, with its label, would leak).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from competition.lattice.spool import PatternSpool
from competition.physics.realism import RealismRanges, measured_pattern
from competition.sources.measured import MeasuredPatterns
from xrd_bravais.contract.grid import Grid
from xrd_bravais.contract.layout import STICK_COLUMNS

CANDIDATES: int = 2000
"""At most this many training structures of a space group are compared with its
measurements (the first by entry id), which bounds the cost on very large builds."""
BLUR_DEGREES: float = 0.3
"""Both patterns are blurred by a Gaussian of this standard deviation (degrees of
2theta) before they are compared, so that peaks a little apart still overlap."""


@dataclass(frozen=True)
class MeasuredExample:
    """A real measurement and the training structure whose pattern matches it best.

    Attributes
    ----------
    file : str
        The measurement's file name.
    spacegroup_number : int
        Its label, shared by the training structure.
    bravais_lattice : str
    entry_id, formula : str
        The training structure.
    cosine : float
        The similarity of the two patterns (blurred, background removed, square root).
    two_theta : ndarray
        The grid, degrees.
    clean, measured_profile, real : ndarray
        The three patterns, maximum 1.
    """

    file: str
    spacegroup_number: int
    bravais_lattice: str
    entry_id: str
    formula: str
    cosine: float
    two_theta: np.ndarray
    clean: np.ndarray
    measured_profile: np.ndarray
    real: np.ndarray


def comparable(patterns: np.ndarray, grid: Grid) -> np.ndarray:
    """Rows ready for a cosine: background removed, blurred, square-rooted, unit length.

    The background of a row is its 20th percentile (a measurement's floor; 0 for a
    clean pattern). The square root lets weak peaks count beside the strongest.
    """
    rows = np.asarray(patterns, dtype=np.float64)
    rows = np.clip(rows - np.quantile(rows, 0.2, axis=1, keepdims=True), 0.0, None)
    rows = np.sqrt(gaussian_filter1d(rows, BLUR_DEGREES / grid.step, axis=1))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def best_matches(
    measured: MeasuredPatterns, train: pd.DataFrame, spool: PatternSpool, grid: Grid
) -> pd.DataFrame:
    """For each measurement, the training structure of its space group that matches best.

    ``train`` has one row per structure (``entry_id``, ``formula``,
    ``spacegroup_number``). Returns one row per measurement that has a candidate:
    ``index`` (into ``measured``), ``entry_id``, ``formula``, ``cosine``.
    """
    found = []
    real = comparable(measured.X, grid)
    for group, members in train.sort_values("entry_id").groupby("spacegroup_number"):
        which = np.flatnonzero(measured.spacegroup_number == group)
        if not len(which):
            continue
        members = members.head(CANDIDATES)
        clean = comparable(spool.patterns(list(members["entry_id"])), grid)
        cosines = real[which] @ clean.T
        for k, row_cosines in zip(which, cosines, strict=True):
            j = int(row_cosines.argmax())
            found.append({"index": int(k), "entry_id": members["entry_id"].iloc[j],
                          "formula": members["formula"].iloc[j],
                          "cosine": float(row_cosines[j])})  # fmt: skip
    return pd.DataFrame(found, columns=["index", "entry_id", "formula", "cosine"])


def choose_example(
    measured: MeasuredPatterns,
    train: pd.DataFrame,
    spool: PatternSpool,
    grid: Grid,
    ranges: RealismRanges,
    seed: int,
) -> MeasuredExample | None:
    """The measurement that a training structure matches best, with its three patterns.

    Ties go to the first file by name, so the choice depends on the data only. The
    measured profile is drawn from the structure's reflections with a generator
    seeded by ``seed``. ``None`` when no measurement shares a space group with a
    training structure.
    """
    matches = best_matches(measured, train, spool, grid)
    if matches.empty:
        return None
    names = np.asarray(measured.files)[matches["index"]]
    best = matches.assign(file=names).sort_values(["cosine", "file"],
                                                  ascending=[False, True]).iloc[0]  # fmt: skip
    k = int(best["index"])
    sticks = spool.sticks(best["entry_id"])
    columns = {name: k for k, name in enumerate(STICK_COLUMNS)}
    profile = measured_pattern(
        sticks[:, columns["d"]], sticks[:, columns["intensity"]], grid,
        np.random.default_rng(seed), ranges,
        normals=sticks[:, [columns["nx"], columns["ny"], columns["nz"]]],
    )  # fmt: skip
    return MeasuredExample(
        file=str(measured.files[k]),
        spacegroup_number=int(measured.spacegroup_number[k]),
        bravais_lattice=str(measured.bravais_lattice[k]),
        entry_id=str(best["entry_id"]),
        formula=str(best["formula"]),
        cosine=float(best["cosine"]),
        two_theta=grid.two_theta(),
        clean=spool.patterns([best["entry_id"]])[0],
        measured_profile=profile,
        real=np.asarray(measured.X[k]),
    )
