"""The 2theta grid of a competition's patterns, typed, and where it is stored.

Every pattern is sampled at ``two_theta_min + step * k`` degrees for
``k = 0 .. n_points - 1`` and stored in columns ``y0 .. y{n_points-1}``. The grid
travels with the data: in the parquet schema metadata of ``train.parquet`` and
``test.parquet`` (key :data:`SCHEMA_METADATA_KEY`) and in ``manifest.json``.
Anything that needs positions in 2theta (peak features, strain augmentation)
takes a :class:`Grid` read from there; nothing falls back to a default.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

SCHEMA_METADATA_KEY: Final = b"xrd_bravais.grid"
"""Parquet schema-metadata key under which the grid (:meth:`Grid.to_dict`) is stored."""

FWHM_PER_SIGMA: Final = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""Ratio of a Gaussian's full width at half maximum to its standard deviation."""


class GridError(ValueError):
    """A grid is missing, malformed, or not the one a model was fitted on."""


@dataclass(frozen=True)
class Grid:
    """Where the intensity columns lie in 2theta, and how the patterns were made.

    Parameters
    ----------
    two_theta_min, two_theta_max : float
        First and last grid point, in degrees 2theta (both included).
    step : float
        Spacing in degrees.
    n_points : int
        Number of columns.
    wavelength : str
        Radiation name (pymatgen's ``WAVELENGTHS``, e.g. ``"CuKa"``).
    fwhm : float
        Full width at half maximum of the simulated peaks, in degrees.

    Examples
    --------
    >>> grid = Grid(5.0, 90.0, 0.02, 4251, "CuKa", 0.1)
    >>> grid.two_theta()[[0, -1]].tolist()
    [5.0, 90.0]
    """

    two_theta_min: float
    two_theta_max: float
    step: float
    n_points: int
    wavelength: str = "CuKa"
    fwhm: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.two_theta_min < self.two_theta_max < 180:
            raise GridError(
                "need 0 <= two_theta_min < two_theta_max < 180 degrees, got "
                f"{self.two_theta_min:g}..{self.two_theta_max:g}"
            )
        if not self.step > 0 or not self.fwhm > 0:
            raise GridError(f"step and fwhm must be positive, got {self.step}, {self.fwhm}")
        expected = round((self.two_theta_max - self.two_theta_min) / self.step) + 1
        if self.n_points != expected:
            raise GridError(
                f"{self.two_theta_min:g}..{self.two_theta_max:g} degrees in steps of "
                f"{self.step:g} has {expected} points, not {self.n_points}"
            )

    @classmethod
    def spanning(
        cls, two_theta_min: float, two_theta_max: float, step: float, wavelength: str = "CuKa",
        fwhm: float = 0.1,
    ) -> Grid:  # fmt: skip
        """The grid from ``two_theta_min`` to ``two_theta_max`` (both included) at ``step``.

        Raises
        ------
        GridError
            If the range or the step is not valid.
        """
        if not step > 0:
            raise GridError(f"step must be positive, got {step}")
        n_points = round((two_theta_max - two_theta_min) / step) + 1
        return cls(two_theta_min, two_theta_max, step, n_points, wavelength, fwhm)

    @property
    def sigma(self) -> float:
        """Standard deviation of the Gaussian peak, in degrees."""
        return self.fwhm / FWHM_PER_SIGMA

    def two_theta(self) -> npt.NDArray[np.float64]:
        """The 2theta value of every column, in degrees."""
        return self.two_theta_min + self.step * np.arange(self.n_points, dtype=np.float64)

    def column_names(self) -> list[str]:
        """Intensity column names ``y0 .. y{N-1}`` (the original course's naming)."""
        return [f"y{i}" for i in range(self.n_points)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as stored in the parquet metadata and the manifest."""
        return {**asdict(self), "sigma": self.sigma}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grid:
        """Inverse of :meth:`to_dict` (extra keys such as ``sigma`` are ignored).

        Raises
        ------
        GridError
            If a field is missing or the values do not make a grid.
        """
        try:
            return cls(
                two_theta_min=float(data["two_theta_min"]),
                two_theta_max=float(data["two_theta_max"]),
                step=float(data["step"]),
                n_points=int(data["n_points"]),
                wavelength=str(data.get("wavelength", "CuKa")),
                fwhm=float(data.get("fwhm", 0.1)),
            )
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, GridError):
                raise
            raise GridError(f"not a grid description ({err!r}): {data}") from None

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> Grid:
        """The grid stored in a parquet file's schema metadata.

        Raises
        ------
        GridError
            If the file carries no grid (it was not written by the builder).
        """
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        if SCHEMA_METADATA_KEY not in metadata:
            raise GridError(
                f"{path} says nothing about its 2theta grid (no {SCHEMA_METADATA_KEY.decode()} "
                "schema metadata): use the parquet files of a built competition"
            )
        return cls.from_dict(json.loads(metadata[SCHEMA_METADATA_KEY]))

    def schema_metadata(self) -> dict[bytes, bytes]:
        """The parquet schema metadata that records this grid."""
        return {SCHEMA_METADATA_KEY: json.dumps(self.to_dict(), sort_keys=True).encode()}

    def differences(self, other: Grid) -> list[str]:
        """What differs between two grids, in words (empty if they are the same).

        The peak shape (``fwhm``) is left out: a model applies to patterns of
        another width, not to another sampling or radiation.
        """
        found = []
        if self.n_points != other.n_points:
            found.append(f"{self.n_points} grid points but the input has {other.n_points}")
        for name in ("two_theta_min", "two_theta_max", "step"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if not math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9):
                found.append(f"{name} {mine:g} but the input has {theirs:g}")
        if self.wavelength != other.wavelength:
            found.append(f"wavelength {self.wavelength} but the input has {other.wavelength}")
        return found


def require_grid(grid: Grid | None, who: str) -> Grid:
    """``grid``, or a clear refusal when a model that needs it was given none.

    Raises
    ------
    GridError
        If ``grid`` is ``None``.
    """
    if grid is None:
        raise GridError(
            f"{who} needs the 2theta grid of its columns, and none was given: pass "
            "grid=Grid.from_parquet('public/train.parquet') (or baselines.data.read_patterns("
            "...).grid); there is no default, since a wrong grid puts peaks at wrong angles"
        )
    if not isinstance(grid, Grid):
        raise GridError(
            f"{who}: grid must be a xrd_bravais.contract.grid.Grid, got {type(grid).__name__}"
        )
    return grid
