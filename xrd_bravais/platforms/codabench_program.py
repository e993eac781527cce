"""The bundle's scoring program: our grader and pyarrow, vendored for Codabench's image.

The scoring program (:mod:`xrd_bravais.platforms.codabench_score`) runs in Codabench's
standard image (:data:`~xrd_bravais.platforms.codabench.DOCKER_IMAGE`: Python 3.12 with
numpy, pandas and PyYAML, no pyarrow and no network), so it carries our ``scoring`` and
``xrd_bravais.contract`` packages and pyarrow (:data:`IMAGE_PYARROW`) built for that
Python: from the running interpreter where it is that version for that Python, else a
wheel from ``wheelhouse``, the cache, or ``pip download``. Each phase's reference data
is written here too.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Final

import pandas as pd

from xrd_bravais.contract import layout
from xrd_bravais.contract.tasks import Track
from xrd_bravais.platforms.common import (
    ExportError,
)

IMAGE_PYTHON: Final = "3.12"
IMAGE_PYARROW: Final = "25.0.0"
"""The pyarrow vendored for the image: the newest that imports with its numpy 1.26.4
(pyarrow 26 needs NumPy 2). ``tools/check_codabench_image.py`` checks the pair."""
IMAGE_PLATFORM: Final = "manylinux_2_28_x86_64"
"""The wheel platform pip downloads pyarrow for (the image is Debian bookworm, x86-64)."""

_VENDORED_PACKAGES: Final = ("xrd_bravais.contract", "scoring")
_PYARROW_SKIPPED: Final = ("tests/", "include/", "src/", "__pycache__/")
_PYARROW_SKIPPED_NAMES: Final = ("flight", "_pyarrow_cpp_tests", ".pxd", ".pyx", ".pxi", ".h")


# --------------------------------------------------------------------------- pyarrow
def _python_tag(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"cp{major}{minor}"


def _keep_pyarrow_file(relative: str) -> bool:
    """Whether a file of the pyarrow distribution is needed to run (tests, headers are not)."""
    inner = relative.split("/", 1)[-1] if relative.startswith("pyarrow/") else relative
    if relative.startswith("pyarrow/") and inner.startswith(_PYARROW_SKIPPED):
        return False
    name = PurePosixPath(relative).name
    return not any(part in name for part in _PYARROW_SKIPPED_NAMES) and not relative.endswith(
        ".pyc"
    )


def _installed_pyarrow() -> dict[str, bytes]:
    """The running interpreter's pyarrow, file by file (relative to site-packages)."""
    dist = metadata.distribution("pyarrow")
    files = {}
    for entry in dist.files or ():
        relative = entry.as_posix()
        if relative.startswith(("pyarrow/", "pyarrow-")) and _keep_pyarrow_file(relative):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                files[relative] = path.read_bytes()
    return files


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: archive.read(name)
            for name in archive.namelist()
            if not name.endswith("/") and _keep_pyarrow_file(name)
        }


def default_wheel_cache() -> Path:
    """Where downloaded wheels are kept: ``$XDG_CACHE_HOME/xrd-bravais/wheels``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xrd-bravais" / "wheels"


def _find_wheel(folder: Path, version: str, tag: str) -> Path | None:
    pattern = f"pyarrow-{version}-{tag}-{tag}-*x86_64.whl"
    found = sorted(p for p in folder.glob(pattern) if "linux" in p.name)
    return found[-1] if found else None


def check_python_version(text: str) -> str:
    """``text`` if it names a Python release as ``3.12`` does, else an :class:`ExportError`."""
    if not re.fullmatch(r"3\.\d{1,2}", text):
        raise ExportError([f"--python {text!r} is not a Python version such as 3.12 (the "
                           "Python of the scoring image)"])  # fmt: skip
    return text


def pyarrow_for_image(
    python_version: str = IMAGE_PYTHON,
    wheelhouse: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    version: str = IMAGE_PYARROW,
    notify: Callable[[str], None] | None = None,
) -> tuple[dict[str, bytes], str]:
    """The pyarrow files the scoring program needs on ``python_version`` (Linux, x86-64).

    The running interpreter's own pyarrow where it is that version for that
    Python; else a wheel from ``wheelhouse``, else from ``cache``, else one that
    ``pip download`` puts in the cache.

    Returns
    -------
    files : dict
        ``{path under vendor/: bytes}``, licence files included, tests and headers not.
    origin : str
        Where they came from.

    ``notify`` is told, before it happens, that a wheel is about to be downloaded
    and where it will be kept.

    Raises
    ------
    ExportError
        If ``python_version`` is not a version, or there is no such wheel and ``pip
        download`` fails (no network, no registry): one line that says how to fetch
        it elsewhere.
    """
    check_python_version(python_version)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    native = sys.platform == "linux" and platform.machine() == "x86_64"
    if (wheelhouse is None and python_version == running and native
            and metadata.version("pyarrow") == version):  # fmt: skip
        return _installed_pyarrow(), f"pyarrow {version} installed here (Python {running})"
    tag = _python_tag(python_version)
    fetch = (
        f"pip download pyarrow=={version} --only-binary=:all: --no-deps "
        f"--python-version {python_version} --platform {IMAGE_PLATFORM} -d WHEELS"
    )
    if wheelhouse is not None:
        wheel = _find_wheel(Path(wheelhouse), version, tag) if Path(wheelhouse).is_dir() else None
        if wheel is None:
            raise ExportError([f"no pyarrow-{version}-{tag}-*x86_64.whl in --wheelhouse "
                               f"{wheelhouse}; get it with: {fetch}"])  # fmt: skip
        return _wheel_files(wheel), wheel.name
    cache_dir = Path(cache) if cache is not None else default_wheel_cache()
    wheel = _find_wheel(cache_dir, version, tag) if cache_dir.is_dir() else None
    if wheel is None:
        if notify is not None:
            notify(f"Downloading the pyarrow {version} wheel for Python {python_version} "
                   f"(Linux x86-64, about 40 MB) into {cache_dir} with pip; pass --wheelhouse "
                   "DIR to use a wheel you already have")  # fmt: skip
        cache_dir.mkdir(parents=True, exist_ok=True)
        # No retries and a short timeout: without a registry, fail in seconds, not minutes.
        command = [sys.executable, "-m", "pip", "download", f"pyarrow=={version}", "--no-deps",
                   "--only-binary=:all:", "--python-version", python_version,
                   "--platform", IMAGE_PLATFORM, "--dest", str(cache_dir), "--quiet",
                   "--retries", "0", "--timeout", "20", "--disable-pip-version-check"]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=600)  # fmt: skip
            output = done.stderr or done.stdout
        except subprocess.TimeoutExpired:
            done, output = None, "pip took more than 10 minutes"
        wheel = _find_wheel(cache_dir, version, tag)
        if done is None or done.returncode != 0 or wheel is None:
            raise ExportError([f"could not download pyarrow {version} for Python "
                               f"{python_version} ({_pip_reason(output)}); on a machine with "
                               f"network run: {fetch}, and pass --wheelhouse WHEELS"])  # fmt: skip
    return _wheel_files(wheel), wheel.name


def _pip_reason(output: str) -> str:
    """The one line of pip's output that says why it failed (never its traceback)."""
    lines = [ln.strip() for ln in output.splitlines()
             if ln.strip() and not ln.lstrip().startswith(("WARNING", "Traceback", "File ", "^"))]
    for line in reversed(lines):
        if line.startswith("ERROR:"):
            return line.removeprefix("ERROR:").strip()[:200]
    return lines[-1][:200] if lines else "no output"


