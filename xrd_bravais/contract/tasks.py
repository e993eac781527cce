"""Tasks and their tracks: what a submission predicts and the label set it is scored on.

A track names the submission column, its label set (pinned: the confusion matrix
and every per-class figure always cover all of it) and the sample submission a
student starts from. A task is the set of tracks of one kind of competition; the
builder records it in ``manifest.json`` and the grader reads it from there, so a
new kind of competition needs no constant in the grader. The lattice task's
labels come from :mod:`xrd_bravais.contract.labels`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Final

from xrd_bravais.contract.labels import BRAVAIS_LATTICES, SPACEGROUP_NUMBERS
from xrd_bravais.contract.layout import sample_submission

Label = str | int


@dataclass(frozen=True)
class Track:
    """One prediction task: which column a submission holds and its label set.

    Attributes
    ----------
    name : str
        ``"bravais"`` or ``"spacegroup"``.
    column : str
        The label column of ``solution.csv`` and of a submission.
    labels : tuple
        Every valid label, in canonical order (Pearson symbols or 1..230).
    sample_file : str
        The sample submission in ``public/`` for this track.
    """

    name: str
    column: str
    labels: tuple[Label, ...]
    sample_file: str
    _codes: dict[Label, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_codes", {label: i for i, label in enumerate(self.labels)})

    @property
    def n_labels(self) -> int:
        """How many labels the track has (14 or 230)."""
        return len(self.labels)

    @property
    def header(self) -> str:
        """The header line a submission must start with."""
        return f"id,{self.column}"

    def code(self, label: Label) -> int:
        """Position of ``label`` in :attr:`labels`; ``KeyError`` if it is not one."""
        return self._codes[label]


    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as the manifest records it."""
        return {"name": self.name, "column": self.column, "labels": list(self.labels),
                "sample_file": self.sample_file}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["name"]), str(data["column"]), tuple(data["labels"]),
                   str(data["sample_file"]))  # fmt: skip


@dataclass(frozen=True)
class Task:
    """One kind of competition: its name and tracks (the first is the default).

    Attributes
    ----------
    name : str
    tracks : tuple of Track
    """

    name: str
    tracks: tuple[Track, ...]

    @property
    def default(self) -> Track:
        """The track used when none is named."""
        return self.tracks[0]

    @property
    def track_names(self) -> tuple[str, ...]:
        """The names of the tracks, default first."""
        return tuple(t.name for t in self.tracks)

    def track(self, track: str | Track | None = None) -> Track:
        """The track called ``track`` (``None``: the default; a Track: itself).

        Raises
        ------
        ValueError
            If the task has no track of that name.
        """
        if isinstance(track, Track):
            return track
        if track is None:
            return self.default
        for candidate in self.tracks:
            if candidate.name == track:
                return candidate
        raise ValueError(
            f"unknown track {track!r}; this {self.name} competition has "
            f"{', '.join(self.track_names)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as the manifest records it."""
        return {"name": self.name, "tracks": [t.to_dict() for t in self.tracks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["name"]), tuple(Track.from_dict(t) for t in data["tracks"]))


def _lattice_task() -> Task:
    tracks = (
        Track("bravais", "bravais_lattice", tuple(BRAVAIS_LATTICES),
              PurePosixPath(sample_submission("bravais")).name),
        Track("spacegroup", "spacegroup_number", tuple(SPACEGROUP_NUMBERS),
              PurePosixPath(sample_submission("spacegroup")).name),
    )  # fmt: skip
    return Task("bravais-lattice", tracks)


LATTICE_TASK: Final = _lattice_task()
"""The lattice task: the Bravais-lattice track (default) and the space-group track."""

AGGREGATES_TASK_NAME: Final = "aggregates"
COUNT_TRACK_NAME: Final = "count"
COUNT_COLUMN: Final = "n_particles"


def aggregates_task(counts: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Task:
    """The aggregates task: one track, the number of particles in an aggregate.

    Parameters
    ----------
    counts : tuple of int
        The particle counts a build draws, in increasing order: the label set.

    Examples
    --------
    >>> aggregates_task((1, 2, 3)).default.labels
    (1, 2, 3)
    """
    if not counts or list(counts) != sorted(set(counts)) or counts[0] < 1:
        raise ValueError(f"counts must be distinct positive integers in order, got {counts}")
    sample = PurePosixPath(sample_submission(COUNT_TRACK_NAME)).name
    return Task(AGGREGATES_TASK_NAME, (Track(COUNT_TRACK_NAME, COUNT_COLUMN, counts, sample),))


TRACKS: Final[dict[str, Track]] = {t.name: t for t in LATTICE_TASK.tracks}
"""The lattice task's tracks by name."""

DEFAULT_TRACK: Final = LATTICE_TASK.default.name


def get_track(track: str | Track | None, task: Task = LATTICE_TASK) -> Track:
    """The :class:`Track` called ``track`` in ``task`` (default: the lattice task).

    Raises
    ------
    ValueError
        If the task has no track of that name.
    """
    return task.track(track)


def task_from_manifest(manifest: Mapping[str, Any]) -> Task:
    """The task a manifest records; the lattice task for manifests older than the field."""
    data = manifest.get("task")
    return LATTICE_TASK if data is None else Task.from_dict(data)


TASK_METADATA_KEY: Final = b"xrd_bravais.task"
"""Parquet schema-metadata key under which ``test.parquet`` carries the task, so a
student's copy of ``public/`` (which has no manifest) knows its tracks too."""


def load_task(competition: str | os.PathLike[str]) -> Task:
    """The task of a competition folder.

    From its manifest where there is one (the organiser's copy), else from
    ``public/test.parquet`` (a student's copy), else the lattice task (folders
    built before tasks were recorded).
    """
    import json
    from pathlib import Path

    from xrd_bravais.contract.layout import MANIFEST, TEST
    from xrd_bravais.contract.manifest import read_manifest

    root = Path(competition)
    if (root / MANIFEST).is_file():
        return task_from_manifest(read_manifest(root))
    if (root / TEST).is_file():
        import pyarrow.parquet as pq

        metadata = pq.read_schema(root / TEST).metadata or {}
        if TASK_METADATA_KEY in metadata:
            return Task.from_dict(json.loads(metadata[TASK_METADATA_KEY]))
    return LATTICE_TASK
