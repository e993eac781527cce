"""Preprocessing transformers for powder patterns, reusable in any scikit-learn pipeline.

* :class:`IntensityTransform` compresses the dynamic range (sqrt or log), so that
  weak reflections, which carry the centring extinctions, count beside the
  strongest peak.
* :class:`Pool` bins the 2theta grid to a coarser one (4,251 points to 426 with
  ``factor=10``), keeping the peak maxima: a tree or a kernel then sees features
  that survive small peak shifts.
* :class:`PeakFeatures` finds the strongest peaks and describes them the way a
  crystallographer indexes a pattern: by their positions in ``sin^2(theta)``
  (proportional to ``1/d^2 = 4 sin^2(theta) / lambda^2``) and by the ratios of
  those positions to the first peak's, which do not depend on the wavelength
  and follow the lattice's quadratic form (for cubic P, 1 : 2 : 3 : 4 : 5 : 6 : 8...;
  for cubic I, 2 : 4 : 6 : 8...; for cubic F, 3 : 4 : 8 : 11...).

All three are stateless apart from ``n_features_in_`` and follow the
scikit-learn transformer contract.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from contract.grid import Grid, require_grid


class IntensityTransform(TransformerMixin, BaseEstimator):
    """Compress intensities with a square root or a logarithm.

    Parameters
    ----------
    func : {"sqrt", "log", "identity"}, default="sqrt"
        ``sqrt``: ``sqrt(x)``. ``log``: ``log1p(x / floor) / log1p(1 / floor)``, which
        maps ``[0, 1]`` onto ``[0, 1]`` and stretches intensities above ``floor``.
    floor : float, default=1e-3
        Intensity scale of the logarithm (relative to the strongest peak).

    Examples
    --------
    >>> import numpy as np
    >>> IntensityTransform("sqrt").fit_transform(np.array([[0.0, 0.25, 1.0]]))
    array([[0. , 0.5, 1. ]])
    """

    def __init__(self, func: str = "sqrt", floor: float = 1e-3) -> None:
        self.func = func
        self.floor = floor

    def fit(self, X: Any, y: Any = None) -> IntensityTransform:
        """Check the parameters and record the number of columns."""
        if self.func not in ("sqrt", "log", "identity"):
            raise ValueError(f"func must be 'sqrt', 'log' or 'identity', got {self.func!r}")
        if not self.floor > 0:
            raise ValueError(f"floor must be positive, got {self.floor!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The transformed rows of ``X``."""
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        # Intensities are non-negative; a negative value (noise, a baseline
        # subtraction) is clipped rather than turned into NaN.
        X = np.clip(X, 0, None)
        if self.func == "sqrt":
            return np.sqrt(X)
        if self.func == "log":
            return (np.log1p(X / self.floor) / np.log1p(1 / self.floor)).astype(X.dtype)
        return X


