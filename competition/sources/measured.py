"""Real measured powder patterns: read, check and resample onto a competition's grid.

An organiser's own measurements come as a folder of two-column text files
(``.xy``, ``.txt`` or ``.csv``: 2theta in degrees and intensity; ``#`` comments
and a header line are skipped) and a ``labels.csv`` of ``file,spacegroup_number``.
:func:`read_measured` turns them into patterns on the competition's grid,
scaled like the built ones (maximum 1, float32), and lists every file it cannot
use with the reason, as ``reports/rejects.csv`` does for CIFs.

Every row of ``labels.csv`` becomes a measured row or a reject with its reason: a
file labelled twice with two labels is left out (both rows listed), a repeated
identical row is listed once, a row naming a file the folder lacks is listed. The
file may be UTF-8 (with or without the byte-order mark Excel writes), UTF-16 with
its mark, or Windows-1252/Latin-1. Files are checked before they are opened: only
regular files (links followed) of at most :data:`MAX_FILE_BYTES`, never a pipe or
a folder; a measurement must lie within 0 < 2theta < 180 degrees, hold at least
:data:`MIN_POINTS` points, and be measured in steps of at most :data:`MAX_STEP`
degrees (or the grid's own step, if coarser). Each file is then averaged over the
bins of the grid (:func:`bin_average`).

Over 400 lines: reading, checking and resampling a folder of measurements are one
stage whose checks refer to one another (each a small function).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from competition.sources.catalog import Rejected
from xrd_bravais.contract.grid import Grid
from xrd_bravais.contract.labels import SPACEGROUP_NUMBERS, bravais_lattice

SUFFIXES: Final = (".xy", ".txt", ".csv")
ENTRY_PREFIX: Final = "measured:"
LABELS_FILE: Final = "labels.csv"
LABEL_COLUMNS: Final = ("file", "spacegroup_number")
FORMULA_COLUMN: Final = "formula"
"""An optional column of ``labels.csv``: the chemical formula of the measured phase
(``CaCO3``, ``Mg0.9Fe0.1SiO3`` ...). Where given, the build keeps that compound out
of training."""
# A measurement may stop short of the grid's ends by at most this much (degrees):
# the missing points are set to the nearest measured value.
EDGE_TOLERANCE: Final = 0.5
MAX_FILE_BYTES: Final = 20 * 2**20
"""The largest measurement (or labels) file read: a scan from 0 to 180 degrees in
steps of 0.001 degrees takes about 4 MB as text."""
MIN_POINTS: Final = 100
"""The fewest data points a measurement may have."""
MAX_STEP: Final = 0.05
"""The coarsest median 2theta step (degrees) accepted on a grid finer than it: a
laboratory peak is about 0.1 degrees wide, so coarser steps lose its shape."""


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
    formula : list of str
        The ``formula`` column of ``labels.csv`` for each pattern ("" where not given).
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
    formula: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    def entry_ids(self) -> list[str]:
        """``measured:<file>`` for each pattern: its entry id in a build's records."""
        return [f"{ENTRY_PREFIX}{name}" for name in self.files]


class MeasuredError(ValueError):
    """The folder cannot be read at all (no labels file, no measurement)."""


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a measurement, found without opening it; else None.

    Links are followed; only a regular file of at most :data:`MAX_FILE_BYTES` passes,
    so a pipe (which would block the build), a folder or a huge sparse file never
    reaches :func:`open`.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return "a link to nothing (the file it points to does not exist)"
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    if stat.S_ISDIR(info.st_mode):
        return "a folder, not a measurement file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a pipe, socket or device): not opened"
    if info.st_size > MAX_FILE_BYTES:
        return (f"{info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} a measurement file "
                "may have: not read")  # fmt: skip
    return None


def _read_bounded(path: Path) -> bytes:
    """The bytes of a checked file, never more than :data:`MAX_FILE_BYTES` of them."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"more than {MAX_FILE_BYTES:,} bytes: not read")
    return data


def decode_text(data: bytes) -> str:
    """Text of a file as the usual tools write it.

    UTF-8 (with or without the BOM), UTF-16 with its BOM, else Windows-1252 (Excel's
    "CSV" on Windows), else Latin-1.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _label_row(row: int) -> str:
    return f"{ENTRY_PREFIX}{LABELS_FILE}:{row}"


