"""The wheel as a user installs it: five top-level names, and it runs in a clean venv."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import clean_venv_env

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"xrd_bravais", "competition", "scoring", "baselines", "starter_kit"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = out.glob("xrd_bravais-*.whl")
    return found


def test_the_wheel_installs_five_top_level_names_and_its_package_data(wheel) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert tops == TOP_LEVEL
    for needed in ("xrd_bravais/web/templates/leaderboard.html", "xrd_bravais/web/static/style.css",
                   "starter_kit/starter_notebook.ipynb", "starter_kit/README.md",
                   "xrd_bravais/contract/layout.py"):  # fmt: skip
        assert needed in names, needed
    init = zipfile.ZipFile(wheel).read("xrd_bravais/__init__.py").decode()
    assert "\nimport " not in init and "\nfrom " not in init  # the namespace stays cheap


def test_the_wheel_runs_the_demo_build_in_a_clean_virtual_environment(wheel, tmp_path) -> None:
    """Install the wheel (with the builder's extra), pip check, --version, a small build."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    env = clean_venv_env(bin_dir, tmp_path)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(command), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=1800)  # fmt: skip

    done = run("pip", "install", "--quiet", f"{wheel}[build]")
    assert done.returncode == 0, done.stderr[-3000:]
    assert run("pip", "check").returncode == 0
    version = run("xrd-bravais", "--version")
    assert version.returncode == 0 and version.stdout.startswith("xrd-bravais ")
    done = run("xrd-bravais", "build", "--out", "demo", "--limit", "300", "--per-class", "20",
               "--test-fraction", "0.4", "--public-fraction", "0.5", "--no-cache",
               "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "demo" / "manifest.json").is_file()
    sample = tmp_path / "demo" / "public" / "sample_submission.csv"
    assert run("xrd-bravais", "validate", str(sample), "-c", "demo").returncode == 0


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "benchmarks").glob("*.py")
                                          if p.name != "__init__.py"))  # fmt: skip
def test_a_benchmark_runs_as_a_file_and_shadows_no_package(script) -> None:
    """``python benchmarks/X.py`` puts benchmarks/ first on sys.path: X must not be a package."""
    assert Path(script).stem not in TOP_LEVEL | {"tests", "benchmarks"}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
