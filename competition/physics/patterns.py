"""Simulated powder patterns: stick patterns broadened onto the fixed grid.

The stick pattern (:mod:`competition.physics.diffraction`, the physics of pymatgen's
``XRDCalculator``, computed by the ``vectorised`` engine or by pymatgen itself)
gives, for every reflection ``hkl`` with ``2 theta`` in range, the kinematic
intensity

    I_hkl = |F_hkl|^2 * m_hkl * (1 + cos^2 2theta) / (sin^2 theta cos theta)

(structure factor with atomic scattering factors weakened by each element's
Debye-Waller factor, multiplicity, Lorentz-polarisation factor); ``debye_waller``
gives ``B`` per element (from the CIF), the rest take
:data:`competition.physics.diffraction.DEFAULT_B`.
Each stick is then spread as a normalised Gaussian

    y(x) = sum_hkl I_hkl * exp(-(x - 2theta_hkl)^2 / (2 sigma^2)),
    sigma = FWHM / (2 sqrt(2 ln 2)),

evaluated on the grid of :class:`competition.config.PatternConfig`, and the
result is scaled so that its maximum is 1 and stored as float32.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from competition.config import PatternConfig
from competition.physics.diffraction import ENGINES, Reflections, powder_reflections
from competition.sources.structures import RejectError
from xrd_bravais.contract.grid import Grid
from xrd_bravais.contract.layout import STICK_COLUMNS

if TYPE_CHECKING:
    from pymatgen.core import Structure

# A Gaussian is cut at this many standard deviations: the tail beyond holds
# exp(-6^2/2) = 1.5e-8 of the peak height, far below float32 resolution near 1.
TRUNCATE_SIGMAS: Final = 6.0


def _reflections(
    structure: Structure, config: PatternConfig, engine: str = ENGINES[0],
    debye_waller: Mapping[str, float] | None = None,
) -> Reflections:  # fmt: skip
    """The reflections over the grid's range widened by the Gaussian tails."""
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS

    margin = TRUNCATE_SIGMAS * config.sigma
    lo = max(0.0, config.two_theta_min - margin)
    hi = min(179.0, config.two_theta_max + margin)
    # pymatgen fails with an obscure error when no reflection exists, so check first;
    # the vectorised engine finds out by itself (the check is a third of its time).
    if engine == "pymatgen":
        _check_largest_d(structure, config, hi)
    try:
        return powder_reflections(structure, WAVELENGTHS[config.wavelength], (lo, hi), engine,
                                  debye_waller)  # fmt: skip
    except RejectError:
        _check_largest_d(structure, config, hi)  # the clearer reason, where it applies
        raise


def _check_largest_d(structure: Structure, config: PatternConfig, hi: float) -> None:
    """Reject a cell whose largest d-spacing is too small for any reflection below ``hi``.

    Bragg: a reflection needs d >= lambda / (2 sin theta_max). The largest d-spacing
    is 1 / (shortest reciprocal vector), found in a Niggli-reduced basis.
    """
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS

    reciprocal = structure.lattice.reciprocal_lattice_crystallographic
    d_max = 1.0 / min(reciprocal.get_niggli_reduced_lattice().abc)
    if WAVELENGTHS[config.wavelength] / (2 * d_max) > np.sin(np.radians(hi / 2)):
        raise RejectError(
            "pattern",
            f"no reflection below {config.two_theta_max:g} deg 2theta: the largest "
            f"d-spacing ({d_max:.3g} A) is too small for {config.wavelength}",
        )


