"""The label set and the space-group -> Bravais lattice rule, over all 230 groups."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from xrd_bravais.contract.labels import (
    BRAVAIS_LATTICES,
    bravais_lattice,
    centring,
    crystal_family,
    normalise_lattice_symbol,
)

# Number of space groups per Bravais lattice (International Tables, Vol. A).
GOLDEN_COUNTS = {
    "aP": 2, "mP": 8, "mS": 5, "oP": 30, "oS": 15, "oI": 9, "oF": 5,
    "tP": 49, "tI": 19, "hR": 7, "hP": 45, "cP": 15, "cI": 10, "cF": 11,
}  # fmt: skip

# Hand-checked examples, including the A-centred orthorhombic groups (38-41),
# trigonal P groups (hP) and the rhombohedral ones (hR).
GOLDEN = {
    1: "aP", 2: "aP", 3: "mP", 5: "mS", 9: "mS", 12: "mS", 14: "mP", 15: "mS",
    16: "oP", 20: "oS", 22: "oF", 23: "oI", 38: "oS", 41: "oS", 42: "oF", 62: "oP",
    63: "oS", 64: "oS", 69: "oF", 70: "oF", 71: "oI", 74: "oI", 75: "tP", 79: "tI",
    88: "tI", 123: "tP", 139: "tI", 142: "tI", 143: "hP", 146: "hR", 147: "hP",
    148: "hR", 152: "hP", 155: "hR", 160: "hR", 161: "hR", 164: "hP", 166: "hR",
    167: "hR", 168: "hP", 191: "hP", 194: "hP", 195: "cP", 196: "cF", 197: "cI",
    198: "cP", 221: "cP", 225: "cF", 227: "cF", 229: "cI", 230: "cI",
}  # fmt: skip


def test_canonical_order():
    assert BRAVAIS_LATTICES == (
        "aP", "mP", "mS", "oP", "oS", "oI", "oF", "tP", "tI", "hR", "hP", "cP", "cI", "cF"
    )  # fmt: skip


def test_counts_per_lattice_over_all_230_groups():
    counts = Counter(bravais_lattice(n) for n in range(1, 231))
    assert dict(counts) == GOLDEN_COUNTS


@pytest.mark.parametrize(("number", "lattice"), sorted(GOLDEN.items()))
def test_golden_examples(number, lattice):
    assert bravais_lattice(number) == lattice


def test_rule_agrees_with_spglib_database_for_every_group():
    """Centring from spglib's standard symbols and family from pymatgen, all 230 groups."""
    spglib = pytest.importorskip("spglib")
    from pymatgen.symmetry.groups import SpaceGroup

    family_letter = {
        "triclinic": "a", "monoclinic": "m", "orthorhombic": "o", "tetragonal": "t",
        "trigonal": "h", "hexagonal": "h", "cubic": "c",
    }  # fmt: skip
    seen = {}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        seen.setdefault(sg.number, sg.international_short)
    assert sorted(seen) == list(range(1, 231))
    for number, symbol in seen.items():
        letter = symbol[0]
        centre = {"A": "S", "B": "S", "C": "S"}.get(letter, letter)
        expected_centring = "R" if letter == "R" else centre
        assert centring(number) == expected_centring, (number, symbol)
        system = SpaceGroup.from_int_number(number).crystal_system
        assert crystal_family(number) == family_letter[system], (number, system)


@pytest.mark.parametrize("bad", [0, 231, -5])
def test_out_of_range_numbers_are_refused(bad):
    with pytest.raises(ValueError, match=r"1\.\.230"):
        bravais_lattice(bad)


@pytest.mark.parametrize("bad", [1.0, "12", True, None])
def test_non_integers_are_refused(bad):
    with pytest.raises(TypeError, match="integer"):
        bravais_lattice(bad)


def test_numpy_integers_are_accepted():
    assert bravais_lattice(np.int64(225)) == "cF"


@pytest.mark.parametrize(
    ("given", "expected"), [("mC", "mS"), ("oC", "oS"), (" cF ", "cF"), ("xx", "xx")]
)
def test_normalise_legacy_spellings(given, expected):
    assert normalise_lattice_symbol(given) == expected


def test_every_lattice_has_a_name_in_canonical_order():
    from xrd_bravais.contract.labels import LATTICE_NAMES

    assert tuple(LATTICE_NAMES) == BRAVAIS_LATTICES
