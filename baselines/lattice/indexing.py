"""Centring by indexing: fit a cell to the peaks, then read its systematic absences.

The trained members and search-match tell a pattern's lattice system well; what
they miss most is its centring (``oS`` called ``oP``, ``hR`` called ``hP``, ``tP``
called ``tI``: ``docs/figures.md``, "Trees that read the peaks' relations") and,
next, the metric that sets orthorhombic apart from monoclinic. A
centred lattice shows as reflections missing from the pattern of its conventional
cell (``h + k`` odd for C-centring, ``-h + k + l`` not a multiple of 3 for ``hR`` in
hexagonal axes), which no feature reveals without the cell. This module finds the
cell as an indexing program does, in ``s = sin^2(theta)`` (proportional to
``1 / d^2``, so linear in the cell's reciprocal metric):

1. the first ``n_lines`` peaks by angle give ``s`` and a tolerance (a fixed error
   in 2theta, turned into ``s``);
2. every choice of as many of the first six lines as the system has parameters,
   given as many small index vectors, is solved for the parameters (the trial
   cells of TREOR, Werner et al., J. Appl. Cryst. 18, 367, 1985);
3. a trial cell indexes a line when some ``hkl`` falls within its tolerance; of the
   cells that index every line, the smallest is kept (the cell of fewest
   calculated lines), if de Wolff's figure of merit says it is likely right;
4. a centring holds when no line needs a reflection it forbids and at least one
   reflection it forbids, which the primitive cell would show, is missing.

Cubic, tetragonal, hexagonal (with rhombohedral) and orthorhombic cells are
fitted. :class:`CentringCheck` applies this after a vote. It fits the cells of the
system the vote chose, or orthorhombic cells where the vote chose a monoclinic
lattice. Where none fits, it tries the other systems, the more symmetric first.
The whole probability of the vote's crystal family then goes to the lattice the
first fitting cell and its absences show. It abstains, and the vote stands, where
the pattern has fewer than five lines, where no cell indexes every line with a
figure of merit of 10 or more (overlaps, a pattern too crowded, a real pattern's
noise or impurity), where the vote chose a triclinic lattice, and where a
primitive cubic cell's lines are also those of a centred cell with edges sqrt(2)
longer. No search exists on PyPI for this that runs here: ``mlindex`` downloads
its models from the Hugging Face Hub and ``pyobjcryst`` needs the ObjCryst++
library built, so the few lines are written out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Final

import numpy as np
from sklearn.base import BaseEstimator

from baselines.lattice.features import strongest_peaks
from xrd_bravais.contract.grid import Grid

Condition = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

SYSTEM_LATTICES: Final = {
    "c": ("cP", "cI", "cF"),
    "t": ("tP", "tI"),
    "h": ("hP", "hR"),
    "o": ("oP", "oS", "oI", "oF"),
}
"""The lattices of each system this module tells apart, primitive first."""

FITTED_SYSTEM: Final = {
    **{lat: system for system, lats in SYSTEM_LATTICES.items() for lat in lats},
    # A monoclinic guess is tried against the orthorhombic cells: a pattern whose
    # every line such a cell indexes has the orthorhombic metric (on the whole-archive
    # build one fitted 25 of 36 orthorhombic rows a vote called monoclinic, 3 of 188
    # monoclinic ones).
    "mP": "o",
    "mS": "o",
}
"""The system whose cells are fitted to a pattern, for each lattice a vote may guess."""

OTHER_SYSTEMS: Final = {"c": ("h", "t", "o"), "h": ("t", "o"), "t": ("h", "o")}
"""Systems tried in turn, the more symmetric first, where none of the guess's fits.

