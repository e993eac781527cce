"""Shared fixtures: paths to the real data beside the checkout, and one small real build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout (read from there, never copied into the repo).
SHARED_DATA = Path(os.environ.get("XRD_BRAVAIS_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real test data {path} is absent (set XRD_BRAVAIS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def cod_cifs() -> Path:
    """The 526 real COD entries of ../shared/data/cod_cifs."""
    return _shared("cod_cifs")


@pytest.fixture(scope="session")
def edge_cases() -> Path:
    """The 537 CIF edge cases (a third do not parse) of ../shared/data/cif_edge_cases."""
    return _shared("cif_edge_cases")


@pytest.fixture(scope="session")
def cod_build(cod_cifs: Path, tmp_path_factory: pytest.TempPathFactory):
    """A competition built from all of cod_cifs, with its cache (built once per session)."""
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import cod_dir_source

    root = tmp_path_factory.mktemp("cod_build")
    summary = build_competition(
        cod_dir_source(cod_cifs), root / "out", BuildConfig(), workers=2,
        cache_dir=root / "cache", progress=False,
    )  # fmt: skip
    return summary


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A 1,400-row competition in the built layout with balanced random labels."""
    from synthetic import make_synthetic_competition

    return make_synthetic_competition(tmp_path / "comp", n_test=1400, n_train=700, seed=3)


def solution_frame(competition: Path):
    """The answer key of a competition as a DataFrame (tests only)."""
    import pandas as pd

    return pd.read_csv(competition / "private" / "solution.csv", keep_default_na=False)


@pytest.fixture(scope="session")
def measured_dir() -> Path:
    """The 152 real RRUFF measurements of ../shared/data/measured, with labels.csv."""
    return _shared("measured")


def mark_measured(competition: Path, n: int) -> None:
    """Make the first ``n`` test rows Measured, as ``build --measured-test`` records them.

    The answer key's new hash goes into the manifest, so the grader accepts it.
    """
    import pandas as pd

    from xrd_bravais.contract import layout
    from xrd_bravais.contract.io import sha256_file
    from xrd_bravais.contract.manifest import read_manifest, write_manifest_dict

    key = pd.read_csv(competition / layout.SOLUTION, dtype=str, keep_default_na=False)
    key.loc[key.index[:n], layout.USAGE] = layout.MEASURED_PORTION
    key.to_csv(competition / layout.SOLUTION, index=False)
    manifest = read_manifest(competition)
    manifest["files"][layout.SOLUTION] = sha256_file(competition / layout.SOLUTION)
    write_manifest_dict(competition, manifest)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path: two builds compare byte for byte."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- the website ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback interface."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SiteServer:
    """``xrd-bravais serve`` in a subprocess on 127.0.0.1, as an organiser runs it."""

    def __init__(self, competition: Path) -> None:
        self.competition = competition
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.extra: list[str] = []
        self.log = competition.parent / f"serve-{self.port}.log"

    def start(self) -> SiteServer:
        import subprocess
        import sys
        import time
        import urllib.request

        exe = Path(sys.executable).with_name("xrd-bravais")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "xrd_bravais"]
        self.process = subprocess.Popen(
            [*command, "serve", "-c", str(self.competition), "--port", str(self.port),
             *self.extra],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/rules", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in 60 s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str) -> str:
        """Run an ``xrd-bravais`` command on the served competition; its stdout."""
        from test_cli import run

        done = run(*args, "-c", str(self.competition), cwd=self.competition.parent)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def token(self, team: str) -> str:
        """Add a team and return its token."""
        return self.cli("teams", "add", team).strip().rsplit(" ", 1)[-1]


@pytest.fixture(scope="session")
def web_base(cod_build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real COD build with the uniform-guess baseline run (its report and plots)."""
    import shutil

    from test_cli import run

    root = Path(shutil.copytree(cod_build.out, tmp_path_factory.mktemp("web") / "comp"))
    done = run("baselines", "run", "uniform", "random-forest", "-c", str(root), "--cv", "0",
               "--quiet", cwd=root.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def site(web_base: Path, tmp_path: Path):
    """A served private copy of :func:`web_base` (stopped after the test)."""
    import shutil

    server = SiteServer(Path(shutil.copytree(web_base, tmp_path / "comp"))).start()
    yield server
    server.stop()


def clean_venv_env(bin_dir: Path, home: Path) -> dict[str, str]:
    """The environment of a fresh virtual environment, with nothing of the checkout.

    Its own bin comes first; the machine's package-registry settings pass (pip needs them).
    """
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": str(home / ".mpl")}  # fmt: skip
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
