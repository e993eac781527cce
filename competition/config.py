"""Configuration of a build: the 2theta grid presets and every tunable default.

This is the one place that spells the grid (``5..90 deg, step 0.02``), the
broadening and the build defaults. The pattern part of the configuration is
hashed into the per-structure cache key, so changing it recomputes patterns while
changing, say, the per-class cap reuses them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

import numpy as np

from competition.physics.diffraction import ENGINES
from competition.physics.realism import RealismRanges
from competition.sources.reader import READERS
from xrd_bravais.contract.grid import FWHM_PER_SIGMA, SCHEMA_METADATA_KEY, Grid

__all__ = [
    "FWHM_PER_SIGMA", "PRESETS", "SCHEMA_METADATA_KEY", "BuildConfig", "PatternConfig",
]  # fmt: skip



@dataclass(frozen=True)
class PatternConfig:
    """How a powder pattern is simulated and sampled.

    The stick pattern of pymatgen's ``XRDCalculator`` (kinematic intensities with
    atomic scattering factors, Lorentz-polarisation factor and multiplicities) is
    broadened with a Gaussian of the given FWHM onto the grid
    ``two_theta_min + step * k`` for ``k = 0 .. n_points - 1`` and scaled so that
    its maximum is 1.

    Parameters
    ----------
    two_theta_min, two_theta_max : float
        First and last grid point, in degrees 2theta (both included).
    step : float
        Grid spacing in degrees.
    fwhm : float
        Full width at half maximum of the Gaussian peak shape, in degrees.
    wavelength : str
        A radiation name known to pymatgen's ``WAVELENGTHS`` (``"CuKa"``).
    """

    two_theta_min: float
    two_theta_max: float
    step: float
    fwhm: float
    wavelength: str = "CuKa"

    def __post_init__(self) -> None:
        self.to_grid()  # checks the range and the step

    def to_grid(self) -> Grid:
        """The grid these patterns are sampled on, as stored with the data."""
        return Grid.spanning(
            self.two_theta_min, self.two_theta_max, self.step, self.wavelength, self.fwhm
        )

    # The grid's own arithmetic, in one place (xrd_bravais.contract.grid.Grid).
    @property
    def n_points(self) -> int:
        """Number of grid points, both ends included."""
        return self.to_grid().n_points

    @property
    def sigma(self) -> float:
        """Standard deviation of the Gaussian peak, in degrees."""
        return self.to_grid().sigma

    def grid(self) -> np.ndarray:
        """The 2theta grid in degrees, float64, ``n_points`` long."""
        return self.to_grid().two_theta()

    def column_names(self) -> list[str]:
        """Intensity column names ``y0 .. y{N-1}`` (the original course's naming)."""
        return self.to_grid().column_names()

    def describe(self) -> dict[str, Any]:
        """The grid as stored in the manifest and the parquet schema metadata."""
        return self.to_grid().to_dict()


PROFILES: Final = ("clean", "measured")
"""How patterns are made: ideal peaks, or drawn through the realism model."""
SOURCE_SYMPREC: Final = {"archive": 0.1}
"""spglib tolerance (Angstrom) by source kind where it differs from the default 0.01:
an archive is taken to hold relaxed, computed cells (the Materials Project labels its
own at symprec 0.1, angle tolerance 5 degrees), whose numerical noise 0.01 reads as a
lower symmetry. A packed mirror of experimental files (COD) wants ``--symprec 0.01``."""


def symprec_for(kind: str) -> float:
    """The default spglib tolerance of a source kind (:data:`SOURCE_SYMPREC`, else 0.01)."""
    return SOURCE_SYMPREC.get(str(kind), BuildConfig.symprec)


RECORD_VERSION: Final = 3
"""Changes whenever a per-structure result gains or changes a field, or its physics
changes (2: the reflections' table; 3: Debye-Waller factors, the compound formula
per formula unit), so that a cache never returns a record of the old kind."""

CUSTOM_PRESET: Final = "custom"
"""The preset name a build records when it was given a grid of its own."""

PRESETS: Final[dict[str, PatternConfig]] = {
    # Cu K-alpha, 5..90 deg at 0.02 deg (4251 points), FWHM 0.1 deg: a lab diffractometer.
    "default": PatternConfig(two_theta_min=5.0, two_theta_max=90.0, step=0.02, fwhm=0.1),
    # The original course format: 0.5..90 deg at 0.5 deg (180 points), Gaussian
    # smearing of 0.2 deg, where "smearing" is the standard deviation.
    "nano281": PatternConfig(
        two_theta_min=0.5, two_theta_max=90.0, step=0.5, fwhm=0.2 * FWHM_PER_SIGMA
    ),
}


@dataclass(frozen=True)
class BuildConfig:
    """Every setting that shapes a built competition.

    Parameters
    ----------
    preset : str
        Name of the pattern preset in :data:`PRESETS`; ``"custom"`` with ``pattern``.
    pattern : PatternConfig, optional
        A grid and peak width of your own (``preset="custom"``); default: the
        preset's. On the command line: ``--grid MIN:MAX:STEP`` and ``--fwhm``.
    symprec : float
        spglib distance tolerance in Angstrom for the space-group label. 0.01
        agrees with the space group declared in the CIF more often than 0.1 on the
        real files (96.3 % against 93.6 % on 517 COD entries, 98.8 % against
        97.7 % on 512 AMCSD entries; docs/labels.md): the looser tolerance finds
        supergroups of slightly distorted structures.
    symprec_ladder : tuple of float
        Larger tolerances to try, in increasing order, when spglib at ``symprec``
        does not find the space group the CIF declares: the first that finds it
        labels the entry (see :func:`competition.lattice.labels.ladder_labels`). Empty by
        default, which suits experimental files (COD, AMCSD); relaxed computed
        structures carry noise of a few 0.01 A and want e.g. ``(0.05, 0.1)``.
    angle_tolerance : float
        spglib angle tolerance in degrees.
    max_sites : int
        Structures with more sites in the unit cell are rejected.
    timeout : float
        Seconds allowed per structure (parse + symmetry + pattern).
    per_class : int
        At most this many structures per Bravais lattice.
    test_fraction, public_fraction : float
        Share of the structures in the test set, and share of the test set scored
        on the public leaderboard.
    measured_public_fraction : float
        With real measurements in the test set (``measured_test``): the share of
        each lattice's measurements scored on the Public board during the course
        (portion MeasuredPublic); the rest stay hidden until the close. Default 0.
    min_test_per_lattice : int
        Test rows per lattice in each of the Public and Private portions, as far as
        the source has them: a lattice whose share (``test_fraction``,
        ``public_fraction``) would give fewer sends more structures to the test set,
        up to half of them (all of them where extra training sources hold twice
        the minimum of that lattice: they train it); 0 keeps the plain shares.
    seed : int
        Seed of every random choice (balance, split, ids, and the measurement
        of each pattern with the ``measured`` profile).
    profile : {"clean", "measured"}
        ``clean``: Gaussian peaks on a zero background. ``measured``: each pattern
        drawn through the realism model (:mod:`competition.physics.realism`), with a
        generator seeded by ``seed`` and the entry id.
    realism : RealismRanges
        The ranges of the ``measured`` profile.
    engine : {"vectorised", "pymatgen"}
        What computes the reflections (:mod:`competition.physics.diffraction`): the
        array engine (default), or pymatgen's ``XRDCalculator``, the reference.
        Their patterns agree within 1e-3 of the maximum.
    reader : {"arrays", "pymatgen"}
        How a CIF block becomes a structure (:mod:`competition.sources.reader`): array
        code that follows pymatgen's rules (default; pymatgen wherever it must
        decide), or pymatgen's ``CifParser`` throughout. The structures are the
        same.
    draws : int
        Patterns per training structure with the ``measured`` profile, each
        drawn with its own instrument, sample and noise (test structures are
        drawn once). Draw 0 is the pattern a one-draw build has.
    dedup_length_rtol, dedup_angle_atol : float
        Two entries with the same reduced formula and space group are repeats when
        their conventional cell lengths agree within this relative tolerance and
        their angles within this many degrees.
    """

    preset: str = "default"
    symprec: float = 0.01
    symprec_ladder: tuple[float, ...] = ()
    angle_tolerance: float = 5.0
    max_sites: int = 500
    timeout: float = 120.0
    per_class: int = 3000
    test_fraction: float = 0.2
    public_fraction: float = 0.3
    min_test_per_lattice: int = 10
    measured_public_fraction: float = 0.0
    seed: int = 0
    dedup_length_rtol: float = 2e-3
    dedup_angle_atol: float = 0.2
    pattern: PatternConfig | None = None
    profile: str = "clean"
    realism: RealismRanges = field(default_factory=RealismRanges)
    draws: int = 1
    engine: str = ENGINES[0]
    reader: str = READERS[0]

    def __post_init__(self) -> None:
        if self.pattern is None:
            if self.preset not in PRESETS:
                raise ValueError(
                    f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}, or give "
                    "a pattern=PatternConfig(...) of your own with preset='custom'"
                )
            object.__setattr__(self, "pattern", PRESETS[self.preset])
        elif self.preset != CUSTOM_PRESET and self.pattern != PRESETS.get(self.preset):
            raise ValueError(
                f"preset {self.preset!r} and a pattern of your own disagree; with "
                f"pattern=..., say preset={CUSTOM_PRESET!r}"
            )
        for name in ("test_fraction", "public_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.per_class < 1 or self.max_sites < 1:
            raise ValueError("per_class and max_sites must be at least 1")
        if not 0 <= self.measured_public_fraction <= 1:
            raise ValueError("measured_public_fraction must be between 0 and 1, got "
                             f"{self.measured_public_fraction}")  # fmt: skip
        if self.min_test_per_lattice < 0:
            raise ValueError(
                f"min_test_per_lattice must be 0 or more, got {self.min_test_per_lattice}"
            )
        if self.profile not in PROFILES:
            choices = ", ".join(PROFILES)
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {choices}")
        if self.engine not in ENGINES:
            choices = ", ".join(ENGINES)
            raise ValueError(f"unknown engine {self.engine!r}; choose one of {choices}")
        if self.reader not in READERS:
            choices = ", ".join(READERS)
            raise ValueError(f"unknown reader {self.reader!r}; choose one of {choices}")
        if not (isinstance(self.draws, int) and self.draws >= 1):
            raise ValueError(f"draws must be a positive integer, got {self.draws!r}")
        if self.draws > 1 and self.profile == "clean":
            raise ValueError(
                f"draws={self.draws} needs profile 'measured': a clean pattern is the same "
                "every time it is drawn"
            )
        if self.symprec <= 0 or self.timeout <= 0:
            raise ValueError("symprec and timeout must be positive")
        ladder = tuple(float(t) for t in self.symprec_ladder)
        if any(not t > self.symprec for t in ladder) or list(ladder) != sorted(set(ladder)):
            raise ValueError(
                f"the symprec ladder must list increasing tolerances above symprec "
                f"{self.symprec:g}, got {', '.join(f'{t:g}' for t in ladder)}"
            )
        object.__setattr__(self, "symprec_ladder", ladder)

    def with_(self, **changes: Any) -> BuildConfig:
        """Return a copy with some settings changed (a new preset brings its grid)."""
        if "preset" in changes and "pattern" not in changes:
            changes["pattern"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """All settings but the grid, JSON-ready.

        The manifest stores the grid once, under ``grid``, as
        :meth:`PatternConfig.describe` gives it.
        """
        out = asdict(self)
        out.pop("pattern")
        return out

    def structure_key(self) -> str:
        """Hash of the settings that change a per-structure result (cache key part).

        ``timeout`` is left out: a structure that finishes gives the same result
        whatever its time limit was.
        """
        relevant = {
            "record": RECORD_VERSION,
            "pattern": asdict(self.pattern),
            "symprec": self.symprec,
            "angle_tolerance": self.angle_tolerance,
            # Only when set, so the keys of existing caches stay valid.
            **({"symprec_ladder": list(self.symprec_ladder)} if self.symprec_ladder else {}),
            "max_sites": self.max_sites,
            "engine": self.engine,
            "reader": self.reader,
            # Only for measured patterns, which depend on the seed and every range.
            **({"profile": self.profile, "seed": self.seed, "realism": asdict(self.realism)}
               if self.profile != "clean" else {}),
            **({"draws": self.draws} if self.draws > 1 else {}),
        }
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
