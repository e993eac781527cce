"""Real measured powder patterns: read, check and resample onto a competition's grid.

An organiser's own measurements come as a folder of two-column text files
(``.xy``, ``.txt`` or ``.csv``: 2theta in degrees and intensity; ``#`` comments
and a header line are skipped) and a ``labels.csv`` of ``file,spacegroup_number``.
:func:`read_measured` turns them into patterns on the competition's grid,
scaled like the built ones (maximum 1, float32), and lists every file it cannot
use with the reason, as ``reports/rejects.csv`` does for CIFs.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from competition.sources import Rejected
from contract.grid import Grid
from contract.labels import SPACEGROUP_NUMBERS, bravais_lattice

SUFFIXES: Final = (".xy", ".txt", ".csv")
ENTRY_PREFIX: Final = "measured:"
LABELS_FILE: Final = "labels.csv"
# A measurement may stop short of the grid's ends by at most this much (degrees):
# the missing points are set to the nearest measured value.
EDGE_TOLERANCE: Final = 0.5


@dataclass(frozen=True)
class MeasuredPatterns:
    """Patterns read from a folder of measurements.

    Attributes
    ----------
    files : list of str
        File names, sorted.
    X : ndarray of float32, shape (n, grid.n_points)
        Intensities on the grid, maximum 1 per row.
    spacegroup_number : ndarray of int
    bravais_lattice : ndarray of str
    rejected : list of Rejected
        Every file (or label) that could not be used, with the reason.
    description : dict
        Provenance for a manifest: the folder, how many files were used and
        rejected, and one sha256 over ``labels.csv`` and every file used.
    """

    files: list[str]
    X: np.ndarray
    spacegroup_number: np.ndarray
    bravais_lattice: np.ndarray
    rejected: list[Rejected]
    description: dict[str, object]

    def __len__(self) -> int:
        return len(self.files)

    def entry_ids(self) -> list[str]:
        """``measured:<file>`` for each pattern: its entry id in a build's records."""
        return [f"{ENTRY_PREFIX}{name}" for name in self.files]


class MeasuredError(ValueError):
    """The folder cannot be read at all (no labels file, no measurement)."""


def read_labels(folder: Path) -> tuple[dict[str, int], list[Rejected]]:
    """``{file: space group}`` from ``labels.csv``, and the rows that are not usable."""
    path = folder / LABELS_FILE
    if not path.is_file():
        raise MeasuredError(f"{path} not found: give a labels.csv of file,spacegroup_number")
    labels: dict[str, int] = {}
    rejected = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = (row.get("file") or "").strip()
            text = (row.get("spacegroup_number") or "").strip()
            try:
                number = int(text)
            except ValueError:
                number = 0
            if number not in SPACEGROUP_NUMBERS:
                rejected.append(Rejected(f"{ENTRY_PREFIX}{name}", name, "label",
                                         f"space group {text!r} is not an integer in 1..230"))
                continue
            labels[name] = number
    return labels, rejected


def read_two_columns(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """2theta and intensity columns of a measurement file.

    Raises
    ------
    ValueError
        If a data line has fewer than two numeric columns or the file has no data.
    """
    two_theta, intensity = [], []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.replace(",", " ").replace(";", " ").split()
        try:
            x, y = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            if not two_theta:  # a header line before the data
                continue
            raise ValueError(f"line {number} is not two numbers: {line[:60]!r}") from None
        two_theta.append(x)
        intensity.append(y)
    if len(two_theta) < 2:
        raise ValueError("no data: expected two columns, 2theta (degrees) and intensity")
    return np.asarray(two_theta), np.asarray(intensity)


def resample(two_theta: np.ndarray, intensity: np.ndarray, grid: Grid) -> np.ndarray:
    """A measurement linearly interpolated onto ``grid`` and divided by its maximum.

    Raises
    ------
    ValueError
        If the measurement does not cover the grid (within :data:`EDGE_TOLERANCE`),
        is not increasing in 2theta, or has no positive intensity.
    """
    if not np.all(np.isfinite(two_theta)) or not np.all(np.isfinite(intensity)):
        raise ValueError("non-finite values")
    if np.any(np.diff(two_theta) <= 0):
        raise ValueError("2theta does not increase line by line")
    if (two_theta[0] > grid.two_theta_min + EDGE_TOLERANCE
            or two_theta[-1] < grid.two_theta_max - EDGE_TOLERANCE):  # fmt: skip
        raise ValueError(
            f"measured from {two_theta[0]:g} to {two_theta[-1]:g} degrees but the competition's "
            f"grid runs from {grid.two_theta_min:g} to {grid.two_theta_max:g}"
        )
    values = np.interp(grid.two_theta(), two_theta, intensity)
    values = values - min(values.min(), 0.0)  # a negative baseline correction
    top = values.max()
    if not top > 0:
        raise ValueError("no positive intensity")
    return (values / top).astype(np.float32)


def read_measured(folder: str | os.PathLike[str], grid: Grid) -> MeasuredPatterns:
    """Every labelled measurement of ``folder`` on ``grid``, and every reject.

    A grid of another radiation than Cu K-alpha cannot take laboratory Cu
    measurements: that is refused outright.

    Raises
    ------
    MeasuredError
        If the grid is not Cu K-alpha, the folder has no ``labels.csv``, or no
        file could be used.
    """
    root = Path(folder)
    if not grid.wavelength.startswith("CuKa"):
        raise MeasuredError(f"measurements are Cu K-alpha; this grid is {grid.wavelength}")
    labels, rejected = read_labels(root)
    files, rows, groups = [], [], []
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES
                       and p.name != LABELS_FILE):  # fmt: skip
        entry = f"{ENTRY_PREFIX}{path.name}"
        if any(r.source_file == path.name for r in rejected):
            continue  # its label is unusable: already listed
        if path.name not in labels:
            rejected.append(Rejected(entry, path.name, "label", "no row in labels.csv"))
            continue
        try:
            pattern = resample(*read_two_columns(path), grid)
        except ValueError as err:
            rejected.append(Rejected(entry, path.name, "measured", str(err)))
            continue
        files.append(path.name)
        rows.append(pattern)
        groups.append(labels[path.name])
    if not rows:
        raise MeasuredError(f"no usable measurement in {root} ({len(rejected)} rejected)")
    number = np.asarray(groups, dtype=np.int64)
    # One digest over the labels and every file used, in name order: a manifest
    # then says exactly which measurements the Measured portion holds.
    digest = hashlib.sha256()
    for name in [LABELS_FILE, *files]:
        digest.update(name.encode() + b"\0" + hashlib.sha256((root / name).read_bytes()).digest())
    description: dict[str, object] = {
        "folder": root.resolve().name,
        "n_used": len(files),
        "n_rejected": len(rejected),
        "sha256": digest.hexdigest(),
    }
    return MeasuredPatterns(
        files=files,
        X=np.stack(rows),
        spacegroup_number=number,
        bravais_lattice=np.asarray([bravais_lattice(int(g)) for g in number]),
        rejected=rejected,
        description=description,
    )