class Pool(TransformerMixin, BaseEstimator):
    """Bin consecutive grid points: ``factor`` points become one.

    Parameters
    ----------
    factor : int, default=10
        Points per bin. The last bin takes what is left.
    method : {"max", "mean"}, default="max"
        ``max`` keeps each peak's height wherever it falls in the bin; ``mean``
        keeps its area.

    Examples
    --------
    >>> import numpy as np
    >>> Pool(factor=2).fit_transform(np.array([[0.0, 1.0, 0.5, 0.2, 0.9]]))
    array([[1. , 0.5, 0.9]])
    """

    def __init__(self, factor: int = 10, method: str = "max") -> None:
        self.factor = factor
        self.method = method

    def fit(self, X: Any, y: Any = None) -> Pool:
        """Check the parameters and record the number of columns."""
        if not (isinstance(self.factor, int | np.integer) and self.factor >= 1):
            raise ValueError(f"factor must be a positive integer, got {self.factor!r}")
        if self.method not in ("max", "mean"):
            raise ValueError(f"method must be 'max' or 'mean', got {self.method!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The transformed rows of ``X``."""
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        starts = np.arange(0, X.shape[1], self.factor)
        if self.method == "max":
            return np.maximum.reduceat(X, starts, axis=1)
        widths = np.diff(np.append(starts, X.shape[1]))
        return (np.add.reduceat(X, starts, axis=1) / widths).astype(X.dtype)


class PeakFeatures(TransformerMixin, BaseEstimator):
    """Positions, heights and position ratios of the strongest peaks.

    A peak is a local maximum of at least ``min_height`` (relative to the
    pattern's maximum). Its position is refined between grid points by a
    parabola through the three highest points. The ``n_peaks`` strongest peaks,
    sorted by angle, give ``3 * n_peaks`` features:

    * ``s_k = sin^2(theta_k)``: proportional to ``1/d_k^2``, the quantity an
      indexing program fits with the lattice's quadratic form;
    * ``h_k``: the peak height;
    * ``s_k / s_1``: ratios to the first (lowest-angle) peak, wavelength-free.

    Missing peaks (a pattern with fewer than ``n_peaks``) give zeros.

    Parameters
    ----------
    n_peaks : int, default=12
    min_height : float, default=0.01
    grid : Grid
        Where the columns lie in 2theta (:class:`contract.grid.Grid`, e.g.
        ``read_patterns("public/train.parquet").grid``). Required: there is no
        default, since a wrong grid puts every peak at a wrong angle.

    Raises
    ------
    GridError
        From :meth:`fit`, if no grid was given.

    Examples
    --------
    >>> import numpy as np
    >>> from contract.grid import Grid
    >>> x = np.zeros((1, 7)); x[0, 2] = 1.0; x[0, 5] = 0.5
    >>> f = PeakFeatures(n_peaks=2, grid=Grid(20.0, 80.0, 10.0, 7)).fit_transform(x)
    >>> np.round(f, 4)  # peaks at 40 and 70 degrees 2theta: sin^2, heights, ratios
    array([[0.117 , 0.329 , 1.    , 0.5   , 1.    , 2.8124]])
    """

    def __init__(
        self,
        n_peaks: int = 12,
        min_height: float = 0.01,
        grid: Grid | None = None,
    ) -> None:
        self.n_peaks = n_peaks
        self.min_height = min_height
        self.grid = grid

    def fit(self, X: Any, y: Any = None) -> PeakFeatures:
        """Check the parameters and the grid, and record the number of columns."""
        if not (isinstance(self.n_peaks, int | np.integer) and self.n_peaks >= 1):
            raise ValueError(f"n_peaks must be a positive integer, got {self.n_peaks!r}")
        require_grid(self.grid, "PeakFeatures")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``sin2theta_k``, ``height_k`` and ``ratio_k`` for each of the ``n_peaks``."""
        check_is_fitted(self, "n_features_in_")
        k = range(1, self.n_peaks + 1)
        return np.array(
            [f"sin2theta_{i}" for i in k] + [f"height_{i}" for i in k] + [f"ratio_{i}" for i in k],
            dtype=object,
        )

    def transform(self, X: Any) -> np.ndarray:
        """The transformed rows of ``X``."""
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        grid = require_grid(self.grid, "PeakFeatures")
        start, step = grid.two_theta_min, grid.step
        index, heights = _strongest_peaks(np.asarray(X, dtype=np.float64), self.n_peaks,
                                          self.min_height)  # fmt: skip
        found = heights > 0
        theta = np.radians(start + step * index) / 2
        s = np.where(found, np.sin(theta) ** 2, 0.0)
        first = np.where(s[:, :1] > 0, s[:, :1], 1.0)
        return np.hstack([s, heights, s / first])


def _strongest_peaks(
    X: np.ndarray, n_peaks: int, min_height: float
) -> tuple[np.ndarray, np.ndarray]:
    """Refined positions (in grid units) and heights of each row's strongest peaks.

    Peaks are sorted by position; ``(0, 0)`` pads rows with fewer peaks.
    """
    n_rows, n_points = X.shape
    scale = X.max(axis=1, keepdims=True)
    Y = X / np.where(scale > 0, scale, 1.0)
    inner = np.zeros_like(Y, dtype=bool)
    if n_points >= 3:
        # A plateau counts once: strictly above the left neighbour, not below the right.
        inner[:, 1:-1] = (Y[:, 1:-1] > Y[:, :-2]) & (Y[:, 1:-1] >= Y[:, 2:])
    inner &= min_height <= Y
    score = np.where(inner, Y, -np.inf)
    k = min(n_peaks, n_points)
    top = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < n_points else np.argsort(
        -score, axis=1)[:, :k]  # fmt: skip
    top = np.sort(top, axis=1)
    heights = np.take_along_axis(score, top, axis=1)
    valid = np.isfinite(heights)
    # Parabolic refinement through the neighbours: the vertex offset in (-0.5, 0.5).
    left = np.take_along_axis(Y, np.clip(top - 1, 0, n_points - 1), axis=1)
    mid = np.take_along_axis(Y, top, axis=1)
    right = np.take_along_axis(Y, np.clip(top + 1, 0, n_points - 1), axis=1)
    curvature = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    position = np.where(valid, top + np.clip(offset, -0.5, 0.5), 0.0)
    heights = np.where(valid, heights, 0.0)
    # Valid peaks first (in angle order), padding after.
    order = np.argsort(~valid, axis=1, kind="stable")
    position = np.take_along_axis(position, order, axis=1)
    heights = np.take_along_axis(heights, order, axis=1)
    if k < n_peaks:
        pad = np.zeros((n_rows, n_peaks - k))
        position, heights = np.hstack([position, pad]), np.hstack([heights, pad])
    return position, heights
