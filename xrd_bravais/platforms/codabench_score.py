"""The scoring program of a Codabench bundle: our grader in the platform's calling convention.

Codabench runs ``python3 /app/program/score.py /app/input /app/output`` in the
competition's Docker image, without network. ``input/ref`` holds the phase's
reference data (written by :func:`xrd_bravais.platforms.codabench.export_codabench`),
``input/res`` the participant's unzipped submission; the program writes
``output/scores.json`` (one value per leaderboard column) and
``output/detailed_results.html``.

A malformed submission fails with exactly the messages of ``xrd-bravais
validate``, every problem listed, on stderr (the participant sees it in the
submission's log); nothing is scored. The Development phase's reference data has
the Public labels only, so no figure of another portion can be printed there.

In the bundle this file is ``scoring_program/score.py`` beside ``vendor/``
(``scoring``, ``contract`` and the ``pyarrow`` built for the image's Python);
in the repository it is a module of :mod:`platforms`, tested through a subprocess.
"""

from __future__ import annotations

import csv
import html
import json
import sys
from pathlib import Path
from typing import Any, Final

SCORES_FILE: Final = "scores.json"
DETAILS_FILE: Final = "detailed_results.html"
PHASE_FILE: Final = "phase.json"
"""In the reference data: the phase's name, track and scored portions."""
TEST_IDS_FILE: Final = "test_ids.csv"
"""In the reference data: every test id (a submission covers all of them)."""


class ScoringError(RuntimeError):
    """The submission cannot be scored; the message is for the participant."""


def _use_vendored() -> None:
    """Put ``vendor/`` (next to this file in a bundle) first on ``sys.path``."""
    vendor = Path(__file__).resolve().parent / "vendor"
    if vendor.is_dir() and str(vendor) not in sys.path:
        sys.path.insert(0, str(vendor))


def find_submission(res: Path) -> Path:
    """The one CSV of an unzipped submission (at its top or in one folder).

    Raises
    ------
    ScoringError
        If there is no CSV or more than one.
    """
    # Any case of the suffix: Windows and some zip tools write SUBMISSION.CSV.
    found = sorted(p for p in res.rglob("*") if p.suffix.lower() == ".csv" and p.is_file()
                   and "__MACOSX" not in p.parts)  # fmt: skip
    if len(found) != 1:
        names = ", ".join(p.relative_to(res).as_posix() for p in found[:5]) or "none"
        raise ScoringError(
            f"the submission zip must hold exactly one CSV file, found {len(found)} ({names}); "
            "zip your submission.csv alone"
        )
    return found[0]


def read_test_ids(ref: Path) -> list[str]:
    """Every test id, from the reference data's ``test_ids.csv``."""
    with (ref / TEST_IDS_FILE).open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    return [row[0] for row in rows[1:]]


def _number(value: float) -> float | None:
    return None if value != value else float(value)  # NaN (an empty portion) -> null


def leaderboard_scores(result: Any, scored: str) -> dict[str, float | None]:
    """The values of the leaderboard columns: the scored portion's, and the Public accuracy.

    Parameters
    ----------
    result : scoring.grade.GradeResult
    scored : str
        ``"Public"`` (Development phase) or ``"Private"`` (Final phase).
    """
    portion = result.public if scored == "Public" else result.private
    low, high = portion.accuracy_ci
    return {
        "accuracy": _number(portion.accuracy),
        "macro_f1": _number(portion.macro_f1),
        "balanced_accuracy": _number(portion.balanced_accuracy),
        "accuracy_ci_low": _number(low),
        "accuracy_ci_high": _number(high),
        "public_accuracy": _number(result.public.accuracy),
    }


def _table(title: str, scores: Any, labels: list[object]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td>"
        f"<td>{'' if recall != recall else f'{100 * recall:.1f} %'}</td>"
        f"<td>{sum(scores.confusion[k])}</td></tr>"
        for k, (label, recall) in enumerate(zip(labels, scores.recall, strict=True))
    )
    return (
        f"<h2>{html.escape(title)}: accuracy {100 * scores.accuracy:.2f} % "
        f"on {scores.n:,} patterns</h2>\n<table><tr><th>true label</th><th>recall</th>"
        f"<th>patterns</th></tr>{rows}</table>\n"
    )


def detailed_results(result: Any, portions: list[str], labels: list[object]) -> str:
    """An HTML page with the recall per class of each portion the phase scores."""
    by_name = {"Public": result.public, "Private": result.private, "Measured": result.measured,
               "MeasuredPublic": result.measured_public}  # fmt: skip
    body = "".join(
        _table(name, by_name[name], labels) for name in portions if by_name.get(name) is not None
    )
    notices = "".join(f"<p>note: {html.escape(n)}</p>" for n in result.notices)
    return f"<!doctype html><html><body>{notices}{body}</body></html>\n"


def score(ref: Path, res: Path, out: Path) -> tuple[dict[str, float | None], tuple[str, ...]]:
    """Grade the submission in ``res`` against ``ref`` and write ``out``'s files.

    Returns
    -------
    scores : dict
        The leaderboard values, as written to ``scores.json``.
    notices : tuple of str
        What the validator normalised (a BOM, ``mC`` for ``mS``).

    Raises
    ------
    ScoringError, scoring.submission.SubmissionError
        A submission that cannot be scored (every problem listed).
    """
    _use_vendored()
    from scoring.grade import grade, load_answer_key

    phase = json.loads((ref / PHASE_FILE).read_text(encoding="utf-8"))
    key = load_answer_key(ref)
    result = grade(find_submission(res), key, phase["track"], test_ids=read_test_ids(ref))
    scores = leaderboard_scores(result, phase["scored"])
    out.mkdir(parents=True, exist_ok=True)
    (out / SCORES_FILE).write_text(json.dumps(scores, indent=1), encoding="utf-8")
    labels = list(key.task.track(phase["track"]).labels)
    page = detailed_results(result, phase["shown"], labels)
    (out / DETAILS_FILE).write_text(page, encoding="utf-8")
    return scores, result.notices


def main(argv: list[str] | None = None) -> int:
    """``score.py INPUT OUTPUT`` (Codabench's ``/app/input`` and ``/app/output``).

    Prints what ``xrd-bravais validate`` and ``score`` print: ``note:`` lines on
    stdout, a refused submission's problems on stderr (exit 1).
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: score.py INPUT_DIR OUTPUT_DIR (with INPUT_DIR/ref and INPUT_DIR/res)",
              file=sys.stderr)  # fmt: skip
        return 2
    inputs, out = Path(args[0]), Path(args[1])
    _use_vendored()
    from scoring.submission import SubmissionError

    try:
        scores, notices = score(inputs / "ref", inputs / "res", out)
    except SubmissionError as err:
        for notice in err.notices:
            print(f"note: {notice}")
        print(str(err), file=sys.stderr)
        return 1
    except ScoringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for notice in notices:
        print(f"note: {notice}")
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