def read_labels(folder: Path) -> tuple[dict[str, int], list[Rejected]]:
    """``{file: space group}`` from ``labels.csv``, and every row that is not usable.

    See :func:`read_formulas` for the optional ``formula`` column.

    Raises
    ------
    MeasuredError
        If there is no readable ``labels.csv`` or its header does not name the
        columns ``file`` and ``spacegroup_number`` (the message shows those found).
    """
    path = folder / LABELS_FILE
    if not path.exists() and not path.is_symlink():
        raise MeasuredError(f"{path} not found: give a labels.csv of file,spacegroup_number")
    problem = file_problem(path)
    if problem is not None:
        raise MeasuredError(f"{path}: {problem}")
    reader = csv.reader(io.StringIO(decode_text(_read_bounded(path)), newline=""))
    header = next(reader, [])
    names = [cell.strip().lower() for cell in header]
    if any(column not in names for column in LABEL_COLUMNS):
        found = ",".join(cell.strip() for cell in header) or "nothing (an empty file)"
        raise MeasuredError(
            f"{path}: the first line must name the columns {','.join(LABEL_COLUMNS)}; it has "
            f"{found[:120]}"
        )
    at_file, at_group = (names.index(column) for column in LABEL_COLUMNS)
    labels: dict[str, int] = {}
    first_row: dict[str, int] = {}
    conflicts: dict[str, list[str]] = {}
    rejected = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [*row, "", ""]
        name, text = cells[at_file].strip(), cells[at_group].strip()
        if not name:
            rejected.append(Rejected(_label_row(number), "", "label",
                                     f"labels.csv row {number} names no file"))  # fmt: skip
            continue
        try:
            group = int(text)
        except ValueError:
            group = 0
        if group not in SPACEGROUP_NUMBERS:
            rejected.append(Rejected(_label_row(number), name, "label",
                                     f"labels.csv row {number}: space group {text!r} is not an "
                                     "integer in 1..230"))  # fmt: skip
            continue
        if name not in labels and name not in conflicts:
            labels[name], first_row[name] = group, number
        elif name in labels and labels[name] == group:
            rejected.append(Rejected(
                _label_row(number), name, "label",
                f"labels.csv row {number} repeats row {first_row[name]} ({name},{group}): "
                "the repeat is ignored",
            ))  # fmt: skip
        else:
            if name in labels:
                conflicts[name] = [f"{labels.pop(name)} on row {first_row[name]}"]
            conflicts[name].append(f"{group} on row {number}")
    for name, said in conflicts.items():
        rejected.append(Rejected(
            f"{ENTRY_PREFIX}{name}", name, "label",
            f"labelled {' and '.join(said)} of labels.csv: conflicting labels, so the file is "
            "left out; keep one row for it",
        ))  # fmt: skip
    return labels, rejected


def read_formulas(folder: Path) -> dict[str, str]:
    """``{file: formula}`` from the optional ``formula`` column of ``labels.csv``.

    Rows without a formula are left out; the file's other checks are
    :func:`read_labels`'s (call it first).
    """
    reader = csv.reader(io.StringIO(decode_text(_read_bounded(folder / LABELS_FILE)), newline=""))
    names = [cell.strip().lower() for cell in next(reader, [])]
    if FORMULA_COLUMN not in names:
        return {}
    at_file, at_formula = names.index(LABEL_COLUMNS[0]), names.index(FORMULA_COLUMN)
    found = {}
    for row in reader:
        cells = [*row, *[""] * len(names)]
        name, formula = cells[at_file].strip(), cells[at_formula].strip()
        if name and formula:
            found.setdefault(name, formula)
    return found


