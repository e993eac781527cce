"""The starter kit: README from the manifest, notebook and script run end to end, no leaks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import clean_venv_env
from test_cli import run

from scoring.submission import validate_submission
from starter_kit.kit import KIT_FILES, KitLeakError, build_kit, kit_file, render_readme
from starter_kit.wheel import wheel_name


@pytest.fixture(scope="module")
def competition(cod_build, tmp_path_factory) -> Path:
    """A copy of the COD build that tests may plant files in."""
    root = tmp_path_factory.mktemp("kit") / "course"
    shutil.copytree(cod_build.out, root, ignore=shutil.ignore_patterns("leaderboard"))
    return root


@pytest.fixture
def planted(competition, tmp_path) -> Path:
    """A fresh copy per test, for planting the answer key."""
    root = tmp_path / "course"
    shutil.copytree(competition, root)
    return root


@pytest.fixture(scope="module")
def kit(competition, tmp_path_factory) -> Path:
    """The kit zip, unpacked."""
    out = tmp_path_factory.mktemp("unpacked")
    archive = build_kit(competition, out / "kit.zip")
    with zipfile.ZipFile(archive) as z:
        z.extractall(out)
    return out / "course-starter-kit"


def test_readme_quotes_the_competitions_own_figures(competition):
    text = render_readme(competition)
    manifest = json.loads((competition / "manifest.json").read_text())
    train = pd.read_parquet(competition / "public" / "train.parquet", columns=["bravais_lattice"])
    n_test = pq.read_metadata(competition / "public" / "test.parquet").num_rows
    assert f"{len(train):,} patterns" in text and f"{n_test:,} patterns" in text
    assert f"y0 .. y{manifest['grid']['n_points'] - 1}" in text
    assert "| `cF` | cubic, face centred |" in text
    counts = train["bravais_lattice"].value_counts()
    assert f"| `cF` | {counts['cF']:,} |" in text
    assert "| uniform: each lattice with probability 1/14 | 7.1 % |" in text
    assert "5 scored submissions per team per day" in text and "$" not in text


def test_kit_holds_the_public_files_and_the_kit_only(kit, competition):
    files = sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file())
    public = sorted(p.relative_to(competition).as_posix()
                    for p in (competition / "public").iterdir())  # fmt: skip
    wheel = f"wheels/{wheel_name()}"
    assert files == sorted([*KIT_FILES, "requirements.txt", wheel, *public])
    pins = (kit / "requirements.txt").read_text()
    assert "pandas==" in pins and "scikit-learn==" in pins and "torch" not in pins
    assert (kit / "make_submission.py").read_bytes() == kit_file("make_submission.py")
    notebook = json.loads((kit / "starter_notebook.ipynb").read_text())
    assert all(not cell.get("outputs") for cell in notebook["cells"]), "stored with outputs"


def test_notebook_runs_top_to_bottom_and_its_submission_validates(kit):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(kit / "starter_notebook.ipynb", as_version=4)
    # Issue 10, item 2: sample fewer rows than the training set holds, so the
    # sampling path runs (it crashed on pandas 3 above 10,000 training rows).
    n_train = pq.read_metadata(kit / "public" / "train.parquet").num_rows
    setup = next(c for c in notebook.cells if "SAMPLE_SIZE = 10_000" in c.source)
    setup.source = setup.source.replace("SAMPLE_SIZE = 10_000", f"SAMPLE_SIZE = {n_train // 2}")
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(kit)}})  # fmt: skip
    client.execute()
    outputs = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "submission.csv is valid" in outputs
    sampled = int(re.search(r"training on ([\d,]+) rows", outputs).group(1).replace(",", ""))
    assert sampled < n_train
    valid = validate_submission(kit / "submission.csv", kit)
    assert len(valid.ids) == pq.read_metadata(kit / "public" / "test.parquet").num_rows
    images = [out for cell in notebook.cells for out in cell.get("outputs", [])
              if "image/png" in out.get("data", {})]  # fmt: skip
    # counts, patterns per lattice, comparison, confusion matrix, the curves, the PCA
    assert len(images) >= 6
    assert "k-means ARI" in outputs


def test_make_submission_script_writes_a_valid_file(kit, tmp_path):
    done = subprocess.run(
        [sys.executable, str(kit / "make_submission.py"), "--data", str(kit), "--cv", "2",
         "--sample", "150", "--out", str(tmp_path / "sub.csv")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "random guess (uniform)" in done.stdout and "passes the grader's validator" in done.stdout
    )
    # Fewer rows than the training set: the sampling path ran (issue 10, item 2).
    n_train = pq.read_metadata(kit / "public" / "train.parquet").num_rows
    assert re.search(r"training on 1[45]\d\.", done.stdout) and n_train > 200
    assert "--competition" in done.stdout  # the submit hint is complete (item 17)
    validate_submission(tmp_path / "sub.csv", kit)


def test_cli_writes_the_kit(competition, tmp_path):
    done = run("starter-kit", "--competition", str(competition), "--out",
               str(tmp_path / "kit.zip"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no answer-key content found" in done.stdout
    with zipfile.ZipFile(tmp_path / "kit.zip") as z:
        assert not [n for n in z.namelist() if "private" in n or "solution" in n]


# -- planting the answer key: one defect at a time -----------------------------------


def _solution(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "private" / "solution.csv", keep_default_na=False)


def _plant_copy(root: Path) -> str:
    shutil.copy(root / "private" / "solution.csv", root / "public" / "notes" / "backup.bin")
    return "is a copy of private/solution.csv"


def _plant_renamed_labels(root: Path) -> str:
    key = _solution(root)[["id", "bravais_lattice"]]
    (root / "public" / "notes" / "my_results.txt").write_text(
        "\n".join(f"{i}\t{lab}" for i, lab in key.itertuples(index=False))
    )
    return "match the hidden bravais_lattice 100 %"


def _plant_spacegroups_reversed(root: Path) -> str:
    key = _solution(root)
    rows = [f"{sg};{i}" for i, sg in zip(key["id"], key["spacegroup_number"], strict=True)]
    (root / "public" / "notes" / "sg.md").write_text("# notes\n" + "\n".join(rows))
    return "match the hidden spacegroup_number 100 %"


def _plant_usage(root: Path) -> str:
    key = _solution(root)[["id", "Usage"]]
    key.to_csv(root / "public" / "notes" / "split.csv", index=False)
    return "match the hidden Usage 100 %"


def _plant_test_label_column(root: Path) -> str:
    path = root / "public" / "test.parquet"
    table = pq.read_table(path)
    order = dict(zip(*_solution(root)[["id", "bravais_lattice"]].T.values, strict=True))
    labels = [order[i] for i in table.column("id").to_pylist()]
    pq.write_table(table.append_column("bravais_lattice", pa.array(labels)), path)
    return "has columns besides id and y0 .. y{N-1}: bravais_lattice"


def _plant_meta(root: Path) -> str:
    meta = pd.read_parquet(root / "private" / "test_meta.parquet")
    meta[["id", "formula"]].to_parquet(root / "public" / "notes" / "extra.parquet")
    return "test-only formula"


def _plant_link(root: Path) -> str:
    (root / "public" / "notes" / "key.csv").symlink_to(root / "private" / "solution.csv")
    return "outside public/"


def _plant_gzipped_copy(root: Path) -> str:
    import gzip

    data = (root / "private" / "solution.csv").read_bytes()
    (root / "public" / "notes" / "key.csv.gz").write_bytes(gzip.compress(data, mtime=0))
    return "(decompressed) is a copy of private/solution.csv"


def _plant_zipped_upper_case_ids(root: Path) -> str:
    key = _solution(root)[["id", "bravais_lattice"]]
    text = "\n".join(f"{i.upper()},{lab}" for i, lab in key.itertuples(index=False))
    with zipfile.ZipFile(root / "public" / "notes" / "mine.zip", "w") as archive:
        archive.writestr("answers.txt", text)
    return "match the hidden bravais_lattice 100 %"


def _plant_sample_reordered_by_label(root: Path) -> str:
    # Same rows, same content, but in the order of the hidden labels: the order
    # carries the key. Only the manifest's hash tells this file from the built one.
    key = _solution(root)
    path = root / "public" / "sample_submission.csv"
    sample = pd.read_csv(path).set_index("id").loc[key.sort_values("bravais_lattice")["id"]]
    sample.reset_index().to_csv(path, index=False)
    return "public/sample_submission.csv changed after the build"


@pytest.mark.parametrize(
    "plant",
    [
        _plant_gzipped_copy,
        _plant_zipped_upper_case_ids,
        _plant_sample_reordered_by_label,
        _plant_copy,
        _plant_renamed_labels,
        _plant_spacegroups_reversed,
        _plant_usage,
        _plant_test_label_column,
        _plant_meta,
        _plant_link,
    ],
)
def test_planted_answer_key_is_refused_and_nothing_is_written(planted, tmp_path, plant):
    (planted / "public" / "notes").mkdir()
    expected = plant(planted)
    out = tmp_path / "kit.zip"
    with pytest.raises(KitLeakError, match="refusing to write the starter kit") as err:
        build_kit(planted, out)
    assert any(expected in problem for problem in err.value.problems), err.value.problems
    assert not out.exists() and not list(tmp_path.glob(".kit.zip*"))


def test_cli_lists_every_planted_problem_at_once(planted, tmp_path):
    (planted / "public" / "notes").mkdir()
    expected = [_plant_copy(planted), _plant_usage(planted)]
    done = run("starter-kit", "--competition", str(planted), "--out", str(tmp_path / "k.zip"),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert all(e in done.stderr for e in expected)
    # ... and both files are refused as not written by the build (not in manifest.json).
    assert "4 problem(s)" in done.stderr and done.stderr.count("not in manifest.json") == 2
    assert not (tmp_path / "k.zip").exists()


def test_sample_submission_is_not_mistaken_for_a_leak(competition):
    # Every row the majority label agrees with the truth only as often as chance.
    from starter_kit.kit import collect_files, find_leaks

    files, problems = collect_files(competition, "kit")
    assert problems == [] and find_leaks(files, competition) == []


def test_refuses_a_folder_that_is_not_a_competition(tmp_path):
    done = run("starter-kit", "--competition", str(tmp_path), "--out", str(tmp_path / "k.zip"),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "is not a built competition" in done.stderr


# ------------------------------------------------------------- a student's fresh machine
@pytest.fixture(scope="module")
def student_python(tmp_path_factory) -> Path:
    """A new virtual environment with nothing of the checkout in it."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    return venv / "bin"


