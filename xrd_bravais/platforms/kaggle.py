"""A Kaggle community competition from a built one: the files a host uploads.

Kaggle grades a submission against a *solution file* (``id``, the target, and
``Usage``: ``Public``, ``Private`` or ``Ignored``) with a metric the host picks.
With "Categorization Accuracy" on the target column, Kaggle's Public and Private
scores are the share of rows of each portion whose label equals the solution's:
exactly our accuracy. The export writes::

    <out>/README.md                 for the host: what to upload where, which settings
    <out>/data/                     the competition's data files (participants see them)
        train.parquet, train_sticks.parquet, train_meta.parquet, test.parquet, sample_submission.csv
    <out>/solution/solution.csv     the solution file (host only: never in data/)
    <out>/pages/                    overview.md, evaluation.md, data.md, rules.md

Measured rows (``build --measured-test``, and the MeasuredPublic ones of
``--measured-public-fraction``) become ``Ignored``: Kaggle has two portions, so they
are predicted but not scored there. Everything bound for
participants (``data/`` and ``pages/``) passes the starter kit's leak checks
first; a finding stops the export and nothing is written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

import pandas as pd

from scoring.grade import AnswerKeyError, load_answer_key
from scoring.leaderboard import competition_rules
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import atomic_write_bytes, atomic_write_text
from xrd_bravais.contract.tasks import Track, load_task
from xrd_bravais.platforms.common import (
    ExportError,
    check_participant_files,
    participant_pages,
    public_data_files,
)

IGNORED: Final = "Ignored"
"""Kaggle's ``Usage`` for rows that are predicted but never scored."""
METRIC: Final = "Categorization Accuracy"


def kaggle_solution(competition: Path, track: Track) -> pd.DataFrame:
    """The solution file: ``id``, the track's column and ``Usage`` (Measured -> Ignored).

    Read with the grader's checks (the answer key's sha256 against the manifest),
    so Kaggle grades on exactly the key that ``xrd-bravais score`` would.

    Raises
    ------
    ExportError
        If the answer key is missing or was changed after the build.
    """
    try:
        key = load_answer_key(competition).frame
    except AnswerKeyError as err:
        raise ExportError([str(err)]) from None
    solution = key[[layout.ID, track.column, layout.USAGE]].copy()
    solution[layout.USAGE] = solution[layout.USAGE].where(
        solution[layout.USAGE].isin(layout.PORTIONS), IGNORED
    )
    return solution


def _usage_counts(solution: pd.DataFrame) -> tuple[int, int, int, float]:
    """Public, Private and Ignored rows of a solution file, and the Public share (%)."""
    counts = solution[layout.USAGE].value_counts()
    public, private, ignored = (int(counts.get(u, 0)) for u in (*layout.PORTIONS, IGNORED))
    return public, private, ignored, 100 * public / max(public + private, 1)


def _pages(competition: Path, track: Track, solution: pd.DataFrame) -> dict[str, str]:
    """The Markdown pages: overview, evaluation, data, rules."""
    _, _, ignored, public_share = _usage_counts(solution)
    measured = (
        f"{ignored:,} test rows are real measurements that this page does not score "
        "(they are predicted like the others)." if ignored else ""
    )
    return participant_pages(competition, track, public_share, measured, host="Kaggle")


def _host_readme(competition: Path, track: Track, solution: pd.DataFrame) -> str:
    public, private, ignored, public_share = _usage_counts(solution)
    rules = competition_rules(competition)
    return f"""# Hosting {competition.resolve().name} on Kaggle ({track.name} track)

1. kaggle.com -> Create -> New Competition (community). Title and subtitle of your choice.
2. **Data**: upload every file of `data/` (participants download these).
3. **Evaluation**: metric **{METRIC}**; solution file `solution/solution.csv`;
   solution column `{track.column}`, id column `id`. Its `Usage` column marks
   {public:,} rows Public, {private:,} Private and {ignored:,} Ignored;
   Kaggle takes the public share from it ({public_share:.1f} % of the scored rows).
4. **Sample submission**: `data/sample_submission.csv`.
5. **Pages**: paste `pages/overview.md`, `evaluation.md`, `data.md` and `rules.md`
   into the Overview tab's pages of the same names.
6. **Limits**: {rules.daily_quota} submissions a day and {rules.max_selected} final picks,
   as this competition's rules say (`xrd-bravais rules`).

Never upload `solution/` as data: it holds the answers. With these settings
Kaggle's Public and Private scores equal `xrd-bravais score --private` on the
same file (accuracy over the same rows).
"""


def export_kaggle(
    competition: str | os.PathLike[str], out: str | os.PathLike[str], track: str | None = None
) -> Path:
    """Write the folder a host uploads to Kaggle.

    Parameters
    ----------
    competition : path
        A built competition with its ``private/`` folder.
    out : path
        A folder to create (it must not exist or be empty).
    track : str, optional
        The track (default: the competition's first); one Kaggle competition per track.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ExportError
        If ``out`` is not empty, the competition is incomplete, or anything bound
        for participants carries answer-key content (every finding listed).
    """
    root, out = Path(competition), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError([f"--out {out} exists and is not an empty folder"])
    spec = load_task(root).track(track)
    solution = kaggle_solution(root, spec)
    data = public_data_files(root, spec)
    pages = {name: text.encode() for name, text in _pages(root, spec, solution).items()}
    # The leak checks see the data under its build path, so test.parquet's own checks apply.
    check_participant_files(root, {"kaggle/public/" + k: v for k, v in data.items()}
                            | {"kaggle/pages/" + k: v for k, v in pages.items()})  # fmt: skip
    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for name, content in data.items():
            atomic_write_bytes(staging / "data" / name, content)
        for name, content in pages.items():
            atomic_write_bytes(staging / "pages" / name, content)
        key = solution.to_csv(index=False, lineterminator="\n")
        atomic_write_text(staging / "solution" / "solution.csv", key, mode=0o600)
        atomic_write_text(staging / "README.md", _host_readme(root, spec, solution))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
