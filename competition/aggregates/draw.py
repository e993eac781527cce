"""Synthetic aggregates of particles and their X-ray scattering patterns.

An aggregate is 1 to 5 discs (particles seen along the beam) of one radius, or
radii drawn from a range, each touching or overlapping another so that the
aggregate is connected; the first disc lies in the central ``N/2 x N/2`` pixels.
Students receive the real-space image, its far-field (Fraunhofer) scattering
intensity, or both:

* the image is the projected thickness: each pixel holds the area fraction of it
  covered by the union of the discs (4 x 4 supersampling), so a disc's edge is
  where the analytic one is;
* the scattering is ``|FFT(image)|^2`` with the zero frequency at the centre
  (``fftshift``), optionally with a beamstop (frequencies within ``beamstop``
  pixels of the centre set to zero, as the direct beam is blocked) and Poisson
  photon noise (``photons`` expected counts in all), then log-scaled to [0, 1].

Translating the aggregate leaves the scattering unchanged (only the phase of the
FFT moves), which is why a model must learn shape, not position, from it; a
single disc scatters as the Airy pattern, whose first minimum sits at
``0.6098 / R`` cycles per pixel (tested).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from xrd_bravais.contract.tasks import aggregates_task

Overlap = Literal["touching", "overlapping"]
View = Literal["scattering", "image", "both"]

MIN_RADIUS: Final = 1.0
"""The smallest particle radius (pixels) that draws a visible disc."""
OVERLAPS: Final = ("touching", "overlapping")
VIEWS: Final = ("scattering", "image", "both")
SUPERSAMPLING: Final = 4
"""Sub-pixels per pixel side when rendering the area fraction covered by discs."""
MIN_CENTRE_DISTANCE: Final = 0.5
"""With ``overlap="overlapping"``, two centres are at least this fraction of the
sum of the radii apart: a particle is never hidden entirely inside another."""
LOG_RANGE: Final = 1e6
"""A noiseless pattern is scaled to a maximum of this before ``log1p`` (6 decades)."""
_MAX_TRIES: Final = 200


@dataclass(frozen=True)
class AggregateConfig:
    """What a build of the aggregates task draws.

    Attributes
    ----------
    size : int
        Images are ``size x size`` pixels.
    radius : tuple of float
        ``(min, max)`` particle radius in pixels; equal values give one radius.
    counts : tuple of int
        The particle counts drawn, an equal number of aggregates each (the labels).
    overlap : {"touching", "overlapping"}
        ``touching``: each new particle touches one already placed and overlaps
        none; ``overlapping``: it overlaps the one it is attached to (its centre
        at 0.5 to 1 times the sum of the radii) and may overlap others.
    view : {"scattering", "image", "both"}
        What students receive for each aggregate.
    beamstop : float
        Radius in frequency pixels of the blocked centre of the scattering (0: none).
    photons : float or None
        Expected photon counts of each scattering pattern (Poisson noise); None:
        noiseless.
    per_count : int
        Aggregates per count.
    test_fraction, public_fraction : float
        Share of each count in the test set, and of the test set in its Public portion.
    seed : int
        Everything follows from it.
    """

    size: int = 64
    radius: tuple[float, float] = (4.0, 4.0)
    counts: tuple[int, ...] = (1, 2, 3, 4, 5)
    overlap: Overlap = "touching"
    view: View = "scattering"
    beamstop: float = 0.0
    photons: float | None = None
    per_count: int = 400
    test_fraction: float = 0.2
    public_fraction: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        low, high = self.radius
        numbers = {"radius": self.radius, "beamstop": (self.beamstop,),
                   "photons": (self.photons,) if self.photons is not None else ()}  # fmt: skip
        for name, values in numbers.items():
            if not all(math.isfinite(v) for v in values):
                problems.append(f"{name} must be a finite number, got {values}")
        if problems:
            raise ValueError("; ".join(problems))
        if not MIN_RADIUS <= low <= high:
            problems.append(f"radius must be {MIN_RADIUS} <= min <= max pixels (a smaller "
                            f"particle draws nothing), got {self.radius}")  # fmt: skip
        if self.size < 16:
            problems.append(f"size must be at least 16 pixels, got {self.size}")
        elif high * 2 * max(self.counts or (1,)) > self.size * 2:
            problems.append(f"{max(self.counts)} particles of radius {high} do not fit in "
                            f"{self.size} x {self.size} pixels")  # fmt: skip
        try:
            aggregates_task(self.counts)  # the label set: one rule for what counts may be
        except ValueError as err:
            problems.append(str(err))
        if self.overlap not in OVERLAPS:
            problems.append(f"overlap must be one of {', '.join(OVERLAPS)}, got {self.overlap!r}")
        if self.view not in VIEWS:
            problems.append(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        if self.beamstop < 0 or self.beamstop >= self.size / 2:
            problems.append(f"beamstop must be in [0, {self.size / 2}), got {self.beamstop}")
        if self.photons is not None and self.photons <= 0:
            problems.append(f"photons must be positive, got {self.photons}")
        if self.per_count < 4:
            problems.append(f"per_count must be at least 4, got {self.per_count}")
        for name in ("test_fraction", "public_fraction"):
            if not 0 < getattr(self, name) < 1:
                problems.append(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def channels(self) -> tuple[str, ...]:
        """The images each row holds, in column order."""
        return ("image", "scattering") if self.view == "both" else (self.view,)

    @property
    def n_features(self) -> int:
        """Columns ``y0 .. y{n-1}`` of each row: ``size**2`` per channel."""
        return len(self.channels) * self.size**2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as the manifest records it."""
        data = asdict(self)
        data["radius"] = list(self.radius)
        data["counts"] = list(self.counts)
        return data


