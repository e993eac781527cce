"""Score a valid submission against the hidden answer key (grader side only).

:func:`grade` runs where ``private/`` is. It refuses an answer key whose sha256
differs from the one recorded in ``manifest.json``, validates the submission with
exactly the student-side checks, joins it to the key on ``id`` (one-to-one,
never by row order) and scores the Public and Private portions separately.
Whatever is shown to students must come from :attr:`GradeResult.public` alone
until the competition is closed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from competition.io import sha256_file
from scoring.metrics import Scores, confusion_matrix, reference_scores
from scoring.submission import SubmissionInput, validate_submission
from scoring.tracks import DEFAULT_TRACK, Track, get_track

GRADER_VERSION: Final = "xrd-bravais-scoring/1"
"""Changes whenever a change to validation or metrics can change a stored score."""

SOLUTION_PATH: Final = "private/solution.csv"
PORTIONS: Final = ("Public", "Private")


class AnswerKeyError(RuntimeError):
    """The answer key is missing, altered or malformed: grading must not go on."""


@dataclass(frozen=True)
class AnswerKey:
    """The hidden labels of a competition.

    Attributes
    ----------
    table : pyarrow.Table
        ``id, bravais_lattice, spacegroup_number, Usage`` from ``private/solution.csv``.
    sha256 : str
        Hex digest of ``solution.csv``, equal to the manifest's.
    competition : Path
        The competition folder.
    """

    table: pa.Table
    sha256: str
    competition: Path

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

    def codes(self, track: str | Track) -> npt.NDArray[np.int64]:
        """True label codes (positions in ``track.labels``) of every row."""
        spec = get_track(track)
        return _label_codes(self.table.column(spec.column).combine_chunks(), spec)

    def portion_mask(self, portion: str) -> npt.NDArray[np.bool_]:
        """Boolean mask of the rows of ``portion`` (``"Public"`` or ``"Private"``)."""
        usage = self.table.column("Usage").combine_chunks()
        mask: npt.NDArray[np.bool_] = pc.equal(usage, portion).to_numpy(zero_copy_only=False)
        return mask


def _label_codes(values: pa.Array, track: Track) -> npt.NDArray[np.int64]:
    if track.name == "spacegroup":
        codes = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64) - 1
    else:
        index = pc.index_in(values, value_set=pa.array([str(s) for s in track.labels]))
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
    from competition.manifest import read_manifest

    root = Path(competition)
    path = root / SOLUTION_PATH
    if not path.is_file():
        raise AnswerKeyError(
            f"{path} not found: grading runs only where the competition's private/ folder is"
        )
    try:
        recorded = read_manifest(root)["files"].get(SOLUTION_PATH)
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
    types = {"id": pa.string(), "bravais_lattice": pa.string(),
             "spacegroup_number": pa.int64(), "Usage": pa.string()}  # fmt: skip
    try:
        table = pv.read_csv(path, convert_options=pv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as err:
        raise AnswerKeyError(f"{path} cannot be read: {err}") from err
    usage = table.column("Usage") if "Usage" in table.column_names else None
    if (
        table.column_names != list(types)
        or usage is None
        or not pc.all(pc.is_in(usage, value_set=pa.array(PORTIONS))).as_py()
    ):
        raise AnswerKeyError(f"{path} must have columns {list(types)} and Usage Public|Private")
    return AnswerKey(table=table, sha256=digest, competition=root)


@dataclass(frozen=True)
class GradeResult:
    """Scores of one submission on both portions.

    Attributes
    ----------
    track : str
        ``"bravais"`` or ``"spacegroup"``.
    public, private : Scores
        Every figure on each portion. Before close only ``public`` may be shown.
    notices : tuple of str
        The validator's notices (what it normalised).
    submission_sha256, answer_key_sha256 : str
        Provenance of the score.
    grader_version : str
        :data:`GRADER_VERSION` at scoring time.
    """

    track: str
    public: Scores
    private: Scores
    notices: tuple[str, ...]
    submission_sha256: str
    answer_key_sha256: str
    grader_version: str = GRADER_VERSION

    def portion(self, name: str) -> Scores:
        """The scores of ``"public"`` or ``"private"``."""
        return {"public": self.public, "private": self.private}[name.lower()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of everything."""
        return {
            "track": self.track,
            "public": self.public.to_dict(),
            "private": self.private.to_dict(),
            "notices": list(self.notices),
            "submission_sha256": self.submission_sha256,
            "answer_key_sha256": self.answer_key_sha256,
            "grader_version": self.grader_version,
        }


def grade(
    submission: SubmissionInput,
    competition: str | os.PathLike[str] | AnswerKey,
    track: str | Track = DEFAULT_TRACK,
    seed: int = 0,
) -> GradeResult:
    """Validate and score a submission on the Public and Private portions.

    Parameters
    ----------
    submission : path, bytes, binary file or pandas.DataFrame
        The submission CSV.
    competition : path or AnswerKey
        A built competition with its ``private/`` folder, or an answer key
        already loaded (to grade many submissions without reading it again).
    track : {"bravais", "spacegroup"}
        The track scored.
    seed : int
        Seed of the bootstrap intervals.

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
    spec = get_track(track)
    key = competition if isinstance(competition, AnswerKey) else load_answer_key(competition)
    valid = validate_submission(submission, key.ids, spec)
    # The join on id: validation guarantees the submitted ids are unique and are
    # exactly the key's, so index_in is a one-to-one hash join; a null would mean
    # an id without a partner, which must never be scored.
    position = pc.index_in(key.ids, value_set=valid.ids)
    if position.null_count:
        raise AssertionError("validated submission does not cover the answer key one-to-one")
    pred = valid.codes[np.asarray(position.to_numpy(zero_copy_only=False), dtype=np.int64)]
    true = key.codes(spec)
    scores = {}
    for portion in PORTIONS:
        mask = key.portion_mask(portion)
        cm = confusion_matrix(true[mask], pred[mask], spec.n_labels)
        scores[portion] = Scores.from_confusion(cm, seed=seed)
    return GradeResult(
        track=spec.name,
        public=scores["Public"],
        private=scores["Private"],
        notices=valid.notices,
        submission_sha256=valid.sha256,
        answer_key_sha256=key.sha256,
    )


def train_counts(competition: str | os.PathLike[str], track: str | Track) -> npt.NDArray[np.int64]:
    """Training rows per label of the track, from ``public/train.parquet``."""
    import pyarrow.parquet as pq

    spec = get_track(track)
    path = Path(competition) / "public" / "train.parquet"
    column = pq.read_table(path, columns=[spec.column]).column(spec.column).combine_chunks()
    return np.bincount(_label_codes(column, spec), minlength=spec.n_labels)


def reference_guesses(key: AnswerKey, track: str | Track, portion: str) -> dict[str, float]:
    """Expected accuracy of the uniform, prior-matched and majority guesses on a portion.

    The guessers know the training class counts; the figures use the portion's
    real class counts, so they are exact expectations for that portion.
    """
    spec = get_track(track)
    mask = key.portion_mask(portion)
    test = np.bincount(key.codes(spec)[mask], minlength=spec.n_labels)
    return reference_scores(train_counts(key.competition, spec), test)
