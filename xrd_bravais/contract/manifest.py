"""Reading and verifying ``manifest.json``, the provenance of a built competition.

The builder writes the manifest last (see :mod:`competition.manifest`): the
configuration, the seed, the source, package versions, counts per split, the
task, the grid, and the sha256 of every file under ``public/``, ``private/`` and
``reports/``. Anything that trusts a competition's files reads them through here:
the grader refuses an answer key whose hash does not match.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from xrd_bravais.contract.io import atomic_write_text, sha256_file
from xrd_bravais.contract.layout import BUILT_FOLDERS, MANIFEST

MANIFEST_NAME: Final = MANIFEST
FORMAT: Final = "xrd-bravais-competition/1"


def hashed_files(out: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every file under the built folders, by path relative to ``out``.

    Hidden files (a temporary name during an atomic write) are left out.
    """
    root = Path(out)
    files = sorted(
        p
        for folder in BUILT_FOLDERS
        for p in (root / folder).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in files}


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
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


def write_manifest_dict(out: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
    """Write ``manifest`` as ``<out>/manifest.json``, atomically, in a stable form."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write_text(Path(out) / MANIFEST_NAME, text)


def verify_manifest(out: str | os.PathLike[str]) -> list[str]:
    """Compare every file listed in the manifest with its recorded sha256.

    Returns
    -------
    list of str
        One line per problem (missing, changed or unlisted file); empty if the
        build is intact.

    Raises
    ------
    FileNotFoundError
        If ``out`` holds no manifest.
    """
    recorded: dict[str, str] = read_manifest(out)["files"]
    actual = hashed_files(out)
    problems = [f"missing: {name}" for name in recorded if name not in actual]
    problems += [
        f"changed: {name} (sha256 {actual[name][:12]}..., manifest says {digest[:12]}...)"
        for name, digest in recorded.items()
        if name in actual and actual[name] != digest
    ]
    problems += [f"not in manifest: {name}" for name in actual if name not in recorded]
    return problems