def stick_pattern(
    structure: Structure, config: PatternConfig, engine: str = ENGINES[0],
    debye_waller: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Reflection positions (degrees 2theta) and intensities of ``structure``.

    Sticks up to ``TRUNCATE_SIGMAS`` standard deviations outside the grid are
    included, since their tails reach into it.

    Raises
    ------
    RejectError
        With stage ``pattern`` when the pattern cannot be computed (an element
        without scattering factors, say).
    """
    found = _reflections(structure, config, engine, debye_waller)
    return found.two_theta, found.intensity


def stick_table(found: Reflections, structure: Structure) -> np.ndarray:
    """The reflections as rows of :data:`STICK_COLUMNS`, float64.

    ``intensity`` is relative to the strongest reflection (1); ``h, k, l`` name
    each peak (:class:`competition.physics.diffraction.Reflections`), in the cell of
    ``structure``; ``nx, ny, nz`` their reciprocal-lattice vector in Cartesian
    coordinates (1/Angstrom), the direction texture acts along.
    """
    if not len(found):
        return np.empty((0, len(STICK_COLUMNS)))
    normals = found.hkl @ structure.lattice.reciprocal_lattice_crystallographic.matrix
    top = found.intensity.max(initial=0.0)
    relative = found.intensity / top if top > 0 else found.intensity
    return np.column_stack([found.two_theta, found.d, relative, found.hkl, normals])


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


def xrd_pattern(
    structure: Structure, config: PatternConfig, engine: str = ENGINES[0],
    debye_waller: Mapping[str, float] | None = None,
) -> np.ndarray:  # fmt: skip
    """The competition pattern of ``structure``: broadened, max-scaled, float32.

    Returns
    -------
    numpy.ndarray
        ``config.n_points`` intensities in [0, 1], float32, with maximum 1.

    Raises
    ------
    RejectError
        With stage ``pattern`` when the pattern cannot be computed or no
        reflection falls in range.
    """
    return xrd_pattern_and_sticks(structure, config, engine, debye_waller)[0]


def xrd_pattern_and_sticks(
    structure: Structure, config: PatternConfig, engine: str = ENGINES[0],
    debye_waller: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`xrd_pattern` and the reflections it was made from (:func:`stick_table`)."""
    found = _reflections(structure, config, engine, debye_waller)
    profile = broaden(found.two_theta, found.intensity, config)
    peak = profile.max(initial=0.0)
    if not np.isfinite(peak) or peak <= 0:
        raise RejectError(
            "pattern",
            f"no reflection between {config.two_theta_min} and {config.two_theta_max} deg 2theta",
        )
    return (profile / peak).astype(np.float32), stick_table(found, structure)


def reflections(
    structure: Structure, grid: Grid, engine: str = ENGINES[0],
    debye_waller: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """d-spacings, intensities and symmetry-equivalent normals of every reflection.

    See :func:`reflections_and_sticks`, which also gives the stick table.
    """
    d, intensity, normals, _ = reflections_and_sticks(structure, grid, engine, debye_waller)
    return d, intensity, normals


def point_group_rotations(structure: Structure) -> list[np.ndarray]:
    """The Cartesian rotations of the crystal's point group, as pymatgen gives them.

    The same matrices, in the same order, as ``SpacegroupAnalyzer(structure)
    .get_point_group_operations(cartesian=True)`` (symprec 0.01, angle tolerance 5),
    from one spglib call instead of two (the analyser also finds the whole
    symmetry dataset first): about 7 ms less per structure of a measured build.
    """
    import itertools

    import spglib

    if "magmom" in structure.site_properties or any(
        getattr(species, "spin", None) is not None for species in structure.types_of_species
    ):
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        # Magnetic moments change the symmetry: pymatgen's own path handles them.
        operations = SpacegroupAnalyzer(structure).get_point_group_operations(cartesian=True)
        return [op.rotation_matrix for op in operations]
    # Species numbered as SpacegroupAnalyzer numbers them (runs of equal species).
    unique: list[Any] = []
    numbers: list[int] = []
    for species, group in itertools.groupby(structure, key=lambda site: site.species):
        if species not in unique:
            unique.append(species)
        numbers += [unique.index(species) + 1] * len(tuple(group))
    cell = (structure.lattice.matrix, structure.frac_coords, numbers)
    found = spglib.get_symmetry(cell, symprec=0.01, angle_tolerance=5)
    if found is None:
        raise ValueError(f"spglib found no symmetry for {structure.formula}")
    return cartesian_rotations(structure, found["rotations"])


def cartesian_rotations(structure: Structure, rotations: np.ndarray) -> list[np.ndarray]:
    """Distinct fractional rotations of ``structure``'s cell as Cartesian matrices, in order."""
    to_cartesian, back = structure.lattice.matrix.T, structure.lattice.inv_matrix.T
    found, seen = [], set()
    for rotation in np.asarray(rotations):
        if rotation.tobytes() in seen:
            continue
        seen.add(rotation.tobytes())
        found.append(np.dot(to_cartesian, np.dot(rotation, back)))
    return found


def reflections_and_sticks(
    structure: Structure, grid: Grid, engine: str = ENGINES[0],
    debye_waller: Mapping[str, float] | None = None, rotations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """d-spacings, intensities and symmetry-equivalent normals of every reflection.

    What the realism model needs (:mod:`competition.physics.realism`): the kinematic
    intensities (as :func:`stick_pattern`) with each peak's d-spacing, and the
    Cartesian reciprocal-lattice vector of the hkl that names it turned by every
    rotation of the crystal's point group, so that texture can average over a
    family's members. Reflections are taken over the grid's range widened by 3
    degrees (for the K-alpha2 line, shifts and wide peaks).

    ``rotations`` (fractional, in the structure's cell; repeats allowed) are those
    of a symmetry already found, such as the labels' (saves a spglib call);
    default: :func:`point_group_rotations`.

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
        With stage ``pattern`` when the pattern cannot be computed.
    """
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS

    lo, hi = max(0.0, grid.two_theta_min - 3), min(179.0, grid.two_theta_max + 3)
    found = powder_reflections(structure, WAVELENGTHS[grid.wavelength], (lo, hi), engine,
                               debye_waller)  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cartesian = (point_group_rotations(structure) if rotations is None
                         else cartesian_rotations(structure, rotations))  # fmt: skip
    except Exception as err:
        raise RejectError("pattern", f"point group failed: {type(err).__name__}: {err}") from None
    if not len(found):
        raise RejectError("pattern", f"no reflection between {lo:g} and {hi:g} deg 2theta")
    vectors = found.hkl @ structure.lattice.reciprocal_lattice_crystallographic.matrix
    normals = np.einsum("mij,nj->nmi", np.array(cartesian), vectors)
    return found.d, found.intensity, normals, stick_table(found, structure)
