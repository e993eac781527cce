"""The Codabench bundle: its YAML as Codabench reads it, and its scoring program equal to ours."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import mark_measured, solution_frame
from test_cli import run

from scoring.grade import grade
from scoring.leaderboard import competition_rules
from xrd_bravais.contract import layout
from xrd_bravais.platforms import codabench_score
from xrd_bravais.platforms.codabench import (
    COLUMNS,
    DOCKER_IMAGE,
    FINAL_WINDOW,
    PHASE_SCHEMA_KEYS,
    _reference_data,
    bundle_paths,
    export_codabench,
    pyarrow_for_image,
)
from xrd_bravais.platforms.common import ExportError

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
INSTALLED = version("pyarrow")
# Offline, the bundles vendor this interpreter's pyarrow; tools/check_codabench_image.py
# checks the real pair (IMAGE_PYARROW on the image's numpy and pandas).
HERE = {"python_version": RUNNING, "pyarrow_version": INSTALLED}
HERE_CLI = ("--python", RUNNING, "--pyarrow-version", INSTALLED)
# The image's Python packages (codalab/codalab-legacy:py312); anything else the
# scoring program imports must come from its own vendor/ folder.
IMAGE_PACKAGES = {"numpy", "pandas", "dateutil", "pytz", "tzdata", "six", "yaml", "scipy",
                  "sklearn", "joblib", "threadpoolctl"}  # fmt: skip

# Runs score.py as Codabench does, refusing any import the image could not satisfy.
GUARD = """
import importlib.abc, runpy, sys, sysconfig
from pathlib import Path
program = Path(sys.argv[1]).resolve().parent
allowed = set(sys.argv[2].split(","))
stdlib = {Path(sysconfig.get_path(p)).resolve() for p in ("stdlib", "platstdlib")}
def in_stdlib(where):
    path = Path(where).resolve()
    return not {"site-packages", "dist-packages"} & set(path.parts) and any(
        path.is_relative_to(d) for d in stdlib)
class ImageOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        if name != top or top in allowed or top in sys.stdlib_module_names:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        where = spec.origin or next(iter(spec.submodule_search_locations or []), "")
        if where and (Path(where).resolve().is_relative_to(program) or in_stdlib(where)):
            return spec
        raise ImportError(f"{name} comes from {where}, outside the bundle")
sys.meta_path.insert(0, ImageOnly())
sys.argv = sys.argv[1:2] + sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# The leaderboard fields Codabench's serializers accept (src/apps/leaderboards/models.py).
SUBMISSION_RULES = {"Add", "Add_And_Delete", "Add_And_Delete_Multiple", "Force_Last",
                    "Force_Latest_Multiple", "Force_Best"}  # fmt: skip