def read_two_columns(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """2theta and intensity columns of a measurement file.

    Raises
    ------
    ValueError
        If a data line has fewer than two numeric columns or the file has no data.
    """
    two_theta, intensity = [], []
    problem = file_problem(path)
    if problem is not None:
        raise ValueError(problem)
    lines = decode_text(_read_bounded(path)).splitlines()
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


def bin_average(two_theta: np.ndarray, intensity: np.ndarray, grid: Grid) -> np.ndarray:
    """The mean of the measured curve over each grid point's bin, ``x +- step / 2``.

    The measurement is taken as the straight lines between its points, and each
    bin's value is the exact integral of those lines over the bin divided by its
    width (the part of the bin the measurement covers, at the ends). Every count
    measured counts once: data finer than the grid (0.01-degree steps on a
    0.02-degree grid) are averaged rather than decimated, which halves their
    counting noise's variance as a coarser scan would; on data as coarse as the
    grid it is close to linear interpolation.

    Parameters
    ----------
    two_theta : array (n,)
        Increasing positions, degrees.
    intensity : array (n,)

    Returns
    -------
    ndarray of float64, (grid.n_points,)
    """
    x = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(intensity, dtype=np.float64)
    dx = np.diff(x)
    # The integral of the piecewise-linear curve from x[0] up to each point.
    at_points = np.concatenate([[0.0], np.cumsum(dx * (y[:-1] + y[1:]) / 2)])
    centres = grid.two_theta()
    edges = np.clip(np.concatenate([centres - grid.step / 2, [centres[-1] + grid.step / 2]]),
                    x[0], x[-1])  # fmt: skip
    k = np.clip(np.searchsorted(x, edges, side="right") - 1, 0, len(x) - 2)
    t = edges - x[k]
    slope = (y[k + 1] - y[k]) / dx[k]
    integral = at_points[k] + y[k] * t + slope * t**2 / 2
    width = np.diff(edges)
    averaged = np.diff(integral) / np.where(width > 0, width, 1.0)
    # A bin outside the measurement (within EDGE_TOLERANCE of the grid's ends): the
    # nearest measured value.
    return np.where(width > 0, averaged, np.interp(centres, x, y))


def resample(two_theta: np.ndarray, intensity: np.ndarray, grid: Grid) -> np.ndarray:
    """A measurement averaged over the bins of ``grid`` and divided by its maximum.

    See :func:`bin_average`.

    Raises
    ------
    ValueError
        If the measurement does not cover the grid (within :data:`EDGE_TOLERANCE`),
        is not increasing in 2theta, or has no positive intensity.
    """
    if not np.all(np.isfinite(two_theta)) or not np.all(np.isfinite(intensity)):
        raise ValueError("non-finite values")
    if two_theta.min() <= 0 or two_theta.max() >= 180:
        raise ValueError(
            f"2theta runs from {two_theta.min():g} to {two_theta.max():g} degrees; a "
            "diffractometer measures between 0 and 180: is the first column 2theta?"
        )
    if len(two_theta) < MIN_POINTS:
        raise ValueError(f"{len(two_theta)} data points; a measurement needs at least {MIN_POINTS}")
    if np.any(np.diff(two_theta) <= 0):
        raise ValueError("2theta does not increase line by line")
    step = float(np.median(np.diff(two_theta)))
    coarsest = max(MAX_STEP, grid.step)
    if step > coarsest:
        raise ValueError(
            f"measured in steps of {step:g} degrees; the grid needs steps of at most "
            f"{coarsest:g} (peaks are about 0.1 degrees wide)"
        )
    if (two_theta[0] > grid.two_theta_min + EDGE_TOLERANCE
            or two_theta[-1] < grid.two_theta_max - EDGE_TOLERANCE):  # fmt: skip
        raise ValueError(
            f"measured from {two_theta[0]:g} to {two_theta[-1]:g} degrees but the competition's "
            f"grid runs from {grid.two_theta_min:g} to {grid.two_theta_max:g}"
        )
    values = bin_average(two_theta, intensity, grid)
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
    if not root.is_dir():
        raise MeasuredError(f"{root} is not a folder of measurements")
    labels, rejected = read_labels(root)
    formulas = read_formulas(root)
    # Files whose every label row was refused: listed already, not listed again.
    unusable = {r.source_file for r in rejected} - set(labels)
    files, rows, groups = [], [], []
    candidates = sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES
                        and p.name != LABELS_FILE)  # fmt: skip
    for path in candidates:
        entry = f"{ENTRY_PREFIX}{path.name}"
        if path.name in unusable:
            continue  # its label is unusable: already listed
        if path.name not in labels:
            rejected.append(Rejected(entry, path.name, "label", "no row in labels.csv"))
            continue
        try:
            pattern = resample(*read_two_columns(path), grid)
        except (ValueError, OSError) as err:
            reason = str(err) if isinstance(err, ValueError) else err.strerror or str(err)
            rejected.append(Rejected(entry, path.name, "measured", reason))
            continue
        files.append(path.name)
        rows.append(pattern)
        groups.append(labels[path.name])
    present = {p.name for p in candidates}
    for name in sorted(set(labels) - present):
        where = root / name
        reason = (f"labels.csv names {name!r}, which is not a measurement file "
                  f"({', '.join(SUFFIXES)})" if where.exists() or where.is_symlink()
                  else f"labels.csv names {name!r}, which is not in the folder")  # fmt: skip
        rejected.append(Rejected(f"{ENTRY_PREFIX}{name}", name, "label", reason))
    if not rows:
        shown = "; ".join(f"{r.source_file or r.entry_id}: {r.reason}" for r in rejected[:3])
        more = f"; and {len(rejected) - 3} more" if len(rejected) > 3 else ""
        raise MeasuredError(
            f"no usable measurement in {root} ({len(rejected)} rejected: {shown}{more})"
        )
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
        "n_with_formula": sum(name in formulas for name in files),
    }
    return MeasuredPatterns(
        files=files,
        X=np.stack(rows),
        spacegroup_number=number,
        bravais_lattice=np.asarray([bravais_lattice(int(g)) for g in number]),
        rejected=rejected,
        description=description,
        formula=[formulas.get(name, "") for name in files],
    )
