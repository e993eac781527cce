"""Check a Codabench bundle's scoring program on the image's own numpy and pandas.

The test suite runs the scoring program offline, on this interpreter's packages.
Codabench runs it in ``codalab/codalab-legacy:py312`` (numpy 1.26.4, pandas 2.2.3,
no pyarrow), where only the vendored pyarrow (:data:`xrd_bravais.platforms.codabench.IMAGE_PYARROW`)
exists. This script (it needs PyPI) makes a virtual environment with those pins
for the running Python, exports a bundle vendoring ``IMAGE_PYARROW`` for it, and
grades a perfect, a random, a malformed and a space-group submission in both
phases, comparing every figure with :func:`scoring.grade.grade`::

    python tools/check_codabench_image.py --competition demo

Exit 0 when every figure and message matches.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_PINS = ("numpy==1.26.4", "pandas==2.2.3", "pyyaml==6.0.2")
"""codalab/codalab-legacy:py312's versions (codalab/codalab-dockers, Dockerfile-py312)."""


def _image_python(folder: Path) -> Path:
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", *IMAGE_PINS], check=True)
    return python


def _run(
    python: Path, program: Path, ref: Path, submission: Path, work: Path
) -> tuple[int, str, dict]:
    inputs = work / "input"
    (inputs / "res").mkdir(parents=True)
    (inputs / "ref").symlink_to(ref)
    (inputs / "res" / "submission.csv").write_bytes(submission.read_bytes())
    done = subprocess.run([python, "-I", program, inputs, work / "output"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    scores_file = work / "output" / "scores.json"
    scores = json.loads(scores_file.read_text()) if scores_file.is_file() else {}
    return done.returncode, done.stderr, scores


def main() -> int:
    """Build the environment, export, grade, compare; print one line per check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competition", type=Path, required=True)
    args = parser.parse_args()

    from scoring.grade import grade
    from scoring.submission import SubmissionError, validate_submission
    from xrd_bravais.platforms.codabench import IMAGE_PYARROW, export_codabench

    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    key = pd.read_csv(args.competition / "private" / "solution.csv", dtype=str)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"image environment: Python {running} with {', '.join(IMAGE_PINS)} ...")
        python = _image_python(tmp / "image")
        rng = np.random.default_rng(0)
        cases = {
            "perfect": ("bravais", key[["id", "bravais_lattice"]]),
            "random": ("bravais", key[["id"]].assign(
                bravais_lattice=rng.choice(["cF", "mP", "oP", "hP", "tI"], len(key)))),
            "malformed": ("bravais", key[["id", "bravais_lattice"]].iloc[3:].replace("cF", "cX")),
            "spacegroup": ("spacegroup", key[["id", "spacegroup_number"]].assign(
                spacegroup_number=lambda f: f["spacegroup_number"].where(
                    np.arange(len(f)) % 3 > 0, "225"))),
        }  # fmt: skip
        for track in ("bravais", "spacegroup"):
            bundle = export_codabench(args.competition, tmp / f"{track}.zip", track,
                                      python_version=running)  # fmt: skip
            with zipfile.ZipFile(bundle) as archive:
                archive.extractall(tmp / track)
            print(f"{track} bundle: {bundle.stat().st_size / 2**20:.1f} MiB, "
                  f"pyarrow {IMAGE_PYARROW} for Python {running}")  # fmt: skip
            program = tmp / track / "scoring_program" / "score.py"
            for name, (case_track, frame) in cases.items():
                if case_track != track:
                    continue
                path = tmp / f"{name}.csv"
                frame.to_csv(path, index=False)
                for phase in ("development", "final"):
                    ref = tmp / track / "reference_data" / phase
                    code, stderr, scores = _run(python, program, ref, path, tmp / f"{name}-{phase}")
                    try:
                        ours = grade(path, args.competition, track)
                    except SubmissionError:
                        try:
                            validate_submission(path, args.competition, track)
                        except SubmissionError as err:
                            expected = str(err)
                        ok = code == 1 and stderr.strip() == expected.strip()
                        print(f"  {name:10s} {phase:11s} refused, same messages: {ok}")
                        failures += not ok
                        continue
                    portion = ours.public if phase == "development" else ours.private
                    ok = code == 0 and scores.get("accuracy") == portion.accuracy and (
                        scores.get("macro_f1") == portion.macro_f1)  # fmt: skip
                    print(f"  {name:10s} {phase:11s} accuracy {scores.get('accuracy')} "
                          f"(ours {portion.accuracy}), equal: {ok}")  # fmt: skip
                    if code:
                        print(stderr)
                    failures += not ok
    print("all equal" if not failures else f"{failures} check(s) differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
