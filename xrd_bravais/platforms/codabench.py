"""A Codabench competition bundle from a built competition.

Codabench creates a competition from a zip whose ``competition.yaml`` (schema
version 2) names its pages, tasks, phases and leaderboard. The export writes::

    competition.yaml
    logo.png                       the mean training pattern, drawn
    pages/                         overview, evaluation, data, rules, terms (the licence)
    public_data/                   train.parquet, train_sticks.parquet, train_meta.parquet,
                                   test.parquet, sample_submission.csv, overview.png
                                   (participants download these)
    starting_kit/                  the starter kit (README, notebook, make_submission.py)
    scoring_program/               metadata.yaml, score.py and vendor/: our scoring and
                                   contract packages and pyarrow for the image's Python
    reference_data/development/    the Public labels only, and every test id
    reference_data/final/          every label

Public and Private become two **phases**: *Development* scores the Public rows
(its reference data holds no other label, so nothing else can be printed), and
*Final*, which starts when Development ends, re-runs each participant's
leaderboard submission on the Private rows (``auto_migrate_to_this_phase``).
The Final phase is open for :data:`FINAL_WINDOW` only and allows one submission,
which the migrated one uses up, so it takes no new file: nobody can probe the
Private or Measured labels through it, and no Private or Measured figure appears
before the Development phase ends. The leaderboard keeps each participant's best
submission (``Force_Best``), as our grader does when a team picks none. Measured
rows (``build --measured-test``) are predicted in both phases and scored in the
Final phase's detailed results, never ranked.

The scoring program runs in Codabench's standard image (:data:`DOCKER_IMAGE`), with
our grader and pyarrow vendored for it (:mod:`xrd_bravais.platforms.codabench_program`).

About 400 lines: the bundle's YAML, pages, logo and files belong together (the YAML
names every other file).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.grade import AnswerKeyError, load_answer_key
from scoring.leaderboard import competition_rules
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import PRIVATE_MODE, atomic_write_zip
from xrd_bravais.contract.tasks import Track, load_task
from xrd_bravais.platforms.codabench_program import (
    IMAGE_PYARROW,
    IMAGE_PYTHON,
    _reference_data,
    check_python_version,
    pyarrow_for_image,
    scoring_program,
)
from xrd_bravais.platforms.common import (
    ExportError,
    check_participant_files,
    participant_pages,
    public_data_files,
)

DOCKER_IMAGE: Final = "codalab/codalab-legacy:py312"
"""Codabench's standard CPU image with Python 3.12 (numpy, scipy, scikit-learn,
pandas, PyYAML; no pyarrow)."""
EXECUTION_TIME_LIMIT: Final = 600
"""Seconds a scoring run may take (grading takes about a second)."""
DEFAULT_LENGTH: Final = timedelta(weeks=8)
SUBMISSION_RULE: Final = "Force_Best"
FINAL_WINDOW: Final = timedelta(minutes=1)
"""How long the Final phase is open. Codabench takes a participant's file only while a
phase is active (start < now < end) but migrates the leaderboard submissions into a
phase once it has started, whatever its end: a Final phase open for a minute, with one
submission per participant that the migrated one uses up, ranks the picks made at the
deadline and takes no new file that could probe the Private labels."""
PHASE_SCHEMA_KEYS: Final = frozenset({
    "index", "name", "description", "start", "end", "max_submissions_per_day",
    "max_submissions", "auto_migrate_to_this_phase", "hide_output", "hide_prediction_output",
    "hide_score_output", "execution_time_limit", "tasks", "solutions", "public_data",
    "starting_kit",
})  # fmt: skip
"""The keys Codabench's v2 unpacker reads from a phase (``competitions/unpackers/v2.py``)."""

