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
* :class:`PeakRelations` describes how the strongest peaks' positions relate to
  each other, as an indexing program tests them: a histogram of the ratios of
  every pair (a cell's size drops out of a ratio) and the number of peaks whose
  ``sin^2(theta)`` is the sum of two others' (the mark of perpendicular axes:
  ``Q(h0l) = Q(h00) + Q(00l)``).

All four are stateless apart from ``n_features_in_`` and follow the
scikit-learn transformer contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from xrd_bravais.contract.grid import Grid, require_grid

BLOCK_ROWS: Final = 4096
"""Rows a memory-hungry step works on at a time: its float64 temporaries then take
about 140 MB on the default grid, not 5 GB for the 153,536 rows of a build with the
whole archive. The rows come out the same (to float32 rounding where a step solves
least squares over the rows it is given)."""


def by_blocks(function: Callable[[np.ndarray], np.ndarray], X: np.ndarray,
              dtype: Any = None) -> np.ndarray:  # fmt: skip
    """``function`` applied to blocks of :data:`BLOCK_ROWS` rows of ``X``.

    ``function`` must treat each row on its own and keep the number of columns. The
    result has ``dtype`` (default ``X``'s).

    Examples
    --------
    >>> X = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> by_blocks(lambda rows: rows * 2.0, X)
    array([[ 0.,  2.],
           [ 4.,  6.],
           [ 8., 10.]], dtype=float32)
    """
    out = np.empty(X.shape, dtype=dtype or X.dtype)
    for start in range(0, len(X), BLOCK_ROWS):
        out[start : start + BLOCK_ROWS] = function(X[start : start + BLOCK_ROWS])
    return out


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


