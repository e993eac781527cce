"""Check that a submission is well formed, without any labels.

This is the student-side half of grading (the grader runs exactly the same
checks first). :func:`validate_submission` reads the CSV, reports *every*
problem in one :class:`SubmissionError` (what was expected, what was found, how
to fix it, with at most a few example ids) and otherwise returns the predictions
normalised to the canonical labels.

Only ``public/`` is read, so students can run it on their own machine. Anything
a file can contain ends either in a :class:`ValidSubmission` or in a
:class:`SubmissionError`; no other exception escapes for bad input.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from contract import layout
from contract.labels import (
    BRAVAIS_LATTICES,
    LEGACY_SPELLINGS,
    SPACEGROUP_NUMBERS,
    normalise_lattice_symbol,
)
from contract.tasks import LATTICE_TASK, Task, Track, load_task

_FIRST_GROUP, _LAST_GROUP = SPACEGROUP_NUMBERS[0], SPACEGROUP_NUMBERS[-1]
_GROUPS = f"{_FIRST_GROUP}..{_LAST_GROUP}"

MAX_EXAMPLES: Final = 3
"""How many example ids or lines a message quotes."""

BASE_SIZE_LIMIT: Final = 1 << 20
PER_ROW_SIZE_LIMIT: Final = 100
"""A submission may be at most 1 MiB plus 100 bytes per test id: a well-formed row
(``t000000,cF`` or ``t000000,230``) is under 20 bytes, so only a wrong file (an
export of the patterns, a notebook) reaches the limit."""

_ZIP_MAGIC: Final = b"PK\x03\x04"

IntArray: TypeAlias = npt.NDArray[np.int64]
SubmissionInput: TypeAlias = str | os.PathLike[str] | bytes | pd.DataFrame | IO[bytes]


class SubmissionError(ValueError):
    """A submission that cannot be scored, with every problem found.

    Attributes
    ----------
    problems : list of str
        One line per problem: what was expected, what was found, how to fix it.
    notices : list of str
        Things that were fixed silently (a BOM, ``mC`` for ``mS``); informative only.
    """

    def __init__(self, problems: Sequence[str], notices: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        self.notices = list(notices)
        super().__init__(self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        lines = [f"the submission is not valid ({n} problem{'s' * (n != 1)}):"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidSubmission:
    """A submission that passed every check.

    Attributes
    ----------
    ids : pyarrow.Array
        The submitted ids (strings), one per test id, in file order.
    codes : numpy.ndarray of int64
        The prediction of each row as a position in ``track.labels`` (legacy
        spellings already mapped: ``mC`` is ``mS``).
    track : Track
        The track it was checked for.
    notices : tuple of str
        What was fixed on the way (BOM removed, legacy spellings, spaces).
    sha256 : str
        Hex digest of the file's bytes, as submitted.
    """

    ids: pa.Array
    codes: IntArray
    track: Track
    notices: tuple[str, ...]
    sha256: str

    @property
    def frame(self) -> pd.DataFrame:
        """Columns ``id`` and the track's label column, labels in canonical spelling."""
        labels = np.asarray(self.track.labels, dtype=object)[self.codes]
        return pd.DataFrame({"id": self.ids.to_pylist(), self.track.column: labels})


def size_limit(n_ids: int) -> int:
    """Largest accepted submission in bytes for a test set of ``n_ids`` ids."""
    return BASE_SIZE_LIMIT + PER_ROW_SIZE_LIMIT * n_ids


def read_test_ids(competition: str | os.PathLike[str]) -> pa.Array:
    """The test ids of a built competition, from ``public/test.parquet``.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``public/test.parquet``.
    """
    import pyarrow.parquet as pq

    path = Path(competition) / layout.TEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {competition} a built competition?")
    ids: pa.Array = pq.read_table(path, columns=["id"]).column("id").combine_chunks()
    return ids.cast(pa.string())


def _examples(values: Iterable[object], total: int | None = None) -> str:
    shown: list[str] = []
    for value in values:
        if len(shown) == MAX_EXAMPLES:
            break
        shown.append(_clip(str(value), 40))
    text = ", ".join(shown)
    return f" (first {MAX_EXAMPLES}): {text}" if (total or 0) > MAX_EXAMPLES else f": {text}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _have(n: int, word: str) -> str:
    """``"1 row has"`` / ``"2 rows have"``."""
    return f"{_plural(n, word)} {'has' if n == 1 else 'have'}"


