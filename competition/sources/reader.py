"""CIF blocks to structures with array code, following pymatgen's rules.

pymatgen's ``CifParser`` spends most of its time expanding the asymmetric unit:
it applies every symmetry operation to every site and compares each image with
the sites kept so far, one Python call at a time (about 5 ms for a small
inorganic cell and 30 ms for a molecular one), while reading the text itself
takes under a millisecond. This module takes the blocks pymatgen has read (its
tokenizer and its clean-up of the values) and does that expansion with arrays,
following pymatgen's rules step by step, so that the structure it returns is
pymatgen's:

- uncertainties like ``0.1234(5)`` are dropped, coordinates within 1e-4 of 1/3
  or 2/3 are set to those values (``frac_tolerance``);
- the element of a site is read from ``_atom_site_type_symbol`` (else from its
  label) as pymatgen reads it: the first two letters if they name an element,
  else the first;
- a site whose symmetry image lies within 1e-4 (fractional, periodic) of an
  earlier site joins that site as a mixed occupancy (``site_tolerance``);
- each distinct species mix is expanded by every operation, keeping the first of
  images that coincide within 1e-4.

Anything outside that common ground gives ``None``, and the caller uses
pymatgen, which also writes the reject reasons: several data blocks, magnetic
CIFs, oxidation states (``_atom_type_oxidation_number``), symbols that pymatgen
reads specially (water, ``OH``, Pauling-file ``+`` mixtures), no explicit
symmetry operations, a missing or unreadable value, a non-positive occupancy or
a site whose occupancies sum above 1, very thin cells, and cells that would
expand to more than ``MAX_IMAGES`` atom images. ``tests/test_reader.py``
checks on every real file that a structure read here equals pymatgen's (same
lattice, same sites and occupancies), so labels and patterns are the same.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

READERS: Final = ("arrays", "pymatgen")
"""How a CIF block becomes a structure, the default first (see the module's notes)."""

SITE_TOLERANCE: Final = 1e-4
"""pymatgen's ``site_tolerance``: fractional distance (per axis, periodic) below
which two positions are one site."""
MIN_THICKNESS: Final = 0.01
"""pymatgen's ``min_thickness``: a cell thinner than this (Angstrom) fails its parse."""
MAX_IMAGES: Final = 20_000
"""Atom images (sites x operations) above which the structure is left to pymatgen,
which rejects it for its size anyway (``--max-sites``)."""

_SYMOP_TAGS: Final = (
    "_symmetry_equiv_pos_as_xyz", "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz", "_space_group_symop_operation_xyz_",
)  # fmt: skip
_CELL_TAGS: Final = tuple(f"_cell_length_{a}" for a in "abc") + tuple(
    f"_cell_angle_{a}" for a in ("alpha", "beta", "gamma")
)
_SPECIAL_SYMBOLS: Final = re.compile("Hw|Ow|Wat|wat|OH|OH2|NO3")
_UNCERTAINTY: Final = re.compile(r"\(.+\)*")


def _float(text: str) -> float | None:
    """The value as pymatgen's ``str2float`` reads it (``.`` is 0), or ``None``."""
    try:
        return float(_UNCERTAINTY.sub("", text))
    except ValueError:
        return 0.0 if text.strip() == "." else None


def _column(data: dict[str, Any], tag: str) -> list[str] | None:
    value = data.get(tag)
    return None if value is None else (value if isinstance(value, list) else [value])


def _symbol(raw: str) -> str | None:
    """The element pymatgen's ``CifParser._parse_symbol`` reads from ``raw``.

    ``None`` for the symbols it reads specially (water, hydroxide ...) and for
    those it cannot read; both are left to pymatgen.
    """
    from pymatgen.core import Element

    # Water and O-H symbols also bring implicit hydrogens in pymatgen.
    if not raw or _SPECIAL_SYMBOLS.match(raw) or raw.startswith("O-H"):
        return None
    if Element.is_valid_symbol(raw[:2].title()):
        return raw[:2].title()
    if Element.is_valid_symbol(raw[0].upper()):
        return raw[0].upper()
    return None


@functools.lru_cache(maxsize=4096)
def _operation(xyz: str) -> np.ndarray:
    """The affine matrix of pymatgen's ``SymmOp.from_xyz_str`` (cached: files repeat a few)."""
    from pymatgen.core.operations import SymmOp

    return SymmOp.from_xyz_str(xyz).affine_matrix


def _symmetry_operations(data: dict[str, Any]) -> np.ndarray | None:
    """The affine matrices (n, 4, 4) of the operations the block lists, or ``None``.

    The tags are tried in pymatgen's order; a list that does not parse sends
    pymatgen to the next one. ``None`` where it would fall back to the symbol.
    """
    for tag in _SYMOP_TAGS:
        values = data.get(tag)
        if not values:
            continue
        if isinstance(values, str):  # pymatgen's one-line P1 file: left to pymatgen
            return None
        try:
            return np.array([_operation(value) for value in values])
        except ValueError:
            continue
    return None


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``close[i, j]``: fractional points ``a[i]`` and ``b[j]`` coincide modulo 1."""
    diff = a[:, None, :] - b[None, :, :]
    diff -= np.round(diff)
    return (np.abs(diff) < SITE_TOLERANCE).all(axis=-1)


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Every operation applied to every point: (points, ops, 3).

    The product with the 4 x 4 affine matrices gives pymatgen's ``SymmOp.operate``
    to the last bit (adding the translation after the rotation does not), which
    matters for atoms that lie exactly 1e-4 from a symmetry copy.
    """
    homogeneous = np.column_stack([points, np.ones(len(points))])
    return np.einsum("oij,pj->poi", affine, homogeneous)[..., :3]


def _images(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Every operation applied to every point, wrapped into [0, 1): (points * ops, 3)."""
    images = _apply(affine, points).reshape(-1, 3)
    return images - np.floor(images)


def _first_of_each(images: np.ndarray) -> np.ndarray:
    """Indices of the images kept when each is compared with those kept before it.

    Candidate pairs come from a periodic k-d tree (a slightly wider box, so that
    rounding cannot hide one); pymatgen's own test then decides each pair.
    """
    from scipy.spatial import cKDTree

    wrapped = images % 1.0
    wrapped[wrapped >= 1.0] = 0.0  # -1e-17 % 1 is 1.0 in floating point
    pairs = cKDTree(wrapped, boxsize=1.0).query_pairs(
        1.5 * SITE_TOLERANCE, p=np.inf, output_type="ndarray"
    )
    kept = np.ones(len(images), dtype=bool)
    if len(pairs):
        diff = images[pairs[:, 1]] - images[pairs[:, 0]]
        diff -= np.round(diff)
        pairs = pairs[(np.abs(diff) < SITE_TOLERANCE).all(axis=1)]
    if not len(pairs):
        return np.flatnonzero(kept)
    earlier, later = pairs.min(axis=1), pairs.max(axis=1)
    order = np.argsort(later, kind="stable")
    earlier, later = earlier[order], later[order]
    starts = np.flatnonzero(np.r_[True, later[1:] != later[:-1]])
    for first, last in zip(starts, np.r_[starts[1:], len(later)], strict=True):
        kept[later[first]] = not kept[earlier[first:last]].any()
    return np.flatnonzero(kept)


def fast_structure(data: dict[str, Any]) -> Structure | None:
    """The structure pymatgen builds from one data block, or ``None`` (pymatgen decides).

    Parameters
    ----------
    data : dict
        One block of pymatgen's ``CifParser.as_dict()`` (tokenised and sanitised
        by pymatgen).
    """
    from pymatgen.core import Lattice

    if any(tag.startswith(("_atom_site_moment", "_space_group_magn", "_atom_type_oxidation"))
           for tag in data):  # fmt: skip
        return None
    cell = [_float(v[0]) if (v := _column(data, tag)) else None for tag in _CELL_TAGS]
    labels = _column(data, "_atom_site_label")
    # pymatgen reads the element from the label where the block has no type symbols.
    symbols = _column(data, "_atom_site_type_symbol") or labels
    columns = [_column(data, f"_atom_site_fract_{axis}") for axis in "xyz"]
    operations = _symmetry_operations(data)
    if None in cell or labels is None or symbols is None or None in columns or operations is None:
        return None
    if any(" + " in s for s in symbols) or len(symbols) != len(labels):
        return None
    if any(v <= 0 for v in cell[:3]) or any(not 0 < v < 180 for v in cell[3:]):  # type: ignore[operator]
        return None
    coords = np.array([[_float(v) for v in column] for column in columns], dtype=object).T
    if coords.shape != (len(labels), 3) or (coords == None).any():  # noqa: E711
        return None
    coords = coords.astype(np.float64)  # 1/3 and 2/3 already set by pymatgen's clean-up
    occupancy_text = _column(data, "_atom_site_occupancy")
    occupancies = [1.0] * len(labels)
    if occupancy_text is not None and len(occupancy_text) != len(labels):
        return None  # pymatgen fails on the missing values: its reason, not ours
    if occupancy_text is not None:
        occupancies = [_float(v) if _float(v) is not None else 1.0 for v in occupancy_text]
    if any(o <= 0 for o in occupancies):
        return None
    elements = [_symbol(s) for s in symbols]
    if None in elements:
        return None
    lattice = Lattice.from_parameters(*cell)  # type: ignore[misc]
    if min(lattice.d_hkl(hkl) for hkl in ((1, 0, 0), (0, 1, 0), (0, 0, 1))) < MIN_THICKNESS:
        return None
    if len(labels) * len(operations) > MAX_IMAGES:
        return None
    sites = _merge_sites(coords, elements, occupancies, operations)
    if sites is None:
        return None
    expanded = []
    for composition, group in sites:
        images = _images(operations, np.array(group))
        expanded.append((composition, images[_first_of_each(images)]))
    return _sorted_structure(lattice, expanded)


def _sorted_structure(lattice: Any, expanded: list[tuple[Any, np.ndarray]]) -> Structure:
    """The structure ``Structure(...).get_sorted_structure()`` gives, built once.

    pymatgen orders sites by average electronegativity, then by species string,
    keeping the order of equal sites; every site of a species mix shares both,
    so the mixes are sorted instead of the sites.
    """
    from pymatgen.core import PeriodicSite, Structure

    species = [c for c, points in expanded for _ in range(len(points))]
    points = np.concatenate([points for _, points in expanded])
    keys = []
    for composition, _ in expanded:
        electronegativity = composition.average_electroneg
        if np.isnan(electronegativity):  # NaN compares unlike a sort key: let pymatgen sort
            return Structure(lattice, species, points).get_sorted_structure()
        string = PeriodicSite(composition, [0, 0, 0], lattice).species_string
        keys.append((electronegativity, string))
    order = sorted(range(len(expanded)), key=keys.__getitem__)
    species = [expanded[i][0] for i in order for _ in range(len(expanded[i][1]))]
    points = np.concatenate([expanded[i][1] for i in order])
    return Structure(lattice, species, points)


@functools.lru_cache(maxsize=1024)
def _composition(element: str, occupancy: float) -> Any:
    from pymatgen.core import Composition

    return Composition({element: occupancy})


def _merge_sites(
    coords: np.ndarray, elements: list[str | None], occupancies: list[float],
    operations: np.ndarray,
) -> list[tuple[Any, list[np.ndarray]]] | None:  # fmt: skip
    """Sites grouped by species mix, as pymatgen's ``coord_to_species`` then ``groupby``.

    A site whose symmetry image coincides with an earlier site's coordinates joins
    that site. ``None`` when a merged site's occupancies sum above 1 (pymatgen
    then fails the block or rescales, its decision).
    """
    from itertools import groupby

    images = _apply(operations, coords)  # (sites, ops, 3)
    keys = np.empty_like(coords)
    mixes: list[Any] = []
    for index, (element, occupancy) in enumerate(zip(elements, occupancies, strict=True)):
        composition = _composition(element, max(occupancy, 1e-8))
        match = None
        if mixes:
            hits = _close(images[index], keys[:len(mixes)])  # (ops, keys so far)
            # pymatgen tries the operations in order and takes the first key found.
            rows = np.flatnonzero(hits.any(axis=1))
            if len(rows):
                match = int(np.flatnonzero(hits[rows[0]])[0])
        if match is None:
            keys[len(mixes)] = coords[index]
            mixes.append(composition)
        else:
            mixes[match] = mixes[match] + composition
    if any(sum(c.values()) > 1 for c in mixes):
        return None
    # pymatgen sorts (coordinates, mix) pairs by mix and groups equal neighbours;
    # comparing compositions is slow, so the distinct mixes are sorted instead
    # (a stable sort keeps the sites' order within a mix either way).
    distinct: list[Any] = []
    index_of = []
    for mix in mixes:
        found = next((i for i, seen in enumerate(distinct) if seen == mix), None)
        if found is None:
            distinct.append(mix)
            found = len(distinct) - 1
        index_of.append(found)
    rank = {i: r for r, i in enumerate(sorted(range(len(distinct)), key=distinct.__getitem__))}
    order = sorted(range(len(mixes)), key=lambda site: rank[index_of[site]])
    groups = groupby(order, key=lambda site: rank[index_of[site]])
    return [(mixes[members[0]], [keys[site] for site in members])
            for members in (list(group) for _, group in groups)]  # fmt: skip
