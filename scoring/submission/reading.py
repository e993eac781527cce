"""Reading a submission: its bytes, its text, its header and its two columns.

Every problem found is collected, not raised at once:
:func:`scoring.submission.validate_submission` reports them all in one
:class:`SubmissionError`.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from xrd_bravais.contract import layout
from xrd_bravais.contract.labels import (
    SPACEGROUP_NUMBERS,
)
from xrd_bravais.contract.tasks import Task, Track

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
