"""Labels of a structure: space group from spglib, and the Bravais lattice it implies.

spglib searches for the symmetry operations that map the structure onto itself
within a distance tolerance ``symprec`` (Angstrom) and an angle tolerance. A
larger tolerance forgives small refinement errors and finds the symmetry the
authors declared more often; a smaller one finds lower symmetry where a structure
is slightly distorted. The tolerance in force is recorded in the manifest, and
with a ladder of tolerances (:func:`ladder_labels`, for computed structures) the
one that labelled each entry is recorded beside it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from competition.sources.structures import RejectError
from xrd_bravais.contract.labels import bravais_lattice

if TYPE_CHECKING:
    from pymatgen.core import Composition, Structure

MAX_FORMULA_ATOMS: Final = 200
"""Largest formula unit :func:`compound_formula` looks for (atoms, all elements)."""
ATOM_TOLERANCE: Final = 0.02
"""How far (in atoms per formula unit) an element's amount may be from a whole
number: a refined occupancy of 0.333 is 1/3, and O7.992 is O8."""


@dataclass(frozen=True)
class SymmetryLabels:
    """Space group, Bravais lattice and conventional cell of one structure.

    Attributes
    ----------
    spacegroup_number : int
        International Tables number found by spglib.
    spacegroup_symbol : str
        Its short Hermann-Mauguin symbol.
    bravais_lattice : str
        Pearson symbol, from :func:`xrd_bravais.contract.labels.bravais_lattice`.
    conventional_cell : tuple of float
        ``(a, b, c, alpha, beta, gamma)`` of spglib's standardised conventional
        cell, used to recognise repeated entries whatever setting the CIF used.
    rotations : array (k, 3, 3) of int or None
        The rotations of the space group's operations in the structure's own
        cell (fractional, one per operation, repeats included), for the texture of
        measured patterns (:func:`competition.physics.patterns.reflections_and_sticks`).
    """

    spacegroup_number: int
    spacegroup_symbol: str
    bravais_lattice: str
    conventional_cell: tuple[float, float, float, float, float, float]
    symprec: float = 0.0
    rotations: Any = field(default=None, compare=False, repr=False)


def ladder_labels(
    structure: Structure,
    symprec: float,
    ladder: tuple[float, ...],
    declared: int | None,
    angle_tolerance: float = 5.0,
) -> SymmetryLabels:
    """Labels at the first tolerance of a ladder that finds the declared space group.

    Relaxed, computed structures (Materials Project and the like) carry numerical
    noise of a few hundredths of an Angstrom, so spglib at a tolerance suited to
    experimental files finds a subgroup of their symmetry. The ladder tries
    ``symprec`` and then each larger tolerance of ``ladder`` in increasing order and
    stops where spglib finds the group the file declares; when none does (or the
    file declares none), the labels at ``symprec`` stand, since a looser tolerance
    that still disagrees only risks absorbing a real distortion.

    Parameters
    ----------
    structure : Structure
    symprec : float
        The first, strictest tolerance (Angstrom).
    ladder : tuple of float
        Further tolerances; those not above ``symprec`` are skipped. Empty: only
        ``symprec``.
    declared : int or None
        The space group the CIF declares.
    angle_tolerance : float

    Returns
    -------
    SymmetryLabels
        With ``symprec`` set to the tolerance that produced them.
    """
    first = symmetry_labels(structure, symprec, angle_tolerance)
    if declared is None or first.spacegroup_number == declared:
        return first
    for tolerance in sorted(t for t in set(ladder) if t > symprec):
        try:
            labels = symmetry_labels(structure, tolerance, angle_tolerance)
        except RejectError:
            continue
        if labels.spacegroup_number == declared:
            return labels
    return first


def symmetry_labels(
    structure: Structure, symprec: float, angle_tolerance: float = 5.0
) -> SymmetryLabels:
    """Find the space group of ``structure`` with spglib and derive its labels.

    Parameters
    ----------
    structure : Structure
        Any cell of the crystal (disordered sites are allowed; spglib treats each
        distinct species-and-occupancy mix as one atom type).
    symprec : float
        Distance tolerance in Angstrom.
    angle_tolerance : float
        Angle tolerance in degrees.

    Returns
    -------
    SymmetryLabels

    Raises
    ------
    RejectError
        With stage ``symmetry`` when spglib finds no space group (overlapping
        atoms, a degenerate cell ...).
    """
    from pymatgen.core import Lattice
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer = SpacegroupAnalyzer(
                structure, symprec=symprec, angle_tolerance=angle_tolerance
            )
            dataset = analyzer.get_symmetry_dataset()
    except Exception as err:  # spglib and pymatgen raise several kinds
        raise RejectError(
            "symmetry", f"spglib failed at symprec={symprec}: {type(err).__name__}: {err}"
        ) from None
    if dataset is None or not 1 <= int(dataset.number) <= 230:
        raise RejectError("symmetry", f"spglib found no space group at symprec={symprec}")
    number = int(dataset.number)
    cell = Lattice(dataset.std_lattice)
    params = tuple(round(float(v), 6) for v in (*cell.abc, *cell.angles))
    return SymmetryLabels(
        spacegroup_number=number,
        spacegroup_symbol=str(dataset.international),
        bravais_lattice=bravais_lattice(number),
        conventional_cell=params,  # type: ignore[arg-type]
        symprec=symprec,
        rotations=np.asarray(dataset.rotations),
    )


def compound_formula(composition: Composition) -> str:
    """The formula of one formula unit, whatever cell the file was written in.

    pymatgen reduces integer formulas only, so a disordered phase got a formula per
    cell: PZT is ``Zr2.1Ti3.9Pb6O18`` in its hexagonal cell and ``Zr0.7Ti1.3Pb2O6`` in
    its primitive one, two compounds for the splitter. Here the composition is
    taken as atomic fractions and scaled by the smallest number of atoms ``n`` (up
    to :data:`MAX_FORMULA_ATOMS`) that makes every amount whole within
    :data:`ATOM_TOLERANCE`, then reduced (pymatgen's ``reduced_formula`` of
    the whole amounts): both PZT cells give one formula, and an ordered compound
    keeps the reduced formula it always had. A composition no such ``n`` fits
    keeps pymatgen's reduced formula.

    Examples
    --------
    >>> from pymatgen.core import Composition
    >>> hexagonal, primitive = Composition("Zr2.1Ti3.9Pb6O18"), Composition("Zr0.7Ti1.3Pb2O6")
    >>> compound_formula(hexagonal), compound_formula(primitive)
    ('Zr7Ti13(PbO3)20', 'Zr7Ti13(PbO3)20')
    >>> compound_formula(Composition("Mg2C2O6")), compound_formula(Composition("Fe0.333Mg0.667O"))
    ('MgCO3', 'Mg2FeO3')
    """
    from pymatgen.core import Composition

    amounts = composition.get_el_amt_dict()
    total = sum(amounts.values())
    if not total > 0:
        return composition.reduced_formula
    fractions = {element: amount / total for element, amount in amounts.items()}
    for n in range(1, MAX_FORMULA_ATOMS + 1):
        whole = {element: round(f * n) for element, f in fractions.items()}
        if all(whole.values()) and all(
            abs(f * n - whole[element]) <= ATOM_TOLERANCE
            for element, f in fractions.items()
        ):
            divisor = math.gcd(*whole.values())
            return Composition({e: k // divisor for e, k in whole.items()}).reduced_formula
    return composition.reduced_formula