PHASES: Final = (
    # name, the portion it ranks, the portions its detailed results show
    ("Development", layout.PUBLIC_PORTION, (layout.PUBLIC_PORTION, layout.MEASURED_PUBLIC_PORTION)),
    ("Final", layout.PRIVATE_PORTION,
     (layout.PRIVATE_PORTION, layout.PUBLIC_PORTION, layout.MEASURED_PORTION,
      layout.MEASURED_PUBLIC_PORTION)),
)  # fmt: skip
COLUMNS: Final = (
    # key, title (Codabench: 36 characters at most)
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("accuracy_ci_low", "Accuracy 95% CI low"),
    ("accuracy_ci_high", "Accuracy 95% CI high"),
    ("public_accuracy", "Public accuracy"),
)
"""The leaderboard's columns, in order; accuracy (of the phase's portion) is primary.
:func:`xrd_bravais.platforms.codabench_score.leaderboard_scores` writes exactly these keys."""


# --------------------------------------------------------------------------- logo
def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """An RGB image (``H x W x 3``) as PNG bytes."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))  # fmt: skip


def logo(competition: Path, size: int = 256) -> bytes:
    """The competition's logo: its mean training pattern, drawn in blue on white."""
    import pyarrow.parquet as pq

    table = pq.read_table(competition / layout.TRAIN)
    columns = [c for c in table.column_names if c[:1] == "y" and c[1:].isdigit()]
    patterns = np.column_stack([table.column(c).to_numpy()[:500] for c in columns])
    mean = patterns.mean(axis=0)
    mean = (mean - mean.min()) / max(float(np.ptp(mean)), 1e-12)
    x = np.linspace(0, len(mean) - 1, size)
    heights = np.interp(x, np.arange(len(mean)), mean) ** 0.6 * (size - 24)
    image = np.full((size, size, 3), 255, np.uint8)
    rows = np.arange(size)[:, None]
    filled = rows >= (size - 12 - heights[None, :])
    filled &= rows < size - 12
    image[filled] = (31, 119, 180)
    image[size - 12 : size - 10] = (60, 60, 60)
    return _png(image)


