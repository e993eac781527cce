"""The output folder of a build: what may be written over, the lock, the unfinished mark.

Shared by both tasks' builds. A folder is written only when it is new, empty, an
earlier build (replaced file by file), or an unfinished one; a competition in use
(a leaderboard, baselines, submissions, files the build did not write) is replaced
only with ``--force``. While a build writes, it holds a lock on the folder and
marks it :data:`UNFINISHED`, so a stopped write is resumed by running it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from xrd_bravais.contract.io import atomic_write_text
from xrd_bravais.contract.layout import BUILT_FOLDERS, LIVE_FOLDERS, MANIFEST


class BuildError(RuntimeError):
    """The build cannot go on (bad output folder, nothing accepted ...)."""


UNFINISHED: Final = ".unfinished-build"
"""The mark of a build whose write phase has begun and not ended: while it is there,
the folder's files are the build's own (an earlier build's being replaced), so any
later build may write over them without ``--force``; the folder has no manifest, so
no grader takes it for a competition."""
# Owner-only modes for the answer key and the provenance that identifies test rows.
PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600


def check_out_dir(out: Path, files: tuple[str, ...], force: bool = False) -> list[Path]:
    """Refuse an unsuitable output folder; return what a forced rebuild must remove.

    ``files`` are those the build writes besides ``manifest.json``.

    Raises
    ------
    BuildError
        If ``out`` is a file (or below one), a non-empty folder that holds no
        earlier build, or an earlier build that is in use (a leaderboard,
        baselines, submissions or files the build did not write) and ``force``
        is not given.
    """
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise BuildError(f"--out {out}: {parent} is a file, not a folder; give a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return []
    if not (out / MANIFEST).is_file() and not (out / UNFINISHED).is_file():
        raise BuildError(
            f"--out {out} is not empty and holds no earlier build (no manifest.json); "
            "choose an empty or new folder so nothing of yours is overwritten"
        )
    stale = foreign_entries(out, files)
    if stale and not force:
        shown = ", ".join(p.relative_to(out).as_posix() for p in stale[:5])
        more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
        raise BuildError(
            f"--out {out} holds a competition in use ({shown}{more}): a rebuild makes a new "
            "answer key, so stored scores, baselines and files made for the old one would "
            "mix with the new; build into a new folder, or pass --force to delete them "
            "and rebuild"
        )
    return stale


def foreign_entries(out: Path, files: tuple[str, ...]) -> list[Path]:
    """What a rebuild at ``out`` would not write: live folders, added or amended files."""
    found = [out / name for name in LIVE_FOLDERS if (out / name).exists()]
    expected = {MANIFEST, UNFINISHED, *files}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if any(path.is_relative_to(f) for f in found):
            continue
        if path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an interrupted write's leftover: removed by any rebuild
        added_file = not path.is_dir() and relative not in expected
        # Folders beside the build's own; within them, their files count one by one.
        added_folder = path.is_dir() and relative.split("/")[0] not in BUILT_FOLDERS
        if added_file or added_folder:
            found.append(path)
    return found


def begin_writing(out: Path, task: str) -> None:
    """Mark ``out`` as a build being written (:data:`UNFINISHED`), then drop its manifest.

    From here until :func:`end_writing`, an interruption leaves a folder that the
    same command (or any build) resumes: "run it again" is true at every moment.
    """
    note = {"task": task, "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(out / UNFINISHED, json.dumps(note) + "\n")
    # An earlier build's manifest goes first: if writing fails half-way, the folder
    # has no manifest and so is not taken for a complete build.
    (out / MANIFEST).unlink(missing_ok=True)


def end_writing(out: Path) -> None:
    """The build at ``out`` is complete (its manifest is written): drop the mark."""
    (out / UNFINISHED).unlink(missing_ok=True)


def remove(paths: list[Path], out: Path) -> None:
    """Delete ``paths``, then the folders this leaves empty inside the build's folders."""
    built = {out / name for name in BUILT_FOLDERS}
    parents = set()
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        parents.update(p for p in path.parents if any(p.is_relative_to(b) for b in built))
    for folder in sorted(parents - built, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder while a build writes to it.

    Two builds into one folder would interleave their files; the second is
    refused at once. The lock is the kernel's (``flock`` on the folder itself),
    so it leaves no file behind and dies with the process that held it.
    """
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(
                f"another build is writing to {out} right now; wait for it to finish, "
                "or build into another folder"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock



def leftovers(out: Path) -> list[Path]:
    """Temporary files that an interrupted write left in the build's folders."""
    return [p for folder in BUILT_FOLDERS for p in (out / folder).glob(".*.tmp")]


