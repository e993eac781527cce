"""The ``xrd-bravais`` command line, run as a user would: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_structures import NACL

from competition.manifest import verify_manifest

EXE = Path(sys.executable).with_name("xrd-bravais")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "xrd_bravais"]
    environment = None if env is None else {**os.environ, **env}
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=environment)  # fmt: skip


@pytest.fixture
def small_input(cod_cifs, tmp_path) -> Path:
    """40 real COD files linked into a folder."""
    folder = tmp_path / "cifs"
    folder.mkdir()
    for path in sorted(cod_cifs.glob("*.cif"))[:40]:
        (folder / path.name).symlink_to(path)
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 5\n")
    return folder


def test_build_small_input(small_input, tmp_path):
    result = run(
        "build", "--source", "cod-dir", "--input", str(small_input), "--out", "comp",
        "--cache-dir", str(tmp_path / "cache"), "--seed", "3", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Structures per Bravais lattice" in result.stdout
    assert "accepted" in result.stdout and "total" in result.stdout
    out = tmp_path / "comp"
    assert verify_manifest(out) == []
    rejects = pd.read_csv(out / "reports" / "rejects.csv")
    assert "file:broken.cif" in set(rejects["entry_id"])
    assert (out / "public" / "train.parquet").is_file()


def test_progress_bar_goes_to_stderr(small_input, tmp_path):
    result = run(
        "build", "--source", "cod-dir", "--input", str(small_input), "--out", "comp",
        "--no-cache", "--limit", "40", "--workers", "1", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "structures" in result.stderr and "cif/s" in result.stderr


def test_nano281_preset(small_input, tmp_path):
    result = run(
        "build", "--source", "cod-dir", "--input", str(small_input), "--out", "comp",
        "--preset", "nano281", "--no-cache", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    columns = pd.read_parquet(tmp_path / "comp" / "public" / "test.parquet").columns
    assert list(columns) == ["id"] + [f"y{i}" for i in range(180)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "cod-dir"], "needs --input"),
        (["--source", "cod-dir", "--input", "nowhere"], "not a folder"),
        (["--source", "cod-ids", "--input", "nowhere.txt"], "not a file"),
        (["--preset", "bogus"], "unknown preset"),
        (["--test-fraction", "1.5"], "test_fraction must be between 0 and 1"),
        (["--source", "generated", "--spacegroups", "1,999"], "1..230"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    result = run("build", "--out", "comp", "--quiet", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "comp" / "manifest.json").exists()


def test_refuses_non_empty_folder(small_input, tmp_path):
    (tmp_path / "comp").mkdir()
    (tmp_path / "comp" / "notes.txt").write_text("mine")
    result = run(
        "build", "--source", "cod-dir", "--input", str(small_input), "--out", "comp",
        "--no-cache", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not empty" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "comp" / "notes.txt").read_text() == "mine"


def test_help_lists_build():
    result = run("--help", cwd=Path.cwd())
    assert result.returncode == 0 and "build" in result.stdout


# -- issue 10: one-line errors and usability -----------------------------------------


def test_out_below_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("mine")
    result = run("build", "--source", "generated", "--out", "afile/sub", "--quiet",
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr and "structures" not in result.stderr
    assert (tmp_path / "afile").read_text() == "mine"


def test_version_and_short_help():
    version = run("--version", cwd=Path.cwd())
    assert version.returncode == 0 and version.stdout.startswith("xrd-bravais ")
    for args in (["-h"], ["build", "-h"], ["leaderboard", "-h"]):
        shown = run(*args, cwd=Path.cwd())
        assert shown.returncode == 0 and "Usage" in shown.stdout, args


def test_help_shows_every_default(tmp_path):
    shown = run("build", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    text = " ".join(shown.stdout.split())
    assert "Worker processes. [default: (all CPUs)]" in text
    assert "[default: ($XDG_CACHE_HOME/xrd-bravais)]" in text
    assert "Worker processes ." not in text


def test_quiet_build_prints_no_library_warnings(small_input, tmp_path):
    """Issue 10, item 19: pymatgen's per-structure warnings reached the terminal."""
    (small_input / "neon_argon.cif").write_text(NEON_ARGON)
    result = run("build", "--source", "cod-dir", "--input", str(small_input), "--out", "comp",
                 "--no-cache", "--quiet", "--workers", "1", cwd=tmp_path,
                 env={"PYTHONWARNINGS": "always"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


# Neon and argon have no Pauling electronegativity: pymatgen warns when it sorts them.
NEON_ARGON = NACL.replace("data_NaCl", "data_NeAr").replace("Na1 Na", "Ne1 Ne").replace(
    "Cl1 Cl", "Ar1 Ar"
)


def test_a_custom_grid_from_the_command_line(small_input, tmp_path):
    """Issue 18: only presets could be chosen."""
    from xrd_bravais.contract.grid import Grid

    result = run("build", "--source", "cod-dir", "--input", str(small_input), "--out", "comp",
                 "--grid", "10:80:0.05", "--fwhm", "0.15", "--no-cache", "--quiet",
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    grid = Grid.from_parquet(tmp_path / "comp" / "public" / "test.parquet")
    assert grid == Grid(10.0, 80.0, 0.05, 1401, "CuKa", 0.15)
    bad = run("build", "--out", "other", "--grid", "10:8", "--quiet", cwd=tmp_path)
    assert bad.returncode == 2 and "--grid takes MIN:MAX:STEP" in bad.stderr