class SubtractBackground(TransformerMixin, BaseEstimator):
    """Estimate a smooth background with SNIP and subtract it; rescale to maximum 1.

    SNIP (statistics-sensitive non-linear iterative peak clipping; Ryan et al.,
    *Nucl. Instrum. Meth. B* 34, 396, 1988) replaces each point, for widths
    ``p = 1 .. half_width``, by the smaller of itself and the mean of its
    neighbours ``p`` points away. Peaks narrower than the window are clipped
    away and what remains follows the background. It works on square roots
    (counting statistics), as is usual.

    Parameters
    ----------
    half_width : int, default=50
        Widest clipping window, in grid points (50 points is 1 degree on the
        default grid): peaks narrower than about twice this survive.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 201)
    >>> y = (0.2 + 0.1 * x + np.exp(-0.5 * ((x - 0.5) / 0.005) ** 2))[None, :]
    >>> flat = SubtractBackground(half_width=10).fit_transform(y)
    >>> bool(abs(flat[0, 0]) < 0.02 and flat.max() == 1.0)
    True
    """

    def __init__(self, half_width: int = 50) -> None:
        self.half_width = half_width

    def fit(self, X: Any, y: Any = None) -> SubtractBackground:
        """Check the parameters and record the number of columns."""
        if not (isinstance(self.half_width, int | np.integer) and self.half_width >= 1):
            raise ValueError(f"half_width must be a positive integer, got {self.half_width!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def background(self, X: Any) -> np.ndarray:
        """The SNIP background of each row of ``X`` (float64)."""
        check_is_fitted(self, "n_features_in_")
        X = np.asarray(validate_data(self, X, dtype=(np.float32, np.float64), reset=False))
        return by_blocks(self._snip, X, dtype=np.float64)

    def _snip(self, X: np.ndarray) -> np.ndarray:
        v = np.sqrt(np.maximum(np.asarray(X, dtype=np.float64), 0.0))
        n = v.shape[1]
        for p in range(1, min(self.half_width, (n - 1) // 2) + 1):
            middle = 0.5 * (v[:, :-2 * p] + v[:, 2 * p:])
            v[:, p:-p] = np.minimum(v[:, p:-p], middle)
        return v**2

    def transform(self, X: Any) -> np.ndarray:
        """``X`` minus its background, clipped at 0, each row scaled to maximum 1."""
        check_is_fitted(self, "n_features_in_")
        X = np.asarray(validate_data(self, X, dtype=(np.float32, np.float64), reset=False))

        def flatten(rows: np.ndarray) -> np.ndarray:
            flat = np.maximum(rows - self._snip(rows), 0.0)
            top = flat.max(axis=1, keepdims=True)
            return flat / np.where(top > 0, top, 1.0)

        return by_blocks(flatten, X)


class Smooth(TransformerMixin, BaseEstimator):
    """Savitzky-Golay smoothing along each pattern (suppresses counting noise).

    Parameters
    ----------
    window : int, default=7
        Odd number of grid points of the fitting window.
    order : int, default=2
        Degree of the local polynomial (keeps peak heights better than a mean).
    """

    def __init__(self, window: int = 7, order: int = 2) -> None:
        self.window = window
        self.order = order

    def fit(self, X: Any, y: Any = None) -> Smooth:
        """Check the parameters and record the number of columns."""
        if not (isinstance(self.window, int | np.integer) and self.window >= 3
                and self.window % 2 == 1):  # fmt: skip
            raise ValueError(f"window must be an odd integer >= 3, got {self.window!r}")
        if not (isinstance(self.order, int | np.integer) and 0 <= self.order < self.window):
            raise ValueError(f"order must be an integer in [0, window), got {self.order!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The smoothed rows of ``X`` (short rows are returned unchanged)."""
        from scipy.signal import savgol_filter

        check_is_fitted(self, "n_features_in_")
        X = np.asarray(validate_data(self, X, dtype=(np.float32, np.float64), reset=False))
        if X.shape[1] < self.window:
            return X.copy()
        return by_blocks(lambda rows: savgol_filter(rows, self.window, self.order, axis=1), X)


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
        Where the columns lie in 2theta (:class:`xrd_bravais.contract.grid.Grid`, e.g.
        ``read_patterns("public/train.parquet").grid``). Required: there is no
        default, since a wrong grid puts every peak at a wrong angle.

    Raises
    ------
    GridError
        From :meth:`fit`, if no grid was given.

    Examples
    --------
    >>> import numpy as np
    >>> from xrd_bravais.contract.grid import Grid
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
        s, heights = _strongest_sin2(np.asarray(X, dtype=np.float64), self.n_peaks,
                                     self.min_height, grid)  # fmt: skip
        s = np.nan_to_num(s, nan=0.0)
        first = np.where(s[:, :1] > 0, s[:, :1], 1.0)
        return np.hstack([s, heights, s / first])


class PeakRelations(TransformerMixin, BaseEstimator):
    """How the strongest peaks' positions relate: pair ratios and additive triples.

    An indexing program rests on two properties of ``s = sin^2(theta)``
    (proportional to ``1/d^2``): the ratios of the ``s`` of two reflections follow
    the lattice's quadratic form whatever the size of the cell, and where two
    axes are perpendicular the ``s`` of ``h0l`` is the sum of those of ``h00`` and
    ``00l``. :class:`PeakFeatures` gives the ratios to the first peak only; these
    features give every pair and every sum, which a tree cannot form from single
    positions:

    * ``ln_ratio_r``: a histogram of ``ln(s_j / s_i)`` over every pair of the
      ``n_peaks`` strongest peaks, on nodes ``0, bin_width, 2 bin_width ...`` up
      to the first at or past ``ln(max_ratio)``. Each pair weighs
      ``sqrt(h_i h_j)`` (heights relative to the strongest peak), shared between
      its two nearest nodes in proportion to its distance, so that a peak moved
      by less than a bin moves some weight rather than a whole count.
    * ``sums_t`` and ``sum_share_t`` for each tolerance ``t``: the number of
      triples ``i <= j < k`` of the ``n_sum_peaks`` strongest peaks with
      ``|s_i + s_j - s_k| < t s_k``, and the share of those peaks that are such a
      sum.
    * ``n_sum_peaks_found``: how many of those peaks there are.

    Parameters
    ----------
    n_peaks : int, default=20
        Peaks whose pairs fill the histogram.
    bin_width : float, default=0.01
        Spacing of the histogram's nodes in ``ln`` of the ratio (1 %).
    max_ratio : float, default=9.0
        The largest ratio the histogram covers; larger ones are left out.
    n_sum_peaks : int, default=16
        Peaks searched for additive triples (the work grows as its cube).
    tolerances : tuple of float, default=(0.002, 0.005)
        Relative tolerances of a sum. The realism model's zero offset and
        sample displacement move the ``s`` of a peak at 20 degrees 2theta by up
        to about 1 %, and less at higher angles.
    min_height : float, default=0.01
        The smallest peak, relative to the pattern's maximum.
    grid : Grid
        Where the columns lie in 2theta. Required, as for :class:`PeakFeatures`.

    Raises
    ------
    GridError
        From :meth:`fit`, if no grid was given.
    ValueError
        From :meth:`fit`, for a count below 1 (2 for ``n_peaks``), a bin width
        not above 0, a ratio not above 1 or a tolerance outside (0, 1).

    Examples
    --------
    Cubic P: ``s`` in the ratios 1 : 2 : 3 : 4. The pairs' ratios are 2, 3 and 4
    (from the first peak), 1.5 and 2 (from the second) and 4/3; the sums are
    1 + 1 = 2, 1 + 2 = 3, 1 + 3 = 4 and 2 + 2 = 4.

    >>> import numpy as np
    >>> from xrd_bravais.contract.grid import Grid
    >>> grid = Grid(10.0, 90.0, 0.01, 8001)
    >>> two_theta = 2 * np.degrees(np.arcsin(np.sqrt(0.05 * np.array([1, 2, 3, 4]))))
    >>> x = np.zeros((1, grid.n_points)); x[0, np.round((two_theta - 10) / 0.01).astype(int)] = 1
    >>> relations = PeakRelations(n_peaks=4, n_sum_peaks=4, grid=grid).fit(x)
    >>> f = relations.transform(x)[0]
    >>> names = relations.get_feature_names_out()
    >>> print(round(f[names == "ln_ratio_0.69"][0] + f[names == "ln_ratio_0.70"][0], 2))
    2.0
    >>> f[-5:].round(2).tolist()  # sums and share at 0.2 % and 0.5 %, peaks found
    [4.0, 0.75, 4.0, 0.75, 4.0]
    """

    def __init__(
        self,
        n_peaks: int = 20,
        bin_width: float = 0.01,
        max_ratio: float = 9.0,
        n_sum_peaks: int = 16,
        tolerances: tuple[float, ...] = (0.002, 0.005),
        min_height: float = 0.01,
        grid: Grid | None = None,
    ) -> None:
        self.n_peaks = n_peaks
        self.bin_width = bin_width
        self.max_ratio = max_ratio
        self.n_sum_peaks = n_sum_peaks
        self.tolerances = tolerances
        self.min_height = min_height
        self.grid = grid

    def _n_nodes(self) -> int:
        return int(np.ceil(np.log(self.max_ratio) / self.bin_width)) + 1

    def fit(self, X: Any, y: Any = None) -> PeakRelations:
        """Check the parameters and the grid, and record the number of columns."""
        for name, least in (("n_peaks", 2), ("n_sum_peaks", 1)):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and value >= least):
                raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
        if not self.bin_width > 0:
            raise ValueError(f"bin_width must be above 0, got {self.bin_width!r}")
        if not self.max_ratio > 1:
            raise ValueError(f"max_ratio must be above 1, got {self.max_ratio!r}")
        if not all(0 < t < 1 for t in self.tolerances):
            raise ValueError(f"tolerances must lie in (0, 1), got {self.tolerances!r}")
        require_grid(self.grid, "PeakRelations")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The histogram's nodes, the sums per tolerance, then the peaks found."""
        check_is_fitted(self, "n_features_in_")
        nodes = [f"ln_ratio_{k * self.bin_width:.2f}" for k in range(self._n_nodes())]
        sums = [f"{kind}_{t:g}" for t in self.tolerances for kind in ("sums", "sum_share")]
        return np.array(nodes + sums + ["n_sum_peaks_found"], dtype=object)

    def transform(self, X: Any) -> np.ndarray:
        """The features of each row of ``X``, in its dtype (blocks of :data:`BLOCK_ROWS`)."""
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        grid = require_grid(self.grid, "PeakRelations")
        out = np.empty((len(X), self._n_nodes() + 2 * len(self.tolerances) + 1), X.dtype)
        for start in range(0, len(X), BLOCK_ROWS):
            rows = np.asarray(X[start : start + BLOCK_ROWS], dtype=np.float64)
            # A search for each part, not the fewer peaks taken from the more: peaks of
            # equal height are chosen apart from each other by each search's partition.
            ratios = self._ratios(*_strongest_sin2(rows, self.n_peaks, self.min_height, grid))
            sums = self._sums(*_strongest_sin2(rows, self.n_sum_peaks, self.min_height, grid))
            out[start : start + BLOCK_ROWS] = np.hstack([ratios, sums])
        return out

    def _ratios(self, s: np.ndarray, heights: np.ndarray) -> np.ndarray:
        n_nodes = self._n_nodes()
        i, j = np.triu_indices(self.n_peaks, 1)  # s is in angle order: s_j >= s_i
        with np.errstate(invalid="ignore", divide="ignore"):
            position = np.log(s[:, j] / s[:, i]) / self.bin_width
        inside = np.isfinite(position) & (position >= 0) & (position < n_nodes - 1)
        position = np.where(inside, position, 0.0)
        low = np.floor(position).astype(np.int64)
        share = position - low
        weight = np.sqrt(heights[:, i] * heights[:, j])
        cell = np.arange(len(s))[:, None] * n_nodes + low
        histogram = np.zeros(len(s) * n_nodes)
        for offset, part in ((0, 1 - share), (1, share)):
            histogram += np.bincount((cell + offset)[inside], weights=(weight * part)[inside],
                                     minlength=histogram.size)  # fmt: skip
        return histogram.reshape(len(s), n_nodes)

    def _sums(self, s: np.ndarray, heights: np.ndarray) -> np.ndarray:
        k = self.n_sum_peaks
        i, j, m = np.meshgrid(np.arange(k), np.arange(k), np.arange(k), indexing="ij")
        triple = (i <= j) & (j < m)
        with np.errstate(invalid="ignore"):
            error = np.abs(s[:, :, None, None] + s[:, None, :, None] - s[:, None, None, :])
            error /= s[:, None, None, :]
        found = (heights > 0).sum(axis=1)
        columns = []
        for tolerance in self.tolerances:
            hit = (error < tolerance) & triple  # NaN compares False: missing peaks drop out
            share = hit.any(axis=(1, 2)).sum(axis=1) / np.maximum(found, 1)
            columns += [hit.sum(axis=(1, 2, 3)), share]
        return np.column_stack([*columns, found])


def _strongest_sin2(X: np.ndarray, n_peaks: int, min_height: float, grid: Grid
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``sin^2(theta)`` (NaN for padding) and heights of each row's strongest peaks, by angle."""
    index, heights = strongest_peaks(X, n_peaks, min_height)
    theta = np.radians(grid.two_theta_min + grid.step * index) / 2
    return np.where(heights > 0, np.sin(theta) ** 2, np.nan), heights


def strongest_peaks(
    X: np.ndarray, n_peaks: int, min_height: float
) -> tuple[np.ndarray, np.ndarray]:
    """Refined positions (in grid units) and heights of each row's strongest peaks.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_points)
        Patterns on one grid.
    n_peaks : int
        How many peaks to keep per row.
    min_height : float
        Local maxima below this share of the row's strongest point are not peaks.

    Returns
    -------
    position, heights : ndarray of shape (n_rows, n_peaks)
        Positions (refined through a parabola on the maximum and its neighbours)
        and heights as a share of the strongest point, sorted by position;
        ``(0, 0)`` pads rows with fewer peaks.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros(50)
    >>> x[[10, 30]] = [1.0, 0.5]
    >>> x[[29, 31]] = [0.25, 0.25]
    >>> position, heights = strongest_peaks(x[None], 3, 0.01)
    >>> position.tolist(), heights.tolist()
    ([[10.0, 30.0, 0.0]], [[1.0, 0.5, 0.0]])
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
