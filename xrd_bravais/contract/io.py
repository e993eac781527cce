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
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from xrd_bravais.contract import layout

PROTECTED: Final = (layout.PRIVATE, layout.LEADERBOARD, layout.MANIFEST)
"""What no command writes over at a user's request, even with ``--force``: a
competition's ``private/`` (the answer key), ``leaderboard/`` (the store of every
submission) and its ``manifest.json``."""


class OutputError(ValueError):
    """A path a command was asked to write to would replace or damage something."""


def protected_part(target: str | Path) -> str | None:
    """What of a built competition ``target`` would overwrite, or ``None``.

    Links are followed, so a link that points into ``private/`` is caught too.
    Every folder above ``target`` that holds a ``manifest.json`` counts as a
    competition.
    """
    real = Path(os.path.realpath(target))
    for root in real.parents:
        if not (root / layout.MANIFEST).is_file():
            continue
        parts = real.relative_to(root).parts
        if parts and (parts[0] in PROTECTED[:2] or parts == (layout.MANIFEST,)):
            return f"{root}/{parts[0]}"
    return None


def check_output(target: str | Path, *, force: bool = False, folder: bool = False) -> Path:
    """Refuse to write ``target`` where it would replace something; return it.

    Parameters
    ----------
    target : path
        The file (or, with ``folder``, the folder) a command is about to write.
    force : bool
        Replace an existing file (never a protected one).
    folder : bool
        ``target`` is a folder to fill: it must be new or empty (``force`` does
        not change that; the caller decides what an earlier output may be).

    Raises
    ------
    OutputError
        If ``target`` lies in a competition's ``private/`` or ``leaderboard/`` or is
        its manifest (whatever ``force`` says), is a folder where a file is
        expected, or exists and ``force`` is not given.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "kit.zip"
    >>> check_output(out) == out
    True
    """
    target = Path(target)
    inside = protected_part(target)
    if inside is not None:
        raise OutputError(
            f"refusing to write {target}: it is inside {inside}, which holds the "
            "competition's answer key, submissions or manifest; write it somewhere else"
        )
    if folder:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise OutputError(f"--out {target} exists and is not an empty folder; give a new one")
        return target
    if target.is_dir():
        raise OutputError(f"--out {target} is a folder; give the path of the file to write")
    if (target.exists() or target.is_symlink()) and not force:
        raise OutputError(
            f"--out {target} exists; pass --force to replace it, or give another path"
        )
    return target


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


PRIVATE_MODE: Final = 0o600
"""Files (and zip members) that hold hidden labels, hidden scores or secrets: owner only."""


def zip_member(name: str, private: bool = False) -> zipfile.ZipInfo:
    """A reproducible zip entry: stamped :data:`ZIP_TIME`, deflated, 0644 or 0600.

    ``private`` members (hidden labels, scores, secrets) unpack owner-only, as
    ``private/`` does on disk.
    """
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (PRIVATE_MODE if private else 0o644) << 16
    return info


def atomic_write_zip(
    target: str | Path,
    files: dict[str, bytes],
    mode: int | None = None,
    private: tuple[str, ...] = (),
) -> None:
    """Write ``{path in zip: bytes}`` as a deflated zip, atomically and reproducibly.

    Members are sorted and stamped :data:`ZIP_TIME`; those whose path starts with
    one of ``private`` are stored owner-only (0600), the others readable by all
    (0644). A zip with private members should itself be written with ``mode=0o600``.
    """
    with atomic_path(target, mode) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name in sorted(files):
            archive.writestr(zip_member(name, name.startswith(private) if private else False),
                             files[name])  # fmt: skip


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
