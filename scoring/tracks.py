"""The two tracks of the competition and the label set each one is scored on.

A track names the submission column, its label set (pinned: the confusion matrix
and every per-class figure always cover all of it) and the sample submission a
student starts from. The labels themselves come from :mod:`competition.lattices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from competition.lattices import BRAVAIS_LATTICES, SPACEGROUP_NUMBERS

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


TRACKS: Final[dict[str, Track]] = {
    "bravais": Track(
        "bravais", "bravais_lattice", tuple(BRAVAIS_LATTICES), "sample_submission.csv"
    ),
    "spacegroup": Track(
        "spacegroup",
        "spacegroup_number",
        tuple(SPACEGROUP_NUMBERS),
        "sample_submission_spacegroup.csv",
    ),
}
"""The tracks by name; ``"bravais"`` is the default everywhere."""

DEFAULT_TRACK: Final = "bravais"


def get_track(track: str | Track) -> Track:
    """Return the :class:`Track` called ``track`` (or ``track`` itself).

    Raises
    ------
    ValueError
        If no track has that name.
    """
    if isinstance(track, Track):
        return track
    try:
        return TRACKS[track]
    except KeyError:
        raise ValueError(f"unknown track {track!r}; choose one of {', '.join(TRACKS)}") from None
