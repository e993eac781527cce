"""Crash-safe file writing and hashing.

Every file of a build is written to a temporary name in its final folder and then
renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a
crash or a kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` on success.

    The caller writes the temporary file with any library (pyarrow, matplotlib);
    if the block raises, the temporary file is removed and ``target`` is untouched.
    ``mode`` sets the file's permissions (e.g. ``0o600`` for private material);
    by default those of a plain ``open()`` under the process umask.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open()
        # would, so that public files can be shared from a course server.
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``target`` atomically (``mode``: see :func:`atomic_path`)."""
    with atomic_path(target, mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, mode: int | None = None) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically, keeping its line endings."""
    atomic_write_bytes(target, text.encode("utf-8"), mode)


ZIP_TIME = (2020, 1, 1, 0, 0, 0)
"""The time stamp of every zip member: the same files give the same zip bytes."""


def atomic_write_zip(target: str | Path, files: dict[str, bytes], mode: int | None = None) -> None:
    """Write ``{path in zip: bytes}`` as a deflated zip, atomically and reproducibly.

    Members are sorted, stamped :data:`ZIP_TIME` and readable by all (0644).
    """
    import zipfile

    with atomic_path(target, mode) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
