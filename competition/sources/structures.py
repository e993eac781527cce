"""Parse CIF text into a pymatgen Structure, or reject it with a reason.

pymatgen reports most problems with a CIF as warnings and then skips the data
block; this module turns those warnings into the one-line reasons written to
``reports/rejects.csv``. What a data block declares (its space group, a field's
value) and :class:`~competition.sources.cif_block.RejectError` live in
:mod:`competition.sources.cif_block`, below this module and
:mod:`competition.sources.rhombohedral`; ``RejectError`` and ``declared_spacegroup``
are importable from here too.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from competition.sources.cif_block import RejectError, declared_spacegroup, first_value
from competition.sources.rhombohedral import check_rhombohedral_axes

if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass(frozen=True)
class ParsedStructure:
    """The structure of one CIF and what the CIF itself says about its symmetry.

    Attributes
    ----------
    structure : Structure
        The full unit cell as given (not reduced to a primitive cell).
    declared_spacegroup : int or None
        Space-group number declared in the CIF (IT number, else from the H-M symbol).
    block : str
        Name of the data block used.
    extra_blocks : tuple of str
        Names of further data blocks that held a structure and were not used (the
        competition takes one structure per file).
    debye_waller : dict
        Isotropic displacement ``B`` (A^2) per element, where the block gives one
        (:func:`competition.sources.displacements.debye_waller_factors`).
    """

    structure: Structure
    declared_spacegroup: int | None
    block: str
    extra_blocks: tuple[str, ...] = ()
    debye_waller: dict[str, float] = field(default_factory=dict)


def _short(message: str, limit: int = 160) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def parse_structure(text: str, max_sites: int, reader: str = "arrays") -> ParsedStructure:
    """Parse CIF text and return its first structure.

    Parameters
    ----------
    text : str
        The CIF file's content.
    max_sites : int
        A structure with more sites than this in its unit cell is rejected
        (symmetry finding and pattern simulation grow with the number of sites).
    reader : {"arrays", "pymatgen"}
        How a block becomes a structure once pymatgen has read the text:
        :func:`competition.sources.reader.fast_structure` (pymatgen's rules in array code,
        the same structure; pymatgen itself wherever it must decide), or
        pymatgen's ``CifParser.parse_structures`` throughout.

    Returns
    -------
    ParsedStructure

    Raises
    ------
    RejectError
        With stage ``parse`` when the text is empty, is not CIF, holds no
        structure pymatgen can build (unknown element, no coordinates, broken
        symmetry operators ...), has no sites or too many sites.
    """
    from pymatgen.io.cif import CifParser

    if not text.strip():
        raise RejectError("parse", "empty file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text)
            blocks = parser.as_dict()
        except Exception as err:  # the CIF lexer raises several exception types
            reason = f"unparsable CIF: {type(err).__name__}: {_short(err)}"
            raise RejectError("parse", reason) from None
        if not blocks:
            raise RejectError("parse", "no data block found: this is not a CIF file")
        # Checked before pymatgen builds anything: it quietly takes |a| for a negative
        # length and drops negative occupancies, and a NaN cell crashes spglib.
        first = next((data for data in blocks.values() if _has_coordinates(data)), None)
        if first is not None:
            check_values(first)
        structures = _fast_structures(blocks) if reader == "arrays" else []
        if not structures:
            try:
                structures = parser.parse_structures(primitive=False, on_error="warn")
            except Exception:  # pymatgen raises ValueError when no block gave a structure
                structures = []
    if not structures:
        missing = [tag for data in blocks.values() if (tag := _missing_tag(data))]
        if missing and len(missing) == len(blocks):
            raise RejectError("parse", f"required CIF tag {missing[0]} is missing or '?'")
        detail = _reason_from_warnings([str(w.message) for w in caught])
        raise RejectError("parse", f"no structure could be built: {detail}")

    # parse_structures skips blocks that fail, so match structures to the blocks
    # that can hold one (those with atom coordinates) in file order.
    names = [name for name, data in blocks.items() if _has_coordinates(data)] or list(blocks)
    structure, name = structures[0], names[0]
    n_sites = len(structure)
    if n_sites == 0:
        raise RejectError("parse", "the structure has no sites")
    from pymatgen.core import DummySpecies

    # pymatgen turns an unknown symbol such as "Xx" into a DummySpecies instead of failing.
    elements = structure.composition.elements
    unknown = sorted({str(el.symbol) for el in elements if isinstance(el, DummySpecies)})
    if unknown:
        raise RejectError(
            "parse", f"unknown element(s) {', '.join(unknown)}: no scattering factors"
        )
    if n_sites > max_sites:
        raise RejectError(
            "parse", f"{n_sites} sites in the unit cell exceed --max-sites {max_sites}"
        )
    if structure.volume <= 1e-3:
        raise RejectError("parse", f"degenerate unit cell (volume {structure.volume:.3g} A^3)")
    per_site = structure.volume / n_sites
    if per_site < MIN_VOLUME_PER_SITE:
        raise RejectError(
            "parse",
            f"implausible cell: {per_site:.3g} A^3 per site (real crystals have at least "
            f"~{MIN_VOLUME_PER_SITE:g}); check the cell lengths and angles",
        )
    from competition.sources.displacements import debye_waller_factors

    check_rhombohedral_axes(structure, blocks[name])
    extra = tuple(names[1 : len(structures)])

    return ParsedStructure(structure, declared_spacegroup(blocks[name]), name, extra,
                           debye_waller_factors(blocks[name]))  # fmt: skip


def _fast_structures(blocks: dict[str, dict[str, Any]]) -> list[Structure]:
    """The structure of a one-block file by :mod:`competition.sources.reader`, or ``[]``."""
    from competition.sources.reader import fast_structure

    if len(blocks) != 1:  # which block pymatgen would pick is its own decision
        return []
    structure = fast_structure(next(iter(blocks.values())))
    return [] if structure is None else [structure]


MIN_VOLUME_PER_SITE: Final = 1.0
"""Smallest cell volume per site (A^3) taken as real. The densest solids have 5-6 A^3
per atom (diamond 5.7, LiH 8.5) and disordered split sites at most halve that; a
cell below 1 A^3 per site has a mistyped length or a near-flat angle."""
MAX_ABS_FRACTIONAL: Final = 10.0
"""Fractional coordinates beyond this are not a position in or near the cell."""
_NUMBER: Final = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\(\d+\))?\s*$")


def _number(value: object) -> float | None:
    """A CIF number (``5.431(2)``) as a float; None for ``?`` or ``.``; NaN for text."""
    text = str(value).strip()
    if text in ("?", "."):
        return None
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else float("nan")


def _values(block: dict[str, Any], tag: str) -> list[tuple[str, float | None]]:
    """``(text as written, number)`` for each value of ``tag`` in ``block``."""
    raw = block.get(tag)
    if raw is None:
        return []
    return [(str(v).strip(), _number(v)) for v in (raw if isinstance(raw, list) else [raw])]


def check_values(block: dict[str, Any]) -> None:
    """Reject a data block whose cell, coordinates or occupancies are not physical.

    Cell lengths must be positive, angles strictly between 0 and 180 degrees and
    together form a cell of positive volume; fractional coordinates must be finite
    numbers within +-10; occupancies not negative (the tolerance for rounding
    above 1 is pymatgen's). Missing values (``?``) are left to the parser.

    Raises
    ------
    RejectError
        With stage ``parse`` and the first offending tag and value.

    Examples
    --------
    >>> check_values({"_cell_length_a": "-5.64"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    competition.sources.cif_block.RejectError: parse: _cell_length_a is -5.64: a cell length ...
    """
    import math

    def bad(tag: str, text: str, why: str) -> RejectError:
        return RejectError("parse", f"{tag} is {text}: {why}")

    for axis in "abc":
        tag = f"_cell_length_{axis}"
        for text, value in _values(block, tag)[:1]:
            if value is not None and not (math.isfinite(value) and value > 0):
                raise bad(tag, text, "a cell length must be a positive number")
    angles = []
    for name in ("alpha", "beta", "gamma"):
        tag = f"_cell_angle_{name}"
        for text, value in _values(block, tag)[:1]:
            if value is not None and not (math.isfinite(value) and 0 < value < 180):
                raise bad(tag, text, "a cell angle must lie strictly between 0 and 180 degrees")
            angles.append(value)
    if len(angles) == 3 and None not in angles:
        ca, cb, cg = (math.cos(math.radians(a)) for a in angles)  # type: ignore[arg-type]
        if 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg <= 1e-6:
            raise RejectError(
                "parse", f"cell angles {angles[0]:g}, {angles[1]:g}, {angles[2]:g} degrees "
                "do not form a cell of positive volume",
            )  # fmt: skip
    for axis in "xyz":
        tag = f"_atom_site_fract_{axis}"
        for text, value in _values(block, tag):
            if value is not None and not (math.isfinite(value)
                                          and abs(value) <= MAX_ABS_FRACTIONAL):  # fmt: skip
                raise bad(tag, text, f"fractional coordinates must be finite numbers within "
                                     f"+-{MAX_ABS_FRACTIONAL:g}")  # fmt: skip
    for text, value in _values(block, "_atom_site_occupancy"):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise bad("_atom_site_occupancy", text, "an occupancy must be a number from 0 to 1")


# pymatgen notices that accompany a skipped block without being its cause.
_NOTICES: Final = ("Defaulting to", "parsed as", "implicit hydrogens", "generated structure")


def _reason_from_warnings(messages: list[str]) -> str:
    """The most telling cause among pymatgen's warnings about a block it skipped.

    pymatgen warns ``No structure parsed for section 1 in CIF.`` followed by the
    causes, one a line; notices such as ``Defaulting to P1`` are passed over and
    a bare missing key (``'_atom_site_label'``) is spelled out.
    """
    marker = "No structure parsed for section"
    lines = [
        line.strip()
        for message in messages
        if marker in message
        for line in message.split("\n")[1:]
    ]
    lines = [line.removeprefix("Issues encountered while parsing CIF:").strip() for line in lines]
    causes = [line for line in lines if line and not any(n in line for n in _NOTICES)]
    if not causes:
        causes = lines or [m for m in messages if not any(n in m for n in _NOTICES)]
    if not causes:
        return "no atom sites with coordinates"
    cause = causes[-1]
    missing = re.fullmatch(r"'(_[\w.\-]+)'", cause)
    if missing:
        return f"required CIF tag {missing.group(1)} is missing"
    return _short(cause)


_REQUIRED_TAGS: Final = (
    ("_cell_length_a",), ("_cell_length_b",), ("_cell_length_c",),
    ("_cell_angle_alpha",), ("_cell_angle_beta",), ("_cell_angle_gamma",),
    ("_atom_site_label", "_atom_site_type_symbol"),
    ("_atom_site_fract_x", "_atom_site_Cartn_x"),
)  # fmt: skip


def _missing_tag(block: dict[str, Any]) -> str | None:
    """The first tag a structure needs that ``block`` lacks (or leaves as ``?``)."""
    for options in _REQUIRED_TAGS:
        if all(first_value(block, (tag,)) is None for tag in options):
            return options[0]
    return None


def _has_coordinates(block: dict[str, Any]) -> bool:
    return any(key in block for key in ("_atom_site_fract_x", "_atom_site_Cartn_x"))