def _as_a_student(folder: Path, bin_dir: Path, *command: str) -> subprocess.CompletedProcess:
    """Run a command in an unpacked kit, as its README says, with only the new venv."""
    env = clean_venv_env(bin_dir, folder)
    return subprocess.run(list(command), cwd=folder, env=env, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip


def _install_and_submit(kit_files: dict[str, bytes], folder: Path, bin_dir: Path,
                        script: tuple[str, ...]) -> None:  # fmt: skip
    for name, data in kit_files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    done = _as_a_student(folder, bin_dir, "pip", "install", "--quiet", "-r", "requirements.txt")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _as_a_student(folder, bin_dir, "pip", "check").returncode == 0
    done = _as_a_student(folder, bin_dir, "python", *script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (folder / "submission.csv").is_file()
    done = _as_a_student(folder, bin_dir, "xrd-bravais", "validate", "submission.csv",
                         "--competition", ".")  # fmt: skip
    assert done.returncode == 0 and "is a valid" in done.stdout, done.stderr


def _unzipped(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()
                if not name.endswith("/")}  # fmt: skip


def test_a_student_installs_the_kit_on_a_fresh_machine_and_submits(
    kit, student_python, tmp_path
) -> None:
    """Unzipped into an empty folder, installed from its own requirements.txt: it works."""
    files = _unzipped(kit.parent / "kit.zip")
    assert any(name.startswith("wheels/xrd_bravais-") for name in files)
    requirements = files["requirements.txt"].decode()
    assert "xrd-bravais==" not in requirements and "./wheels/xrd_bravais-" in requirements
    _install_and_submit(files, tmp_path / "kit", student_python,
                        ("make_submission.py", "--sample", "300", "--cv", "2"))  # fmt: skip


def test_the_aggregates_kit_and_the_codabench_starting_kit_install_the_same_way(
    competition, student_python, tmp_path
) -> None:
    from competition.aggregates.build import build_aggregates
    from competition.aggregates.draw import AggregateConfig
    from xrd_bravais.contract.tasks import load_task
    from xrd_bravais.platforms.codabench import _starting_kit
    from xrd_bravais.platforms.common import public_data_files

    aggregates = tmp_path / "aggregates"
    build_aggregates(aggregates, AggregateConfig(size=32, radius=(2.0, 3.0), per_count=12,
                                                 seed=3), progress=False)  # fmt: skip
    build_kit(aggregates, tmp_path / "agg.zip")
    _install_and_submit(_unzipped(tmp_path / "agg.zip"), tmp_path / "agg", student_python,
                        ("make_submission.py",))  # fmt: skip
    # Codabench: the starting kit, and Public Data unzipped into its public/ (as its
    # overview page says).
    spec = load_task(competition).track(None)
    files = {k.split("/", 1)[1]: v for k, v in _starting_kit(competition).items()}
    files |= {f"public/{k}": v for k, v in public_data_files(competition, spec).items()}
    _install_and_submit(files, tmp_path / "codabench", student_python,
                        ("make_submission.py", "--sample", "300", "--cv", "2"))  # fmt: skip
