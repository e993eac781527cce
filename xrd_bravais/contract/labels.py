"""The label sets of the competition: the 14 Bravais lattices and the 230 space groups.

This module is the single source of truth for every label the project writes or
reads. It imports nothing heavy, so that :mod:`scoring` (which students install
without pymatgen) can use it.

The Bravais lattice of a space group is its crystal family letter followed by its
centring, written as a Pearson symbol:

* family: ``a`` triclinic, ``m`` monoclinic, ``o`` orthorhombic, ``t`` tetragonal,
  ``h`` hexagonal (trigonal *and* hexagonal systems), ``c`` cubic;
* centring: the first letter of the standard Hermann-Mauguin symbol, where the
  one-face centrings A, B and C are all written ``S`` and rhombohedral ``R`` gives
  ``hR``; trigonal groups with a primitive lattice give ``hP``.
"""

from __future__ import annotations

import operator
from typing import Final

BRAVAIS_LATTICES: Final[tuple[str, ...]] = (
    "aP", "mP", "mS", "oP", "oS", "oI", "oF",
    "tP", "tI", "hR", "hP", "cP", "cI", "cF",
)  # fmt: skip
"""The 14 Bravais lattices (Pearson symbols) in the competition's canonical order."""

LATTICE_NAMES: Final[dict[str, str]] = {
    "aP": "triclinic, primitive",
    "mP": "monoclinic, primitive",
    "mS": "monoclinic, one-face centred (C or A; older symbol mC)",
    "oP": "orthorhombic, primitive",
    "oS": "orthorhombic, one-face centred (C, A or B; older symbol oC)",
    "oI": "orthorhombic, body centred",
    "oF": "orthorhombic, all-face centred",
    "tP": "tetragonal, primitive",
    "tI": "tetragonal, body centred",
    "hR": "rhombohedral (trigonal R)",
    "hP": "hexagonal, primitive (hexagonal and trigonal P)",
    "cP": "cubic, primitive",
    "cI": "cubic, body centred",
    "cF": "cubic, face centred",
}
"""A plain-words description of each lattice, for documents students read."""

LATTICE_SYSTEMS: Final[dict[str, str]] = {
    "aP": "aP", "mP": "m", "mS": "m", "oP": "o", "oS": "o", "oI": "o", "oF": "o",
    "tP": "t", "tI": "t", "hR": "hR", "hP": "hP", "cP": "c", "cI": "c", "cF": "c",
}  # fmt: skip
"""The lattice system of each Bravais lattice, in seven classes: ``aP`` (triclinic),
``m``, ``o``, ``t``, ``hR`` (rhombohedral), ``hP`` (hexagonal, with trigonal P) and ``c``.
Reported beside the lattice accuracy on real patterns: it forgives a wrong centring
(``mP`` for ``mS``) and keeps a wrong symmetry wrong."""

SPACEGROUP_NUMBERS: Final[range] = range(1, 231)
"""The space-group track labels: International Tables numbers 1..230."""

LEGACY_SPELLINGS: Final[dict[str, str]] = {"mC": "mS", "oC": "oS"}
"""Older spellings of the one-face-centred lattices, accepted and normalised."""

# Highest space-group number of each crystal family, in order. Trigonal (143-167)
# and hexagonal (168-194) share the letter "h".
_FAMILY_UPPER_BOUNDS: Final = ((2, "a"), (15, "m"), (74, "o"), (142, "t"), (194, "h"), (230, "c"))

# Space groups whose standard symbol does not start with "P" (International Tables,
# Vol. A). Everything not listed here is primitive.
# fmt: off
_CENTRED: Final[dict[str, frozenset[int]]] = {
    # A, B or C: monoclinic C2, Cm, Cc, C2/m, C2/c; orthorhombic C222_1 ... Ccce.
    "S": frozenset({5, 8, 9, 12, 15, 20, 21, *range(35, 42), *range(63, 69)}),
    "I": frozenset({
        23, 24, 44, 45, 46, 71, 72, 73, 74,
        79, 80, 82, 87, 88, 97, 98, *range(107, 111), *range(119, 123), *range(139, 143),
        197, 199, 204, 206, 211, 214, 217, 220, 229, 230,
    }),
    "F": frozenset({22, 42, 43, 69, 70, 196, 202, 203, 209, 210, 216, 219, 225, 226, 227, 228}),
    "R": frozenset({146, 148, 155, 160, 161, 166, 167}),
}
# fmt: on


def _check_spacegroup_number(number: int) -> int:
    if isinstance(number, bool):
        raise TypeError(f"space-group number must be an integer, got {number!r}")
    try:
        number = operator.index(number)  # int and numpy integers; not floats
    except TypeError:
        raise TypeError(f"space-group number must be an integer, got {number!r}") from None
    if number not in SPACEGROUP_NUMBERS:
        raise ValueError(f"space-group number must be in 1..230, got {number}")
    return number


def crystal_family(number: int) -> str:
    """Return the crystal family letter (``a m o t h c``) of a space group.

    Parameters
    ----------
    number : int
        International Tables space-group number, 1..230.

    Returns
    -------
    str
        One of ``"a"``, ``"m"``, ``"o"``, ``"t"``, ``"h"``, ``"c"``.

    Examples
    --------
    >>> crystal_family(225)
    'c'
    """
    number = _check_spacegroup_number(number)
    return next(letter for upper, letter in _FAMILY_UPPER_BOUNDS if number <= upper)


def centring(number: int) -> str:
    """Return the lattice centring of a space group: ``P``, ``S``, ``I``, ``F`` or ``R``.

    ``S`` stands for any one-face centring (A, B or C).

    Examples
    --------
    >>> centring(12), centring(166), centring(194)
    ('S', 'R', 'P')
    """
    number = _check_spacegroup_number(number)
    return next((letter for letter, group in _CENTRED.items() if number in group), "P")


def bravais_lattice(number: int) -> str:
    """Return the Bravais lattice (Pearson symbol) of a space group.

    Parameters
    ----------
    number : int
        International Tables space-group number, 1..230.

    Returns
    -------
    str
        One of :data:`BRAVAIS_LATTICES`.

    Raises
    ------
    ValueError
        If ``number`` is outside 1..230.

    Examples
    --------
    >>> bravais_lattice(14), bravais_lattice(166), bravais_lattice(152), bravais_lattice(227)
    ('mP', 'hR', 'hP', 'cF')
    """
    family, centre = crystal_family(number), centring(number)
    return "hR" if centre == "R" else family + centre


def normalise_lattice_symbol(symbol: str) -> str:
    """Map a lattice symbol to its canonical spelling (``mC`` -> ``mS``, ``oC`` -> ``oS``).

    Surrounding white space is removed; anything else is returned unchanged, so the
    caller decides whether the result is in :data:`BRAVAIS_LATTICES`.

    Examples
    --------
    >>> normalise_lattice_symbol(" oC")
    'oS'
    """
    symbol = symbol.strip()
    return LEGACY_SPELLINGS.get(symbol, symbol)
