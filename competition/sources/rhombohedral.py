"""Files that give an R space group on rhombohedral axes, read with the wrong operators.

A CIF that names its space group only by symbol (``R -3 c``, no operator list)
gets the operators of the *hexagonal* setting from pymatgen. When the file's cell
is on rhombohedral axes (``a = b = c``, equal angles other than 90 degrees), those
operators multiply the atoms: COD 5910029 (MgCO3, group 167) becomes 60 sites in
100 A^3, "Mg3CO6", labelled group 2; COD 5910097 (FeCl3, 148) becomes "FeCl". The
structure's composition then disagrees with the file's ``_chemical_formula_sum``,
which is what :func:`check_rhombohedral_axes` tests before the structure is used.

Counted on the real data: 2 of the 526 COD files of ``../shared/data`` (the two
above), none of AMCSD's 9,275 entries (they list their operators), none of the 154,921 files of the
Materials Project archive (P1, every atom explicit; none disagrees with its formula).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from competition.sources.cif_block import RejectError, declared_spacegroup, first_value

if TYPE_CHECKING:
    from pymatgen.core import Structure

R_GROUPS: Final = frozenset({146, 148, 155, 160, 161, 166, 167})
"""The rhombohedral-centred (R) space groups."""
COMPOSITION_TOLERANCE: Final = 0.05
"""Largest difference of an element's share of all atoms (hydrogen left out) between
a structure and its file's ``_chemical_formula_sum`` for them to agree."""


def formula_disagreement(structure: Structure, formula_sum: str) -> str | None:
    """How the structure's composition differs from the declared formula, or ``None``.

    Hydrogen (and deuterium) is left out: X-ray structures often place no H atom
    that the formula counts. An unreadable formula says nothing (``None``).
    """
    from pymatgen.core import Composition

    try:
        declared = Composition(formula_sum.replace("'", " ").strip())
    except Exception:  # pymatgen raises several kinds for a formula it cannot read
        return None

    def shares(composition: Composition) -> dict[str, float]:
        amounts = {str(e): a for e, a in composition.get_el_amt_dict().items()
                   if str(e) not in ("H", "D")}  # fmt: skip
        total = sum(amounts.values())
        return {e: a / total for e, a in amounts.items()} if total > 0 else {}

    want, got = shares(declared), shares(structure.composition)
    if not want:
        return None
    if set(want) != set(got):
        return f"elements {', '.join(sorted(got))} against {', '.join(sorted(want))}"
    worst = max(want, key=lambda e: abs(want[e] - got[e]))
    if abs(want[worst] - got[worst]) > COMPOSITION_TOLERANCE:
        return (f"{worst} is {100 * got[worst]:.0f} % of the atoms against "
                f"{100 * want[worst]:.0f} %")  # fmt: skip
    return None


def check_rhombohedral_axes(structure: Structure, block: dict[str, Any]) -> None:
    """Reject an R-group file on rhombohedral axes that was read with hexagonal operators.

    A file that gives an R group by its symbol (no operator list, or the
    hexagonal setting's operators) but a cell with ``a = b = c`` and equal angles
    other than 90 degrees is read with the operators of the hexagonal setting
    applied to rhombohedral axes: too many atoms in a small cell (COD 5910029,
    MgCO3, becomes "Mg3CO6" in group 2). Its composition then disagrees with its
    ``_chemical_formula_sum``, which is what is checked.

    Raises
    ------
    RejectError
        With stage ``parse``.
    """
    declared = declared_spacegroup(block)
    formula = first_value(block, ("_chemical_formula_sum", "_chemical_formula_sum_"))
    lattice = structure.lattice
    rhombohedral = (max(lattice.abc) - min(lattice.abc) < 1e-3 * max(lattice.abc)
                    and max(lattice.angles) - min(lattice.angles) < 1e-2
                    and abs(lattice.angles[0] - 90) > 0.5)  # fmt: skip
    if declared not in R_GROUPS or not rhombohedral or not formula:
        return
    problem = formula_disagreement(structure, formula)
    if problem is not None:
        raise RejectError(
            "parse",
            f"space group {declared} on rhombohedral axes (a = b = c = {lattice.a:.4g} A, "
            f"angles {lattice.alpha:.4g} deg) read with the hexagonal setting's operators: "
            f"the structure's composition {structure.composition.reduced_formula} disagrees "
            f"with _chemical_formula_sum {formula!r} ({problem}); give the operators of the "
            "rhombohedral setting or the hexagonal cell",
        )
