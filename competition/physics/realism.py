"""A physical model of a laboratory powder measurement, one effect per function.

Turns a structure's reflections (d-spacings, intensities and, for texture, the
direction of each reciprocal-lattice vector) into a pattern that looks like the
output of a Bragg-Brentano Cu diffractometer:

* **positions**: Bragg's law for each wavelength of the source,
  ``2 theta = 2 asin(lambda / 2d)``, then a zero-point offset (the same for every
  peak) and a sample-displacement shift ``-2 s cos(theta) / R`` (radians; ``s``
  the displacement, ``R`` the goniometer radius);
* **K-alpha doublet**: Cu K-alpha1 and K-alpha2 lines (Hoelzer et al., *Phys.
  Rev. A* 56, 4554, 1997) at an intensity ratio of 0.5; ``kalpha2=False`` for a
  monochromated instrument;
* **peak shape**: pseudo-Voigt with the Thompson-Cox-Hastings mixing (*J. Appl.
  Cryst.* 20, 79, 1987): Gaussian FWHM from the Caglioti function
  ``H_G^2 = U tan^2 theta + V tan theta + W`` (*Nucl. Instrum.* 3, 223, 1958),
  Lorentzian FWHM from crystallite size (Scherrer, ``K lambda / (L cos theta)``)
  plus microstrain (``4 e tan theta``);
* **texture**: March-Dollase weights ``(r^2 cos^2 a + sin^2 a / r)^(-3/2)``
  (Dollase, *J. Appl. Cryst.* 19, 267, 1986), ``a`` the angle between a
  reflection's normal and the preferred direction; ``r = 1`` is a random powder;
* **background**: a Chebyshev polynomial over the range, an optional amorphous
  hump, and air scatter that decays from low angle;
* **counting statistics**: Poisson noise with the strongest peak at a chosen
  number of counts.

Every function is deterministic given its arguments (random draws come in
through a ``numpy.random.Generator``), so a build that seeds a generator per
structure stays byte-for-byte reproducible. Patterns here are in counts, not
scaled to a maximum of 1.

Over 400 lines: one physical model, whose ranges, draws and renderer refer to one
another (each effect is a small function; :class:`Measurement` ties them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from xrd_bravais.contract.grid import FWHM_PER_SIGMA, Grid

FloatArray = npt.NDArray[np.float64]

CU_KALPHA1: Final = 1.540593
"""Cu K-alpha1 wavelength in Angstrom (Hoelzer et al. 1997)."""
CU_KALPHA2: Final = 1.544414
"""Cu K-alpha2 wavelength in Angstrom (Hoelzer et al. 1997)."""
KALPHA2_RATIO: Final = 0.5
"""Intensity of K-alpha2 relative to K-alpha1 (the 2p1/2 : 2p3/2 occupancy ratio)."""
SCHERRER_K: Final = 0.9
"""Scherrer constant for roughly spherical crystallites."""
# A pseudo-Voigt is evaluated out to this many FWHM: the Lorentzian tail beyond
# holds about 2 / (pi * 2 * 40) = 0.8 % of its area, spread thinly enough to be
# lost in any background.
WINDOW_FWHM: Final = 40.0
RENDER_BATCH: Final = 500_000
"""Profile values :func:`render` evaluates at a time (a few MB of float64)."""
GAUSS_SIGMAS: Final = 6.0
"""Standard deviations from its centre within which :func:`render` evaluates a peak's Gaussian."""


