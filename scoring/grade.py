"""Score a valid submission against the hidden answer key (grader side only).

:func:`grade` runs where ``private/`` is. It refuses an answer key whose sha256
differs from the one recorded in ``manifest.json``, validates the submission with
exactly the student-side checks, joins it to the key on ``id`` (one-to-one,
never by row order) and scores the Public and Private portions separately.
Whatever is shown to students must come from :attr:`GradeResult.public` (and
:attr:`GradeResult.measured_public`, the real measurements of the Public board) alone
until the competition is closed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from scoring.metrics import Scores, confusion_matrix
from scoring.submission import SubmissionInput, validate_submission
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import sha256_file
from xrd_bravais.contract.layout import ALL_PORTIONS, PORTIONS
from xrd_bravais.contract.manifest import read_manifest
from xrd_bravais.contract.references import reference_scores
from xrd_bravais.contract.tasks import Task, Track, load_task, task_from_manifest

GRADER_VERSION: Final = "xrd-bravais-scoring/2"
"""Changes whenever a change to validation or metrics can change a stored score
(2: Wilson intervals of accuracy, a row bootstrap of macro-F1)."""

SOLUTION_PATH: Final = layout.SOLUTION


class AnswerKeyError(RuntimeError):
    """The answer key is missing, altered or malformed: grading must not go on."""


@dataclass(frozen=True)
class AnswerKey:
    """The hidden labels of a competition.

    Attributes
    ----------
    table : pyarrow.Table
        ``id``, one column per track of the task, ``Usage``, from ``private/solution.csv``.
    sha256 : str
        Hex digest of ``solution.csv``, equal to the manifest's.
    competition : Path
        The competition folder.
    task : Task
        The competition's task, from its manifest: the tracks and their label sets.
    """

    table: pa.Table
    sha256: str
    competition: Path
    task: Task

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def ids(self) -> pa.Array:
        """The test ids, in the key's order."""
        return self.table.column("id").combine_chunks()

    @property
    def frame(self) -> pd.DataFrame:
        """The key as a DataFrame."""
        return self.table.to_pandas()

    def codes(self, track: str | Track | None = None) -> npt.NDArray[np.int64]:
        """True label codes (positions in ``track.labels``) of every row."""
        spec = self.task.track(track)
        return _label_codes(self.table.column(spec.column).combine_chunks(), spec)

    @property
    def has_measured(self) -> bool:
        """Whether the test set has a Measured portion (real measurements)."""
        return bool(self.portion_mask(layout.MEASURED_PORTION).any())

    def portion_mask(self, portion: str) -> npt.NDArray[np.bool_]:
        """Boolean mask of the rows of ``portion`` (``"Public"``, ``"Private"``, ``"Measured"``)."""
        usage = self.table.column(layout.USAGE).combine_chunks()
        mask: npt.NDArray[np.bool_] = pc.equal(usage, portion).to_numpy(zero_copy_only=False)
        return mask


def _is_numeric(track: Track) -> bool:
    return all(isinstance(label, int) for label in track.labels)


def _label_codes(values: pa.Array, track: Track) -> npt.NDArray[np.int64]:
    if _is_numeric(track):
        labels = pa.array([int(s) for s in track.labels], pa.int64())
        index = pc.index_in(values.cast(pa.int64()), value_set=labels)
    else:
        labels = pa.array([str(s) for s in track.labels], pa.string())
        index = pc.index_in(values.cast(pa.string()), value_set=labels)
    codes = np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False), np.int64)
    if (codes < 0).any() or (codes >= track.n_labels).any():
        raise AnswerKeyError(f"the answer key has labels outside the {track.name} track")
    return codes


