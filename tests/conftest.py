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
    from competition.build import build_competition
    from competition.config import BuildConfig
    from competition.sources import cod_dir_source

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

    from contract import layout
    from contract.io import sha256_file
    from contract.manifest import read_manifest, write_manifest_dict

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