A vote that names the wrong system mostly names one whose cells index no pattern
of the true one (on the whole-archive build a tetragonal or hexagonal answer whose
own cells fit none was wrong on 38 of 39 simulated rows); an orthorhombic cell
indexes a tetragonal pattern too, so it comes last.
"""

CENTRINGS: Final[dict[str, tuple[tuple[str, Condition], ...]]] = {
    # Most restrictive first: an F-centred pattern also obeys the C, A and B rules.
    "c": (("cF", lambda h, k, ell: (h % 2 == k % 2) & (k % 2 == ell % 2)),
          ("cI", lambda h, k, ell: (h + k + ell) % 2 == 0)),
    "t": (("tI", lambda h, k, ell: (h + k + ell) % 2 == 0),),
    "h": (("hR", lambda h, k, ell: (-h + k + ell) % 3 == 0),  # obverse
          ("hR", lambda h, k, ell: (h - k + ell) % 3 == 0)),  # reverse
    "o": (("oF", lambda h, k, ell: (h % 2 == k % 2) & (k % 2 == ell % 2)),
          ("oI", lambda h, k, ell: (h + k + ell) % 2 == 0),
          ("oS", lambda h, k, ell: (h + k) % 2 == 0),
          ("oS", lambda h, k, ell: (k + ell) % 2 == 0),
          ("oS", lambda h, k, ell: (h + ell) % 2 == 0)),
}
"""Each system's centrings as (lattice, reflection condition on ``hkl``)."""

# The largest cell edge a trial may have, in units of the wavelength (about 30 and
# 80 angstrom with Cu K-alpha): larger cells index anything.
_MAX_A: Final = 20.0
_MAX_C: Final = 52.0
_N_BASE: Final = 6


def _metric(system: str, h: np.ndarray, k: np.ndarray, ell: np.ndarray) -> np.ndarray:
    """The index terms that multiply each cell parameter in ``s``.

    The last is ``l^2``, or for a cubic cell its one term ``h^2 + k^2 + l^2``.
    """
    if system == "c":
        return (h * h + k * k + ell * ell)[..., None]
    if system == "t":
        return np.stack([h * h + k * k, ell * ell], -1)
    if system == "h":
        return np.stack([h * h + h * k + k * k, ell * ell], -1)
    return np.stack([h * h, k * k, ell * ell], -1)


def _hkl(system: str, n_hk: int, n_l: int) -> np.ndarray:
    """Index triples up to ``n_hk`` in ``h, k`` and ``n_l`` in ``l``.

    Negative ``h, k`` too for the hexagonal system, whose metric has the cross term
    ``hk``.
    """
    low = -n_hk if system == "h" else 0
    h, k, ell = np.meshgrid(np.arange(low, n_hk + 1), np.arange(low, n_hk + 1),
                            np.arange(0, n_l + 1), indexing="ij")  # fmt: skip
    hkl = np.stack([h.ravel(), k.ravel(), ell.ravel()], -1)
    return hkl[(hkl != 0).any(axis=1)]


def trial_cells(s: np.ndarray, system: str) -> np.ndarray:
    """Cell parameters solving every choice of base lines and small index vectors.

    Parameters
    ----------
    s : ndarray of shape (n_lines,)
        The lines' ``sin^2(theta)``, ascending.
    system : {"c", "t", "h", "o"}
        Cubic cells have one parameter (``s = A (h^2 + k^2 + l^2)``), tetragonal and
        hexagonal ones two (``s = A m + C l^2``), orthorhombic ones three
        (``s = A h^2 + B k^2 + C l^2``, sorted: the axes' names are free).

    Returns
    -------
    ndarray of shape (n_cells, n_parameters)
        Distinct positive solutions, within the largest cell allowed.
    """
    # Orthorhombic trials give each of three lines indices up to 2; tetragonal and
    # hexagonal ones reach l = 8, as long c axes put their first lines at high l;
    # cubic ones reach h^2 + k^2 + l^2 = 48, past the sixth line of a diamond pattern.
    reach = {"o": (2, 2), "c": (4, 4)}.get(system, (3, 8))
    vectors = np.unique(_metric(system, *_hkl(system, *reach).T), axis=0).astype(float)
    n_par = vectors.shape[1]
    choices = np.array(list(itertools.permutations(range(len(vectors)), n_par)))
    matrices = vectors[choices]
    solvable = np.abs(np.linalg.det(matrices)) > 1e-9
    matrices = matrices[solvable]
    found = []
    for lines in itertools.combinations(s[:_N_BASE], n_par):
        rhs = np.broadcast_to(np.asarray(lines), (len(matrices), n_par))[..., None]
        cells = np.linalg.solve(matrices, rhs)[..., 0]
        found.append(cells[(cells > 0).all(axis=1)])
    cells = np.concatenate(found)
    if system == "o":
        cells = np.sort(cells, axis=1)
    edges = [_MAX_A] if n_par == 1 else [_MAX_A] * (n_par - 1) + [_MAX_C]
    least = 0.25 / np.array(edges) ** 2
    cells = cells[(cells >= least).all(axis=1)]
    _, first = np.unique(np.round(np.log(cells) * 300).astype(np.int64), axis=0,
                         return_index=True)  # fmt: skip
    return cells[np.sort(first)]


