"""The installed ``xrd-bravais`` as a wheel, so a kit installs on a machine without it.

``xrd-bravais`` is on no package index: a student's ``pip install -r requirements.txt``
could not find it. The kit therefore carries the organiser's own installation as a
wheel (:func:`project_wheel`) and names it by relative path in ``requirements.txt``;
pip installs it, and its dependencies from the index, like any other wheel.

The wheel is assembled from the installed packages' files, as a wheel builder would
write them (PEP 427: the packages, ``METADATA``, ``WHEEL``, ``entry_points.txt`` and a
``RECORD`` of sha256 digests). It works for an editable install too, where no built
wheel exists, and gives the same bytes for the same installed code.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import io
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Final

from xrd_bravais.contract.io import zip_member

DISTRIBUTION: Final = "xrd-bravais"
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo", ".so")


def wheel_name(version: str | None = None) -> str:
    """The wheel's file name, ``xrd_bravais-<version>-py3-none-any.whl``."""
    version = version or metadata.version(DISTRIBUTION)
    return f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl"


def _package_files(package: str) -> dict[str, bytes]:
    """Every file of an installed package (sources and package data), by wheel path."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the package {package!r} of {DISTRIBUTION} is not installed")
    root = Path(spec.origin).parent
    return {
        f"{package}/{path.relative_to(root).as_posix()}": path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.suffix not in _SKIPPED_SUFFIXES
    }


def _metadata_text(dist: metadata.Distribution) -> str:
    """``METADATA``: name, version, summary, Python and every requirement with its extra."""
    meta = dist.metadata
    lines = ["Metadata-Version: 2.1", f"Name: {meta['Name']}", f"Version: {dist.version}"]
    for field in ("Summary", "License", "Requires-Python"):
        if meta.get(field):
            lines.append(f"{field}: {meta[field]}")
    requires = dist.requires or []
    extras = sorted({r.split('extra == "', 1)[1].split('"', 1)[0]
                     for r in requires if 'extra == "' in r})  # fmt: skip
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


@functools.lru_cache(maxsize=1)
def project_wheel() -> tuple[str, bytes]:
    """The installed ``xrd-bravais`` as ``(file name, wheel bytes)``.

    Returns
    -------
    tuple of (str, bytes)
        The wheel's name and content: every package the distribution installs
        (``top_level.txt``), its metadata, the ``xrd-bravais`` command.

    Raises
    ------
    FileNotFoundError
        If the distribution or one of its packages is not installed.
    """
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"{DISTRIBUTION} is not installed: cannot carry it") from None
    packages = (dist.read_text("top_level.txt") or "").split()
    files: dict[str, bytes] = {}
    for package in packages:
        files |= _package_files(package)
    info = f"{DISTRIBUTION.replace('-', '_')}-{dist.version}.dist-info"
    files[f"{info}/METADATA"] = _metadata_text(dist).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: xrd-bravais starter-kit\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    files[f"{info}/top_level.txt"] = ("\n".join(packages) + "\n").encode()
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = f"{info}/RECORD"
    lines = [_record_line(path, data) for path, data in sorted(files.items())]
    files[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # The dist-info folder last, as wheel builders write it.
        for path in sorted(files, key=lambda p: (p.startswith(info), p)):
            archive.writestr(zip_member(path), files[path])
    return wheel_name(dist.version), buffer.getvalue()