def unpack(bundle: Path, into: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(into)
    return into


@pytest.fixture(scope="module")
def bundle(cod_build, tmp_path_factory) -> Path:
    """The bravais-track bundle, vendoring this interpreter's pyarrow (offline)."""
    out = tmp_path_factory.mktemp("codabench") / "bundle.zip"
    return export_codabench(cod_build.out, out, **HERE)


@pytest.fixture(scope="module")
def unpacked(bundle, tmp_path_factory) -> Path:
    return unpack(bundle, tmp_path_factory.mktemp("unpacked"))


def run_program(
    unpacked: Path | None, phase: str, submission: Path | None, tmp: Path,
    reference: Path | None = None,
) -> tuple[subprocess.CompletedProcess[str], Path]:  # fmt: skip
    """Codabench's convention: ``input/ref``, ``input/res`` (the unzipped submission), ``output``.

    Without a bundle (``unpacked=None``) the repository's program runs on
    ``reference``, with the installed packages in place of ``vendor/``.
    """
    work = tmp / f"run-{phase}-{submission.stem if submission else 'none'}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(reference or unpacked / "reference_data" / phase, work / "input" / "ref")
    (work / "input" / "res").mkdir(parents=True)
    if submission is not None:
        shutil.copy(submission, work / "input" / "res" / "submission.csv")
    allowed = set(IMAGE_PACKAGES)
    if unpacked is None:
        program = Path(codabench_score.__file__)
        allowed |= {"scoring", "xrd_bravais", "pyarrow"}
    else:
        program = unpacked / "scoring_program" / "score.py"
    done = subprocess.run(
        [sys.executable, "-I", "-c", GUARD, str(program), ",".join(sorted(allowed)),
         str(work / "input"), str(work / "output")],
        capture_output=True, text=True, timeout=300, cwd=work,
    )  # fmt: skip
    return done, work / "output"


def test_the_yaml_has_every_key_codabench_requires(bundle, cod_build):
    spec = yaml.safe_load(zipfile.ZipFile(bundle).read("competition.yaml"))
    assert spec["version"] == 2 and spec["title"] and spec["docker_image"] == DOCKER_IMAGE
    for key in ("image", "terms", "pages", "tasks", "phases", "leaderboards"):
        assert key in spec, key
    assert all(page["title"] and page["file"] for page in spec["pages"])
    tasks = {task["index"]: task for task in spec["tasks"]}
    assert len(tasks) == len(spec["tasks"]), "duplicate task indexes"
    assert all("scoring_program" in task for task in tasks.values())
    phases = sorted(spec["phases"], key=lambda p: p["index"])
    for phase in phases:
        assert phase["tasks"] and set(phase["tasks"]) <= set(tasks)
        # Only keys Codabench's v2 unpacker reads: a misspelt one would be ignored silently.
        assert set(phase) <= PHASE_SCHEMA_KEYS, set(phase) - PHASE_SCHEMA_KEYS
    quota = competition_rules(cod_build.out).daily_quota
    assert phases[0]["max_submissions_per_day"] == quota
    # The total cap (Codabench's default is 100) never binds before the daily quota does.
    length = datetime.fromisoformat(phases[0]["end"]) - datetime.fromisoformat(phases[0]["start"])
    assert phases[0]["max_submissions"] >= quota * length.days
    # Sequential phases: every phase but the last ends, strictly before the next starts.
    for first, second in itertools.pairwise(phases):
        assert datetime.fromisoformat(first["end"]) < datetime.fromisoformat(second["start"])
    assert datetime.fromisoformat(phases[0]["start"]) < datetime.fromisoformat(phases[0]["end"])
    assert phases[-1]["auto_migrate_to_this_phase"] is True


def test_the_final_phase_takes_no_new_submission_and_shows_nothing_before_the_end(bundle):
    """Codabench takes files only while start < now < end and counts the migrated one."""
    spec = yaml.safe_load(zipfile.ZipFile(bundle).read("competition.yaml"))
    development, final = sorted(spec["phases"], key=lambda p: p["index"])
    start, end = (datetime.fromisoformat(final[k]) for k in ("start", "end"))
    assert end - start == FINAL_WINDOW <= timedelta(minutes=5)
    assert start > datetime.fromisoformat(development["end"])
    assert final["max_submissions"] == final["max_submissions_per_day"] == 1
    assert final["hide_output"] and final["hide_score_output"] and final["hide_prediction_output"]
    assert "takes no new submission" in final["description"]
    # The Development phase's reference data holds the Public labels only.
    key = pd.read_csv(io.BytesIO(zipfile.ZipFile(bundle).read(
        "reference_data/development/private/solution.csv")))  # fmt: skip
    assert set(key["Usage"]) == {"Public"}
    (board,) = spec["leaderboards"]
    assert len(board["title"]) <= 64 and len(board["key"]) <= 36
    assert board["submission_rule"] in SUBMISSION_RULES
    columns = board["columns"]
    assert [c["key"] for c in columns] == [key for key, _ in COLUMNS]
    assert columns[board["primary_index"]]["key"] == "accuracy"
    assert [c["index"] for c in columns] == list(range(len(columns)))
    assert all(len(c["title"]) <= 36 and len(c["key"]) <= 36 for c in columns)
    assert all(c["sorting"] in {"asc", "desc"} for c in columns)


def test_every_path_the_yaml_names_is_in_the_zip(bundle):
    archive = zipfile.ZipFile(bundle)
    names = set(archive.namelist())
    spec = yaml.safe_load(archive.read("competition.yaml"))
    for path in bundle_paths(spec):
        is_file = path in names
        is_folder = any(name.startswith(path.rstrip("/") + "/") for name in names)
        assert is_file or is_folder, f"{path} is not in the bundle"
        if is_file:
            assert archive.read(path).strip(), f"{path} is empty"
    program = "scoring_program/"
    assert {program + "metadata.yaml", program + "score.py"} <= names
    command = yaml.safe_load(archive.read(program + "metadata.yaml"))["command"]
    assert command == "python3 /app/program/score.py /app/input /app/output"


def test_participants_files_are_the_public_ones_and_the_development_key_only_public_rows(
    unpacked, cod_build
):
    for name in ("train.parquet", "test.parquet"):
        assert (unpacked / "public_data" / name).read_bytes() == (
            cod_build.out / layout.PUBLIC / name).read_bytes()  # fmt: skip
    assert not list((unpacked / "starting_kit").rglob("*.parquet"))
    key = solution_frame(cod_build.out)
    dev = pd.read_csv(unpacked / "reference_data/development/private/solution.csv", dtype=str)
    final = pd.read_csv(unpacked / "reference_data/final/private/solution.csv", dtype=str)
    assert set(dev["Usage"]) == {"Public"}
    assert set(dev["id"]) == set(key.loc[key["Usage"] == "Public", "id"])
    assert len(final) == len(key)
    ids = pd.read_csv(unpacked / "reference_data/development/test_ids.csv", dtype=str)
    assert set(ids["id"]) == set(key["id"])


@pytest.mark.parametrize("kind", ["perfect", "random"])
def test_the_scoring_program_gives_our_scores_in_both_phases(unpacked, cod_build, tmp_path, kind):
    key = solution_frame(cod_build.out)
    rng = np.random.default_rng(1)
    frame = key[["id", "bravais_lattice"]].copy()
    if kind == "random":
        frame["bravais_lattice"] = rng.choice(["cF", "mP", "oP", "hP", "tI"], len(frame))
    path = tmp_path / f"{kind}.csv"
    frame.to_csv(path, index=False)
    ours = grade(path, cod_build.out)
    for phase, portion in (("development", ours.public), ("final", ours.private)):
        done, out = run_program(unpacked, phase, path, tmp_path)
        assert done.returncode == 0, done.stderr
        scores = json.loads((out / "scores.json").read_text())
        assert list(scores) == [key for key, _ in COLUMNS]
        assert scores["accuracy"] == portion.accuracy
        assert scores["macro_f1"] == portion.macro_f1
        assert scores["balanced_accuracy"] == portion.balanced_accuracy
        assert (scores["accuracy_ci_low"], scores["accuracy_ci_high"]) == portion.accuracy_ci
        assert scores["public_accuracy"] == ours.public.accuracy
        details = (out / "detailed_results.html").read_text()
        assert ("Private" in details) == (phase == "final")
    if kind == "perfect":
        assert ours.public.accuracy == ours.private.accuracy == 1.0
    # The figure `xrd-bravais score` prints is the one the platform ranks on.
    printed = run("score", str(path), "-c", str(cod_build.out), cwd=tmp_path)
    assert f"accuracy {100 * ours.public.accuracy:.2f} %" in printed.stdout


def test_a_malformed_submission_fails_with_every_problem_as_our_validator_lists_them(
    unpacked, cod_build, tmp_path
):
    key = solution_frame(cod_build.out)
    bad = key[["id", "bravais_lattice"]].iloc[3:].copy()  # three ids missing
    bad.iloc[0, 1] = "cX"  # an unknown lattice
    bad = pd.concat([bad, bad.iloc[:1]])  # a repeated id
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    done, out = run_program(unpacked, "development", path, tmp_path)
    ours = run("validate", str(path), "-c", str(cod_build.out), cwd=tmp_path)
    assert done.returncode == 1 and ours.returncode == 1
    assert done.stderr.strip() == ours.stderr.strip()
    assert done.stderr.count("\n  - ") >= 3 and "Traceback" not in done.stderr
    assert not (out / "scores.json").exists()


def test_a_submission_zip_without_one_csv_is_a_clear_error(unpacked, tmp_path):
    done, _ = run_program(unpacked, "development", None, tmp_path)
    assert done.returncode == 1
    assert "exactly one CSV file, found 0" in done.stderr and "Traceback" not in done.stderr


def test_the_space_group_bundle_scores_the_space_group_track(cod_build, tmp_path):
    bundle = export_codabench(cod_build.out, tmp_path / "sg.zip", "spacegroup", **HERE)
    unpacked = unpack(bundle, tmp_path / "sg")
    sample = cod_build.out / layout.sample_submission("spacegroup")
    assert (unpacked / "public_data" / "sample_submission.csv").read_bytes() == sample.read_bytes()
    key = solution_frame(cod_build.out)
    frame = key[["id", "spacegroup_number"]].copy()
    frame.loc[frame.index[::3], "spacegroup_number"] = 225
    path = tmp_path / "sg.csv"
    frame.to_csv(path, index=False)
    ours = grade(path, cod_build.out, "spacegroup")
    for phase, portion in (("development", ours.public), ("final", ours.private)):
        done, out = run_program(unpacked, phase, path, tmp_path)
        assert done.returncode == 0, done.stderr
        scores = json.loads((out / "scores.json").read_text())
        assert scores["accuracy"] == portion.accuracy
        assert scores["macro_f1"] == portion.macro_f1
    assert 0 < ours.private.accuracy < 1


def test_measured_rows_are_scored_only_in_the_final_phase_details(tmp_path):
    from synthetic import make_synthetic_competition

    from xrd_bravais.contract.tasks import load_task

    comp = make_synthetic_competition(tmp_path / "comp", n_test=200, n_train=100, seed=1)
    mark_measured(comp, 10)
    key = pd.read_csv(comp / layout.SOLUTION, dtype=str, keep_default_na=False)
    track = load_task(comp).track("bravais")
    submission = tmp_path / "perfect.csv"
    key[["id", "bravais_lattice"]].to_csv(submission, index=False)
    ours = grade(submission, comp)
    assert ours.measured is not None and ours.measured.n == 10
    pages = {}
    phases = (("development", "Public", ("Public",)),
              ("final", "Private", ("Private", "Public", "Measured")))  # fmt: skip
    for phase, scored, shown in phases:
        files = _reference_data(comp, track, key, scored, shown)
        ref = tmp_path / "ref" / phase
        for name, data in files.items():
            (ref / name).parent.mkdir(parents=True, exist_ok=True)
            (ref / name).write_bytes(data)
        done, out = run_program(None, phase, submission, tmp_path, reference=ref)
        assert done.returncode == 0, done.stderr
        pages[phase] = (out / "detailed_results.html").read_text()
    assert "Measured" not in pages["development"] and "Private" not in pages["development"]
    assert "Measured: accuracy 100.00 % on 10 patterns" in pages["final"]
    dev_key = pd.read_csv(tmp_path / "ref/development/private/solution.csv", dtype=str)
    assert set(dev_key["Usage"]) == {"Public"}


def test_the_command_line_writes_a_bundle_and_refuses_phases_out_of_order(cod_build, tmp_path):
    done = run("export", "codabench", "-c", str(cod_build.out), "--out", str(tmp_path / "c.zip"),
               *HERE_CLI, "--start", "2027-02-01", "--end", "2027-03-01",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "phase Development: from 2027-02-01 00:00 UTC to 2027-03-01 00:00 UTC" in done.stdout
    assert "phase Final: from 2027-03-01 00:01 UTC" in done.stdout
    late = run("export", "codabench", "-c", str(cod_build.out), "--out", str(tmp_path / "d.zip"),
               *HERE_CLI, "--start", "2027-03-01", "--end", "2027-02-01",
               cwd=tmp_path)  # fmt: skip
    assert late.returncode == 1 and "before it starts" in late.stderr
    assert not (tmp_path / "d.zip").exists()


def test_pyarrow_comes_from_a_wheel_for_another_python(tmp_path):
    installed, origin = pyarrow_for_image(RUNNING, version=INSTALLED)
    assert "installed here" in origin and "pyarrow/__init__.py" in installed
    assert not any(name.startswith("pyarrow/tests/") for name in installed)
    assert any(name.endswith("licenses/LICENSE.txt") for name in installed)
    # A wheel for Python 3.12 in a wheelhouse (made here from the installed files).
    wheel = tmp_path / f"pyarrow-{INSTALLED}-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in installed.items():
            archive.writestr(name, data)
        archive.writestr("pyarrow/tests/test_x.py", b"")
        archive.writestr("pyarrow/include/arrow/api.h", b"")
    files, origin = pyarrow_for_image("3.12", wheelhouse=tmp_path, version=INSTALLED)
    assert origin == wheel.name and files == installed
    with pytest.raises(ExportError, match="pip download pyarrow==") as err:
        pyarrow_for_image("3.13", wheelhouse=tmp_path, version=INSTALLED)
    assert "--python-version 3.13" in str(err.value)


def test_the_default_dates_end_at_the_competitions_deadline(cod_build, tmp_path):
    from xrd_bravais.platforms.codabench import _dates

    _, end = _dates(cod_build.out, datetime(2027, 1, 1, tzinfo=UTC), None)
    deadline = competition_rules(cod_build.out).deadline
    assert end == (deadline or datetime(2027, 2, 26, tzinfo=UTC))


def test_public_measurements_show_in_the_development_details_and_hidden_ones_do_not(tmp_path):
    from synthetic import make_synthetic_competition

    from xrd_bravais.contract.io import sha256_file
    from xrd_bravais.contract.manifest import read_manifest, write_manifest_dict
    from xrd_bravais.contract.tasks import load_task
    from xrd_bravais.platforms.codabench import PHASES

    comp = make_synthetic_competition(tmp_path / "comp", n_test=200, n_train=100, seed=1)
    mark_measured(comp, 10)
    key = pd.read_csv(comp / layout.SOLUTION, dtype=str, keep_default_na=False)
    key.loc[key.index[10:16], layout.USAGE] = layout.MEASURED_PUBLIC_PORTION
    key.to_csv(comp / layout.SOLUTION, index=False)
    manifest = read_manifest(comp)
    manifest["files"][layout.SOLUTION] = sha256_file(comp / layout.SOLUTION)
    write_manifest_dict(comp, manifest)
    track = load_task(comp).track("bravais")
    submission = tmp_path / "perfect.csv"
    key[["id", "bravais_lattice"]].to_csv(submission, index=False)
    pages = {}
    for phase, scored, shown in PHASES:
        files = _reference_data(comp, track, key, scored, shown)
        ref = tmp_path / "ref" / phase.lower()
        for name, data in files.items():
            (ref / name).parent.mkdir(parents=True, exist_ok=True)
            (ref / name).write_bytes(data)
        done, out = run_program(None, phase.lower(), submission, tmp_path, reference=ref)
        assert done.returncode == 0, done.stderr
        pages[phase] = (out / "detailed_results.html").read_text()
    development, final = pages["Development"], pages["Final"]
    assert "MeasuredPublic: accuracy 100.00 % on 6 patterns" in development
    assert "Measured: " not in development and "Private" not in development
    assert "Measured: accuracy 100.00 % on 10 patterns" in final
    assert "MeasuredPublic: accuracy 100.00 % on 6 patterns" in final
    dev_key = pd.read_csv(tmp_path / "ref/development/private/solution.csv", dtype=str)
    assert set(dev_key["Usage"]) == {"Public", "MeasuredPublic"}