# --------------------------------------------------------------------------- bytes
def read_submission_bytes(submission: SubmissionInput, limit: int) -> bytes:
    """The submission's bytes, refusing a file over ``limit`` before reading it whole.

    Raises
    ------
    SubmissionError
        If the file is missing, unreadable, text instead of bytes, or too large.
    """
    if isinstance(submission, pd.DataFrame):
        text: str = submission.to_csv(index=False)
        data = text.encode("utf-8")
    elif isinstance(submission, bytes):
        data = submission
    elif isinstance(submission, str | os.PathLike):
        data = _read_path(submission, limit)
    else:
        try:
            data = submission.read(limit + 1)
        except (OSError, ValueError) as err:
            raise SubmissionError([f"cannot read the submission: {err}"]) from None
        if not isinstance(data, bytes):
            raise SubmissionError(
                ["the submission stream gave text, expected bytes; open it with 'rb'"]
            )
    if len(data) > limit:
        raise SubmissionError([oversize_message(len(data), limit)])
    return data


def _read_path(submission: str | os.PathLike[str], limit: int) -> bytes:
    if isinstance(submission, str) and "\n" in submission:
        raise SubmissionError(["got a str with line breaks, expected a file path; pass the CSV "
                               "content as bytes (text.encode()) or a DataFrame"])  # fmt: skip
    path = Path(submission)
    try:
        if not path.exists():
            raise SubmissionError([f"file {path} not found; check the path"])
        if not path.is_file():
            raise SubmissionError([f"{path} is not a file; give the path of your submission CSV"])
        size = path.stat().st_size
        if size > limit:
            raise SubmissionError([oversize_message(size, limit)])
        return path.read_bytes()
    except OSError as err:
        raise SubmissionError([f"cannot read {str(path)[:60]!r}: {err.strerror or err}"]) from None


def oversize_message(size: int, limit: int) -> str:
    """The problem reported for a file of ``size`` bytes over ``limit``."""
    return (
        f"file is {size:,} bytes, over the limit of {limit:,} bytes for this test set; "
        "a submission holds only two columns (id and the prediction), "
        "see sample_submission.csv"
    )


