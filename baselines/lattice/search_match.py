"""Search-match: the lattice of the reference patterns a pattern resembles most.

Diffractometer users identify a phase by *search-match*: the measured pattern is
compared with every pattern of a reference library (the ICDD's PDF, the COD's
patterns) and the best matches name it. Here the library is the training set,
and the best matches vote for the lattice.

The similarity is the cosine of two patterns after the same preparation:

    Savitzky-Golay smoothing -> SNIP background removal -> minus a noise floor (2 %
    of the strongest peak, or the row's median plus three times its noise where
    that is higher) -> sqrt(intensity) -> Gaussian blur (``sigma`` degrees) ->
    mean-pool -> unit length

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

A blur tolerates a shift that is the same everywhere; a cell of another size
(a mineral of another composition, measured at another temperature) shifts
its peaks more the higher they lie: 2.5 % on a cubic cell moves them 0.7
degrees at 28 degrees and 2.7 at 88. So each pattern is also compared as if
its cell were up to ``strain`` larger or smaller (:class:`BestMatch`: 13
copies, at 0.5 % steps over +-3 %, by default), and a reference's score is its
best over the copies, as matching peak positions in d-spacing within a
tolerance would allow.

Matching runs by brute force over every reference (:class:`BestMatch`, in
chunks): its cost per query is one dot product with each reference for each
copy, ``n_copies x n_references x n_points / pool`` multiply-adds (13 copies
against 5,432 AMCSD references of 1,063 pooled points: 75 million per query).

The answer is the lattice of the best match, or with a ``symmetry_window`` the
most symmetric lattice whose best match is nearly as good (a triclinic reference
can put a peak near every peak of a more symmetric pattern, and a library of
computed structures holds thousands of them); the probabilities are a softmax of
each lattice's best cosine divided by a ``temperature``, so a second lattice whose
best match is nearly as good keeps a share of the vote. A blend
(``blend-realism``) can then let its other members decide between two close
matches, where a one-neighbour vote (probability 1 for the best match's lattice)
left them no say. The temperature is fitted with the references: the one that
makes these probabilities honest on held-out training rows (``temperature="auto"``),
never on real patterns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from baselines.lattice.features import IntensityTransform, Pool, Smooth, SubtractBackground
from xrd_bravais.contract.grid import Grid

PARAM_GRID: Final[dict[str, list[Any]]] = {"blur__sigma": [10.0, 20.0, 40.0]}
"""Search space of :func:`make_search_match` (blur in grid points: 0.2-0.8 degrees on
the default 0.02-degree grid). The search scores accuracy, which the temperature
does not change."""

WINDOWS: Final = (0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04)
"""The symmetry windows ``BestMatch(symmetry_window="auto")`` chooses among."""

FALLBACK_TEMPERATURE: Final = 0.06
"""The temperature of ``BestMatch(temperature="auto")`` where the references cannot
fit one (no held-out row has a label among the other folds' references): about what
the AMCSD build's training rows give with :func:`make_search_match`'s defaults (0.057
held out by compound; 0.041 at a 0.8-degree blur without ``strain``)."""


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
    """Subtract a noise floor from each row and clip at zero.

    The floor is ``level``, or where a row is noisier, its median (what background
    removal left) plus ``noise`` times its noise: the standard deviation of its
    point-to-point differences, estimated robustly (the median absolute difference
    times 1.4826, over sqrt 2), so peaks, which are few, do not raise it. A clean
    simulated pattern has neither (median and noise 0): ``level`` alone applies.

    Parameters
    ----------
    level : float, default=0.02
        In the units of the input (after SNIP: a share of the strongest peak).
    noise : float, default=0.0
        How many standard deviations of the row's noise, above its median, the
        floor lies at least; 0 applies ``level`` to every row.

    Examples
    --------
    >>> import numpy as np
    >>> Floor(0.1).fit_transform(np.array([[0.05, 0.5, 1.0]]))
    array([[0. , 0.4, 0.9]])
    >>> noisy = np.array([[0.1, 0.2] * 8 + [1.0]])  # median 0.2, noise 0.105
    >>> Floor(0.02, noise=3).fit(noisy).levels(noisy).round(3).tolist()  # 0.2 + 3 x 0.105
    [[0.515]]
    """

    def __init__(self, level: float = 0.02, noise: float = 0.0) -> None:
        self.level = level
        self.noise = noise

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("noise", 0.0)  # saved before it had one: the level alone
        super().__setstate__(state)

    def fit(self, X: Any, y: Any = None) -> Floor:
        """Check the parameters and record the number of columns."""
        for name in ("level", "noise"):
            value = getattr(self, name)
            if not (isinstance(value, int | float | np.number) and not isinstance(value, bool)
                    and np.isfinite(value) and value >= 0):  # fmt: skip
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        validate_data(self, X, dtype=(np.float32, np.float64))
        return self

    def levels(self, X: Any) -> np.ndarray:
        """Each row's floor, shape (n_rows, 1), in the dtype of ``X``."""
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        level = np.full((len(X), 1), self.level, dtype=X.dtype)
        if self.noise == 0 or X.shape[1] < 2:
            return level
        spread = np.median(np.abs(np.diff(X, axis=1)), axis=1, keepdims=True)
        sigma = spread * (1.4826 / np.sqrt(2))
        found = np.median(X, axis=1, keepdims=True) + self.noise * sigma
        return np.maximum(level, found).astype(X.dtype)

    def transform(self, X: Any) -> np.ndarray:
        """``max(X - floor, 0)`` row by row, same dtype."""
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        return np.maximum(X - self.levels(X), 0)


class BestMatch(ClassifierMixin, BaseEstimator):
    """The label of the most similar reference, with a score for every label.

    The rows are compared by their dot product, the cosine for unit-length rows
    (the last step of :func:`make_search_match` makes them so). For each label the
    best cosine among its references is its score; :meth:`predict` returns the
    label with the best score (the label of the nearest reference, as a
    one-neighbour classifier does) and :meth:`predict_proba` the softmax of the
    scores divided by the temperature.

    Parameters
    ----------
    temperature : float or "auto", default="auto"
        How far apart two best cosines must be for the better one to take most of
        the probability: a label whose best match is one temperature below the
        best has 1/e of its odds. Small values give the best match's label nearly
        all of it (a one-neighbour vote). ``"auto"`` fits it at :meth:`fit`: each
        reference is matched against the others in 3 shuffled folds, and the
        temperature is the one whose probabilities give the true labels the
        smallest log-loss. Given the compounds (``fit(X, y, groups=...)``, as
        ``baselines run`` does), the folds keep each compound whole, so that no
        reference meets its own near-copy: without them the temperature comes out
        a little low (0.037 against 0.041 on the AMCSD build).
    chunk_size : int, default=512
        Rows compared at a time (memory: ``chunk_size x n_references`` floats).
    strain : float, default=0.0
        How far a compared row's cell may differ in size from its reference's, as a
        fraction of every d-spacing: each row is also compared as if its cell were
        scaled by ``1 / s`` for ``s`` from ``1 - strain`` to ``1 + strain`` in steps of
        ``strain_step`` (``scales_``), and a reference's cosine is its best over
        those copies. A mineral measured in a laboratory rarely has the cell of its
        reference (another composition of a solid solution, another temperature):
        its peaks then lie a fraction of a degree away at high angles, further than
        a blur can bridge without merging its neighbours. 0 compares the rows as
        they are; anything else needs ``two_theta``.
    strain_step : float, default=0.005
        Between two scales tried.
    two_theta : tuple of (float, float), optional
        Where the columns lie: the first column's 2theta and the spacing, in
        degrees (the pooled grid of :func:`make_search_match`); needed for
        ``strain > 0``.
    max_held_out : int or None, default=30000
        ``temperature="auto"`` matches at most this many held-out references (a
        seeded random sample, each fold's share of it) against the other folds,
        since the fit's time grows with the held-out rows times the references:
        every row of a build of up to 30,000 training rows (194 s for 29,262 with
        13 cell sizes), a fifth of the 153,536 of one with the whole archive.
        None matches them all.
    symmetry_window : float or "auto", default=0.0
        How close two best cosines must be for the more symmetric lattice to win:
        the answer is the lattice of highest symmetry (the last in
        ``xrd_bravais.contract.labels.BRAVAIS_LATTICES``) among those whose best
        cosine lies within ``symmetry_window`` of the best, as indexing programs
        prefer the most symmetric cell that explains the peaks, since a cell of
        lower symmetry can mimic the pattern of a more symmetric one and a large
        library of triclinic and monoclinic references holds many such near
        matches. That lattice then takes the best cosine's place in the
        probabilities and the best match's lattice its own (the two swap), so
        ``predict`` stays the most probable label. Labels are Bravais lattice
        symbols or space-group numbers (ranked by their lattice; among groups of
        one lattice, the better match). 0 answers the best match's label.
        ``"auto"`` chooses it at :meth:`fit` among :data:`WINDOWS`, on the held-out
        matches the temperature is fitted on (the same folds and sample): the
        window under which the most held-out rows of ``own_source`` get their own
        label, if it beats no window by more than twice the standard error of the
        paired difference, else 0, so a window is kept only where the references
        clearly call for one. Labels that cannot be ranked get 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    scales_ : ndarray of shape (n_scales,)
        The cell scales each row is compared at (1.0 alone where ``strain=0``).
    temperature_ : float
        The temperature the probabilities use.
    symmetry_window_ : float
        The window the answers use: ``symmetry_window``, or the one chosen.
    window_accuracy_ : dict
        With ``symmetry_window="auto"``: the held-out accuracy under each of
        :data:`WINDOWS` (empty where no held-out row could be scored), and the
        number of held-out rows under the key ``"rows"``.
    references_ : ndarray of shape (n_references, n_features)
        The training rows (float32), sorted by label.
    starts_ : ndarray of shape (n_classes,)
        Where each label's references begin in ``references_``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> model = BestMatch(temperature=0.1).fit(X, ["cF", "hP"])
    >>> model.predict([[0.8, 0.6]]).tolist()
    ['cF']
    >>> model.predict_proba([[0.8, 0.6]]).round(3).tolist()  # softmax of (0.8, 0.6) / 0.1
    [[0.881, 0.119]]
    """

    def __init__(self, temperature: float | str = "auto", chunk_size: int = 512,
                 strain: float = 0.0, strain_step: float = 0.005,
                 two_theta: tuple[float, float] | None = None,
                 max_held_out: int | None = 30_000,
                 symmetry_window: float | str = 0.0) -> None:  # fmt: skip
        self.temperature = temperature
        self.chunk_size = chunk_size
        self.strain = strain
        self.strain_step = strain_step
        self.two_theta = two_theta
        self.max_held_out = max_held_out
        self.symmetry_window = symmetry_window

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model pickled before ``strain`` existed compared the rows as they are.
        state.setdefault("strain", 0.0)
        state.setdefault("strain_step", 0.005)
        state.setdefault("two_theta", None)
        state.setdefault("max_held_out", None)  # it matched every held-out row
        state.setdefault("symmetry_window", 0.0)  # it answered the best match's label
        if "references_" in state and "symmetry_window_" not in state:
            state["symmetry_window_"] = float(state["symmetry_window"])  # a number then
        if "references_" in state:
            state.setdefault("scales_", np.array([1.0]))
        super().__setstate__(state)

    def fit(self, X: Any, y: Any, groups: Any = None, own_source: Any = None) -> BestMatch:
        """Keep the references ``X`` sorted by their labels ``y``; fit the temperature.

        Parameters
        ----------
        X : array-like of shape (n_references, n_features)
        y : array-like of shape (n_references,)
        groups : array-like of shape (n_references,), optional
            The compound of each reference: ``temperature="auto"`` then holds out
            whole compounds (folds stratified by label), as
            :func:`calibrate_temperature` does; otherwise shuffled rows.
        own_source : array-like of bool, shape (n_references,), optional
            Which references are of the kind the queries will be (a build's own
            source, beside the computed structures of ``--train-extra``):
            ``symmetry_window="auto"`` is chosen on their held-out matches alone.
            Default: every reference.
        """
        from baselines.data import checked_own_source

        if not (self.temperature == "auto" or (
                isinstance(self.temperature, int | float | np.number)
                and not isinstance(self.temperature, bool)
                and np.isfinite(self.temperature) and self.temperature > 0)):  # fmt: skip
            raise ValueError(
                f"temperature must be 'auto' or a finite number > 0, got {self.temperature!r}"
            )
        if not (isinstance(self.chunk_size, int | np.integer)
                and not isinstance(self.chunk_size, bool) and self.chunk_size >= 1):  # fmt: skip
            raise ValueError(f"chunk_size must be an integer >= 1, got {self.chunk_size!r}")
        cap = self.max_held_out
        if cap is not None and not (isinstance(cap, int | np.integer)
                                    and not isinstance(cap, bool) and cap >= 1):  # fmt: skip
            raise ValueError(
                f"max_held_out must be None or an integer >= 1, got {self.max_held_out!r}"
            )
        window = self.symmetry_window
        if not (window == "auto" or (
                isinstance(window, int | float | np.number) and not isinstance(window, bool)
                and np.isfinite(window) and window >= 0)):  # fmt: skip
            raise ValueError(f"symmetry_window must be 'auto' or a number >= 0, got {window!r}")
        self.scales_ = self._scales()
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64))
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        ranks = None
        if window == "auto":
            with contextlib.suppress(ValueError):  # labels with no rank: no window
                ranks = _symmetry_ranks(self.classes_)
        elif window > 0:
            _symmetry_ranks(self.classes_)  # says which label it cannot rank
        order = np.argsort(codes, kind="stable")
        self.references_ = np.ascontiguousarray(X[order], dtype=np.float32)
        self.starts_ = np.searchsorted(codes[order], np.arange(len(self.classes_)))
        if groups is not None and len(groups) != len(y):
            raise ValueError(f"groups has {len(groups)} entries for {len(y)} references")
        own_source = checked_own_source(own_source, len(y))
        held = None
        if self.temperature == "auto" or ranks is not None:
            folds = temperature_folds(X, y, groups)
            held = None if folds is None else _held_out_scores(X, y, folds, self)
        found = None if held is None or self.temperature != "auto" else _best_temperature(*held[:2])
        self.temperature_ = (float(self.temperature) if self.temperature != "auto"
                             else FALLBACK_TEMPERATURE if found is None else found[0])  # fmt: skip
        if window != "auto":
            self.symmetry_window_ = float(window)
        elif ranks is None or held is None:
            self.symmetry_window_, self.window_accuracy_ = 0.0, {}
        else:
            self.symmetry_window_, self.window_accuracy_ = _choose_window(
                *held, ranks, own_source
            )
        return self

    def _scales(self) -> np.ndarray:
        """The cell scales to compare at, checking ``strain``, its step and ``two_theta``."""
        def number(value: Any) -> bool:
            return (isinstance(value, int | float | np.number) and not isinstance(value, bool)
                    and bool(np.isfinite(value)))  # fmt: skip

        if not (number(self.strain) and 0 <= self.strain < 0.5):
            raise ValueError(f"strain must be a number in [0, 0.5), got {self.strain!r}")
        if not (number(self.strain_step) and self.strain_step > 0):
            raise ValueError(f"strain_step must be a number > 0, got {self.strain_step!r}")
        if self.strain == 0:
            return np.array([1.0])
        if not (isinstance(self.two_theta, tuple | list) and len(self.two_theta) == 2
                and all(number(v) for v in self.two_theta) and self.two_theta[1] > 0):  # fmt: skip
            raise ValueError(
                "strain > 0 needs two_theta=(first column's 2theta, spacing) in degrees, "
                f"got {self.two_theta!r}"
            )
        steps = int(np.floor(self.strain / self.strain_step + 1e-9))
        return 1.0 + self.strain_step * np.arange(-steps, steps + 1)

    def _stretched(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """``X`` with its cells scaled by ``1 / s`` for each ``s`` of ``scales_``.

        The copy at ``s`` reads, at each ``theta``, the row's value at ``theta'``
        where ``sin(theta') = sin(theta) / s`` (linear interpolation, 0 beyond the
        outer columns' half spacing), so a peak of d-spacing ``d`` moves to where
        Bragg's law puts ``d / s``: the pattern of the same cell ``s`` times smaller. The copy is
        made as long as its row again (unit length for :func:`make_search_match`'s
        rows), so its dot products stay cosines.
        """
        if len(self.scales_) == 1:
            yield X
            return
        first, spacing = self.two_theta  # type: ignore[misc]  # checked by _scales
        centres = first + spacing * np.arange(X.shape[1])
        sin_half = np.sin(np.radians(centres / 2))
        lengths = np.linalg.norm(X, axis=1, keepdims=True)
        for scale in self.scales_:
            if scale == 1.0:
                yield X
                continue
            source = np.degrees(2 * np.arcsin(np.clip(sin_half / scale, 0.0, 1.0)))
            position = (source - first) / spacing
            # A column stands for the half spacing either side of its centre.
            inside = (position >= -0.5) & (position <= X.shape[1] - 0.5)
            position = np.clip(position, 0, X.shape[1] - 1)
            left = np.clip(np.floor(position).astype(int), 0, max(X.shape[1] - 2, 0))
            right = np.minimum(left + 1, X.shape[1] - 1)
            right_share = (position - left).astype(X.dtype)
            rows = (X[:, left] * (1 - right_share) + X[:, right] * right_share) * inside
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            yield rows * (lengths / np.where(norms > 0, norms, 1)).astype(X.dtype)

    def best_cosines(self, X: Any) -> np.ndarray:
        """Each label's best dot product with the rows of ``X``, shape (n, n_classes).

        With ``strain``, the best over the rows' scaled copies as well.
        """
        check_is_fitted(self, "references_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        X = np.asarray(X, dtype=np.float32)
        scores = np.full((len(X), len(self.classes_)), -np.inf, dtype=np.float32)
        for start in range(0, len(X), self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            for copy in self._stretched(X[rows]):
                best = np.maximum.reduceat(copy @ self.references_.T, self.starts_, axis=1)
                np.maximum(scores[rows], best, out=scores[rows])
        return scores

    def answer_scores(self, X: Any) -> np.ndarray:
        """:meth:`best_cosines`, the answer's label swapped with the best match's.

        The answer is the most symmetric label within ``symmetry_window_`` of the
        best cosine; with a window of 0, the best match's label, and nothing moves.
        """
        scores = self.best_cosines(X).astype(np.float64)
        if self.symmetry_window_ == 0:
            return scores
        return _symmetric_answer(scores, _symmetry_ranks(self.classes_), self.symmetry_window_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of :meth:`answer_scores` over ``temperature_``."""
        return _softmax(self.answer_scores(X), self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        """The label of each row's best match, or the most symmetric one near it."""
        answer = self.answer_scores(X).argmax(axis=1)  # checks the fit before classes_ is read
        return self.classes_[answer]


def _symmetry_ranks(labels: np.ndarray) -> np.ndarray:
    """Each label's place in ``BRAVAIS_LATTICES`` (higher: more symmetric).

    Labels are lattice symbols or space-group numbers (ranked by their lattice).
    """
    from xrd_bravais.contract.labels import BRAVAIS_LATTICES, bravais_lattice

    order = {lattice: rank for rank, lattice in enumerate(BRAVAIS_LATTICES)}
    ranks = []
    for label in labels:
        try:
            lattice = str(label) if str(label) in order else bravais_lattice(int(label))
        except (TypeError, ValueError):
            value = label.item() if isinstance(label, np.generic) else label
            raise ValueError(
                "symmetry_window > 0 needs Bravais lattice symbols or space-group numbers "
                f"as labels, got {value!r}"
            ) from None
        ranks.append(order[lattice])
    return np.array(ranks)


def _symmetric_answer(scores: np.ndarray, ranks: np.ndarray, window: float) -> np.ndarray:
    """``scores`` with each row's most symmetric near label swapped with its best.

    The near labels are those within ``window`` of the row's best score; among
    those of the highest rank, the better match.
    """
    scores = scores.copy()
    rows = np.arange(len(scores))
    best = scores.argmax(axis=1)
    near = scores >= scores[rows, best][:, None] - window
    ranked = np.where(near, ranks[None, :], -1)
    chosen = np.where(ranked == ranked.max(axis=1, keepdims=True), scores, -np.inf).argmax(axis=1)
    scores[rows, best], scores[rows, chosen] = scores[rows, chosen], scores[rows, best]
    return scores


def _choose_window(held_scores: list[np.ndarray], held_truth: list[np.ndarray],
                   held_rows: list[np.ndarray], ranks: np.ndarray, own_source: Any = None
                   ) -> tuple[float, dict[str, float | int]]:  # fmt: skip
    """The symmetry window of ``BestMatch(symmetry_window="auto")``, and each one's accuracy.

    The window of :data:`WINDOWS` under which most held-out rows (those of
    ``own_source`` where given) are answered their own label, if its gain over no
    window exceeds twice the standard error of the paired difference; else 0.
    """
    scores = np.vstack(held_scores) if held_scores else np.empty((0, len(ranks)))
    truth = np.concatenate(held_truth) if held_truth else np.empty(0, dtype=int)
    if own_source is not None and len(truth):
        keep = np.asarray(own_source)[np.concatenate(held_rows)]
        scores, truth = scores[keep], truth[keep]
    if not len(truth):
        return 0.0, {}
    hits = np.stack([_symmetric_answer(scores, ranks, w).argmax(axis=1) == truth
                     for w in WINDOWS])  # fmt: skip
    accuracy = hits.mean(axis=1)
    best = int(accuracy.argmax())  # the first, smallest window among equals
    gain = hits[best].astype(float) - hits[0]
    error = gain.std() / np.sqrt(len(truth))
    chosen = WINDOWS[best] if gain.mean() > 2 * error else 0.0
    table = {f"{w:g}": float(a) for w, a in zip(WINDOWS, accuracy, strict=True)}
    return chosen, {**table, "rows": len(truth)}


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
    return z / z.sum(axis=1, keepdims=True)


Folds = list[tuple[np.ndarray, np.ndarray]]


def temperature_folds(X: np.ndarray, y: np.ndarray, groups: Any, cv: int = 3,
                      random_state: int = 0) -> Folds | None:  # fmt: skip
    """Up to ``cv`` shuffled folds of the rows, whole compounds where ``groups`` is given.

    The folds the temperature is fitted on (``BestMatch(temperature="auto")``,
    :func:`calibrate_temperature`), and on which ``benchmarks.search_match_strain``
    chooses the strain and the blur.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
    y : ndarray of shape (n,)
        Labels: the grouped folds are stratified by them.
    groups : array-like of shape (n,) or None
        Compounds; None folds shuffled rows.
    cv : int, default=3
    random_state : int, default=0

    Returns
    -------
    list of (kept, held) index arrays, or None
        None where fewer than two folds can be made (one row, or one compound).
    """
    import warnings

    from sklearn.model_selection import KFold, StratifiedGroupKFold

    if groups is None:
        if len(y) < 2:
            return None
        return list(KFold(min(cv, len(y)), shuffle=True, random_state=random_state).split(X))
    n_groups = len(np.unique(np.asarray(groups)))
    if n_groups < 2:
        return None
    splitter = StratifiedGroupKFold(min(cv, n_groups), shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        # Rare labels have fewer compounds than folds: expected, and said once per fit.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(splitter.split(X, y, groups))


def _held_out_scores(X: np.ndarray, y: np.ndarray, folds: Any, matcher: BestMatch
                     ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """Per fold, the held-out rows' best cosines against the other rows, their labels, rows.

    Matched as ``matcher`` matches (its chunks and strain), at most its
    ``max_held_out`` rows in all: a seeded random sample, each fold's share of it.
    Rows whose label has no reference outside their fold are left out: no
    temperature gives them a score. Labels and columns are positions among the labels
    of ``y`` (sorted, as ``classes_``); rows, positions in ``X``.
    """
    from sklearn.base import clone

    classes = np.unique(y)

    limit = matcher.max_held_out
    n_held = sum(len(held) for _, held in folds)
    rng = np.random.default_rng(0)
    held_scores, held_truth, held_rows = [], [], []
    for train, held in folds:
        if limit is not None and n_held > limit:
            share = max(1, round(limit * len(held) / n_held))
            held = np.sort(rng.choice(held, size=share, replace=False))
        match = clone(matcher).set_params(temperature=1.0, symmetry_window=0.0)
        match.fit(X[train], y[train])
        known = held[np.isin(y[held], match.classes_)]
        if not len(known):
            continue
        # In the columns of every label: one a fold lacks scores -inf.
        scores = np.full((len(known), len(classes)), -np.inf)
        scores[:, np.searchsorted(classes, match.classes_)] = match.best_cosines(X[known])
        held_scores.append(scores)
        held_truth.append(np.searchsorted(classes, y[known]))
        held_rows.append(known)
    return held_scores, held_truth, held_rows


def _best_temperature(held_scores: list[np.ndarray], held_truth: list[np.ndarray]
                      ) -> tuple[float, float] | None:  # fmt: skip
    """The temperature of smallest mean log-loss over the held-out rows, and that loss."""
    from scipy.optimize import minimize_scalar

    n = sum(len(truth) for truth in held_truth)
    if n == 0:
        return None

    def log_loss(log_t: float) -> float:
        total = 0.0
        for scores, truth in zip(held_scores, held_truth, strict=True):
            p = _softmax(scores, float(np.exp(log_t)))[np.arange(len(truth)), truth]
            total -= float(np.log(np.clip(p, 1e-300, None)).sum())
        return total / n

    best = minimize_scalar(log_loss, bounds=(np.log(1e-4), np.log(10.0)), method="bounded")
    return float(np.exp(best.x)), float(best.fun)


def calibrate_temperature(model: Pipeline, X: Any, y: Any, groups: Any, cv: int = 3,
                          random_state: int = 0) -> tuple[float, float]:  # fmt: skip
    """The temperature that makes ``model``'s probabilities honest on held-out compounds.

    What ``temperature="auto"`` does at fit time given the compounds (``fit(X, y,
    match__groups=groups)``), with its log-loss, for reporting: the folds grouped by
    compound and stratified by label, so that no compound matches itself: each
    row is matched, through ``model``'s preparation, against the references of
    the other folds, and the temperature is the one whose probabilities give the
    true labels the smallest log-loss. Rows whose label has no reference outside
    their fold are left out.

    Parameters
    ----------
    model : Pipeline
        A search-match pipeline (:func:`make_search_match`); its preparation steps
        keep nothing from the rows they are fitted on, so they run once.
    X, y, groups : array-like
        Training patterns, labels and compounds (``Patterns.groups()``).
    cv : int, default=3
    random_state : int, default=0

    Returns
    -------
    temperature : float
    log_loss : float
        Its mean log-loss over the held-out rows.
    """
    from sklearn.base import clone

    y = np.asarray(y)
    prepared = np.asarray(clone(model[:-1]).fit_transform(X), dtype=np.float32)
    folds = temperature_folds(prepared, y, groups, cv, random_state)
    held = None if folds is None else _held_out_scores(prepared, y, folds, model[-1])
    found = None if held is None else _best_temperature(*held[:2])
    if found is None:
        raise ValueError("no held-out row has a label among the other folds' rows")
    return found


def make_search_match(grid: Grid, sigma_degrees: float = 0.2, pool: int = 4, floor: float = 0.02,
                      noise_floor: float = 3.0, temperature: float | str = "auto",
                      strain: float = 0.03, symmetry_window: float | str = "auto"
                      ) -> Pipeline:  # fmt: skip
    """A search-match classifier over the patterns on ``grid``.

    Parameters
    ----------
    grid : Grid
        Where the columns lie in 2theta; sets the blur in grid points.
    sigma_degrees : float, default=0.2
        The blur: peaks this far apart still overlap. With ``strain`` the blur
        need only bridge what a change of cell size does not explain (a zero
        shift, the peak widths), and on realism copies of the AMCSD build's
        training rows matched against the other compounds (3 folds grouped by
        compound) with a flat 2 % floor, 0.2 degrees is the best of
        :data:`PARAM_GRID` at every strain tried (66.7 % at 3 %, against 66.4 % at
        0.4 and 64.3 % at 0.8), and the search of ``baselines run --cv 3`` scores
        such copies; with the noise floor that search prefers 0.4 (68.6 against
        68.0 %, inside the folds' spread). Clean held-out rows (``--search-on
        clean``) prefer a wider blur (69.8 % at 0.8 degrees).
    pool : int, default=4
        Grid points averaged into one after the blur (the blur has removed what
        a finer grid would hold).
    floor : float, default=0.02
        Subtracted after SNIP (which scales the strongest peak to 1), before the
        square root.
    noise_floor : float, default=3.0
        Where a row is noisier, the floor is its median plus this many standard
        deviations of its noise instead (:class:`Floor`): a measured pattern's
        noise and what SNIP left of its background would otherwise pass the 2 %
        floor and, square-rooted, read as a carpet of weak peaks that low-symmetry
        references match best. Clean simulated rows, the references, keep the 2 %
        floor (their median and noise are 0). On realism copies of 1,801 held-out
        AMCSD minerals of the whole-archive build (one of the 3 folds, matched
        against the other two; ``benchmarks.search_match_floor``), 3 scores 71.6 %
        at a symmetry window of 0.015 against 69.2 % with the 2 % floor alone (5:
        71.3 %, 8: 71.1 %; a flat 3.5 % floor: 70.1 %), and on the AMCSD build's
        5,432 rows 68.0 % against 66.7 % without a window; 0 turns it off.
    temperature : float or "auto", default="auto"
        Of the probabilities (:class:`BestMatch`: ``"auto"`` fits it to the
        references); the answers do not depend on it.
    strain : float, default=0.03
        The largest difference of cell size tried, in steps of 0.5 %
        (:class:`BestMatch`; 13 comparisons of each row at 3 %). On realism
        copies of the AMCSD build's training rows (as above, 0.2 degrees) 0 %
        scores 55.9 %, 1 % 62.1 %, 2 % 64.8 %, 3 % 66.7 % and 5 % 68.5 % (21
        comparisons): 3 % takes most of the gain at a little over half the cost.
    symmetry_window : float or "auto", default="auto"
        Answer the most symmetric lattice whose best cosine is within this of the
        best (:class:`BestMatch`); ``"auto"`` chooses it on the held-out matches of
        the fit, on the rows of ``own_source`` (``baselines run`` passes the build's
        own structures, ``fit(X, y, match__own_source=...)``). With the whole
        archive beside the AMCSD build, windows of 0.015-0.02 do best on the
        held-out AMCSD minerals (clean 72.5 % against 67.3 % with none; realism
        copies 68.5 against 57.5 %), a library of many computed structures holding
        many low-symmetry near matches; on the AMCSD build alone no window beats
        none by more than 0.1 point on the clean held-out rows the fit scores, so
        ``"auto"`` keeps 0 there.

    Examples
    --------
    >>> from xrd_bravais.contract.grid import Grid
    >>> model = make_search_match(Grid(5.0, 90.0, 0.02, 4251))
    >>> model.named_steps["blur"].sigma, model.named_steps["match"].temperature
    (10.0, 'auto')
    >>> model.named_steps["match"].two_theta  # the pooled columns: 5.03, 5.11, ...
    (5.03, 0.08)
    """
    first = float(np.mean(grid.two_theta()[:pool]))
    return Pipeline([
        ("smooth", Smooth(9)),
        ("background", SubtractBackground(50)),
        ("floor", Floor(floor, noise=noise_floor)),
        ("sqrt", IntensityTransform("sqrt")),
        ("blur", Blur(sigma_degrees / grid.step)),
        ("pool", Pool(pool, method="mean")),
        ("unit", Normalizer()),
        ("match", BestMatch(temperature, strain=strain,
                            two_theta=(round(first, 10), round(grid.step * pool, 10)),
                            symmetry_window=symmetry_window)),
    ])  # fmt: skip