@dataclass(frozen=True)
class Aggregate:
    """The particles of one aggregate: centres ``(x, y)`` and radii, in pixels."""

    centres: npt.NDArray[np.float64]
    radii: npt.NDArray[np.float64]

    @property
    def n(self) -> int:
        """How many particles."""
        return len(self.radii)

    def shifted(self, dx: float, dy: float) -> Aggregate:
        """The same aggregate moved by ``(dx, dy)`` pixels."""
        return Aggregate(self.centres + np.array([dx, dy]), self.radii)


# --------------------------------------------------------------------------- geometry
def _fits(centre: npt.NDArray[np.float64], r: float, size: int) -> bool:
    return bool(np.all(centre - r >= 0) and np.all(centre + r <= size))


def _compatible(centre: npt.NDArray[np.float64], r: float, placed: Aggregate,
                overlap: Overlap) -> bool:  # fmt: skip
    """Whether a new disc keeps every rule against the discs already placed."""
    if not placed.n:
        return True
    distances = np.hypot(*(placed.centres - centre).T)
    sums = placed.radii + r
    if overlap == "touching":
        return bool(np.all(distances >= sums - 1e-9))
    return bool(np.all(distances >= MIN_CENTRE_DISTANCE * sums))


def draw_aggregate(n: int, config: AggregateConfig, rng: np.random.Generator) -> Aggregate:
    """Draw ``n`` connected particles under the config's rules.

    Each new particle is attached to a particle drawn from those placed: along a
    random direction, at the sum of the radii (touching) or at 0.5 to 1 times it
    (overlapping). Draws that leave the frame or break a rule are drawn again;
    an aggregate that cannot grow is started afresh.
    """
    size = config.size
    low, high = config.radius
    for _ in range(_MAX_TRIES):
        radii = rng.uniform(low, high, n) if high > low else np.full(n, low)
        first = rng.uniform(size / 4, 3 * size / 4, 2)
        if not _fits(first, radii[0], size):
            continue
        placed = Aggregate(first[None, :], radii[:1])
        for k in range(1, n):
            for _ in range(_MAX_TRIES):
                anchor = int(rng.integers(placed.n))
                angle = rng.uniform(0, 2 * np.pi)
                reach = placed.radii[anchor] + radii[k]
                if config.overlap == "overlapping":
                    reach *= rng.uniform(MIN_CENTRE_DISTANCE, 1.0)
                centre = placed.centres[anchor] + reach * np.array([np.cos(angle), np.sin(angle)])
                if _fits(centre, radii[k], size) and _compatible(
                    centre, radii[k], placed, config.overlap
                ):
                    placed = Aggregate(np.vstack([placed.centres, centre]), radii[: k + 1])
                    break
            else:
                break
        if placed.n == n:
            return placed
    raise RuntimeError(f"could not place {n} particles of radius {config.radius} in "
                       f"{size} x {size} pixels")  # fmt: skip


def is_connected(aggregate: Aggregate, tolerance: float = 1e-6) -> bool:
    """Whether every particle touches or overlaps the aggregate (one connected cluster)."""
    n = aggregate.n
    distances = np.hypot(*(aggregate.centres[:, None, :] - aggregate.centres[None, :, :]).T)
    linked = distances <= aggregate.radii[:, None] + aggregate.radii[None, :] + tolerance
    seen, frontier = {0}, [0]
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(linked[i]):
            if int(j) not in seen:
                seen.add(int(j))
                frontier.append(int(j))
    return len(seen) == n


