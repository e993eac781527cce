"""Write the manifest of a build: its provenance, in ``manifest.json``.

``manifest.json`` records the configuration, the seed, the source, package
versions, class counts per split, label agreement, the task with its label sets,
the grid, and the sha256 of every other file. It holds no time stamp or timing,
so the same inputs and seed give the same bytes. Reading and verifying it is the
contract's (:mod:`xrd_bravais.contract.manifest`), re-exported here.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from xrd_bravais.contract.layout import BUILT_FOLDERS
from xrd_bravais.contract.manifest import (
    FORMAT,
    MANIFEST_NAME,
    hashed_files,
    read_manifest,
    verify_manifest,
    write_manifest_dict,
)
from xrd_bravais.contract.tasks import LATTICE_TASK

if TYPE_CHECKING:
    from competition.config import BuildConfig
    from competition.lattice.summary import BuildSummary
    from competition.sources.catalog import Source

__all__ = [
    "BUILT_FOLDERS", "FORMAT", "MANIFEST_NAME", "package_versions", "read_manifest",
    "verify_manifest", "write_manifest",
]  # fmt: skip

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


def write_manifest(
    out: Path, config: BuildConfig, source: Source, summary: BuildSummary
) -> dict[str, Any]:
    """Write ``<out>/manifest.json`` (last, atomically) and return its content."""
    manifest = {
        "format": FORMAT,
        "seed": config.seed,
        "config": config.to_dict(),
        "grid": config.pattern.describe(),  # type: ignore[union-attr]
        "task": LATTICE_TASK.to_dict(),
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
        **({"measured_test": summary.measured_test} if summary.measured_test else {}),
        **({"train_generated": summary.train_generated} if summary.train_generated else {}),
        **({"train_extra": summary.train_extra} if summary.train_extra else {}),
        "files": hashed_files(out),
    }
    write_manifest_dict(out, manifest)
    return manifest