def _decode(data: bytes) -> tuple[str, list[str], list[str]]:
    """Decode to text; return (text, problems, notices)."""
    problems: list[str] = []
    notices: list[str] = []
    if data.startswith(_ZIP_MAGIC):
        raise SubmissionError(
            ["file is a ZIP or Excel workbook, not CSV; export it as 'CSV UTF-8'"]
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        notices.append("file is UTF-16 (its byte-order mark says so); read it as such")
        text = data.decode("utf-16", errors="replace")
        if "\ufffd" in text:
            problems.append("file has a UTF-16 byte-order mark but is not valid UTF-16")
        return text, problems, notices
    if data.startswith(codecs.BOM_UTF8):
        notices.append("removed the UTF-8 byte-order mark (BOM) at the start of the file")
        data = data[len(codecs.BOM_UTF8) :]
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        problems.append(
            f"file contains NUL bytes (first on line {line}): it is binary, not a text CSV; "
            "write it with DataFrame.to_csv(..., index=False)"
        )
        data = data.replace(b"\x00", b"")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.append(
            f"file is not UTF-8: byte 0x{data[err.start]:02X} on line {line} cannot be "
            "decoded; save it as UTF-8 (ids and labels are plain ASCII)"
        )
        text = data.decode("utf-8", errors="replace")
    return text, problems, notices


# --------------------------------------------------------------------------- table
MAX_QUOTED: Final = 80
"""Longest piece of a student's file quoted back in a message (and stored with it)."""


def _clip(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was.

    Examples
    --------
    >>> _clip("x" * 100, 10)
    'xxxxxxx... (100 characters)'
    """
    if len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(text):,} characters)"


def _header(text: str) -> tuple[list[str], str, list[str]]:
    """Fields of the first line, the delimiter to read the rest with, and problems."""
    first = text.split("\n", 1)[0].rstrip("\r")
    delimiter = ","
    problems: list[str] = []
    if "," not in first:
        for other, name in ((";", "semicolons"), ("\t", "tabs")):
            if other in first:
                delimiter = other
                problems.append(
                    f"columns are separated by {name}, expected commas; "
                    "save with DataFrame.to_csv(..., index=False) or as 'CSV (comma delimited)'"
                )
                break
    fields = next(csv.reader([first], delimiter=delimiter), [])
    return fields, delimiter, problems


@dataclass
class _Columns:
    id_index: int
    label_index: int
    width: int
    header_is_data: bool


def _check_header(
    header: list[str], track: Track, test_ids: pa.Array, task: Task
) -> tuple[_Columns | None, list[str], list[str]]:
    problems: list[str] = []
    notices: list[str] = []
    names = [name.strip().strip('"').strip() for name in header]
    lowered = [name.lower() for name in names]
    expected = track.header
    if names and pc.index(test_ids, names[0]).as_py() >= 0:
        problems.append(
            f"the first line is data ({_clip(','.join(header))!r}), expected the header "
            f"{expected!r}; add it as the first line"
        )
        if len(names) >= 2:
            return _Columns(0, 1, len(names), True), problems, notices
        return None, problems, notices
    if lowered != names and set(lowered) >= {"id", track.column}:
        shown = _clip(",".join(header))
        notices.append(f"read the header {shown!r} as {expected!r} (case, spaces)")
    id_index = lowered.index("id") if "id" in lowered else None
    label_index = lowered.index(track.column) if track.column in lowered else None
    found = _clip(",".join(header))
    if id_index is None or label_index is None:
        wanted = (("id", id_index), (track.column, label_index))
        missing = [name for name, at in wanted if at is None]
        hint = f"the first line must be {expected!r}"
        other = next((t for t in task.tracks if t != track and t.column in lowered), None)
        if other is not None:
            hint = f"this is the {other.name} track's header; validate with --track {other.name}"
        problems.append(
            f"header is {found!r}, expected {expected!r}: no column "
            f"{' or '.join(repr(m) for m in missing)}; {hint}"
        )
        return None, problems, notices
    extra = [h for h, low in zip(names, lowered, strict=True) if low not in ("id", track.column)]
    if extra:
        problems.append(
            f"header is {found!r}, expected {expected!r}: extra column"
            f"{'s' * (len(extra) != 1)} {', '.join(repr(_clip(e, 30)) for e in extra[:3])}"
            f"{f' and {len(extra) - 3:,} more' if len(extra) > 3 else ''}; "
            "keep only id and the prediction (DataFrame.to_csv(..., index=False) avoids an "
            "index column)"
        )
    duplicated = sorted({low for low in lowered if lowered.count(low) > 1})
    if duplicated:
        problems.append(f"header repeats the column(s) {', '.join(duplicated)}; keep one of each")
    return _Columns(id_index, label_index, len(names), False), problems, notices


def _read_columns(
    data: bytes, delimiter: str, columns: _Columns
) -> tuple[pa.Array, pa.Array, list[str], list[str]]:
    """Id and label columns (spaces stripped), with problems and notices.

    pyarrow parses the file (quotes, CRLF, blank lines) about ten times faster than
    the csv module; rows with the wrong number of fields come back through the
    handler with their line number, are reported, and still give their id, so
    that they are not reported as missing too.
    """
    ragged: list[tuple[int | None, str]] = []

    def on_invalid(row: pv.InvalidRow) -> str:
        ragged.append((row.number, row.text))
        return "skip"

    names = [f"f{k}" for k in range(columns.width)]
    table = pv.read_csv(
        pa.BufferReader(data),  # Arrow's buffer: no Python file for an Arrow thread to release
        read_options=pv.ReadOptions(
            column_names=names, skip_rows=0 if columns.header_is_data else 1, use_threads=False
        ),
        parse_options=pv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    i, j = columns.id_index, columns.label_index
    ids = table.column(i).combine_chunks()
    labels = table.column(j).combine_chunks()
    problems: list[str] = []
    if ragged:
        shown = ", ".join(
            f"line {number if number is not None else '?'}: {text[:40]!r}"
            for number, text in ragged[:MAX_EXAMPLES]
        )
        problems.append(
            f"{_have(len(ragged), 'row')} not {columns.width} fields like the header "
            f"({shown}); write one id and one prediction per line, quote values that "
            "contain commas"
        )
        parsed = [next(csv.reader([text], delimiter=delimiter), []) for _, text in ragged]
        ids = pa.concat_arrays([ids, pa.array([r[i] if len(r) > i else "" for r in parsed])])
        labels = pa.concat_arrays([labels, pa.array([r[j] if len(r) > j else "" for r in parsed])])
    stripped_ids = pc.utf8_trim_whitespace(ids)
    stripped_labels = pc.utf8_trim_whitespace(labels)
    notices = []
    if not (stripped_ids.equals(ids) and stripped_labels.equals(labels)):
        notices.append("removed spaces around values")
    return stripped_ids, stripped_labels, problems, notices


# --------------------------------------------------------------------------- values
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
                    "them with contract.labels.bravais_lattice"
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
def validate_submission(
    submission: SubmissionInput,
    competition: str | os.PathLike[str] | Sequence[str] | pd.Index | pa.Array,
    track: str | Track | None = None,
    *,
    task: Task | None = None,
) -> ValidSubmission:
    r"""Check a submission against the test ids of a competition, without labels.

    Parameters
    ----------
    submission : path, bytes, binary file or pandas.DataFrame
        The submission CSV (``id,bravais_lattice`` or ``id,spacegroup_number``).
        A DataFrame is written to CSV first, exactly as ``to_csv(index=False)`` would.
    competition : path or sequence of str
        A built competition folder (its ``public/test.parquet`` gives the ids), or
        the test ids themselves.
    track : str, optional
        Which track's label column to expect (``"bravais"``, ``"spacegroup"``);
        default: the task's first.
    task : Task, optional
        The competition's task; default: read from the competition folder (its
        manifest, or the task ``test.parquet`` carries), else the lattice task.

    Returns
    -------
    ValidSubmission
        The predictions and the notices.

    Raises
    ------
    SubmissionError
        Listing every problem found, if the file cannot be scored as it is.

    Examples
    --------
    >>> ok = validate_submission(b"id,bravais_lattice\nt1,cF\nt2,mC\n", ["t1", "t2"])
    >>> ok.frame["bravais_lattice"].tolist(), ok.notices[0][:12]
    (['cF', 'mS'], 'read mC as m')
    """
    if task is None and isinstance(competition, str | os.PathLike):
        task = load_task(competition)
    task = task or LATTICE_TASK
    spec = task.track(track)
    if isinstance(competition, str | os.PathLike):
        test_ids = read_test_ids(competition)
    elif isinstance(competition, pa.Array):
        test_ids = competition
    else:
        test_ids = pa.array([str(i) for i in competition], type=pa.string())
    try:
        return _validate(submission, test_ids, spec, task)
    except SubmissionError:
        raise
    except Exception as err:  # untrusted input must end in SubmissionError
        raise SubmissionError(
            [f"the file could not be checked ({type(err).__name__}: {err}); "
             "compare it with the sample submission"]
        ) from err  # fmt: skip


def _validate(
    submission: SubmissionInput, test_ids: pa.Array, track: Track, task: Task
) -> ValidSubmission:
    data = read_submission_bytes(submission, size_limit(len(test_ids)))
    text, problems, notices = _decode(data)
    if not text.strip():
        raise SubmissionError(
            [*problems, f"file is empty; expected the header {track.header!r} and one row per "
             f"test id ({len(test_ids):,}), see {track.sample_file}"]
        )  # fmt: skip
    header, delimiter, found = _header(text)
    problems += found
    columns, found, noticed = _check_header(header, track, test_ids, task)
    problems += found
    notices += noticed
    if columns is None:
        raise SubmissionError(problems, notices)
    try:
        ids, labels, found, noticed = _read_columns(text.encode("utf-8"), delimiter, columns)
    except pa.ArrowInvalid as err:
        raise SubmissionError([*problems, f"file cannot be read as CSV: {err}"], notices) from None
    problems += found
    notices += noticed
    if len(ids) == 0:
        problems.append(
            f"file has a header but no rows; expected one row per test id ({len(test_ids):,})"
        )
        raise SubmissionError(problems, notices)
    problems += _check_ids(ids, test_ids, track)
    codes, found, noticed = _label_check(track)(labels, track)
    problems += found
    notices += noticed
    if problems:
        raise SubmissionError(problems, notices)
    return ValidSubmission(
        ids=ids,
        codes=codes,
        track=track,
        notices=tuple(notices),
        sha256=hashlib.sha256(data).hexdigest(),
    )