def _n_indexed(s: np.ndarray, tol: np.ndarray, system: str, cells: np.ndarray,
               chunk: int = 1000) -> np.ndarray:  # fmt: skip
    """How many lines each cell indexes (some ``hkl`` within the line's tolerance)."""
    if system == "c":  # a cubic cell indexes what the tetragonal cell with c = a does
        return _n_indexed(s, tol, "t", np.repeat(cells, 2, axis=1), chunk)
    # Chunks of like cells: the smallest parameter sets how many zones a chunk needs.
    order = np.argsort(cells[:, :-1].min(axis=1))
    counts = np.empty(len(cells), dtype=int)
    for start in range(0, len(cells), chunk):
        rows = order[start:start + chunk]
        part = cells[rows]
        # All index terms but the last; l then follows from s itself.
        n = min(int(np.sqrt(s.max() / part[:, :-1].min())) + 1, 30)
        zones = np.unique(_metric(system, *_hkl(system, n, 0).T)[:, :-1], axis=0)
        zones = np.vstack([np.zeros((1, zones.shape[1])), zones]).astype(float)
        rest = s[None, None, :] - (part[:, :-1] @ zones.T)[:, :, None]
        c = part[:, -1][:, None, None]
        ell = np.rint(np.sqrt(np.clip(rest, 0, None) / c))
        error = np.where(rest > -tol, np.abs(rest - c * ell * ell), np.inf).min(axis=1)
        counts[rows] = (error < tol).sum(axis=1)
    return counts


def index_lines(s: np.ndarray, tol: np.ndarray, system: str, n_first: int = 8,
                min_merit: float = 10.0) -> np.ndarray | None:  # fmt: skip
    """The smallest cell of ``system`` that indexes every line, or None.

    Parameters
    ----------
    s, tol : ndarray of shape (n_lines,)
        The lines' ``sin^2(theta)``, ascending, and each one's tolerance.
    system : {"c", "t", "h", "o"}
    n_first : int, default=8
        Trials are first screened on this many lines, the survivors on all.
    min_merit : float, default=10.0
        The least figure of merit of de Wolff (J. Appl. Cryst. 1, 108, 1968) the
        cell must reach, ``s_N / (2 <error> N_calc)``: a cell large enough to
        index anything has many calculated lines and a mean error near the
        tolerance. Ten is the customary mark of a cell likely to be right.

    Returns
    -------
    ndarray or None
        The cell's parameters in ``s`` (``lambda^2 / (4 a^2)`` and alike).
    """
    cells = trial_cells(s, system)
    n = min(n_first, len(s))
    cells = cells[_n_indexed(s[:n], tol[:n], system, cells) == n]
    if len(cells):
        cells = cells[_n_indexed(s, tol, system, cells) == len(s)]
    if not len(cells):
        return None
    # The smallest cell: the largest product of the reciprocal parameters.
    size = cells.prod(axis=1) * (cells[:, 0] if cells.shape[1] == 2 else 1.0)
    cell = cells[np.argmax(size)]
    return cell if merit(s, tol, system, cell) >= min_merit else None