def bragg_two_theta(d: npt.ArrayLike, wavelength: float) -> FloatArray:
    """2theta (degrees) of reflections of spacing ``d`` (Angstrom); NaN where none.

    Examples
    --------
    >>> float(np.round(bragg_two_theta([2.0], 1.540593)[0], 4))
    45.3059
    """
    sine = wavelength / (2 * np.asarray(d, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.where(sine <= 1, 2 * np.degrees(np.arcsin(np.minimum(sine, 1))), np.nan)


def position_shift(
    two_theta: npt.ArrayLike, zero: float = 0.0, displacement: float = 0.0, radius: float = 240.0
) -> FloatArray:
    """Observed minus true 2theta (degrees) for a zero offset and a displaced sample.

    Parameters
    ----------
    two_theta : array
        True positions, degrees.
    zero : float
        Zero-point offset of the goniometer, degrees (the same for every peak).
    displacement : float
        Height of the sample surface above the focusing circle, mm.
    radius : float
        Goniometer radius, mm.
    """
    theta = np.radians(np.asarray(two_theta, dtype=np.float64) / 2)
    return zero + np.degrees(-2 * displacement * np.cos(theta) / radius)


def peak_widths(
    two_theta: npt.ArrayLike,
    caglioti: tuple[float, float, float] = (0.0, 0.0, 0.0),
    size_nm: float | None = None,
    strain: float = 0.0,
    wavelength: float = CU_KALPHA1,
) -> tuple[FloatArray, FloatArray]:
    """Gaussian and Lorentzian FWHM (degrees) of peaks at ``two_theta``.

    The Gaussian width is the instrument's (Caglioti ``U, V, W`` in degrees
    squared); the Lorentzian is the sample's: crystallite size ``size_nm``
    (Scherrer, ``K lambda / (L cos theta)``, none if ``None``) plus microstrain
    ``strain`` (``4 e tan theta``), both in radians converted to degrees.
    """
    theta = np.radians(np.asarray(two_theta, dtype=np.float64) / 2)
    u, v, w = caglioti
    tan = np.tan(theta)
    gaussian = np.sqrt(np.maximum(u * tan**2 + v * tan + w, 0.0))
    lorentzian = np.degrees(4 * strain * tan)
    if size_nm is not None:
        size = 10 * size_nm  # Angstrom, as the wavelength
        lorentzian = lorentzian + np.degrees(SCHERRER_K * wavelength / (size * np.cos(theta)))
    return gaussian, lorentzian


def tch_mixing(fwhm_g: npt.ArrayLike, fwhm_l: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Total FWHM and Lorentzian fraction ``eta`` of a Voigt, by Thompson-Cox-Hastings.

    Examples
    --------
    >>> h, eta = tch_mixing([1.0], [0.0])
    >>> float(h[0]), float(eta[0])
    (1.0, 0.0)
    """
    g = np.asarray(fwhm_g, dtype=np.float64)
    lo = np.asarray(fwhm_l, dtype=np.float64)
    h = (g**5 + 2.69269 * g**4 * lo + 2.42843 * g**3 * lo**2 + 4.47163 * g**2 * lo**3
         + 0.07842 * g * lo**4 + lo**5) ** 0.2  # fmt: skip
    q = np.divide(lo, h, out=np.zeros_like(h), where=h > 0)
    eta = 1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3
    return h, np.clip(eta, 0.0, 1.0)


def pseudo_voigt(x: npt.ArrayLike, centre: float, fwhm: float, eta: float) -> FloatArray:
    """Area-normalised pseudo-Voigt: ``eta`` Lorentzian plus ``1 - eta`` Gaussian.

    Both parts have full width ``fwhm`` at half maximum and unit area, so the
    profile integrates to 1 over the real line.
    """
    dx = np.asarray(x, dtype=np.float64) - centre
    sigma = fwhm / FWHM_PER_SIGMA
    gauss = np.exp(-0.5 * (dx / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    gamma = fwhm / 2
    lorentz = gamma / (np.pi * (dx**2 + gamma**2))
    return eta * lorentz + (1 - eta) * gauss


def march_dollase(cos_angle: npt.ArrayLike, ratio: float) -> FloatArray:
    """March-Dollase weight of a reflection whose normal makes ``angle`` with the texture.

    ``ratio`` below 1 favours plates lying flat (normals along the direction),
    above 1 needles; 1 is a random powder (weight 1 everywhere). Averaged over
    all directions the weight is 1, so texture moves intensity between
    reflections without creating or destroying it.
    """
    c2 = np.clip(np.asarray(cos_angle, dtype=np.float64), -1, 1) ** 2
    return (ratio**2 * c2 + (1 - c2) / ratio) ** -1.5


def chebyshev_background(grid: Grid, coefficients: npt.ArrayLike) -> FloatArray:
    """A smooth background: a Chebyshev series over the grid mapped onto [-1, 1]."""
    x = np.linspace(-1.0, 1.0, grid.n_points)
    return np.polynomial.chebyshev.chebval(x, np.asarray(coefficients, dtype=np.float64))


def amorphous_hump(grid: Grid, centre: float, fwhm: float, height: float) -> FloatArray:
    """A broad Gaussian hump (glass, a sample holder, an amorphous fraction)."""
    sigma = fwhm / FWHM_PER_SIGMA
    return height * np.exp(-0.5 * ((grid.two_theta() - centre) / sigma) ** 2)


def air_scatter(grid: Grid, height: float, decay: float = 8.0) -> FloatArray:
    """Scatter from air near the direct beam.

    ``height`` at 0 degrees, falling by a factor ``e`` every ``decay`` degrees.
    """
    return height * np.exp(-grid.two_theta() / decay)


def poisson_counts(expected: npt.ArrayLike, rng: np.random.Generator) -> FloatArray:
    """Counts observed for ``expected`` mean counts per point (Poisson statistics)."""
    return rng.poisson(np.maximum(np.asarray(expected, dtype=np.float64), 0.0)).astype(np.float64)


@dataclass(frozen=True)
class Measurement:
    """One instrument and sample: every setting of :func:`render` for one pattern.

    Attributes
    ----------
    caglioti : tuple of float
        ``U, V, W`` in degrees squared (instrument width).
    size_nm : float or None
        Crystallite size, nm (Lorentzian width); ``None``: no size broadening.
    strain : float
        Microstrain (dimensionless, e.g. 1e-3).
    kalpha2 : bool
        Include the K-alpha2 line.
    zero : float
        Zero-point offset, degrees.
    displacement : float
        Sample displacement, mm.
    radius : float
        Goniometer radius, mm.
    texture_ratio : float
        March-Dollase ratio (1: none).
    texture_direction : tuple of float
        Preferred direction, Cartesian (the frame of the reflections' normals).
    """

    caglioti: tuple[float, float, float] = (0.004, -0.002, 0.003)
    size_nm: float | None = None
    strain: float = 0.0
    kalpha2: bool = True
    zero: float = 0.0
    displacement: float = 0.0
    radius: float = 240.0
    texture_ratio: float = 1.0
    texture_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)


def peak_list(
    d: npt.ArrayLike,
    intensity: npt.ArrayLike,
    measurement: Measurement,
    normals: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Observed positions, integrated intensities, FWHM and ``eta`` of every peak.

    Parameters
    ----------
    d, intensity : array (n,)
        d-spacings (Angstrom) and integrated intensities of the reflections.
    measurement : Measurement
    normals : array (n, 3) or (n, m, 3), optional
        Each reflection's reciprocal-lattice direction (Cartesian), for texture;
        with a middle axis, the ``m`` symmetry-equivalent directions of each
        reflection, whose weights are averaged (a family's members lie at
        different angles to the texture).

    Returns
    -------
    two_theta, area, fwhm, eta : arrays (n,) or (2n,) with K-alpha2
        Lines of K-alpha1 first, then K-alpha2; reflections beyond 180 degrees
        for a wavelength are dropped.
    """
    d = np.asarray(d, dtype=np.float64)
    area = np.asarray(intensity, dtype=np.float64).copy()
    if measurement.texture_ratio != 1.0:
        if normals is None:
            raise ValueError("texture needs the normals of the reflections")
        n = np.asarray(normals, dtype=np.float64)
        n = n[:, None, :] if n.ndim == 2 else n
        direction = np.asarray(measurement.texture_direction, dtype=np.float64)
        cos = n @ direction / (np.linalg.norm(n, axis=-1) * np.linalg.norm(direction))
        area = area * march_dollase(cos, measurement.texture_ratio).mean(axis=1)
    lines = [(CU_KALPHA1, 1.0)] + ([(CU_KALPHA2, KALPHA2_RATIO)] if measurement.kalpha2 else [])
    parts = []
    for wavelength, weight in lines:
        true = bragg_two_theta(d, wavelength)
        keep = np.isfinite(true)
        observed = true[keep] + position_shift(
            true[keep], measurement.zero, measurement.displacement, measurement.radius
        )
        g, lo = peak_widths(true[keep], measurement.caglioti, measurement.size_nm,
                            measurement.strain, wavelength)  # fmt: skip
        fwhm, eta = tch_mixing(g, lo)
        parts.append((observed, weight * area[keep], fwhm, eta))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def _windowed_pseudo_voigt(dx: FloatArray, fwhm: FloatArray, eta: FloatArray,
                           inside: npt.NDArray[np.bool_]) -> FloatArray:  # fmt: skip
    """:func:`pseudo_voigt` of rows of offsets ``dx``, one peak (``fwhm``, ``eta``) a row.

    The Lorentzian is evaluated over the whole window; the Gaussian only within
    :data:`GAUSS_SIGMAS` standard deviations, beyond which it is below 2e-8 of its
    height (the exponential is most of the cost of a measured pattern).
    """
    gamma = (fwhm / 2)[:, None]
    values = eta[:, None] * gamma / (np.pi * (dx**2 + gamma**2))
    sigma = np.broadcast_to((fwhm / FWHM_PER_SIGMA)[:, None], dx.shape)
    near = inside & (np.abs(dx) < GAUSS_SIGMAS * sigma)
    weight = np.broadcast_to((1 - eta)[:, None], dx.shape)[near]
    s = sigma[near]
    values[near] += weight * np.exp(-0.5 * (dx[near] / s) ** 2) / (s * np.sqrt(2 * np.pi))
    return values


def render(
    d: npt.ArrayLike,
    intensity: npt.ArrayLike,
    grid: Grid,
    measurement: Measurement,
    normals: npt.ArrayLike | None = None,
) -> FloatArray:
    """The noise-free, background-free profile of the reflections on ``grid``.

    Each peak is a :func:`pseudo_voigt` of area equal to its intensity, evaluated
    within :data:`WINDOW_FWHM` widths of its centre; the profile is the integral
    over each grid step (value times step), so it sums to the total intensity
    that falls inside the range.
    """
    two_theta, area, fwhm, eta = peak_list(d, intensity, measurement, normals)
    x = grid.two_theta()
    lo = np.searchsorted(x, two_theta - WINDOW_FWHM * fwhm)
    hi = np.searchsorted(x, two_theta + WINDOW_FWHM * fwhm, side="right")
    used = (hi > lo) & (area > 0)
    two_theta, area, fwhm, eta, lo, hi = (v[used] for v in (two_theta, area, fwhm, eta, lo, hi))
    profile = np.zeros(grid.n_points)
    # All peaks at once, a batch at a time: each peak's window is a row of a matrix as
    # wide as the widest window (masked beyond its own), summed into the grid with
    # bincount. Peaks are sorted by width so that a batch's rows are alike.
    order = np.argsort(hi - lo, kind="stable")
    widths = (hi - lo)[order].tolist()
    start = 0
    while start < len(order):
        stop = start + 1
        # Grow the batch while it stays under RENDER_BATCH values (widths ascend).
        while stop < len(order) and (stop + 1 - start) * widths[stop] <= RENDER_BATCH:
            stop += 1
        batch = order[start:stop]
        span = widths[stop - 1]
        index = lo[batch, None] + np.arange(span)
        inside = index < hi[batch, None]
        index = np.minimum(index, grid.n_points - 1)
        values = _windowed_pseudo_voigt(x[index] - two_theta[batch, None], fwhm[batch],
                                         eta[batch], inside)  # fmt: skip
        weights = (area[batch, None] * grid.step * values)[inside]
        profile += np.bincount(index[inside], weights=weights, minlength=grid.n_points)
        start = stop
    return profile


@dataclass(frozen=True)
class RealismRanges:
    """The ranges each measurement setting is drawn from, one draw per pattern.

    Defaults describe laboratory Bragg-Brentano Cu diffractometers with a
    Ni filter (K-alpha2 present) and powder samples, **calibrated against the
    aggregate statistics of the 152 real patterns of ``../shared/data/measured``**
    (``benchmarks/realism_calibration.py`` prints both sets side by side: peak
    width below and above 35 degrees, peaks above 5 %, point-to-point noise and
    background floor on the competition's grid), never against single files:

    * Caglioti ``W`` 0.0005..0.005 deg^2 (instrument FWHM about 0.02..0.07 deg at
      low angle), ``U`` 0..0.006 and ``V = -2 f sqrt(U W)`` with ``f`` drawn from
      ``v_fraction`` (below 1: ``H_G^2`` is positive at every angle by
      construction; refined laboratory instruments have ``V < 0``);
    * crystallite size 50..600 nm and microstrain 0..8e-4: the real patterns'
      strongest peaks are 0.12 deg wide (median) below 35 degrees and 0.13 deg
      above, barely growing with angle;
    * zero offset within +-0.05 deg and sample displacement within +-0.1 mm on a
      240 mm goniometer (the usual alignment tolerances);
    * March-Dollase ratio 0.7..1.3 along a random direction (mild texture of a
      back-loaded mount), with probability ``texture_probability``;
    * Chebyshev background of 0.3..6 % of the strongest peak (log-uniform), air
      scatter up to 10 % at 0 degrees, an amorphous hump (centre 15..35 deg,
      FWHM 5..15 deg, up to 5 %) with probability ``hump_probability``;
    * the strongest peak at 50..3,000 counts, drawn log-uniformly: the real
      patterns' noise (median 0.5 % of the maximum after binning) and floor
      (median 0.6 %) are those of a few hundred counts over a background of a few.

    ``kalpha2_probability`` is the share of instruments with the doublet (1:
    all; 0: monochromated K-alpha1 only). ``graininess`` is the standard
    deviation of a log-normal factor on each reflection's intensity (too few
    crystallites in the beam; 0: none). With probability
    ``impurity_probability`` a second phase adds ``impurity_peaks`` weak peaks
    (each ``impurity_height`` of the strongest) at random positions.

    With probability ``background_subtracted_probability`` the pattern is
    published as processed data often are: the background is subtracted after
    counting, leaving the counting noise around zero.
    """

    w: tuple[float, float] = (0.0005, 0.005)
    u: tuple[float, float] = (0.0, 0.006)
    v_fraction: tuple[float, float] = (0.0, 0.8)
    size_nm: tuple[float, float] = (50.0, 600.0)
    strain: tuple[float, float] = (0.0, 8e-4)
    zero: tuple[float, float] = (-0.05, 0.05)
    displacement: tuple[float, float] = (-0.1, 0.1)
    texture_ratio: tuple[float, float] = (0.7, 1.3)
    texture_probability: float = 0.5
    background: tuple[float, float] = (0.003, 0.06)
    air: tuple[float, float] = (0.0, 0.1)
    hump_probability: float = 0.3
    hump_height: tuple[float, float] = (0.0, 0.05)
    counts: tuple[float, float] = (50.0, 3000.0)
    kalpha2_probability: float = 1.0
    graininess: float = 0.1
    impurity_probability: float = 0.2
    impurity_peaks: tuple[int, int] = (1, 3)
    impurity_height: tuple[float, float] = (0.01, 0.05)
    background_subtracted_probability: float = 0.2


def grid_wavelength(grid: Grid) -> float:
    """The wavelength (Angstrom) a clean pattern on ``grid`` was drawn at (pymatgen's table)."""
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS

    return float(WAVELENGTHS[grid.wavelength])


def draw_measurement(rng: np.random.Generator, ranges: RealismRanges) -> Measurement:
    """One instrument and sample drawn from ``ranges``."""
    def uniform(bounds: tuple[float, float]) -> float:
        return float(rng.uniform(*bounds))

    direction = rng.normal(size=3)
    textured = rng.random() < ranges.texture_probability
    u, w = uniform(ranges.u), uniform(ranges.w)
    # V = -2 f sqrt(U W) with 0 <= f < 1 keeps U t^2 + V t + W above (1 - f^2) W > 0 at
    # every angle: the instrument's width is never imaginary, whatever is drawn.
    v = -2 * uniform(ranges.v_fraction) * np.sqrt(u * w)
    return Measurement(
        caglioti=(u, float(v), w),
        size_nm=uniform(ranges.size_nm),
        strain=uniform(ranges.strain),
        kalpha2=bool(rng.random() < ranges.kalpha2_probability),
        zero=uniform(ranges.zero),
        displacement=uniform(ranges.displacement),
        texture_ratio=uniform(ranges.texture_ratio) if textured else 1.0,
        texture_direction=tuple(float(v) for v in direction / np.linalg.norm(direction)),  # type: ignore[arg-type]
    )


def measured_pattern(
    d: npt.ArrayLike,
    intensity: npt.ArrayLike,
    grid: Grid,
    rng: np.random.Generator,
    ranges: RealismRanges | None = None,
    normals: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """A measured-looking pattern on ``grid``, divided by its maximum, float32.

    Draws a :class:`Measurement` and a background from ``ranges``, renders the
    peaks, adds the background, draws Poisson counts and divides by the largest
    count. Unlike a clean pattern its minimum is the background, not 0.

    Raises
    ------
    ValueError
        If no peak falls on the grid.
    """
    ranges = ranges or RealismRanges()
    measurement = draw_measurement(rng, ranges)
    intensity = np.asarray(intensity, dtype=np.float64)
    if ranges.graininess > 0:
        intensity = intensity * rng.lognormal(0.0, ranges.graininess, intensity.shape)
    peaks = render(d, intensity, grid, measurement, normals)
    top = peaks.max(initial=0.0)
    if not np.isfinite(top) or top <= 0:
        raise ValueError("no reflection falls on the grid")
    return background_and_counts(peaks / top, grid, rng, ranges, measurement)


def impurity_peaks(
    grid: Grid, rng: np.random.Generator, ranges: RealismRanges, measurement: Measurement
) -> FloatArray:
    """A few weak peaks of a second phase (or none), relative to a strongest peak of 1."""
    profile = np.zeros(grid.n_points)
    if rng.random() >= ranges.impurity_probability:
        return profile
    low, high = ranges.impurity_peaks
    n = int(rng.integers(low, high + 1))
    positions = rng.uniform(grid.two_theta_min, grid.two_theta_max, n)
    heights = rng.uniform(*ranges.impurity_height, n)
    g, lo = peak_widths(positions, measurement.caglioti, measurement.size_nm,
                        measurement.strain, CU_KALPHA1)  # fmt: skip
    fwhm, eta = tch_mixing(g, lo)
    x = grid.two_theta()
    for centre, height, h, e in zip(positions, heights, fwhm, eta, strict=True):
        shape = pseudo_voigt(x, centre, h, e)
        profile += height * shape / shape.max()
    return profile


def background_and_counts(
    peaks: npt.ArrayLike,
    grid: Grid,
    rng: np.random.Generator,
    ranges: RealismRanges,
    measurement: Measurement | None = None,
) -> npt.NDArray[np.float32]:
    """Add impurity peaks and a background to a profile, draw counts, scale to 1.

    Parameters
    ----------
    peaks : array (n_points,)
        The phase's profile, strongest peak 1.
    measurement : Measurement, optional
        The instrument, for the widths of impurity peaks; default ``Measurement()``.

    Returns
    -------
    ndarray of float32
        Poisson counts divided by their maximum.
    """
    profile = np.asarray(peaks, dtype=np.float64)
    profile = profile + impurity_peaks(grid, rng, ranges, measurement or Measurement())
    n_coefficients = 4
    low, high = ranges.background
    # Log-uniform: real floors spread over decades (uniform when the range starts at 0).
    level = float(np.exp(rng.uniform(np.log(low), np.log(high))) if low > 0
                  else rng.uniform(low, high))  # fmt: skip
    # A positive, gently varying background: a level plus small Chebyshev terms.
    shape = rng.uniform(-0.3, 0.3, n_coefficients - 1) * level
    background = np.maximum(chebyshev_background(grid, [level, *shape]), 0.0)
    background = background + air_scatter(grid, float(rng.uniform(*ranges.air)))
    if rng.random() < ranges.hump_probability:
        background = background + amorphous_hump(
            grid, float(rng.uniform(15, 35)), float(rng.uniform(5, 15)),
            float(rng.uniform(*ranges.hump_height)),
        )  # fmt: skip
    counts = float(np.exp(rng.uniform(*np.log(ranges.counts))))
    observed = poisson_counts(counts * (profile + background), rng)
    if rng.random() < ranges.background_subtracted_probability:
        # Processed data: the fitted background removed, negative counts clipped.
        observed = np.maximum(observed - counts * background, 0.0)
    return (observed / max(observed.max(), 1.0)).astype(np.float32)


def degrade(
    patterns: npt.ArrayLike,
    grid: Grid,
    rng: np.random.Generator,
    ranges: RealismRanges | None = None,
) -> npt.NDArray[np.float32]:
    """Measured-looking versions of finished clean patterns: an augmentation.

    For models trained on the published patterns, with no reflection list at
    hand. Each row gets its own :class:`Measurement` and background, and the
    effects that act on a finished profile are applied exactly:

    * the peaks move from the grid's wavelength (pymatgen's ``CuKa``, the mean of
      the doublet) to the K-alpha1 line: ``sin(theta1) = sin(theta) lambda1 / lambda``;
    * zero offset and sample displacement move the profile (``position_shift``);
    * the K-alpha2 line is the profile again at ``sin(theta2) = sin(theta1)
      lambda2 / lambda1``, at :data:`KALPHA2_RATIO`;
    * extra width is a convolution with a pseudo-Voigt of the drawn size and
      strain broadening at the middle of the range (one width for the whole
      row: the angle dependence is what a re-rendering from the reflections
      adds);
    * impurity peaks, background and Poisson counts as in :func:`measured_pattern`.

    Texture and graininess need each reflection's intensity and are left out.

    Parameters
    ----------
    patterns : array (n, grid.n_points) or (grid.n_points,)
        Clean patterns (zero background), any positive scale.

    Returns
    -------
    ndarray of float32, same shape
        Each row divided by its maximum.
    """
    ranges = ranges or RealismRanges()
    clean = np.asarray(patterns, dtype=np.float64)
    rows = np.atleast_2d(clean)
    x = grid.two_theta()
    out = np.empty(rows.shape, dtype=np.float32)
    sine = np.sin(np.radians(x) / 2)
    # A clean pattern is drawn at the grid's wavelength (pymatgen's CuKa is the
    # weighted mean of the doublet), so its peaks first move to the K-alpha1
    # positions: the clean profile is read at sin(theta) lambda / lambda1.
    alpha1_source = 2 * np.degrees(np.arcsin(np.clip(
        sine * grid_wavelength(grid) / CU_KALPHA1, 0, 1)))  # fmt: skip
    # Where the K-alpha1 profile is read for the K-alpha2 line at each 2theta.
    alpha2_source = 2 * np.degrees(np.arcsin(np.clip(sine * CU_KALPHA1 / CU_KALPHA2, 0, 1)))
    middle = np.array([(grid.two_theta_min + grid.two_theta_max) / 2])
    for i, row in enumerate(rows):
        measurement = draw_measurement(rng, ranges)
        source = x - position_shift(x, measurement.zero, measurement.displacement,
                                    measurement.radius)  # fmt: skip
        moved = np.interp(alpha1_source, x, row, left=0.0, right=0.0)
        moved = np.interp(source, x, moved, left=0.0, right=0.0)
        if measurement.kalpha2:
            moved = moved + KALPHA2_RATIO * np.interp(alpha2_source, x, moved, left=0.0, right=0.0)
        _, lorentz = peak_widths(middle, (0.0, 0.0, 0.0), measurement.size_nm,
                                 measurement.strain, CU_KALPHA1)  # fmt: skip
        width = float(lorentz[0])
        if width > grid.step:
            half = min(int(WINDOW_FWHM * width / grid.step), grid.n_points // 2)
            offsets = grid.step * np.arange(-half, half + 1)
            kernel = pseudo_voigt(offsets, 0.0, width, 1.0)
            moved = np.convolve(moved, kernel / kernel.sum(), mode="same")
        top = moved.max(initial=0.0)
        if not top > 0:
            out[i] = 0.0
            continue
        out[i] = background_and_counts(moved / top, grid, rng, ranges, measurement)
    return out.reshape(clean.shape)
