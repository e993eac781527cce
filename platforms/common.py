"""What every platform export shares: the public files it carries and the leak checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from contract import layout
from contract.manifest import read_manifest
from contract.tasks import Track


class ExportError(RuntimeError):
    """The export was refused; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"export refused ({len(self.problems)} problem(s)):\n{lines}")


def public_data_files(competition: Path, track: Track) -> dict[str, bytes]:
    """The participants' data files of one track, by the name they get on a platform.

    ``train.parquet``, ``train_sticks.parquet`` (where the build has one),
    ``test.parquet`` and the track's sample submission as ``sample_submission.csv``.

    Raises
    ------
    ExportError
        If a file is missing or differs from the sha256 that ``manifest.json`` records.
    """
    recorded = read_manifest(competition)["files"]
    wanted = {
        "train.parquet": layout.TRAIN,
        "train_sticks.parquet": layout.TRAIN_STICKS,
        "test.parquet": layout.TEST,
        "sample_submission.csv": layout.sample_submission(track.name),
    }
    files, problems = {}, []
    for name, relative in wanted.items():
        path = competition / relative
        if not path.is_file():
            if relative != layout.TRAIN_STICKS:  # builds before the sticks have none
                problems.append(f"{relative} is missing: is {competition} a complete build?")
            continue
        data = path.read_bytes()
        if recorded.get(relative) != hashlib.sha256(data).hexdigest():
            problems.append(f"{relative} differs from the sha256 in manifest.json")
        files[name] = data
    if problems:
        raise ExportError(problems)
    return files


def check_participant_files(competition: Path, files: dict[str, bytes]) -> None:
    """Refuse files bound for participants that carry answer-key content.

    Parameters
    ----------
    files : dict
        ``{"<export>/<path>": bytes}``; data files under ``<export>/public/`` get
        the checks of the build's own files (``test.parquet`` has no label column).

    Raises
    ------
    ExportError
        Listing every finding of :func:`starter_kit.kit.find_leaks`.
    """
    from starter_kit.kit import find_leaks

    problems = find_leaks(files, competition)
    if problems:
        raise ExportError(problems)