# --------------------------------------------------------------------------- program
def _package_sources(package: str) -> dict[str, bytes]:
    """The sources of a package (dotted name), by their path under ``vendor/``.

    A subpackage brings the ``__init__.py`` of each package above it (the project's
    namespace, ``xrd_bravais``, imports nothing).
    """
    import importlib

    root = Path(importlib.import_module(package).__file__ or "").parent
    prefix = package.replace(".", "/")
    files = {f"{prefix}/{p.relative_to(root).as_posix()}": p.read_bytes()
             for p in sorted(root.rglob("*.py"))}  # fmt: skip
    parents = package.split(".")[:-1]
    for depth in range(1, len(parents) + 1):
        parent = ".".join(parents[:depth])
        init = Path(importlib.import_module(parent).__file__ or "")
        files[f"{parent.replace('.', '/')}/__init__.py"] = init.read_bytes()
    return files


def scoring_program(pyarrow_files: dict[str, bytes]) -> dict[str, bytes]:
    """``metadata.yaml``, ``score.py`` and ``vendor/`` (our packages and pyarrow)."""
    from xrd_bravais.platforms import codabench_score

    files = {
        "metadata.yaml": b"command: python3 /app/program/score.py /app/input /app/output\n",
        "score.py": Path(codabench_score.__file__).read_bytes(),
    }
    for package in _VENDORED_PACKAGES:
        files |= {f"vendor/{k}": v for k, v in _package_sources(package).items()}
    files |= {f"vendor/{k}": v for k, v in pyarrow_files.items()}
    return files


# --------------------------------------------------------------------------- reference
def _reference_data(
    competition: Path, track: Track, key: pd.DataFrame, scored: str, shown: tuple[str, ...]
) -> dict[str, bytes]:
    """One phase's reference data: its labels, every test id, a manifest to check them.

    The Development phase keeps only the Public rows' labels: its scoring program
    cannot print anything about another portion.
    """
    labelled = key[key[layout.USAGE].isin(shown)] if scored == layout.PUBLIC_PORTION else key
    solution = labelled.to_csv(index=False, lineterminator="\n").encode()
    manifest = json.loads((competition / layout.MANIFEST).read_text(encoding="utf-8"))
    reduced = {
        "task": manifest.get("task"),
        "files": {layout.SOLUTION: hashlib.sha256(solution).hexdigest()},
        "built_from": {"manifest_sha256": hashlib.sha256(
            (competition / layout.MANIFEST).read_bytes()).hexdigest()},
    }  # fmt: skip
    ids = key[[layout.ID]].to_csv(index=False, lineterminator="\n").encode()
    present = set(labelled[layout.USAGE])
    phase = {"track": track.name, "scored": scored, "shown": [p for p in shown if p in present]}
    return {
        layout.MANIFEST: json.dumps(reduced, indent=1).encode(),
        layout.SOLUTION: solution,
        "test_ids.csv": ids,
        "phase.json": json.dumps(phase, indent=1).encode(),
    }