def _reflections(system: str, cell: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray]:
    """The cell's ``hkl`` and their ``s`` up to ``top``."""
    edge = cell[:-1].min() if len(cell) > 1 else cell[0]
    hkl = _hkl(system, int(np.sqrt(top / edge)) + 1, int(np.sqrt(top / cell[-1])) + 1)
    calc = _metric(system, *hkl.T).astype(float) @ cell
    return hkl[calc <= top], calc[calc <= top]


def _positions(calc: np.ndarray, top: float) -> np.ndarray:
    """Which distinct position each reflection is at (equal within rounding)."""
    return np.unique(np.round(calc / top * 2e5).astype(np.int64), return_inverse=True)[1]


def merit(s: np.ndarray, tol: np.ndarray, system: str, cell: np.ndarray) -> float:
    """De Wolff's figure of merit of ``cell`` for the lines ``s`` (primitive lattice)."""
    _, calc = _reflections(system, cell, s.max() + tol.max())
    if not len(calc):
        return 0.0
    error = np.abs(calc[None, :] - s[:, None]).min(axis=1).mean()
    n_calc = np.unique(_positions(calc, s.max())[calc <= s.max() + tol[-1]]).size
    return float(s.max() / (2 * max(error, 1e-9 * s.max()) * n_calc))


def centring(s: np.ndarray, tol: np.ndarray, system: str, cell: np.ndarray) -> str:
    """The lattice of ``system`` that the absences of ``cell``'s reflections show.

    A centring holds when every line can be given a reflection it allows and at
    least one reflection it forbids, away from every line, is missing; the first
    that holds (most restrictive first) is the answer, else the primitive lattice.
    """
    top = s.max() + tol.max()
    hkl, calc = _reflections(system, cell, top)
    near = np.abs(calc[None, :] - s[:, None]) < tol[:, None]  # (lines, reflections)
    # Reflections at one position (equal within rounding) fall or stand together.
    position = _positions(calc, top)
    seen = np.zeros(position.max() + 1, dtype=bool)
    np.logical_or.at(seen, position, near.any(axis=0))
    for lattice, allowed in CENTRINGS[system]:
        ok = allowed(*hkl.T)
        if (near & ok).any(axis=1).all():
            kept = np.zeros_like(seen)
            np.logical_or.at(kept, position, ok)
            if (~kept & ~seen).any():
                return lattice
    return SYSTEM_LATTICES[system][0]