# --------------------------------------------------------------------------- yaml
def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def competition_yaml(
    competition: Path, track: Track, start: datetime, end: datetime
) -> dict[str, Any]:
    """The ``competition.yaml`` content (Codabench schema version 2)."""
    rules = competition_rules(competition)
    name = competition.resolve().name
    # Codabench also caps the total per participant (100 when unset); our rules have
    # only the daily quota, so the total allows it on every day of the phase.
    days = -(-(end - start) // timedelta(days=1))
    limits = {"max_submissions_per_day": rules.daily_quota,
              "max_submissions": rules.daily_quota * max(days, 1)}  # fmt: skip
    phase_text = {
        "Development": "Scored on the Public rows; the leaderboard keeps each participant's best.",
        "Final": ("Each participant's leaderboard submission at the deadline is scored again "
                  "on the Private rows: the final ranking. This phase takes no new submission."),
    }  # fmt: skip
    return {
        "version": 2,
        "title": f"{name}: {track.name} track"[:100],
        "description": (f"Classify powder X-ray diffraction patterns by their "
                        f"{track.column.replace('_', ' ')}."),
        "image": "logo.png",
        "docker_image": DOCKER_IMAGE,
        "competition_type": "competition",
        "registration_auto_approve": True,
        "enable_detailed_results": True,
        "make_programs_available": False,
        "make_input_data_available": False,
        "terms": "pages/terms.md",
        "pages": [
            {"title": "Overview", "file": "pages/overview.md"},
            {"title": "Evaluation", "file": "pages/evaluation.md"},
            {"title": "Data", "file": "pages/data.md"},
            {"title": "Rules", "file": "pages/rules.md"},
        ],
        "tasks": [
            {
                "index": index,
                "name": f"{phase} ({scored} rows)",
                "description": f"Accuracy on the {scored} rows of the {track.name} track.",
                "scoring_program": "scoring_program",
                "reference_data": f"reference_data/{phase.lower()}",
            }
            for index, (phase, scored, _) in enumerate(PHASES)
        ],
        "phases": [
            {
                "index": 0,
                "name": "Development",
                "description": phase_text["Development"],
                "start": _when(start),
                "end": _when(end),
                **limits,
                "execution_time_limit": EXECUTION_TIME_LIMIT,
                "tasks": [0],
                "public_data": "public_data",
                "starting_kit": "starting_kit",
            },
            {
                "index": 1,
                "name": "Final",
                "description": phase_text["Final"],
                "start": _when(end + timedelta(minutes=1)),
                "end": _when(end + timedelta(minutes=1) + FINAL_WINDOW),
                # The migrated submission counts: a participant has none left to send.
                "max_submissions_per_day": 1,
                "max_submissions": 1,
                "execution_time_limit": EXECUTION_TIME_LIMIT,
                "auto_migrate_to_this_phase": True,
                # Logs and score files stay with the organisers; the leaderboard shows the
                # final ranking once the phase has ended.
                "hide_output": True,
                "hide_prediction_output": True,
                "hide_score_output": True,
                "tasks": [1],
                "public_data": "public_data",
                "starting_kit": "starting_kit",
            },
        ],
        "leaderboards": [
            {
                "title": "Results",
                "key": "main",
                "submission_rule": SUBMISSION_RULE,
                "primary_index": 0,
                "columns": [
                    {"title": title, "key": key, "index": index, "sorting": "desc",
                     "precision": 4}
                    for index, (key, title) in enumerate(COLUMNS)
                ],
            }
        ],
    }


def _licence(competition: Path) -> str:
    """The "Licence" section of the data card."""
    text = (competition / layout.DATA_CARD).read_text(encoding="utf-8")
    _, _, after = text.partition("## Licence")
    return after.split("\n## ", 1)[0].strip() or "See the data page."


def _pages(competition: Path, track: Track, key: pd.DataFrame) -> dict[str, str]:
    counts = key[layout.USAGE].value_counts()
    public, private = (int(counts.get(p, 0)) for p in layout.PORTIONS)
    n_hidden = int(counts.get(layout.MEASURED_PORTION, 0))
    n_shown = int(counts.get(layout.MEASURED_PUBLIC_PORTION, 0))
    measured = (
        f"{n_hidden + n_shown:,} test rows are real measurements: predict them like the "
        "others; "
        + (f"the accuracy on {n_shown:,} of them is in the detailed results of every "
           "Development submission, and " if n_shown else "")
        + "the Final phase's detailed results show their accuracy, which is not ranked."
        if n_hidden + n_shown else ""
    )  # fmt: skip
    how = ("On Codabench, zip the CSV alone (`zip submission.zip submission.csv`) and "
           "upload the zip under *My Submissions*.")  # fmt: skip
    pages = participant_pages(
        competition, track, 100 * public / max(public + private, 1), measured, how,
        final_pick="the leaderboard keeps your best Public submission, and that one is "
                   "scored on the Private rows for the final ranking",
        host="Codabench",
    )  # fmt: skip
    pages["overview.md"] = pages["overview.md"].replace(
        "\n", "\n\n> On Codabench: download *Public Data* and *Starting Kit* (Participate tab) "
        "and unzip the data into the kit's `public/` folder.\n\n", 1
    )
    pages["terms.md"] = (
        "# Terms\n\nBy taking part you accept the rules (Rules page) and the data licence:\n\n"
        f"{_licence(competition)}\n"
    )
    return pages


# --------------------------------------------------------------------------- export
def _starting_kit(competition: Path) -> dict[str, bytes]:
    """The starter kit's own files (its data is ``public_data``, downloaded apart)."""
    from starter_kit.kit import collect_files

    files, problems = collect_files(competition, "starting_kit")
    if problems:
        raise ExportError(problems)
    return {k: v for k, v in files.items() if not k.startswith("starting_kit/public/")}


def _dates(competition: Path, start: datetime | None, end: datetime | None
           ) -> tuple[datetime, datetime]:  # fmt: skip
    start = (start or datetime.now(UTC)).replace(second=0, microsecond=0)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    end = end or competition_rules(competition).deadline or start + DEFAULT_LENGTH
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if end <= start:
        raise ExportError([f"the Development phase ends ({_when(end)} UTC) before it starts "
                           f"({_when(start)} UTC): pass a later --end"])  # fmt: skip
    return start, end


def _bundle_files(
    root: Path, spec: Track, start: datetime, end: datetime,
    pyarrow_files: Callable[[], dict[str, bytes]],
) -> dict[str, bytes]:
    """Every file of the bundle, by its path in the zip (see :func:`export_codabench`).

    ``pyarrow_files`` is called after the leak checks: a refused export downloads nothing.
    """
    import yaml

    try:
        key = load_answer_key(root).frame.astype({layout.ID: str})
    except AnswerKeyError as err:
        raise ExportError([str(err)]) from None
    data = public_data_files(root, spec)
    pages = {f"pages/{k}": v.encode() for k, v in _pages(root, spec, key).items()}
    kit = _starting_kit(root)
    image = logo(root)
    check_participant_files(
        root,
        {f"codabench/public/{k}": v for k, v in data.items()}
        | {f"codabench/{k}": v for k, v in (pages | kit | {"logo.png": image}).items()},
    )
    files: dict[str, bytes] = {"logo.png": image, **pages, **kit}
    files |= {f"public_data/{k}": v for k, v in data.items()}
    for phase, scored, shown in PHASES:
        reference = _reference_data(root, spec, key, scored, shown)
        files |= {f"reference_data/{phase.lower()}/{k}": v for k, v in reference.items()}
    files |= {f"scoring_program/{k}": v for k, v in scoring_program(pyarrow_files()).items()}
    spec_yaml = competition_yaml(root, spec, start, end)
    files["competition.yaml"] = yaml.safe_dump(spec_yaml, sort_keys=False).encode()
    return files


def export_codabench(
    competition: str | os.PathLike[str],
    out: str | os.PathLike[str],
    track: str | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    python_version: str = IMAGE_PYTHON,
    wheelhouse: str | os.PathLike[str] | None = None,
    pyarrow_version: str = IMAGE_PYARROW,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """Write the Codabench bundle (a zip) for one track of a built competition.

    Parameters
    ----------
    competition : path
        A built competition with its ``private/`` folder.
    out : path
        The zip to write (atomically: a refused export leaves nothing).
    track : str, optional
        The track (default: the competition's first); one Codabench competition per track.
    start, end : datetime, optional
        The Development phase (UTC); default: from now until the competition's
        deadline (``xrd-bravais close --at``), or for eight weeks. The Final phase
        starts a minute after ``end``.
    python_version : str
        The Python of the scoring image, for which pyarrow is vendored.
    wheelhouse : path, optional
        A folder with the pyarrow wheel for that Python (offline exports).
    pyarrow_version : str
        The pyarrow vendored; change it only with ``docker_image`` (another numpy).
    notify : callable, optional
        Told before a wheel is downloaded (the command line prints it).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ExportError
        Listing every finding: answer-key content bound for participants, an
        incomplete or altered build, phase dates out of order, no pyarrow wheel.
    """
    root = Path(competition)
    check_python_version(python_version)
    spec = load_task(root).track(track)
    start, end = _dates(root, start, end)

    def pyarrow_files() -> dict[str, bytes]:
        return pyarrow_for_image(python_version, wheelhouse, version=pyarrow_version,
                                 notify=notify)[0]  # fmt: skip

    # The reference data holds every hidden label: the bundle is the organiser's alone.
    atomic_write_zip(Path(out), _bundle_files(root, spec, start, end, pyarrow_files),
                     mode=PRIVATE_MODE, private=("reference_data/",))  # fmt: skip
    return Path(out)


def bundle_paths(spec: dict[str, Any]) -> Iterator[str]:
    """Every file or folder a ``competition.yaml`` names, as bundle paths."""
    yield spec["image"]
    yield spec["terms"]
    yield from (page["file"] for page in spec["pages"])
    for task in spec["tasks"]:
        for kind in ("scoring_program", "reference_data", "ingestion_program", "input_data"):
            if kind in task:
                yield task[kind]
    for phase in spec["phases"]:
        for kind in ("public_data", "starting_kit"):
            if kind in phase:
                yield phase[kind]

