"""The on-disk layout of a built competition: every path, file name, column and portion.

``../shared/DESIGN.md`` fixes the layout; this module spells it once::

    <root>/manifest.json
    <root>/public/{train.parquet, train_sticks.parquet, train_meta.parquet,
                   test.parquet, sample_submission*.csv, DATA.md, overview.png}
    <root>/private/{solution.csv, test_meta.parquet}
    <root>/reports/{rejects.csv, overview.png, measured_example.png}
    <root>/leaderboard/leaderboard.sqlite      (the grader's store, added later)
    <root>/baselines/ and submissions/         (the reference models, added later)

Paths are relative to the competition folder (POSIX strings, as the manifest
records them); :class:`Layout` joins them to a root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

MANIFEST: Final = "manifest.json"
PUBLIC: Final = "public"
PRIVATE: Final = "private"
REPORTS: Final = "reports"
BUILT_FOLDERS: Final = (PUBLIC, PRIVATE, REPORTS)
"""The folders a build writes and the manifest covers."""

TRAIN: Final = "public/train.parquet"
TRAIN_STICKS: Final = "public/train_sticks.parquet"
"""The reflections of every training row, for augmentation that re-renders them."""
TEST: Final = "public/test.parquet"
DATA_CARD: Final = "public/DATA.md"
SOLUTION: Final = "private/solution.csv"
TRAIN_META: Final = "public/train_meta.parquet"
TEST_META: Final = "private/test_meta.parquet"
EXTRA_ENTRY_PREFIX: Final = "train-extra"
"""How ``train_meta.parquet``'s ``entry_id`` begins for a training row whose structure came
from ``--train-extra`` (``train-extra:``, ``train-extra2:`` ...) rather than the build's
own source."""
GENERATED_ENTRY_PREFIX: Final = "train-generated"
"""How it begins for a generated crystal (``--train-generated``)."""
REJECTS: Final = "reports/rejects.csv"
OVERVIEW: Final = "reports/overview.png"
"""The organisers' overview: structures per lattice in train and test."""
PUBLIC_OVERVIEW: Final = "public/overview.png"
"""The students' overview: training structures per lattice, one pattern of each."""
MEASURED_EXAMPLE: Final = "reports/measured_example.png"
"""A real measurement below the clean and measured-profile patterns of its best match
(builds with real measurements; shown to students after the close)."""
AMENDMENTS: Final = "private/amendments"
"""Where each answer key replaced by an amendment is kept."""

LEADERBOARD: Final = "leaderboard"
LEADERBOARD_DB: Final = f"{LEADERBOARD}/leaderboard.sqlite"
BASELINES: Final = "baselines"
SUBMISSIONS: Final = "submissions"
LIVE_FOLDERS: Final = (LEADERBOARD, BASELINES, SUBMISSIONS)
"""Folders that the grader and the baselines add to a built competition: a course
in progress. They change after the build and are not in the manifest."""

# Columns.
ID: Final = "id"
USAGE: Final = "Usage"
FORMULA: Final = "formula"
SPACEGROUP: Final = "spacegroup_number"
LATTICE: Final = "bravais_lattice"
COD_ID: Final = "cod_id"
SOLUTION_COLUMNS: Final = (ID, LATTICE, SPACEGROUP, USAGE)
TRAIN_LABEL_COLUMNS: Final = (ID, COD_ID, FORMULA, SPACEGROUP, LATTICE)
"""The columns of ``train.parquet`` before the intensities ``y0 .. y{N-1}``."""
IMAGE_METADATA_KEY: Final = b"xrd_bravais.images"
"""Parquet schema-metadata key of an aggregates build's ``train``/``test.parquet``:
``{"size": N, "channels": [...]}``, so a row ``y0 ..`` reshapes to ``(channels, N, N)``."""
PATTERN_QUANTUM: Final = 2.0**-11
"""Intensities in ``train.parquet`` and ``test.parquet`` are multiples of this share of
their row's maximum (1): off by at most half of it (0.00024) from the simulated value,
which lets the files take about a quarter of the space. Recorded in each file's schema
metadata under :data:`PATTERN_QUANTUM_KEY`."""
PATTERN_QUANTUM_KEY: Final = b"xrd_bravais.quantum"
STICK_COLUMNS: Final = ("two_theta", "d", "intensity", "h", "k", "l", "nx", "ny", "nz")
"""One reflection of ``train_sticks.parquet`` (after the row's ``id``): 2theta (degrees,
the grid's wavelength), d-spacing (Angstrom), intensity relative to the strongest, the
``hkl`` that names the peak (the largest of its first family), and its reciprocal-lattice
vector (Cartesian, 1/A)."""