def peak_lines(x: np.ndarray, grid: Grid, n_lines: int = 20, min_height: float = 0.01,
               tolerance: float = 0.03) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``sin^2(theta)`` of a pattern's first peaks by angle, and each one's tolerance.

    Parameters
    ----------
    x : ndarray of shape (n_points,)
        One pattern on ``grid``.
    grid : Grid
    n_lines : int, default=20
        The lines kept (the first by angle among the 40 strongest).
    min_height : float, default=0.01
        Peaks below this share of the strongest are not lines.
    tolerance : float, default=0.03
        The error allowed in a line's position, in degrees 2theta.
    """
    position, height = strongest_peaks(np.asarray(x, dtype=float)[None], 2 * n_lines,
                                        min_height)  # fmt: skip
    two_theta = np.sort(grid.two_theta_min + grid.step * position[0][height[0] > 0])[:n_lines]
    theta = np.radians(two_theta) / 2
    # ds / d(2theta) = sin(2 theta) / 2 per radian.
    return np.sin(theta) ** 2, np.sin(2 * theta) / 2 * np.radians(tolerance)


class CentringCheck(BaseEstimator):
    """Check a vote's lattice by indexing the pattern's peaks: centring and system.

    Parameters
    ----------
    grid : Grid
        The 2theta grid of the patterns.
    n_lines : int, default=20
        Lines to index (fewer where the pattern has fewer).
    min_height : float, default=0.01
        Peaks below this share of the strongest are not lines.
    tolerance : float, default=0.03
        The error allowed in a line's position, in degrees 2theta.
    min_lines : int, default=5
        Patterns with fewer lines are left to the vote.

    Examples
    --------
    >>> import numpy as np
    >>> from xrd_bravais.contract.grid import Grid
    >>> grid = Grid(5.0, 90.0, 0.02, 4251, "CuKa", 0.1)
    >>> two_theta = grid.two_theta()
    >>> a, c, wavelength = 3.8, 9.6, 1.5406  # a body-centred tetragonal cell
    >>> x = np.zeros_like(two_theta)
    >>> for h, k, ell in [(1, 0, 1), (0, 0, 2), (1, 1, 0), (1, 1, 2), (2, 0, 0), (1, 0, 3),
    ...                 (2, 1, 1), (0, 0, 4), (2, 0, 2), (2, 2, 0), (1, 1, 4)]:
    ...     d = 1 / np.sqrt((h * h + k * k) / a**2 + ell * ell / c**2)
    ...     peak = np.degrees(2 * np.arcsin(wavelength / (2 * d)))
    ...     x += np.exp(-0.5 * ((two_theta - peak) / 0.04) ** 2)
    >>> check = CentringCheck(grid)
    >>> check.lattices(x[None], ["tP"]).tolist()
    ['tI']
    """

    def __init__(self, grid: Grid, n_lines: int = 20, min_height: float = 0.01,
                 tolerance: float = 0.03, min_lines: int = 5) -> None:  # fmt: skip
        self.grid = grid
        self.n_lines = n_lines
        self.min_height = min_height
        self.tolerance = tolerance
        self.min_lines = min_lines

    def lattice(self, x: np.ndarray, system: str) -> str | None:
        """The lattice that indexing shows for one pattern, or None.

        ``system``'s cells are fitted first; where none indexes every line, those of
        :data:`OTHER_SYSTEMS` in turn, and the first system that fits gives the
        lattice.
        """
        s, tol = peak_lines(x, self.grid, self.n_lines, self.min_height, self.tolerance)
        if len(s) < self.min_lines:
            return None
        for fitted in (system, *OTHER_SYSTEMS.get(system, ())):
            cell = index_lines(s, tol, fitted)
            if cell is not None:
                break
        else:
            return None
        found = centring(s, tol, fitted, cell)
        # The lines of a primitive cubic cell are also those of a centred cell with edges
        # sqrt(2) longer (h^2 + k^2 + l^2 doubled) until one needs a doubled sum that no
        # allowed reflection has (7 -> 14 for cI): the classic ambiguity is left to the vote.
        if found == "cP" and centring(s, tol, "c", cell / 2) != "cP":
            return None
        return found

    def lattices(self, X: np.ndarray, guesses: list[str] | np.ndarray) -> np.ndarray:
        """Each row's lattice by indexing, its guess's system fitted first.

        The guess stands where indexing abstains.
        """
        out = np.asarray(guesses, dtype=object).copy()
        for i, guess in enumerate(guesses):
            if guess in FITTED_SYSTEM:
                found = self.lattice(np.asarray(X[i]), FITTED_SYSTEM[guess])
                out[i] = guess if found is None else found
        return out

    def refine(self, X: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Move each row's crystal-family probability to the lattice indexing shows.

        Parameters
        ----------
        X : array of shape (n_rows, n_points)
        proba : ndarray of shape (n_rows, n_classes)
            A vote's probabilities, columns in the order of ``classes``.
        classes : ndarray of shape (n_classes,)

        Returns
        -------
        ndarray
            ``proba`` where indexing abstained or agreed; elsewhere the whole
            probability of the guessed lattice's crystal family moved onto the
            lattice found.
        """
        classes = np.asarray(classes)
        column = {label: j for j, label in enumerate(classes.tolist())}
        guesses = classes[np.argmax(proba, axis=1)]
        found = self.lattices(X, guesses)
        out = np.array(proba, dtype=float, copy=True)
        for i in np.flatnonzero(found != guesses):
            if found[i] not in column:
                continue
            # The guess's crystal family (the symbol's first letter: hP and hR share it).
            columns = [j for j, lat in enumerate(classes.tolist()) if lat[0] == guesses[i][0]]
            total = out[i, columns].sum()
            out[i, columns] = 0.0
            out[i, column[found[i]]] += total
        return out
