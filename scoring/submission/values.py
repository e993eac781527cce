"""Checking a submission's values: ids against the test set, labels against the track.

Lattice symbols are read with their legacy spellings (``mC`` for ``mS``); space
groups must be integers in 1..230.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from scoring.submission.reading import (
    _FIRST_GROUP,
    _GROUPS,
    _LAST_GROUP,
    MAX_EXAMPLES,
    IntArray,
    _examples,
    _have,
    _plural,
)
from xrd_bravais.contract import layout
from xrd_bravais.contract.labels import (
    BRAVAIS_LATTICES,
    LEGACY_SPELLINGS,
    normalise_lattice_symbol,
)
from xrd_bravais.contract.tasks import Track


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _check_ids(ids: pa.Array, test_ids: pa.Array, track: Track) -> list[str]:
    problems: list[str] = []
    fix = f"write exactly one row per test id (see {track.sample_file})"
    empty = pc.equal(ids, "")
    n_empty = _count(empty)
    if n_empty:
        rows = np.flatnonzero(empty.to_numpy(zero_copy_only=False))[:MAX_EXAMPLES] + 1
        problems.append(
            f"{_have(n_empty, 'row')} an empty id (data row {', '.join(map(str, rows))}); {fix}"
        )
    if len(pc.unique(ids)) < len(ids):
        counts = pc.value_counts(ids)
        repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        repeated = pc.filter(repeated, pc.not_equal(repeated.field("values"), ""))
        if len(repeated):
            dup_ids = repeated.field("values").to_pylist()
            extra_rows = int(pc.sum(repeated.field("counts")).as_py()) - len(dup_ids)
            problems.append(
                f"{_plural(len(dup_ids), 'id')} {'appears' if len(dup_ids) == 1 else 'appear'} "
                f"more than once ({_plural(extra_rows, 'extra row')})"
                f"{_examples(dup_ids, len(dup_ids))}; {fix}"
            )
    unknown = pc.and_(pc.invert(pc.is_in(ids, value_set=test_ids)), pc.invert(empty))
    if _count(unknown):
        extra = pc.unique(pc.filter(ids, unknown)).to_pylist()
        example = test_ids[0].as_py() if len(test_ids) else "?"
        problems.append(
            f"{_plural(len(extra), 'id')} {'is' if len(extra) == 1 else 'are'} not in "
            f"test.parquet{_examples(extra, len(extra))}; predict only the ids of test.parquet "
            f"(they look like {example})"
        )
    absent = pc.invert(pc.is_in(test_ids, value_set=ids))
    n_missing = _count(absent)
    if n_missing:
        missing = pc.filter(test_ids, absent)[:MAX_EXAMPLES].to_pylist()
        problems.append(
            f"submission covers {len(test_ids) - n_missing:,} of the {len(test_ids):,} ids of "
            f"test.parquet; missing ids{_examples(missing, n_missing)}; {fix}"
        )
    return problems


def _closest(value: str, labels: Sequence[str]) -> str | None:
    lowered = {label.lower(): label for label in labels}
    if value.lower() in lowered:
        return lowered[value.lower()]
    match = difflib.get_close_matches(value, labels, n=1, cutoff=0.4)
    return match[0] if match else None


def _unknown_message(
    n_rows: int, unknown: Sequence[str], expected: str, hints: Sequence[str | None]
) -> str:
    shown = []
    for value, hint in zip(unknown[:MAX_EXAMPLES], hints, strict=False):
        shown.append(f"{value!r}{f' (did you mean {hint!r}?)' if hint else ''}")
    more = f" and {len(unknown) - MAX_EXAMPLES} more" if len(unknown) > MAX_EXAMPLES else ""
    return f"{_have(n_rows, 'row')} a label that is not {expected}: {', '.join(shown)}{more}"


def _check_lattices(labels: pa.Array, track: Track) -> tuple[IntArray, list[str], list[str]]:
    """Label codes (positions in ``track.labels``; -1 where invalid), problems, notices."""
    problems: list[str] = []
    notices: list[str] = []
    symbols = [str(s) for s in track.labels]
    legacy = list(LEGACY_SPELLINGS)
    lookup = pa.array(symbols + legacy)
    # Codes of the legacy spellings point at their canonical symbols.
    remap = np.array([*range(len(symbols)), *(symbols.index(LEGACY_SPELLINGS[s]) for s in legacy)])
    index = pc.index_in(labels, value_set=lookup)
    raw = index.to_numpy(zero_copy_only=False)
    valid = ~np.isnan(raw) if raw.dtype.kind == "f" else np.ones(len(raw), dtype=bool)
    codes = np.full(len(labels), -1, dtype=np.int64)
    codes[valid] = remap[raw[valid].astype(np.int64)]
    n_legacy = int((raw[valid] >= len(symbols)).sum())
    if n_legacy:
        used = sorted(
            set(pc.filter(labels, pc.is_in(labels, value_set=pa.array(legacy))).to_pylist())
        )
        notices.append(
            f"read {', '.join(f'{s} as {LEGACY_SPELLINGS[s]}' for s in used)} "
            f"({_plural(n_legacy, 'row')}): the older spelling of the same lattice"
        )
    if not valid.all():
        bad = pc.filter(labels, pa.array(~valid))
        n_empty = _count(pc.equal(bad, ""))
        unknown = [v for v in pc.unique(bad).to_pylist() if v]
        if n_empty:
            problems.append(
                f"{_have(n_empty, 'row')} no label; give one of the 14 lattices for every id"
            )
        if unknown:
            hints = [_closest(v, symbols) for v in unknown[:MAX_EXAMPLES]]
            message = _unknown_message(
                len(bad) - n_empty, unknown,
                f"one of the 14 Bravais lattices ({' '.join(symbols)})", hints,
            )  # fmt: skip
            message += "; labels are case-sensitive Pearson symbols"
            if all(v.isdigit() for v in unknown[:MAX_EXAMPLES]):
                message += (
                    "; numbers look like space groups: use --track spacegroup, or map "
                    "them with xrd_bravais.contract.labels.bravais_lattice"
                )
            problems.append(message)
    return codes, problems, notices


def _parse_integers(labels: pa.Array) -> tuple[IntArray, npt.NDArray[np.bool_], int, int]:
    """Integers written in a label column: the numbers, which parsed, how many as '14.0', empty.

    Unparsed rows get 10**9, as does anything over 9 digits (it would overflow a cast).
    """
    integer = pc.match_substring_regex(labels, r"^\+?[0-9]+$").to_numpy(zero_copy_only=False)
    decimal = pc.match_substring_regex(labels, r"^\+?[0-9]+\.0*$").to_numpy(zero_copy_only=False)
    parsed = integer | decimal
    digits = pc.utf8_ltrim(pc.replace_substring_regex(labels, r"^\+|\.0*$", ""), characters="0")
    short = pc.less_equal(pc.utf8_length(digits), 9).to_numpy(zero_copy_only=False)
    numbers = np.full(len(labels), 10**9, dtype=np.int64)
    castable = parsed & short
    if castable.any():
        as_text = pc.filter(digits, pa.array(castable))
        as_text = pc.if_else(pc.equal(as_text, ""), "0", as_text)
        numbers[castable] = pc.cast(as_text, pa.int64()).to_numpy()
    n_empty = int(pc.sum(pc.equal(labels, "")).as_py() or 0)
    return numbers, parsed, int(decimal.sum()), n_empty


def _decimal_notice(n: int) -> str:
    return (f"read {_plural(n, 'number')} written like '14.0' as integers; "
            "write them as integers (DataFrame column .astype(int))")  # fmt: skip


def _check_spacegroups(labels: pa.Array, track: Track) -> tuple[IntArray, list[str], list[str]]:
    """Label codes (number - 1; -1 where invalid), problems, notices."""
    problems: list[str] = []
    notices: list[str] = []
    numbers, parsed, n_decimal, n_empty = _parse_integers(labels)
    if n_decimal:
        notices.append(_decimal_notice(n_decimal))
    empty = pc.equal(labels, "").to_numpy(zero_copy_only=False)
    if n_empty:
        problems.append(
            f"{_have(n_empty, 'row')} no space-group number; "
            f"give an integer {_GROUPS} for every id"
        )
    other = ~parsed & ~empty
    if other.any():
        found = pc.unique(pc.filter(labels, pa.array(other))).to_pylist()
        more = f" and {len(found) - MAX_EXAMPLES} more" if len(found) > MAX_EXAMPLES else ""
        message = (
            f"{_have(int(other.sum()), 'row')} a space group that is not an integer: "
            f"{', '.join(repr(v) for v in found[:MAX_EXAMPLES])}{more}; write the "
            f"International Tables number {_GROUPS} (e.g. 225 for Fm-3m)"
        )
        if any(normalise_lattice_symbol(v) in BRAVAIS_LATTICES for v in found):
            message += "; these look like Bravais lattices: use --track bravais"
        problems.append(message)
    out_of_range = parsed & ((numbers < _FIRST_GROUP) | (numbers > _LAST_GROUP))
    if out_of_range.any():
        found_numbers = pc.unique(pc.filter(labels, pa.array(out_of_range))).to_pylist()
        problems.append(
            f"{_have(int(out_of_range.sum()), 'row')} a space-group number outside "
            f"{_GROUPS}{_examples(found_numbers, len(found_numbers))}; space groups are "
            f"numbered {_FIRST_GROUP} to {_LAST_GROUP}"
        )
    codes = np.where(parsed & ~out_of_range, numbers - _FIRST_GROUP, -1)
    return codes.astype(np.int64), problems, notices


def _label_list(track: Track) -> str:
    shown = ", ".join(map(str, track.labels[:20]))
    return shown + (f" ... ({track.n_labels} labels)" if track.n_labels > 20 else "")


def _check_integer_labels(
    labels: pa.Array, track: Track
) -> tuple[IntArray, list[str], list[str]]:
    """Any track whose labels are integers (the particle counts of the aggregates task)."""
    problems: list[str] = []
    notices: list[str] = []
    numbers, parsed, n_decimal, n_empty = _parse_integers(labels)
    if n_decimal:
        notices.append(_decimal_notice(n_decimal))
    expected = f"one of {_label_list(track)}"
    if n_empty:
        problems.append(
            f"{_have(n_empty, 'row')} no {track.column} value; give {expected} for every id"
        )
    empty = pc.equal(labels, "").to_numpy(zero_copy_only=False)
    valid = np.array([int(label) for label in track.labels], dtype=np.int64)
    known = parsed & np.isin(numbers, valid)
    bad = ~known & ~empty
    if bad.any():
        found = pc.unique(pc.filter(labels, pa.array(bad))).to_pylist()
        more = f" and {len(found) - MAX_EXAMPLES} more" if len(found) > MAX_EXAMPLES else ""
        problems.append(
            f"{_have(int(bad.sum()), 'row')} a {track.column} value that is not {expected}: "
            f"{', '.join(repr(v) for v in found[:MAX_EXAMPLES])}{more}; write the integer "
            "itself"
        )
    # Position of each number in the (sorted) label set; -1 where it is not a label.
    order = np.argsort(valid)
    found_at = np.clip(np.searchsorted(valid, numbers, sorter=order), 0, len(valid) - 1)
    codes = np.where(known, order[found_at], -1)
    return codes.astype(np.int64), problems, notices


def _check_text_labels(labels: pa.Array, track: Track) -> tuple[IntArray, list[str], list[str]]:
    """Any track whose labels are text, matched exactly (a hint for near misses)."""
    symbols = [str(s) for s in track.labels]
    index = pc.index_in(labels, value_set=pa.array(symbols))
    codes = np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False), np.int64)
    problems: list[str] = []
    bad = codes < 0
    if bad.any():
        found = [v for v in pc.unique(pc.filter(labels, pa.array(bad))).to_pylist() if v]
        n_empty = _count(pc.equal(labels, ""))
        if n_empty:
            problems.append(
                f"{_have(n_empty, 'row')} no {track.column} value; give one for every id"
            )
        if found:
            hints = [_closest(v, symbols) for v in found[:MAX_EXAMPLES]]
            problems.append(_unknown_message(int(bad.sum()) - n_empty, found,
                                             f"one of {_label_list(track)}", hints))  # fmt: skip
    return codes, problems, []


LabelCheck: TypeAlias = Callable[[pa.Array, Track], tuple[IntArray, list[str], list[str]]]


def _label_check(track: Track) -> LabelCheck:
    """The checks of a track's labels: the lattice and space-group tracks have their own."""
    if track.column == layout.LATTICE:
        return _check_lattices
    if track.column == layout.SPACEGROUP:
        return _check_spacegroups
    if all(isinstance(label, int) for label in track.labels):
        return _check_integer_labels
    return _check_text_labels


# --------------------------------------------------------------------------- entry