# Portions of the test set (values of the ``Usage`` column, as on Kaggle) and the
# three splits a build counts structures in (the training set and both portions).
PUBLIC_PORTION: Final = "Public"
PRIVATE_PORTION: Final = "Private"
MEASURED_PORTION: Final = "Measured"
MEASURED_PUBLIC_PORTION: Final = "MeasuredPublic"
PORTIONS: Final = (PUBLIC_PORTION, PRIVATE_PORTION)
"""The portions every competition has."""
ALL_PORTIONS: Final = (*PORTIONS, MEASURED_PORTION, MEASURED_PUBLIC_PORTION)
"""Every value ``Usage`` may take: the Measured portion holds an organiser's real
measurements (``build --measured-test``) and is optional; MeasuredPublic holds the
share of them scored on the Public board during the course
(``build --measured-public-fraction``), also optional."""
HIDDEN_PORTIONS: Final = (PRIVATE_PORTION, MEASURED_PORTION)
"""Portions whose scores stay hidden until the competition is closed."""
SPLITS: Final = ("train", "public", "private")
"""Keys of the manifest's per-split counts: the training set, then each portion."""
MEASURED_SPLIT: Final = "measured"
"""The key of the Measured portion's counts, present only where it exists."""
MEASURED_PUBLIC_TITLE: Final = "Public (real measurements)"
"""How the MeasuredPublic portion is named to students (receipts, the score command)."""
MEASURED_PUBLIC_SPLIT: Final = "measured_public"
"""The key of the MeasuredPublic portion's counts, present only where it exists (those
rows are counted under :data:`MEASURED_SPLIT` too, which holds every real measurement)."""


DEFAULT_TRACK_NAME: Final = "bravais"
"""The track whose files carry no suffix (the competition's first, historically)."""


def track_suffix(track: str) -> str:
    """The file-name suffix of a track: ``""`` for the default, ``"_<track>"`` otherwise.

    The one rule behind the names of sample submissions and baseline submissions.

    Examples
    --------
    >>> track_suffix("bravais"), track_suffix("spacegroup")
    ('', '_spacegroup')
    """
    return "" if track == DEFAULT_TRACK_NAME else f"_{track}"


def sample_submission(track: str) -> str:
    """The sample submission of a track, relative to the competition folder.

    ``public/sample_submission.csv`` for the default track,
    ``public/sample_submission_<track>.csv`` for the others.
    """
    return f"{PUBLIC}/sample_submission{track_suffix(track)}.csv"


def compound_key(formula: object, spacegroup: object) -> npt.NDArray[np.str_]:
    """``formula|space group``: entries that share it are one compound.

    The builder keeps a compound on one side of the train/test split, and
    cross-validation groups folds by it for the same reason.

    Parameters
    ----------
    formula, spacegroup : scalar or array-like
        Reduced formulas and space-group numbers (same length).

    Examples
    --------
    >>> compound_key(["NaCl", "SiO2"], [225, 154]).tolist()
    ['NaCl|225', 'SiO2|154']
    """
    formulas = np.asarray(formula, dtype=object).astype(str)
    groups = np.asarray(spacegroup, dtype=object).astype(str)
    return np.char.add(np.char.add(formulas, "|"), groups)


@dataclass(frozen=True)
class Layout:
    """The paths of one competition folder.

    Examples
    --------
    >>> Layout("comp").solution.as_posix()
    'comp/private/solution.csv'
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    def path(self, relative: str) -> Path:
        """``root / relative`` for a path of this module."""
        return self.root / relative

    @property
    def manifest(self) -> Path:
        """``manifest.json``."""
        return self.root / MANIFEST

    @property
    def public(self) -> Path:
        """The folder students receive."""
        return self.root / PUBLIC

    @property
    def private(self) -> Path:
        """The organisers' folder: the answer key and the provenance of every row."""
        return self.root / PRIVATE

    @property
    def train(self) -> Path:
        """``public/train.parquet``."""
        return self.root / TRAIN

    @property
    def test(self) -> Path:
        """``public/test.parquet``."""
        return self.root / TEST

    @property
    def solution(self) -> Path:
        """``private/solution.csv``: the answer key."""
        return self.root / SOLUTION

    @property
    def leaderboard_db(self) -> Path:
        """The grader's SQLite store."""
        return self.root / LEADERBOARD_DB

    def sample_submission(self, track: str) -> Path:
        """The sample submission of ``track``."""
        return self.root / sample_submission(track)

    def is_built(self) -> bool:
        """Whether the folder holds a complete build (it has a manifest)."""
        return self.manifest.is_file()
