"""Powder reflections of a crystal: every Bragg peak's 2theta, intensity, d and hkl.

Two engines compute the same physics as pymatgen's ``XRDCalculator`` (kinematic
intensities with its atomic scattering factors, the Lorentz-polarisation factor
and Friedel pairs; reflections with equal 2theta merged; peaks weaker than
``SCALED_INTENSITY_TOL`` percent of the strongest dropped):

``vectorised`` (the default)
    Whole-array work with no Python loop over reflections. Every reciprocal-
    lattice point in the limiting shell is enumerated at once inside the box
    ``|h| <= g_max |a|`` (and likewise for k, l), one Friedel half kept. The
    structure factor uses ``exp(2 pi i (h x + k y + l z)) = A_h(x) B_k(y)
    C_l(z)``: per element, the sites' phase tables of h and k are multiplied for
    every (h, k) column in the shell and contracted with the l table in one
    complex matrix product, so the cost is a BLAS call rather than a complex
    exponential per (reflection, site). Families of equal 2theta, and the hkl
    that names each peak, are found by sorting.
``pymatgen``
    ``XRDCalculator.get_pattern`` itself, the reference.

Both return a :class:`Reflections`; on every parseable file in ``../shared/data``
and on the AMCSD source their broadened patterns agree within 1e-3 of the
maximum (``tests/test_diffraction.py``, ``benchmarks/build_throughput.py
--compare``). Structures that carry anisotropic displacement parameters as site
properties (``U11_cif`` ...) go to pymatgen: their per-site Debye-Waller factor
breaks the factorisation. The CIF reader we use never sets them.

Both engines weaken each element's scattering by its isotropic Debye-Waller
factor ``exp(-B s^2)`` (``s = sin(theta) / lambda``), with ``B`` from the CIF
(:mod:`competition.sources.displacements`) and :data:`DEFAULT_B` for elements
the file gives none; pymatgen's calculator takes the same ``B`` per element.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from competition.sources.structures import RejectError

if TYPE_CHECKING:
    from pymatgen.core import Structure

ENGINES: Final = ("vectorised", "pymatgen")
"""Pattern engines, the default first."""

# pymatgen's merge and cut-off rules (AbstractDiffractionPatternCalculator), kept
# here as literals so that the vectorised engine does not import the calculator.
TWO_THETA_TOL: Final = 1e-5
SCALED_INTENSITY_TOL: Final = 1e-3

DEFAULT_B: Final = 0.8
"""Debye-Waller ``B`` (A^2) of an element whose displacement the file does not give:
about the median over AMCSD's files that give one (0.86; quartiles 0.53 and 1.42
over 1,602 element values of every ninth entry). At 90 degrees 2theta it weakens a
peak by ``exp(-2 B s^2) = 0.67`` relative to a rigid lattice."""

# Entries of one (sites x (h, k) columns) complex block held at once: 2^21 complex128
# entries are 32 MiB, which bounds memory for large molecular cells.
_BLOCK_ENTRIES: Final = 1 << 21


@dataclass(frozen=True)
class Reflections:
    """The merged Bragg peaks of a powder, in increasing 2theta.

    Attributes
    ----------
    two_theta : array (n,)
        Peak positions in degrees.
    intensity : array (n,)
        Unscaled kinematic intensities (``|F|^2`` times Lorentz-polarisation,
        summed over the reflections of equal 2theta).
    d : array (n,)
        d-spacings in Angstrom.
    hkl : array (n, 3)
        The Miller indices that name each peak, in the structure's cell: the
        largest member (in lexicographic order) of the first family listed.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    d: np.ndarray
    hkl: np.ndarray

    def __len__(self) -> int:
        return len(self.two_theta)


def debye_waller_table(
    structure: Structure, debye_waller: Mapping[str, float] | None
) -> dict[str, float]:
    """``B`` (A^2) for every element of ``structure``: given, else :data:`DEFAULT_B`."""
    given = debye_waller or {}
    return {str(el.symbol): float(given.get(str(el.symbol), DEFAULT_B))
            for el in structure.composition.elements}  # fmt: skip


