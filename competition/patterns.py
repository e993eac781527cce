"""Simulated powder patterns: pymatgen stick patterns broadened onto the fixed grid.

The stick pattern comes from pymatgen's ``XRDCalculator``: for every reflection
``hkl`` with ``2 theta`` in range it gives the kinematic intensity

    I_hkl = |F_hkl|^2 * m_hkl * (1 + cos^2 2theta) / (sin^2 theta cos theta)

(structure factor with atomic scattering factors, multiplicity, Lorentz-
polarisation factor). Each stick is then spread as a normalised Gaussian

    y(x) = sum_hkl I_hkl * exp(-(x - 2theta_hkl)^2 / (2 sigma^2)),
    sigma = FWHM / (2 sqrt(2 ln 2)),

evaluated on the grid of :class:`competition.config.PatternConfig`, and the
result is scaled so that its maximum is 1 and stored as float32.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from competition.config import PatternConfig
from competition.structures import RejectError
from contract.grid import Grid
from contract.layout import STICK_COLUMNS

if TYPE_CHECKING:
    from pymatgen.core import Structure

# A Gaussian is cut at this many standard deviations: the tail beyond holds
# exp(-6^2/2) = 1.5e-8 of the peak height, far below float32 resolution near 1.
TRUNCATE_SIGMAS: Final = 6.0


def _diffraction(structure: Structure, config: PatternConfig) -> Any:
    """The pymatgen diffraction pattern over the grid's range (see :func:`stick_pattern`)."""
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS, XRDCalculator

    margin = TRUNCATE_SIGMAS * config.sigma
    lo = max(0.0, config.two_theta_min - margin)
    hi = min(179.0, config.two_theta_max + margin)
    # Bragg: a reflection needs d >= lambda / (2 sin theta_max). The largest d-spacing
    # is 1 / (shortest reciprocal vector), found in a Niggli-reduced basis. pymatgen
    # fails with an obscure error when no reflection exists, so check first.
    reciprocal = structure.lattice.reciprocal_lattice_crystallographic
    d_max = 1.0 / min(reciprocal.get_niggli_reduced_lattice().abc)
    if WAVELENGTHS[config.wavelength] / (2 * d_max) > np.sin(np.radians(hi / 2)):
        raise RejectError(
            "pattern",
            f"no reflection below {config.two_theta_max:g} deg 2theta: the largest "
            f"d-spacing ({d_max:.3g} A) is too small for {config.wavelength}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = XRDCalculator(wavelength=config.wavelength)
            pattern = calc.get_pattern(structure, scaled=False, two_theta_range=(lo, hi))
    except Exception as err:
        raise RejectError("pattern", f"XRDCalculator failed: {type(err).__name__}: {err}") from None
    return pattern


def stick_pattern(structure: Structure, config: PatternConfig) -> tuple[np.ndarray, np.ndarray]:
    """Reflection positions (degrees 2theta) and intensities of ``structure``.

    Sticks up to ``TRUNCATE_SIGMAS`` standard deviations outside the grid are
    included, since their tails reach into it.

    Raises
    ------
    RejectError
        With stage ``pattern`` when pymatgen cannot compute the pattern (an
        element without scattering factors, say).
    """
    pattern = _diffraction(structure, config)
    return np.asarray(pattern.x, dtype=np.float64), np.asarray(pattern.y, dtype=np.float64)


def stick_table(pattern: Any, structure: Structure) -> np.ndarray:
    """The reflections of a pymatgen pattern as rows of :data:`STICK_COLUMNS`, float64.

    ``intensity`` is relative to the strongest reflection (1); ``h, k, l`` are the
    first listed indices of each family, in the cell of ``structure``; ``nx, ny,
    nz`` their reciprocal-lattice vector in Cartesian coordinates (1/Angstrom),
    the direction texture acts along.
    """
    hkl = _first_hkl(pattern)
    normals = hkl @ structure.lattice.reciprocal_lattice_crystallographic.matrix
    intensity = np.asarray(pattern.y, dtype=np.float64)
    top = intensity.max(initial=0.0)
    return np.column_stack([
        np.asarray(pattern.x, dtype=np.float64), np.asarray(pattern.d_hkls, dtype=np.float64),
        intensity / top if top > 0 else intensity, hkl, normals,
    ]) if len(intensity) else np.empty((0, len(STICK_COLUMNS)))  # fmt: skip


def _first_hkl(pattern: Any) -> np.ndarray:
    # Hexagonal lattices are listed with four indices (h, k, i, l); i = -(h + k).
    return np.array([(h[0]["hkl"][0], h[0]["hkl"][1], h[0]["hkl"][-1]) for h in pattern.hkls],
                    dtype=np.float64).reshape(-1, 3)  # fmt: skip


def broaden(two_theta: np.ndarray, intensity: np.ndarray, config: PatternConfig) -> np.ndarray:
    """Spread sticks as Gaussians onto the grid (unnormalised, float64).

    Each stick only touches the grid points within ``TRUNCATE_SIGMAS`` standard
    deviations, so the cost is ``n_sticks * window`` rather than
    ``n_sticks * n_points``; ``np.bincount`` adds the contributions in a fixed
    order, so the result is reproducible to the bit.
    """
    grid = config.grid()
    n = config.n_points
    half = int(np.ceil(TRUNCATE_SIGMAS * config.sigma / config.step))
    offsets = np.arange(-half, half + 1)
    centre = np.rint((two_theta - config.two_theta_min) / config.step).astype(np.int64)
    index = centre[:, None] + offsets[None, :]
    inside = (index >= 0) & (index < n)
    safe = np.clip(index, 0, n - 1)
    values = intensity[:, None] * np.exp(
        -0.5 * ((grid[safe] - two_theta[:, None]) / config.sigma) ** 2
    )
    return np.bincount(safe[inside], weights=values[inside], minlength=n)


def xrd_pattern(structure: Structure, config: PatternConfig) -> np.ndarray:
    """The competition pattern of ``structure``: broadened, max-scaled, float32.

    Returns
    -------
    numpy.ndarray
        ``config.n_points`` intensities in [0, 1], float32, with maximum 1.

    Raises
    ------
    RejectError
        With stage ``pattern`` when pymatgen fails or no reflection falls in range.
    """
    return xrd_pattern_and_sticks(structure, config)[0]


def xrd_pattern_and_sticks(
    structure: Structure, config: PatternConfig
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`xrd_pattern` and the reflections it was made from (:func:`stick_table`)."""
    pattern = _diffraction(structure, config)
    two_theta = np.asarray(pattern.x, dtype=np.float64)
    profile = broaden(two_theta, np.asarray(pattern.y, dtype=np.float64), config)
    peak = profile.max(initial=0.0)
    if not np.isfinite(peak) or peak <= 0:
        raise RejectError(
            "pattern",
            f"no reflection between {config.two_theta_min} and {config.two_theta_max} deg 2theta",
        )
    return (profile / peak).astype(np.float32), stick_table(pattern, structure)


def reflections(
    structure: Structure, grid: Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d-spacings, intensities and symmetry-equivalent normals of every reflection.

    See :func:`reflections_and_sticks`, which also gives the stick table.
    """
    d, intensity, normals, _ = reflections_and_sticks(structure, grid)
    return d, intensity, normals


def reflections_and_sticks(
    structure: Structure, grid: Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """d-spacings, intensities and symmetry-equivalent normals of every reflection.

    What the realism model needs (:mod:`competition.realism`): pymatgen's
    intensities (as :func:`stick_pattern`) with each peak's d-spacing, and the
    Cartesian reciprocal-lattice vector of its first listed ``hkl`` turned by
    every rotation of the crystal's point group, so that texture can average
    over a family's members. Reflections are taken over the grid's range widened
    by 3 degrees (for the K-alpha2 line, shifts and wide peaks).

    Returns
    -------
    d : array (n,)
    intensity : array (n,)
    normals : array (n, m, 3)
    sticks : array (n, len(STICK_COLUMNS))
        :func:`stick_table` of the same reflections.

    Raises
    ------
    RejectError
        With stage ``pattern`` when pymatgen cannot compute the pattern.
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    lo, hi = max(0.0, grid.two_theta_min - 3), min(179.0, grid.two_theta_max + 3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pattern = XRDCalculator(wavelength=grid.wavelength).get_pattern(
                structure, scaled=False, two_theta_range=(lo, hi)
            )
            rotations = [op.rotation_matrix for op in
                         SpacegroupAnalyzer(structure).get_point_group_operations(cartesian=True)]
    except Exception as err:
        raise RejectError("pattern", f"XRDCalculator failed: {type(err).__name__}: {err}") from None
    if not len(pattern.x):
        raise RejectError("pattern", f"no reflection between {lo:g} and {hi:g} deg 2theta")
    vectors = _first_hkl(pattern) @ structure.lattice.reciprocal_lattice_crystallographic.matrix
    normals = np.einsum("mij,nj->nmi", np.array(rotations), vectors)
    return (np.asarray(pattern.d_hkls, dtype=np.float64),
            np.asarray(pattern.y, dtype=np.float64), normals,
            stick_table(pattern, structure))  # fmt: skip