# --------------------------------------------------------------------------- rendering
def render(aggregate: Aggregate, size: int) -> npt.NDArray[np.float32]:
    """The projected image: the area fraction of each pixel inside the union of the discs.

    Pixel ``(row, col)`` covers ``x`` in ``[col, col + 1)`` and ``y`` in ``[row, row + 1)``.
    """
    s = SUPERSAMPLING
    sub = (np.arange(size * s) + 0.5) / s
    inside = np.zeros((size * s, size * s), dtype=bool)
    for (cx, cy), r in zip(aggregate.centres, aggregate.radii, strict=True):
        # Only the rows and columns the disc can reach.
        r0, r1 = max(int((cy - r) * s), 0), min(int(np.ceil((cy + r) * s)) + 1, size * s)
        c0, c1 = max(int((cx - r) * s), 0), min(int(np.ceil((cx + r) * s)) + 1, size * s)
        dy = sub[r0:r1, None] - cy
        dx = sub[None, c0:c1] - cx
        inside[r0:r1, c0:c1] |= dx * dx + dy * dy <= r * r
    return inside.reshape(size, s, size, s).mean(axis=(1, 3)).astype(np.float32)


def intensity(image: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """The far-field intensity ``|FFT|^2``, zero frequency at the centre."""
    amplitude = np.fft.fftshift(np.fft.fft2(image.astype(np.float64)))
    return amplitude.real**2 + amplitude.imag**2


def scattering(
    image: npt.NDArray[np.floating],
    beamstop: float = 0.0,
    photons: float | None = None,
    rng: np.random.Generator | None = None,
) -> npt.NDArray[np.float32]:
    """What a detector records, log-scaled to [0, 1].

    Parameters
    ----------
    image : array
        The projected image.
    beamstop : float
        Frequencies within this many pixels of the centre are blocked (0: none).
    photons : float, optional
        Expected counts over the detector: Poisson noise (needs ``rng``).
    """
    raw = intensity(image)
    size = raw.shape[0]
    if beamstop > 0:
        k = np.arange(size) - size // 2
        raw[k[:, None] ** 2 + k[None, :] ** 2 <= beamstop**2] = 0.0
    total = raw.sum()
    if photons is not None:
        if rng is None:
            raise ValueError("photon noise needs a random generator")
        counts = rng.poisson(raw * (photons / total)) if total > 0 else np.zeros_like(raw)
        scaled = np.log1p(counts)
        top = np.log1p(max(photons, 1.0))
    else:
        peak = raw.max()
        scaled = np.log1p(raw * (LOG_RANGE / peak)) if peak > 0 else raw
        top = np.log1p(LOG_RANGE)
    return np.clip(scaled / top, 0, 1).astype(np.float32)


def features(aggregate: Aggregate, config: AggregateConfig,
             rng: np.random.Generator) -> npt.NDArray[np.float32]:  # fmt: skip
    """One row of the data: the config's channels, flattened and concatenated."""
    image = render(aggregate, config.size)
    parts = []
    for channel in config.channels:
        if channel == "image":
            parts.append(image.ravel())
        else:
            parts.append(scattering(image, config.beamstop, config.photons, rng).ravel())
    return np.concatenate(parts)


def ring_index(size: int) -> npt.NDArray[np.int64]:
    """The ring of each pixel of a centred ``size x size`` pattern, flattened row by row.

    Ring ``k`` holds the pixels at a distance in ``[k, k + 1)`` from the centre
    (pixel ``size // 2``, where ``fftshift`` puts the zero frequency).
    """
    k = np.arange(size) - size // 2
    return np.floor(np.hypot(k[:, None], k[None, :])).astype(np.int64).ravel()


def radial_profile(pattern: npt.NDArray[np.floating], n_bins: int | None = None
                   ) -> npt.NDArray[np.float64]:  # fmt: skip
    """Azimuthal mean of a centred pattern in the rings of :func:`ring_index`."""
    size = pattern.shape[-1]
    ring = ring_index(size)
    n_bins = n_bins or size // 2
    keep = ring < n_bins
    sums = np.bincount(ring[keep], weights=pattern.reshape(-1)[keep], minlength=n_bins)
    counts = np.bincount(ring[keep], minlength=n_bins)
    return sums / np.maximum(counts, 1)