def powder_reflections(
    structure: Structure,
    wavelength: float,
    two_theta_range: tuple[float, float],
    engine: str = "vectorised",
    debye_waller: Mapping[str, float] | None = None,
) -> Reflections:
    """The powder reflections of ``structure`` between two 2theta limits (degrees).

    Parameters
    ----------
    structure : Structure
    wavelength : float
        In Angstrom.
    two_theta_range : (float, float)
    engine : {"vectorised", "pymatgen"}
    debye_waller : mapping, optional
        Isotropic ``B`` (A^2) per element symbol; elements left out (all, when
        ``None``) take :data:`DEFAULT_B`.

    Raises
    ------
    RejectError
        With stage ``pattern`` when an element has no scattering factors, or the
        calculation fails.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    try:
        factors = debye_waller_table(structure, debye_waller)
        if _has_anisotropic_displacements(structure):
            # pymatgen refuses both: the per-site tensors stand for the displacement.
            return _pymatgen(structure, wavelength, two_theta_range, None)
        if engine == "vectorised":
            return _vectorised(structure, wavelength, two_theta_range, factors)
        return _pymatgen(structure, wavelength, two_theta_range, factors)
    except RejectError:
        raise
    except Exception as err:
        raise RejectError("pattern", f"XRDCalculator failed: {type(err).__name__}: {err}") from None


def _has_anisotropic_displacements(structure: Structure) -> bool:
    return "U11_cif" in structure.site_properties


def _pymatgen(
    structure: Structure, wavelength: float, two_theta_range: tuple[float, float],
    factors: dict[str, float] | None,
) -> Reflections:  # fmt: skip
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calculator = XRDCalculator(wavelength=wavelength, debye_waller_factors=factors)
        pattern = calculator.get_pattern(
            structure, scaled=False, two_theta_range=two_theta_range
        )
    # Hexagonal lattices list four indices (h, k, i, l), i = -(h + k).
    hkl = np.array([(h[0]["hkl"][0], h[0]["hkl"][1], h[0]["hkl"][-1]) for h in pattern.hkls],
                   dtype=np.float64).reshape(-1, 3)  # fmt: skip
    return Reflections(
        np.asarray(pattern.x, dtype=np.float64), np.asarray(pattern.y, dtype=np.float64),
        np.asarray(pattern.d_hkls, dtype=np.float64), hkl,
    )  # fmt: skip


def shell_points(
    reciprocal: np.ndarray, g_min: float, g_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Integer hkl with ``g_min <= |g| <= g_max``, one of each Friedel pair.

    Parameters
    ----------
    reciprocal : array (3, 3)
        Rows are the reciprocal basis vectors (crystallographic, no 2 pi).
    g_min, g_max : float
        Shell radii in 1/Angstrom.

    Returns
    -------
    hkl : int array (m, 3)
        Lexicographically positive indices (h > 0, or h = 0 and k > 0, or
        h = k = 0 and l > 0).
    g : array (m,)
        Their lengths.
    """
    # h = g . a, so |h| <= |g| |a|: the direct-lattice lengths bound the box.
    direct_lengths = np.linalg.norm(np.linalg.inv(reciprocal).T, axis=1)
    h_max, k_max, l_max = (int(np.floor(g_max * n + 1e-9)) for n in direct_lengths)
    h, k, ell = np.meshgrid(
        np.arange(0, h_max + 1), np.arange(-k_max, k_max + 1), np.arange(-l_max, l_max + 1),
        indexing="ij",
    )  # fmt: skip
    h, k, ell = h.ravel(), k.ravel(), ell.ravel()
    half = (h > 0) | ((h == 0) & (k > 0)) | ((h == 0) & (k == 0) & (ell > 0))
    hkl = np.stack([h[half], k[half], ell[half]], axis=1)
    g = np.linalg.norm(hkl @ reciprocal, axis=1)
    # pymatgen's sphere search keeps points up to r + 1e-8.
    keep = (g <= g_max + 1e-8) & (g >= g_min)
    return hkl[keep], g[keep]


def _element_groups(structure: Structure) -> dict[str, tuple[int, np.ndarray, np.ndarray]]:
    """Per element symbol: atomic number, fractional coordinates (m, 3), occupancies (m,)."""
    from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS

    coords: dict[str, list[np.ndarray]] = {}
    occus: dict[str, list[float]] = {}
    numbers: dict[str, int] = {}
    for site in structure:
        for species, occu in site.species.items():
            symbol = species.symbol
            if symbol not in ATOMIC_SCATTERING_PARAMS:
                raise RejectError(
                    "pattern",
                    f"XRDCalculator failed: ValueError: Unable to calculate XRD pattern as "
                    f"there is no scattering coefficients for {symbol}.",
                )
            numbers[symbol] = species.Z
            coords.setdefault(symbol, []).append(site.frac_coords)
            occus.setdefault(symbol, []).append(float(occu))
    return {s: (numbers[s], np.array(coords[s]), np.array(occus[s])) for s in coords}


