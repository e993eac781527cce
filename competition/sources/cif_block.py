"""What a CIF data block declares: its space group, a field's first value.

The lowest layer of the structure checks: :mod:`competition.sources.structures`
and :mod:`competition.sources.rhombohedral` both read a block's fields through it,
and both reject a structure with :class:`RejectError`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

# Keys holding the space-group number, in order of preference (CIF 1.1 and DDL2 spellings).
_NUMBER_KEYS: Final = (
    "_space_group_IT_number",
    "_symmetry_Int_Tables_number",
    "_space_group.IT_number",
)
_SYMBOL_KEYS: Final = (
    "_space_group_name_H-M_alt",
    "_symmetry_space_group_name_H-M",
    "_space_group.name_H-M_alt",
)


class RejectError(Exception):
    """A structure cannot enter the competition.

    Parameters
    ----------
    stage : str
        Pipeline stage that rejected it: ``parse``, ``symmetry``, ``pattern`` ...
    reason : str
        One line saying what is wrong, written to ``reports/rejects.csv``.
    """

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


def first_value(block: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` that ``block`` gives a value (not ``?`` or ``.``), stripped.

    Examples
    --------
    >>> first_value({"_a": "?", "_b": [" x "]}, ("_a", "_b"))
    'x'
    """
    for key in keys:
        value = block.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value not in (None, "?", "."):
            return str(value).strip()
    return None


def _normalise_symbol(symbol: str) -> str:
    # "P 1 21/c 1", "P 1 2_1/c 1" and "P121/c1" are one symbol; ":2" or ":H"
    # suffixes name an origin or axis choice, which does not change the group.
    return symbol.split(":")[0].replace(" ", "").replace("_", "").strip().lower()


@functools.cache
def _symbol_table() -> dict[str, int]:
    """Hermann-Mauguin symbols of all 530 settings in spglib's database -> number."""
    import spglib

    table: dict[str, int] = {}
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        for symbol in (kind.international_short, kind.international_full, kind.international):
            table.setdefault(_normalise_symbol(symbol), int(kind.number))
    return table


def declared_spacegroup(block: dict[str, Any]) -> int | None:
    """Space-group number a CIF data block declares, or ``None`` if it declares none.

    The IT number is used when present and valid; otherwise the Hermann-Mauguin
    symbol is looked up among the settings of spglib's database (any setting,
    with or without spaces, e.g. ``P 1 21/c 1`` or ``R -3 m :H``).

    Examples
    --------
    >>> declared_spacegroup({"_symmetry_space_group_name_H-M": "P 1 21/c 1"})
    14
    >>> declared_spacegroup({"_space_group_IT_number": "225"})
    225
    """
    number = first_value(block, _NUMBER_KEYS)
    if number is not None and re.fullmatch(r"\d{1,3}", number) and 1 <= int(number) <= 230:
        return int(number)
    symbol = first_value(block, _SYMBOL_KEYS)
    if symbol is None:
        return None
    table, key = _symbol_table(), _normalise_symbol(symbol)
    # Short monoclinic symbols in other settings ("A 2/m") are listed in full ("A 1 2/m 1").
    return table.get(key, table.get(f"{key[:1]}1{key[1:]}1"))
