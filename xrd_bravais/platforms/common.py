"""What every platform export shares: the public files it carries and the leak checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from scoring.leaderboard import competition_rules
from xrd_bravais.contract import layout
from xrd_bravais.contract.manifest import read_manifest
from xrd_bravais.contract.tasks import Track


class ExportError(RuntimeError):
    """The export was refused; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:  # one problem, one line
            super().__init__(f"export refused: {self.problems[0]}")
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"export refused ({len(self.problems)} problems):\n{lines}")


def public_data_files(competition: Path, track: Track) -> dict[str, bytes]:
    """The participants' data files of one track, by the name they get on a platform.

    ``train.parquet``, ``train_sticks.parquet``, ``train_meta.parquet`` and
    ``overview.png`` (where the build has them), ``test.parquet`` and the track's
    sample submission as ``sample_submission.csv``.

    Raises
    ------
    ExportError
        If a file is missing or differs from the sha256 that ``manifest.json`` records.
    """
    recorded = read_manifest(competition)["files"]
    wanted = {
        "train.parquet": layout.TRAIN,
        "train_sticks.parquet": layout.TRAIN_STICKS,
        "train_meta.parquet": layout.TRAIN_META,
        "test.parquet": layout.TEST,
        "sample_submission.csv": layout.sample_submission(track.name),
        "overview.png": layout.PUBLIC_OVERVIEW,
    }
    files, problems = {}, []
    for name, relative in wanted.items():
        path = competition / relative
        if not path.is_file():
            # Builds made before the sticks, the public provenance or the students'
            # overview lack them.
            if relative not in (layout.TRAIN_STICKS, layout.TRAIN_META, layout.PUBLIC_OVERVIEW):
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
    from starter_kit.leaks import find_leaks

    problems = find_leaks(files, competition)
    if problems:
        raise ExportError(problems)


def participant_pages(
    competition: Path,
    track: Track,
    public_share: float,
    measured: str = "",
    how_to_submit: str = "",
    final_pick: str | None = None,
    host: str = "the platform",
) -> dict[str, str]:
    """The Markdown pages every platform shows: overview, evaluation, data, rules.

    Parameters
    ----------
    public_share : float
        Percentage of the scored test rows on the leaderboard during the competition.
    measured : str
        What the platform does with the Measured rows (empty where there are none).
    how_to_submit : str
        A platform's extra step (zip the CSV, ...), appended to the submission section.
    final_pick : str, optional
        How the final ranking picks each team's submission; default: our rule
        (up to ``max_selected`` picks, else the best public ones).
    host : str
        The platform's name. Its leaderboard shows every Public score: no platform
        runs the Ladder (``rules --public-board ladder``), so the pages say so.
    """
    from starter_kit.kit import SOURCE_NAMES, render_readme

    manifest = read_manifest(competition)
    rules = competition_rules(competition)
    labels = ", ".join(map(str, track.labels[:20])) + (" ..." if track.n_labels > 20 else "")
    evaluation = f"""# Evaluation

Submissions are scored by **accuracy**: the share of test patterns whose
`{track.column}` equals the true one. The leaderboard during the competition
uses {public_share:.0f} % of the scored test rows; the final ranking uses the
other {100 - public_share:.0f} %, revealed when the competition closes. {measured}

## Submission file

A header and one row per test `id`:

```
id,{track.column}
```

Labels: {labels}.
Check a file before submitting (`pip install xrd-bravais`; put the downloaded
files in a folder `public/` under `DIR`): `xrd-bravais validate submission.csv
--competition DIR` lists every problem at once, as the organisers' grader does.
{how_to_submit}
"""
    pick = final_pick or (
        f"pick up to {rules.max_selected} for the final ranking, otherwise the best "
        "public ones count"
    )
    ladder = (
        " (The organisers' own grader would run a Ladder, which releases a score only when "
        f"it beats the team's released one by more than the noise; {host} cannot.)"
        if rules.is_ladder else ""
    )
    source = SOURCE_NAMES.get(manifest["source"].get("kind", ""), "see the data page")
    rules_page = f"""# Rules

- One account per participant; teams as the host allows.
- {rules.daily_quota} submissions a day; {pick}.
- {host}'s leaderboard shows every submission's Public score; do not tune to it.{ladder}
- The data: {source}; its licence is on the data page.
- No hand-labelling of test patterns and no outside data that contains them.
"""
    return {
        "overview.md": render_readme(competition, host=host),
        "evaluation.md": evaluation,
        "data.md": (competition / layout.DATA_CARD).read_text(encoding="utf-8"),
        "rules.md": rules_page,
    }