def _phase_sums(hkl: np.ndarray, frac: np.ndarray, occu: np.ndarray) -> np.ndarray:
    """``sum_j occu_j exp(2 pi i hkl . r_j)`` for every row of ``hkl``, complex (m,).

    The (h, k) columns of the shell are contracted with the l phase table in one
    matrix product per block of columns.
    """
    lo = hkl.min(axis=0)
    span = hkl.max(axis=0) - lo + 1
    tables = [
        np.exp(2j * np.pi * np.outer(frac[:, axis], np.arange(lo[axis], lo[axis] + span[axis])))
        for axis in range(3)
    ]  # (sites, span) each
    h_index, k_index, l_index = (hkl - lo).T
    columns, column_of = np.unique(h_index * span[1] + k_index, return_inverse=True)
    out = np.empty(len(hkl), dtype=np.complex128)
    n_sites = len(frac)
    step = max(1, _BLOCK_ENTRIES // n_sites)
    weighted_h = tables[0] * occu[:, None]
    for start in range(0, len(columns), step):
        block = columns[start:start + step]
        hk = weighted_h[:, block // span[1]] * tables[1][:, block % span[1]]  # (sites, cols)
        sums = hk.T @ tables[2]  # (cols, l span)
        rows = (column_of >= start) & (column_of < start + step)
        out[rows] = sums[column_of[rows] - start, l_index[rows]]
    return out


def _vectorised(
    structure: Structure, wavelength: float, two_theta_range: tuple[float, float],
    factors: dict[str, float],
) -> Reflections:  # fmt: skip
    from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS

    lattice = structure.lattice
    g_min, g_max = (2 * math.sin(math.radians(t / 2)) / wavelength for t in two_theta_range)
    hkl, g = shell_points(lattice.reciprocal_lattice_crystallographic.matrix, g_min, g_max)
    if not len(hkl):
        raise RejectError("pattern", "no reflection in the 2theta range")
    s2 = (g / 2) ** 2
    structure_factor = np.zeros(len(hkl), dtype=np.complex128)
    for symbol, (z, frac, occu) in _element_groups(structure).items():
        coeff = np.asarray(ATOMIC_SCATTERING_PARAMS[symbol], dtype=np.float64)
        # f(s) = Z - 41.78214 s^2 sum_i a_i exp(-b_i s^2), pymatgen's fit.
        form = z - 41.78214 * s2 * (coeff[:, 0] * np.exp(-coeff[:, 1] * s2[:, None])).sum(axis=1)
        if factors.get(symbol):
            form = form * np.exp(-factors[symbol] * s2)  # Debye-Waller, as pymatgen
        structure_factor += form * _phase_sums(hkl, frac, occu)
    theta = np.arcsin(np.clip(wavelength * g / 2, -1, 1))
    lorentz = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    # Factor 2: the Friedel mate -g scatters the same (real form factors).
    intensity = 2 * (structure_factor.real**2 + structure_factor.imag**2) * lorentz
    two_theta = np.degrees(2 * theta)
    return _merge(hkl, g, two_theta, intensity, lattice.is_hexagonal())


def _merge(
    hkl: np.ndarray, g: np.ndarray, two_theta: np.ndarray, intensity: np.ndarray, hexagonal: bool
) -> Reflections:
    """Sum reflections of equal 2theta (pymatgen's bins) and name each peak's hkl.

    A peak is listed at its first reflection's 2theta and d (reflections sorted by
    2theta, then decreasing h, k, l); its name is the largest hkl of the family
    (indices equal up to sign and order) of that first reflection.
    """
    key = np.round(two_theta / TWO_THETA_TOL).astype(np.int64)
    order = np.lexsort((-hkl[:, 2], -hkl[:, 1], -hkl[:, 0], key))
    hkl, g, two_theta, intensity, key = hkl[order], g[order], two_theta[order], intensity[
        order], key[order]  # fmt: skip
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    peak_of = np.cumsum(np.r_[False, key[1:] != key[:-1]])
    summed = np.add.reduceat(intensity, starts)
    # Families compare sorted absolute indices; hexagonal cells use (h, k, i, l).
    indices = np.column_stack([hkl[:, :2], -hkl[:, 0] - hkl[:, 1], hkl[:, 2]]) if hexagonal \
        else hkl  # fmt: skip
    shape = np.sort(np.abs(indices), axis=1)
    member = (shape == shape[starts][peak_of]).all(axis=1)
    # Each kept reflection v beats its Friedel mate -v (v is lexicographically
    # positive, also as (h, k, i, l)), so the family's largest index is a largest v.
    candidates = np.flatnonzero(member)
    best = candidates[np.lexsort((
        -hkl[candidates, 2], -hkl[candidates, 1], -hkl[candidates, 0], peak_of[candidates]
    ))]  # fmt: skip
    first_of_peak = best[np.r_[True, peak_of[best][1:] != peak_of[best][:-1]]]
    strong = summed / summed.max() * 100 > SCALED_INTENSITY_TOL
    return Reflections(
        two_theta[starts][strong], summed[strong], 1.0 / g[starts][strong],
        hkl[first_of_peak][strong].astype(np.float64),
    )  # fmt: skip
