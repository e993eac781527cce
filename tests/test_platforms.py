"""Platform exports: Kaggle's upload folder round-trips to our scores and never leaks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mark_measured, solution_frame
from test_cli import run

from scoring.grade import grade
from xrd_bravais.contract import layout
from xrd_bravais.platforms.common import ExportError
from xrd_bravais.platforms.kaggle import export_kaggle


def kaggle_accuracy(solution: pd.DataFrame, submission: pd.DataFrame, column: str,
                    usage: str) -> float:  # fmt: skip
    """Kaggle's "Categorization Accuracy" on one Usage: rows joined on id, share equal."""
    rows = solution[solution["Usage"] == usage].merge(submission, on="id", suffixes=("", "_sub"))
    return float((rows[column].astype(str) == rows[f"{column}_sub"].astype(str)).mean())


@pytest.fixture(scope="module")
def exported(cod_build, tmp_path_factory) -> Path:
    return export_kaggle(cod_build.out, tmp_path_factory.mktemp("kaggle") / "upload")


def test_the_upload_folder_holds_the_public_data_pages_and_a_separate_solution(
    exported, cod_build
):
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert files == [
        "README.md", "data/overview.png", "data/sample_submission.csv", "data/test.parquet",
        "data/train.parquet",
        "data/train_meta.parquet", "data/train_sticks.parquet", "pages/data.md",
        "pages/evaluation.md", "pages/overview.md", "pages/rules.md", "solution/solution.csv",
    ]  # fmt: skip
    for name in ("train.parquet", "test.parquet", "train_sticks.parquet", "train_meta.parquet",
                 "overview.png"):
        assert (exported / "data" / name).read_bytes() == (cod_build.out / "public" / name
                                                           ).read_bytes()  # fmt: skip
    solution = pd.read_csv(exported / "solution" / "solution.csv", dtype=str)
    key = solution_frame(cod_build.out)
    assert solution.columns.tolist() == ["id", "bravais_lattice", "Usage"]
    assert solution["id"].tolist() == key["id"].tolist()
    assert set(solution["Usage"]) == {"Public", "Private"}
    assert (exported / "solution" / "solution.csv").stat().st_mode & 0o077 == 0
    readme = (exported / "README.md").read_text()
    assert "Categorization Accuracy" in readme and "solution column `bravais_lattice`" in readme


def test_kaggle_scores_equal_ours_for_the_sample_a_perfect_and_a_random_file(
    exported, cod_build, tmp_path
):
    solution = pd.read_csv(exported / "solution" / "solution.csv", dtype=str)
    key = solution_frame(cod_build.out)
    rng = np.random.default_rng(0)
    random = key[["id"]].assign(bravais_lattice=rng.choice(["cF", "mP", "oP", "hP"], len(key)))
    files = {
        "sample": pd.read_csv(exported / "data" / "sample_submission.csv", dtype=str),
        "perfect": key[["id", "bravais_lattice"]],
        "random": random,
    }
    for name, submission in files.items():
        path = tmp_path / f"{name}.csv"
        submission.to_csv(path, index=False)
        ours = grade(path, cod_build.out)
        theirs = (kaggle_accuracy(solution, submission, "bravais_lattice", "Public"),
                  kaggle_accuracy(solution, submission, "bravais_lattice", "Private"))
        assert theirs == pytest.approx((ours.public.accuracy, ours.private.accuracy), abs=1e-12)


def test_the_space_group_track_gets_its_own_solution_and_sample(cod_build, tmp_path):
    out = export_kaggle(cod_build.out, tmp_path / "sg", "spacegroup")
    solution = pd.read_csv(out / "solution" / "solution.csv", dtype=str)
    assert solution.columns.tolist() == ["id", "spacegroup_number", "Usage"]
    assert (out / "data" / "sample_submission.csv").read_bytes() == (
        cod_build.out / layout.sample_submission("spacegroup")).read_bytes()  # fmt: skip
    sample = pd.read_csv(out / "data" / "sample_submission.csv", dtype=str)
    ours = grade(out / "data" / "sample_submission.csv", cod_build.out, "spacegroup")
    assert kaggle_accuracy(solution, sample, "spacegroup_number", "Private") == pytest.approx(
        ours.private.accuracy)  # fmt: skip


def test_measured_rows_are_ignored_on_kaggle(tmp_path):
    from synthetic import make_synthetic_competition

    from xrd_bravais.contract.tasks import load_task
    from xrd_bravais.platforms.kaggle import kaggle_solution

    comp = make_synthetic_competition(tmp_path / "comp", n_test=200, n_train=100, seed=1)
    mark_measured(comp, 10)
    solution = kaggle_solution(comp, load_task(comp).track("bravais"))
    assert (solution["Usage"] == "Ignored").sum() == 10
    assert set(solution["Usage"]) == {"Public", "Private", "Ignored"}


@pytest.mark.parametrize("platform", ["kaggle", "codabench"])
def test_an_export_that_would_leak_is_refused_and_writes_nothing(cod_build, tmp_path, platform):
    from test_codabench import HERE, HERE_CLI

    from xrd_bravais.platforms.codabench import export_codabench

    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    key = solution_frame(comp)
    card = comp / layout.DATA_CARD
    card.write_text(card.read_text() + "\n" + key[["id", "bravais_lattice"]].to_csv(index=False))
    out = tmp_path / ("upload" if platform == "kaggle" else "bundle.zip")
    export, options = {
        "kaggle": (export_kaggle, ()),
        "codabench": (lambda c, o: export_codabench(c, o, **HERE), HERE_CLI),
    }[platform]
    with pytest.raises(ExportError, match=rf"{platform}/pages/data\.md"):
        export(comp, out)
    assert not out.exists()
    assert not list(tmp_path.glob(f".{out.name}*"))
    # Through the command line: every finding, exit 1, no traceback.
    done = run("export", platform, "-c", str(comp), "--out", str(out), *options, cwd=tmp_path)
    assert done.returncode == 1 and "export refused" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_the_command_line_exports_and_refuses_a_folder_in_use(cod_build, tmp_path):
    done = run("export", "kaggle", "-c", str(cod_build.out), "--out", str(tmp_path / "k"),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "solution/solution.csv" in done.stdout and "README.md" in done.stdout
    again = run("export", "kaggle", "-c", str(cod_build.out), "--out", str(tmp_path / "k"),
                cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2 and "not an empty folder" in again.stderr


def test_an_answer_key_changed_after_the_build_is_not_exported(cod_build, tmp_path):
    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    key = comp / layout.SOLUTION
    key.write_text(key.read_text().replace("cF", "cP", 1))
    with pytest.raises(ExportError, match="changed after the build"):
        export_kaggle(comp, tmp_path / "upload")
    assert not (tmp_path / "upload").exists()