def load_answer_key(competition: str | os.PathLike[str]) -> AnswerKey:
    """Read ``private/solution.csv`` after checking its sha256 against the manifest.

    Raises
    ------
    AnswerKeyError
        If there is no ``private/`` answer key, no manifest, a hash mismatch, or a
        key that does not have the expected columns and portions.
    """
    root = Path(competition)
    path = root / SOLUTION_PATH
    if not path.is_file():
        raise AnswerKeyError(
            f"{path} not found: grading runs only where the competition's private/ folder is"
        )
    try:
        manifest = read_manifest(root)
        recorded = manifest["files"].get(SOLUTION_PATH)
        task = task_from_manifest(manifest)
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise AnswerKeyError(f"cannot read the manifest of {root}: {err}") from err
    digest = sha256_file(path)
    if recorded is None:
        raise AnswerKeyError(f"manifest.json of {root} records no hash for {SOLUTION_PATH}")
    if digest != recorded:
        raise AnswerKeyError(
            f"{path} has sha256 {digest[:12]}... but manifest.json records {recorded[:12]}...; "
            "the answer key was changed after the build: restore it or rebuild"
        )
    types = {
        layout.ID: pa.string(),
        **{t.column: pa.int64() if _is_numeric(t) else pa.string() for t in task.tracks},
        layout.USAGE: pa.string(),
    }
    try:
        table = pv.read_csv(path, convert_options=pv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as err:
        raise AnswerKeyError(f"{path} cannot be read: {err}") from err
    usage = table.column(layout.USAGE) if layout.USAGE in table.column_names else None
    if (
        table.column_names != list(types)
        or usage is None
        or not pc.all(pc.is_in(usage, value_set=pa.array(ALL_PORTIONS))).as_py()
    ):
        raise AnswerKeyError(
            f"{path} must have columns {list(types)} and Usage {'|'.join(ALL_PORTIONS)}"
        )
    return AnswerKey(table=table, sha256=digest, competition=root, task=task)


@dataclass(frozen=True)
class GradeResult:
    """Scores of one submission on each portion.

    Attributes
    ----------
    track : str
        ``"bravais"`` or ``"spacegroup"``.
    public, private : Scores
        Every figure on each portion. Before close only ``public`` may be shown.
    measured : Scores or None
        The same on the real measurements, where the competition has them
        (hidden until close, like ``private``).
    measured_public : Scores or None
        The same on the real measurements scored during the course
        (``build --measured-public-fraction``): shown with ``public``.
    notices : tuple of str
        The validator's notices (what it normalised).
    submission_sha256, answer_key_sha256 : str
        Provenance of the score.
    grader_version : str
        :data:`GRADER_VERSION` at scoring time.
    predictions : numpy.ndarray or None
        The submission's label codes in the answer key's row order (the grader's
        Ladder and integrity checks); never stored or shown.
    """

    track: str
    public: Scores
    private: Scores
    notices: tuple[str, ...]
    submission_sha256: str
    answer_key_sha256: str
    grader_version: str = GRADER_VERSION
    measured: Scores | None = None
    measured_public: Scores | None = None
    predictions: npt.NDArray[np.int64] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of everything (``measured`` only where there is one)."""
        return {
            "track": self.track,
            "public": self.public.to_dict(),
            "private": self.private.to_dict(),
            **({"measured": self.measured.to_dict()} if self.measured else {}),
            **({"measured_public": self.measured_public.to_dict()} if self.measured_public
               else {}),
            "notices": list(self.notices),
            "submission_sha256": self.submission_sha256,
            "answer_key_sha256": self.answer_key_sha256,
            "grader_version": self.grader_version,
        }


def grade(
    submission: SubmissionInput,
    competition: str | os.PathLike[str] | AnswerKey,
    track: str | Track | None = None,
    seed: int = 0,
    test_ids: Sequence[str] | pa.Array | None = None,
) -> GradeResult:
    """Validate and score a submission on each portion of the test set.

    Parameters
    ----------
    submission : path, bytes, binary file or pandas.DataFrame
        The submission CSV.
    competition : path or AnswerKey
        A built competition with its ``private/`` folder, or an answer key
        already loaded (to grade many submissions without reading it again).
    track : str, optional
        The track scored (a track of the competition's task, e.g. ``"bravais"``
        or ``"spacegroup"``); default: the task's first.
    seed : int
        Seed of the bootstrap intervals.
    test_ids : sequence of str, optional
        The ids a submission must cover; default: the key's. A key may hold the
        labels of some portions only (a hosting platform's phase that scores the
        Public rows keeps no Private label): it is then given every test id here,
        and the portions it lacks score ``n = 0`` with NaN figures.

    Returns
    -------
    GradeResult

    Raises
    ------
    SubmissionError
        If the submission is not valid (every problem listed).
    AnswerKeyError
        If the answer key is missing or does not match the manifest.
    """
    key = competition if isinstance(competition, AnswerKey) else load_answer_key(competition)
    spec = key.task.track(track)
    ids = key.ids if test_ids is None else test_ids
    valid = validate_submission(submission, ids, spec, task=key.task)
    # The join on id: validation guarantees the submitted ids are unique and cover
    # the key's, so index_in is a one-to-one hash join; a null would mean an id
    # without a partner, which must never be scored.
    position = pc.index_in(key.ids, value_set=valid.ids)
    if position.null_count:
        raise AssertionError("validated submission does not cover the answer key one-to-one")
    pred = valid.codes[np.asarray(position.to_numpy(zero_copy_only=False), dtype=np.int64)]
    true = key.codes(spec)
    scores = {}
    for portion in ALL_PORTIONS:
        mask = key.portion_mask(portion)
        if portion in PORTIONS or mask.any():
            cm = confusion_matrix(true[mask], pred[mask], spec.n_labels)
            scores[portion] = Scores.from_confusion(cm, seed=seed)
    return GradeResult(
        track=spec.name,
        public=scores[layout.PUBLIC_PORTION],
        private=scores[layout.PRIVATE_PORTION],
        measured=scores.get(layout.MEASURED_PORTION),
        measured_public=scores.get(layout.MEASURED_PUBLIC_PORTION),
        notices=valid.notices,
        submission_sha256=valid.sha256,
        answer_key_sha256=key.sha256,
        predictions=pred,
    )


def train_counts(
    competition: str | os.PathLike[str], track: str | Track | None = None
) -> npt.NDArray[np.int64]:
    """Training rows per label of the track, from ``public/train.parquet``."""
    import pyarrow.parquet as pq

    spec = load_task(competition).track(track)
    path = Path(competition) / layout.TRAIN
    column = pq.read_table(path, columns=[spec.column]).column(spec.column).combine_chunks()
    return np.bincount(_label_codes(column, spec), minlength=spec.n_labels)


def reference_guesses(
    key: AnswerKey, track: str | Track | None, portion: str
) -> dict[str, float]:
    """Expected accuracy of the uniform, prior-matched and majority guesses on a portion.

    The guessers know the training class counts; the figures use the portion's
    real class counts, so they are exact expectations for that portion.
    """
    spec = key.task.track(track)
    mask = key.portion_mask(portion)
    test = np.bincount(key.codes(spec)[mask], minlength=spec.n_labels)
    return reference_scores(train_counts(key.competition, spec), test)
