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

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from competition.sources.structures import RejectError
from xrd_bravais.contract.labels import bravais_lattice

if TYPE_CHECKING:
    from pymatgen.core import Structure


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
    """

    spacegroup_number: int
    spacegroup_symbol: str
    bravais_lattice: str
    conventional_cell: tuple[float, float, float, float, float, float]
    symprec: float = 0.0


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
    )
