"""The layering of DESIGN.md holds, and an upward import breaks the build by name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("competition", "scoring", "baselines", "starter_kit", "xrd_bravais")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml")],
                          capture_output=True, text=True, cwd=root, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return root


def test_the_layers_hold():
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward", "named"),
    [
        ("xrd_bravais/contract/labels.py", "import scoring.metrics",
         "xrd_bravais.contract.labels -> scoring.metrics"),
        ("scoring/grade.py", "import competition.lattice.build",
         "scoring.grade -> competition.lattice.build"),
        ("competition/lattice/build.py", "import baselines.runner.run",
         "competition.lattice.build -> baselines.runner.run"),
        ("competition/sources/reader.py", "import xrd_bravais.web.app",
         "competition.sources.reader -> xrd_bravais.web.app"),
    ],
)
def test_an_upward_import_fails_and_is_named(tmp_path, module, upward, named):
    root = _copy(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{upward}  # planted by the test\n")
    done = _lint(root)
    assert done.returncode != 0
    assert named in done.stdout, done.stdout
