"""Isotropic displacement parameters of a CIF block: a Debye-Waller ``B`` per element.

Thermal motion and static disorder weaken reflections by ``exp(-2 B s^2)``,
``s = sin(theta) / lambda`` (``B = 8 pi^2 U``, Angstrom^2): at 60-90 degrees
2theta with B of 0.3-0.9 A^2 a peak loses 8-14 %. A CIF gives ``U`` or ``B``
per site (``_atom_site_U_iso_or_equiv``, ``_atom_site_B_iso_or_equiv``) or
only the anisotropic tensor (``_atom_site_aniso_U_11`` ...), whose mean diagonal
stands in for ``U_eq``. pymatgen's calculator, and so both pattern engines, take
one ``B`` per element (:mod:`competition.physics.diffraction`): each element's
``B`` here is the occupancy-weighted mean over its sites in the block.

Values that cannot be a displacement (zero, negative, over :data:`MAX_B`, a
``?``) are skipped, so the engine's default stands in for that element.
"""

from __future__ import annotations

import math
from typing import Any, Final

from competition.sources.reader import _column, _float, _symbol

MAX_B: Final = 10.0
"""Largest ``B`` (A^2) taken from a file: beyond it the value is a typo or a unit mix-up
(U written as B, percent ...), not a displacement of an ordered crystal."""
_U_TO_B: Final = 8 * math.pi**2


def _site_values(data: dict[str, Any]) -> dict[str, float]:
    """``B`` (A^2) by site label, from the isotropic columns then the anisotropic loop."""
    labels = _column(data, "_atom_site_label") or []
    found: dict[str, float] = {}
    for tag, scale in (("_atom_site_U_iso_or_equiv", _U_TO_B), ("_atom_site_B_iso_or_equiv", 1.0)):
        values = _column(data, tag)
        if values is None or len(values) != len(labels):
            continue
        for label, text in zip(labels, values, strict=True):
            value = _float(text) if text.strip() not in ("?", ".") else None
            if label not in found and value is not None:
                found[label] = value * scale
    aniso_labels = _column(data, "_atom_site_aniso_label") or []
    diagonal = [_column(data, f"_atom_site_aniso_U_{i}{i}") for i in (1, 2, 3)]
    if all(d is not None and len(d) == len(aniso_labels) for d in diagonal):
        for k, label in enumerate(aniso_labels):
            values = [_float(d[k]) for d in diagonal]  # type: ignore[index]
            if label not in found and all(v is not None for v in values):
                found[label] = _U_TO_B * sum(values) / 3  # type: ignore[arg-type]
    return found


def debye_waller_factors(data: dict[str, Any]) -> dict[str, float]:
    """Per element symbol, the occupancy-weighted mean ``B`` (A^2) of its sites.

    Parameters
    ----------
    data : dict
        One CIF block as pymatgen's ``CifParser.as_dict`` gives it.

    Returns
    -------
    dict
        Elements without a usable value are absent.

    Examples
    --------
    >>> block = {"_atom_site_label": ["Na1", "Cl1"], "_atom_site_type_symbol": ["Na", "Cl"],
    ...          "_atom_site_U_iso_or_equiv": ["0.0127(3)", "?"]}
    >>> {k: round(v, 3) for k, v in debye_waller_factors(block).items()}
    {'Na': 1.003}
    """
    labels = _column(data, "_atom_site_label") or []
    types = _column(data, "_atom_site_type_symbol")
    if types is None or len(types) != len(labels):
        types = labels
    occupancies = _column(data, "_atom_site_occupancy")
    if occupancies is None or len(occupancies) != len(labels):
        occupancies = ["1"] * len(labels)
    by_label = _site_values(data)
    sums: dict[str, list[float]] = {}
    for label, raw, occupancy_text in zip(labels, types, occupancies, strict=True):
        element = _symbol(raw.strip())
        value = by_label.get(label)
        occupancy = _float(occupancy_text)
        if element is None or value is None or not 0 < value <= MAX_B:
            continue
        weight = occupancy if occupancy is not None and occupancy > 0 else 1.0
        total = sums.setdefault(element, [0.0, 0.0])
        total[0] += weight * value
        total[1] += weight
    return {element: total / weight for element, (total, weight) in sums.items()}
