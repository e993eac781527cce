"""Centring by indexing: cells fitted to simulated patterns of hand-built structures."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from baselines.lattice.blend import SoftVote
from baselines.lattice.indexing import CentringCheck, centring, index_lines, peak_lines
from competition.config import PRESETS
from competition.physics.patterns import xrd_pattern
from xrd_bravais.contract.grid import Grid

CONFIG = PRESETS["default"]
GRID = Grid(CONFIG.two_theta_min, CONFIG.two_theta_max, CONFIG.step, CONFIG.n_points,
            CONFIG.wavelength, CONFIG.fwhm)  # fmt: skip
CU_KA = 1.5406

# (lattice, space group, cell, sites): one structure of each lattice the check tells apart.
STRUCTURES = [
    ("cP", "Pm-3m", Lattice.cubic(4.11), [("Cs", [0, 0, 0]), ("Cl", [0.5, 0.5, 0.5])]),
    ("cI", "Im-3m", Lattice.cubic(5.0), [("Ba", [0, 0, 0])]),
    ("cF", "Fm-3m", Lattice.cubic(5.64), [("Na", [0, 0, 0]), ("Cl", [0.5, 0.5, 0.5])]),
    ("tP", "P4/mmm", Lattice.tetragonal(3.9, 5.3), [("Ti", [0, 0, 0]), ("O", [0.5, 0.5, 0.3])]),
    ("tI", "I4/mmm", Lattice.tetragonal(3.8, 9.6), [("Ba", [0, 0, 0]), ("Fe", [0, 0.5, 0.25]),
                                                    ("As", [0, 0, 0.35])]),
    ("hP", "P6_3/mmc", Lattice.hexagonal(3.1, 5.0), [("Zn", [1 / 3, 2 / 3, 0.25]),
                                                     ("O", [1 / 3, 2 / 3, 0.62])]),
    ("hR", "R-3m", Lattice.hexagonal(4.9, 17.1), [("Fe", [0, 0, 0]), ("O", [0, 0, 0.26]),
                                                 ("Li", [0, 0, 0.5])]),
    ("oP", "Pmmm", Lattice.orthorhombic(3.7, 4.4, 5.9), [("Ca", [0, 0, 0]),
                                                         ("S", [0.5, 0.5, 0.5]),
                                                         ("O", [0.2, 0.5, 0.0])]),
    ("oS", "Cmmm", Lattice.orthorhombic(5.7, 7.9, 3.4), [("Ca", [0, 0, 0]),
                                                         ("S", [0.5, 0, 0.5]),
                                                         ("O", [0.2, 0.3, 0])]),
    ("oI", "Immm", Lattice.orthorhombic(3.6, 4.7, 6.4), [("Ca", [0, 0, 0]),
                                                         ("O", [0.3, 0, 0])]),
    ("oF", "Fmmm", Lattice.orthorhombic(5.1, 6.3, 7.7), [("Ca", [0, 0, 0]),
                                                         ("O", [0.25, 0.25, 0.25])]),
]


def _pattern(group: str, lattice: Lattice, sites) -> np.ndarray:
    species = [name for name, _ in sites]
    coords = [xyz for _, xyz in sites]
    return xrd_pattern(Structure.from_spacegroup(group, lattice, species, coords), CONFIG)


@pytest.mark.parametrize(("lattice", "group", "cell", "sites"), STRUCTURES,
                         ids=[row[0] for row in STRUCTURES])  # fmt: skip
def test_each_lattice_is_told_from_the_others_of_its_system(lattice, group, cell, sites):
    x = _pattern(group, cell, sites)
    assert CentringCheck(GRID).lattice(x, lattice[0]) == lattice


def test_the_cell_found_is_the_structures_own():
    x = _pattern("I4/mmm", Lattice.tetragonal(3.8, 9.6),
                 [("Ba", [0, 0, 0]), ("Fe", [0, 0.5, 0.25]), ("As", [0, 0, 0.35])])
    s, tol = peak_lines(x, GRID)
    cell = index_lines(s, tol, "t")
    assert cell is not None
    a, c = CU_KA / (2 * np.sqrt(cell))
    assert a == pytest.approx(3.8, abs=0.01)
    assert c == pytest.approx(9.6, abs=0.02)
    assert centring(s, tol, "t", cell) == "tI"


def test_a_primitive_pattern_with_one_line_that_breaks_centring_stays_primitive():
    # The lines of the I-centred cell above, and one (1 0 0) that I-centring forbids.
    s, tol = peak_lines(_pattern("I4/mmm", Lattice.tetragonal(3.8, 9.6),
                                 [("Ba", [0, 0, 0]), ("Fe", [0, 0.5, 0.25]),
                                  ("As", [0, 0, 0.35])]), GRID)  # fmt: skip
    extra = (CU_KA / (2 * 3.8)) ** 2
    s, tol = np.append(s[:-1], extra), np.append(tol[:-1], tol[0])
    order = np.argsort(s)
    s, tol = s[order], tol[order]
    cell = index_lines(s, tol, "t")
    assert cell is not None
    assert centring(s, tol, "t", cell) == "tP"


def test_a_body_centred_cubic_pattern_too_short_to_tell_from_a_primitive_one_is_left_alone():
    # Six lines, h^2 + k^2 + l^2 = 2 ... 12, are also 1 ... 6 of the cell 1/sqrt(2) the size:
    # only the line at 14 (7 in the small cell, no sum of three squares) would tell.
    x = _pattern("Im-3m", Lattice.cubic(3.9), [("Mo", [0, 0, 0])])
    s, tol = peak_lines(x, GRID)
    assert len(s) == 6
    cell = index_lines(s, tol, "c")
    assert CU_KA / (2 * np.sqrt(cell[0])) == pytest.approx(3.9 / np.sqrt(2), abs=0.01)
    assert centring(s, tol, "c", cell) == "cP"
    assert CentringCheck(GRID).lattice(x, "c") is None


def test_a_monoclinic_guess_becomes_orthorhombic_only_where_an_orthorhombic_cell_fits():
    x_op = _pattern("Pmmm", Lattice.orthorhombic(3.7, 4.4, 5.9),
                    [("Ca", [0, 0, 0]), ("S", [0.5, 0.5, 0.5]), ("O", [0.2, 0.5, 0.0])])
    x_mp = _pattern("P2_1/c", Lattice.monoclinic(5.1, 6.2, 7.3, 104),
                    [("Ca", [0.12, 0.21, 0.33]), ("O", [0.31, 0.07, 0.18])])
    classes = np.array(["mP", "mS", "oP", "oS"])
    proba = np.array([[0.5, 0.2, 0.2, 0.1], [0.5, 0.2, 0.2, 0.1]])
    out = CentringCheck(GRID).refine(np.vstack([x_op, x_mp]), proba, classes)
    np.testing.assert_allclose(out[0], [0.0, 0.0, 0.9, 0.1])  # the family's mass moves
    np.testing.assert_allclose(out[1], proba[1])


@pytest.mark.parametrize(("lattice", "guessed"), [("oP", "t"), ("oS", "h")])
def test_a_guessed_system_that_fits_no_cell_gives_way_to_one_that_does(lattice, guessed):
    _, group, cell, sites = next(row for row in STRUCTURES if row[0] == lattice)
    x = _pattern(group, cell, sites)
    s, tol = peak_lines(x, GRID)
    assert index_lines(s, tol, guessed) is None
    assert CentringCheck(GRID).lattice(x, guessed) == lattice


def test_it_abstains_where_no_cell_of_the_system_indexes_every_line():
    rng = np.random.default_rng(0)
    x = np.zeros(GRID.n_points)
    two_theta = GRID.two_theta()
    for peak in rng.uniform(10, 80, 20):  # lines of no lattice
        x += np.exp(-0.5 * ((two_theta - peak) / 0.04) ** 2)
    assert CentringCheck(GRID).lattice(x, "o") is None
    assert CentringCheck(GRID).lattice(np.zeros(GRID.n_points), "t") is None


def test_refine_moves_the_familys_probability_and_leaves_other_rows_alone():
    x_ti = _pattern("I4/mmm", Lattice.tetragonal(3.8, 9.6),
                    [("Ba", [0, 0, 0]), ("Fe", [0, 0.5, 0.25]), ("As", [0, 0, 0.35])])
    x_cf = _pattern("Fm-3m", Lattice.cubic(5.64), [("Na", [0, 0, 0]), ("Cl", [0.5, 0.5, 0.5])])
    classes = np.array(["aP", "cF", "tI", "tP"])
    proba = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.5, 0.1, 0.3], [0.6, 0.1, 0.1, 0.2]])
    out = CentringCheck(GRID).refine(np.vstack([x_ti, x_cf, x_cf]), proba, classes)
    np.testing.assert_allclose(out[0], [0.1, 0.2, 0.7, 0.0])
    np.testing.assert_allclose(out[1], proba[1])  # indexing agrees with the guess
    np.testing.assert_allclose(out[2], proba[2])  # a triclinic guess is not checked


def test_the_vote_applies_the_check_after_averaging():
    from sklearn.dummy import DummyClassifier

    x_ti = _pattern("I4/mmm", Lattice.tetragonal(3.8, 9.6),
                    [("Ba", [0, 0, 0]), ("Fe", [0, 0.5, 0.25]), ("As", [0, 0, 0.35])])
    X, y = np.vstack([x_ti, x_ti, x_ti]), ["tP", "tP", "tI"]
    plain = SoftVote([("prior", DummyClassifier(strategy="prior"))]).fit(X, y)
    checked = SoftVote([("prior", DummyClassifier(strategy="prior"))],
                       centring=CentringCheck(GRID)).fit(X, y)  # fmt: skip
    assert plain.predict(X[:1]).tolist() == ["tP"]
    assert checked.predict(X[:1]).tolist() == ["tI"]
    np.testing.assert_allclose(checked.predict_proba(X[:1]).sum(axis=1), 1.0)
