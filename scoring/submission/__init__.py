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

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from scoring.submission.reading import (
    BASE_SIZE_LIMIT,
    MAX_EXAMPLES,
    PER_ROW_SIZE_LIMIT,
    IntArray,
    SubmissionError,
    SubmissionInput,
    _check_header,
    _decode,
    _header,
    _read_columns,
    oversize_message,
    read_submission_bytes,
    read_test_ids,
    size_limit,
)
from scoring.submission.values import _check_ids, _label_check
from xrd_bravais.contract.tasks import LATTICE_TASK, Task, Track, load_task

__all__ = [
    "BASE_SIZE_LIMIT", "MAX_EXAMPLES", "PER_ROW_SIZE_LIMIT", "SubmissionError",
    "SubmissionInput", "ValidSubmission", "oversize_message", "read_submission_bytes",
    "read_test_ids", "size_limit", "validate_submission",
]  # fmt: skip


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

