"""Symmetry labels on hand-built structures (one per lattice) and on real COD files."""

from __future__ import annotations

import pytest

from competition.lattice.labels import symmetry_labels
from competition.sources.structures import RejectError, parse_structure
from xrd_bravais.contract.labels import BRAVAIS_LATTICES

pytest.importorskip("pymatgen")

# One space group per lattice, with a cell of that system whose parameters are
# generic, and one atom at a general position: the structure has exactly the
# symmetry of the group, no more.
HAND_BUILT = {
    "aP": (2, (5.1, 6.2, 7.3, 81.0, 86.0, 77.0)),
    "mP": (14, (5.1, 6.2, 7.3, 90, 104.0, 90)),
    "mS": (12, (5.1, 6.2, 7.3, 90, 104.0, 90)),
    "oP": (62, (5.1, 6.2, 7.3, 90, 90, 90)),
    "oS": (63, (5.1, 6.2, 7.3, 90, 90, 90)),
    "oI": (71, (5.1, 6.2, 7.3, 90, 90, 90)),
    "oF": (69, (5.1, 6.2, 7.3, 90, 90, 90)),
    "tP": (123, (5.1, 5.1, 7.3, 90, 90, 90)),
    "tI": (139, (5.1, 5.1, 7.3, 90, 90, 90)),
    "hR": (166, (5.1, 5.1, 13.3, 90, 90, 120)),
    "hP": (194, (5.1, 5.1, 7.3, 90, 90, 120)),
    "cP": (221, (5.1, 5.1, 5.1, 90, 90, 90)),
    "cI": (229, (5.1, 5.1, 5.1, 90, 90, 90)),
    "cF": (225, (5.1, 5.1, 5.1, 90, 90, 90)),
}


def _structure(number, cell):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(
        number, Lattice.from_parameters(*cell), ["Si"], [[0.1234, 0.2345, 0.3456]]
    )


def test_hand_built_cover_every_lattice():
    assert sorted(HAND_BUILT) == sorted(BRAVAIS_LATTICES)


@pytest.mark.parametrize("lattice", BRAVAIS_LATTICES)
def test_hand_built_structure_gets_its_lattice(lattice):
    number, cell = HAND_BUILT[lattice]
    labels = symmetry_labels(_structure(number, cell), symprec=0.01)
    assert labels.spacegroup_number == number
    assert labels.bravais_lattice == lattice


def test_tolerance_decides_between_near_symmetric_settings():
    """A cubic cell stretched by 0.02 A is tetragonal at 0.01 A and cubic at 0.1 A."""
    from pymatgen.core import Lattice, Structure

    cubic = _structure(225, (5.1, 5.1, 5.1, 90, 90, 90))
    stretched = Lattice.from_parameters(5.1, 5.1, 5.12, 90, 90, 90)
    structure = Structure(stretched, cubic.species, cubic.frac_coords)
    assert symmetry_labels(structure, symprec=0.001).bravais_lattice == "tI"
    assert symmetry_labels(structure, symprec=0.1).bravais_lattice == "cF"


def test_conventional_cell_is_setting_independent():
    """The same rock salt as a primitive cell and as the conventional cell."""
    structure = _structure(225, (5.64, 5.64, 5.64, 90, 90, 90))
    primitive = structure.get_primitive_structure()
    a = symmetry_labels(structure, symprec=0.1).conventional_cell
    b = symmetry_labels(primitive, symprec=0.1).conventional_cell
    assert a == pytest.approx(b, abs=1e-4)


def test_overlapping_atoms_are_rejected():
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(3.0), ["Si", "Si"], [[0, 0, 0], [0, 0, 1e-5]])
    with pytest.raises(RejectError) as info:
        symmetry_labels(structure, symprec=0.1)
    assert info.value.stage == "symmetry"


@pytest.mark.parametrize(
    ("cod_id", "number", "lattice"),
    [("1000027", 63, "oS"), ("1011240", 166, "hR"), ("9008569", 194, "hP")],
)
def test_real_cod_golden_labels(cod_cifs, cod_id, number, lattice):
    parsed = parse_structure((cod_cifs / f"{cod_id}.cif").read_text(), max_sites=500)
    labels = symmetry_labels(parsed.structure, symprec=0.1)
    assert (labels.spacegroup_number, labels.bravais_lattice) == (number, lattice)


def test_a_symprec_ladder_finds_the_declared_group_of_a_noisy_relaxed_cell():
    """Issue 10, item 18: relaxed structures carry ~0.02 A of numerical noise."""
    import numpy as np

    from competition.lattice.labels import ladder_labels

    clean = _structure(225, (5.1, 5.1, 5.1, 90, 90, 90))
    noisy = clean.copy()
    rng = np.random.default_rng(3)
    for i in range(len(noisy)):
        noisy.translate_sites([i], rng.normal(0, 0.006, 3), frac_coords=False)
    strict = symmetry_labels(noisy, 0.01)
    assert strict.spacegroup_number != 225  # the noise breaks the symmetry at 0.01 A
    found = ladder_labels(noisy, 0.01, (0.05, 0.1), declared=225)
    assert found.spacegroup_number == 225 and found.symprec == 0.05
    # The ladder stops at the first tolerance that agrees; with no declared group, or
    # none that agrees, the strict labels stand.
    assert ladder_labels(noisy, 0.01, (0.05, 0.1), declared=None) == strict
    assert ladder_labels(noisy, 0.01, (0.05, 0.1), declared=2) == strict
    exact = ladder_labels(clean, 0.01, (0.05, 0.1), declared=225)
    assert exact.symprec == 0.01


def test_the_ladder_enters_the_cache_key_and_is_checked():
    from competition.config import BuildConfig

    assert BuildConfig().structure_key() != BuildConfig(symprec_ladder=(0.05,)).structure_key()
    with pytest.raises(ValueError, match="increasing tolerances above symprec"):
        BuildConfig(symprec_ladder=(0.005,))
    with pytest.raises(ValueError, match="increasing"):
        BuildConfig(symprec_ladder=(0.1, 0.05))


def test_a_disordered_phase_has_one_formula_whatever_cell_it_is_written_in(cod_cifs):
    # PZT (COD 2102945): pymatgen leaves "Zr2.1Ti3.9Pb6O18" unreduced in the hexagonal
    # cell; a doubled cell or another file's primitive cell must give the same compound.
    from pymatgen.core import Composition

    from competition.lattice.labels import compound_formula

    text = (cod_cifs / "2102945.cif").read_text("latin-1")
    structure = parse_structure(text, 500).structure
    doubled = structure * (1, 1, 2)
    primitive = Composition("Zr0.7Ti1.3Pb2O6")
    assert structure.composition.reduced_formula != doubled.composition.reduced_formula
    formulas = {compound_formula(s) for s in
                (structure.composition, doubled.composition, primitive)}  # fmt: skip
    assert len(formulas) == 1
    # Ordered compounds keep their reduced formula; refinement noise is absorbed.
    assert compound_formula(Composition("Mg6C6O18")) == "MgCO3"
    assert compound_formula(Composition("K2Al2Si2O7.992")) == "KAlSiO4"
    assert compound_formula(Composition("Fe0.333Mg0.667O")) == compound_formula(
        Composition("Fe1Mg2O3"))  # fmt: skip
