"""Search-match: the lattice of the reference patterns a pattern resembles most.

Diffractometer users identify a phase by *search-match*: the measured pattern is
compared with every pattern of a reference library (the ICDD's PDF, the COD's
patterns) and the best matches name it. Here the library is the training set,
and the best matches vote for the lattice.

The similarity is the cosine of two patterns after the same preparation:

    Savitzky-Golay smoothing -> SNIP background removal -> minus a floor (2 % of
    the strongest peak) -> sqrt(intensity) -> Gaussian blur (``sigma`` degrees)
    -> mean-pool -> unit length

The cosine of two unit vectors is their normalised cross-correlation at zero
lag. Blurring both by ``sigma`` makes it a cross-correlation over a window:
two peaks a few hundredths of a degree apart (a zero shift, a slightly strained
cell, another peak width) still overlap, so they count as a match, where the
raw patterns' product would be near zero. The square root lets weak reflections,
which carry the centring extinctions, count beside the strongest; the floor
comes first because the square root would otherwise raise what SNIP leaves of a
background and of the counting noise (a few thousandths of the maximum at every
point) into a carpet that outweighs the peaks: a pattern 0.12 degrees off its
reference, on a sloping background, has a cosine of 0.42 with it without the
floor and 0.74 with it.

Matching runs by brute force over every reference (scikit-learn's
``KNeighborsClassifier``, in chunks): its cost per query is one dot product with
each reference, ``n_references x n_points / pool`` multiply-adds (5,790 AMCSD
references of 1,063 pooled points: 6 million per query).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer
from sklearn.utils.validation import check_is_fitted, validate_data

from baselines.lattice.features import IntensityTransform, Pool, Smooth, SubtractBackground
from xrd_bravais.contract.grid import Grid

PARAM_GRID: Final[dict[str, list[Any]]] = {
    "blur__sigma": [10.0, 20.0, 40.0],
    "match__n_neighbors": [1, 5, 15],
}
"""Search space of :func:`make_search_match` (blur in grid points: 0.2-0.8 degrees on
the default 0.02-degree grid)."""


class Blur(TransformerMixin, BaseEstimator):
    """Gaussian blur along each pattern.

    Parameters
    ----------
    sigma : float, default=5.0
        Standard deviation, in grid points (0.1 degree on the default grid);
        0 returns the rows unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> row = np.zeros((1, 41)); row[0, 20] = 1.0
    >>> blurred = Blur(sigma=2.0).fit_transform(row)
    >>> bool(blurred.argmax() == 20 and abs(blurred.sum() - 1.0) < 1e-6)
    True
    """

    def __init__(self, sigma: float = 5.0) -> None:
        self.sigma = sigma

    def fit(self, X: Any, y: Any = None) -> Blur:
        """Check the parameter and record the number of columns."""
        if not (isinstance(self.sigma, int | float | np.number) and self.sigma >= 0):
            raise ValueError(f"sigma must be a number >= 0, got {self.sigma!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The blurred rows of ``X`` (same shape and dtype)."""
        from scipy.ndimage import gaussian_filter1d

        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        if self.sigma == 0:
            return np.asarray(X)
        # "constant": a peak at the edge of the range is not mirrored into a second one.
        return gaussian_filter1d(X, float(self.sigma), axis=1, mode="constant")


class Floor(TransformerMixin, BaseEstimator):
    """Subtract a constant from each value and clip at zero (a noise floor).

    Parameters
    ----------
    level : float, default=0.02
        In the units of the input (after SNIP: a share of the strongest peak).

    Examples
    --------
    >>> import numpy as np
    >>> Floor(0.1).fit_transform(np.array([[0.05, 0.5, 1.0]]))
    array([[0. , 0.4, 0.9]])
    """

    def __init__(self, level: float = 0.02) -> None:
        self.level = level

    def fit(self, X: Any, y: Any = None) -> Floor:
        """Check the parameter and record the number of columns."""
        if not (isinstance(self.level, int | float | np.number) and self.level >= 0):
            raise ValueError(f"level must be a number >= 0, got {self.level!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``max(X - level, 0)``, same dtype."""
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        return np.maximum(X - X.dtype.type(self.level), 0)


def make_search_match(grid: Grid, n_neighbors: int = 1, sigma_degrees: float = 0.4,
                      pool: int = 4, floor: float = 0.02,
                      n_jobs: int | None = None) -> Pipeline:  # fmt: skip
    """A search-match classifier over the patterns on ``grid``.

    Parameters
    ----------
    grid : Grid
        Where the columns lie in 2theta; sets the blur in grid points.
    n_neighbors : int, default=1
        Best matches that vote, each weighted by the inverse of its distance
        (the closest match counts most).
    sigma_degrees : float, default=0.4
        The blur: peaks this far apart still overlap. The defaults are the middle
        of :data:`PARAM_GRID`; on the AMCSD build its search chose 0.8 degrees and
        one neighbour (grouped 3-fold CV accuracy 63.0 %, against 60.2 % at 0.4 and
        56.9 % at 0.2), while the real patterns scored 50.7, 52.0 and 53.3 %.
    floor : float, default=0.02
        Subtracted after SNIP (which scales the strongest peak to 1), before the
        square root.
    pool : int, default=4
        Grid points averaged into one after the blur (the blur has removed what
        a finer grid would hold).
    n_jobs : int, optional
        Threads of the neighbour search.

    Examples
    --------
    >>> from xrd_bravais.contract.grid import Grid
    >>> model = make_search_match(Grid(5.0, 90.0, 0.02, 4251))
    >>> model.named_steps["blur"].sigma, model.named_steps["match"].n_neighbors
    (20.0, 1)
    """
    return Pipeline([
        ("smooth", Smooth(9)),
        ("background", SubtractBackground(50)),
        ("floor", Floor(floor)),
        ("sqrt", IntensityTransform("sqrt")),
        ("blur", Blur(sigma_degrees / grid.step)),
        ("pool", Pool(pool, method="mean")),
        ("unit", Normalizer()),
        ("match", KNeighborsClassifier(n_neighbors=n_neighbors, weights="distance",
                                       algorithm="brute", n_jobs=n_jobs)),
    ])  # fmt: skip
