"""The manifest: provenance of a built competition, and its verification.

``manifest.json`` records the configuration, the seed, the source, package
versions, class counts per portion, label agreement and the sha256 of every
other file. It holds no time stamp or timing, so the same inputs and seed give
the same bytes. The grader refuses an answer key whose hash does not match.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from competition.io import atomic_write_text, sha256_file

if TYPE_CHECKING:
    from competition.build import BuildSummary
    from competition.config import BuildConfig
    from competition.sources import Source

MANIFEST_NAME: Final = "manifest.json"
FORMAT: Final = "xrd-bravais-competition/1"
BUILT_FOLDERS: Final = ("public", "private", "reports")
"""The folders a build writes and the manifest covers. Others beside them (the
grader's ``leaderboard/``, baseline ``submissions/``) change after the build."""
_VERSIONED: Final = ("xrd-bravais", "numpy", "pandas", "pyarrow", "pymatgen", "spglib", "pyxtal")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the output."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _hashed_files(out: Path) -> dict[str, str]:
    files = sorted(
        p
        for folder in BUILT_FOLDERS
        for p in (out / folder).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    return {p.relative_to(out).as_posix(): sha256_file(p) for p in files}


def write_manifest(
    out: Path, config: BuildConfig, source: Source, summary: BuildSummary
) -> dict[str, Any]:
    """Write ``<out>/manifest.json`` (last, atomically) and return its content."""
    manifest = {
        "format": FORMAT,
        "seed": config.seed,
        "config": config.to_dict(),
        "grid": config.pattern.describe(),
        "source": source.description,
        "versions": package_versions(),
        "counts": {
            "input": summary.n_input,
            "accepted": summary.n_accepted,
            "rejected_by_stage": summary.rejected_by_stage,
            "per_portion": summary.counts,
        },
        "labels": {
            "symprec": config.symprec,
            "angle_tolerance": config.angle_tolerance,
            **summary.label_agreement,
        },
        "files": _hashed_files(out),
    }
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(out: str | Path) -> dict[str, Any]:
    """Load ``<out>/manifest.json``.

    Raises
    ------
    FileNotFoundError
        If ``out`` holds no manifest (not a built competition).
    """
    path = Path(out) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {out} is not a built competition")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def verify_manifest(out: str | Path) -> list[str]:
    """Compare every file listed in the manifest with its recorded sha256.

    Returns
    -------
    list of str
        One line per problem (missing, changed or unlisted file); empty if the
        build is intact.
    """
    out = Path(out)
    recorded: dict[str, str] = read_manifest(out)["files"]
    actual = _hashed_files(out)
    problems = [f"missing: {name}" for name in recorded if name not in actual]
    problems += [
        f"changed: {name} (sha256 {actual[name][:12]}..., manifest says {digest[:12]}...)"
        for name, digest in recorded.items()
        if name in actual and actual[name] != digest
    ]
    problems += [f"not in manifest: {name}" for name in actual if name not in recorded]
    return problems
