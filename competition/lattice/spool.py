"""Patterns kept on disk between the per-structure stage and the write.

A build of 155,000 structures makes 2.6 GB of float32 patterns (and more with
``--draws``); holding them until the splits are known would make the build's
memory grow with its size. :class:`PatternSpool` appends every accepted
structure's patterns and reflections to two flat files in a temporary folder as
results arrive, and keeps in memory only where each one starts. The records that
go on through deduplication, balancing and splitting are light (their arrays are
``None``); the write reads the rows back a block at a time, in whatever order the
files need (:class:`RowView`).

Rows are read with ``os.pread`` rather than a memory map: a map's pages count in
the process's resident memory once touched, and the write touches every row.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from competition.lattice.worker import StructureRecord
from xrd_bravais.contract.layout import STICK_COLUMNS

BLOCK: Final = 2048
"""Rows read, screened or written at a time: 2,048 x 4,251 float32 is 35 MB."""
_FLOAT: Final = np.dtype(np.float32)


PREFIX: Final = "xrd-bravais-spool-"


def _remove_orphans(parent: Path) -> None:
    """Remove the spools of builds that were killed (their process is gone).

    A spool is removed when its build ends, even on an exception; only a killed
    process (SIGKILL, a power cut) leaves one, gigabytes for a large build.
    """
    for folder in parent.glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # another user's process: alive


class PatternSpool:
    """An append-only store of patterns (one or more draws) and reflections per entry.

    Use as a context manager: the files live in a temporary folder (under
    ``folder``, default the system's temporary folder) removed on exit.

    Parameters
    ----------
    n_points : int
        Points of a pattern on the build's grid.
    folder : path, optional
        Where to make the temporary folder (it needs about 17 KB per pattern).
    """

    def __init__(self, n_points: int, folder: str | os.PathLike[str] | None = None) -> None:
        self.n_points = n_points
        self.folder = folder
        self._where: dict[str, tuple[int, int]] = {}  # entry id -> (first row, rows)
        self._sticks: dict[str, tuple[int, int]] = {}  # entry id -> (first value, rows)
        self._rows = 0
        self._values = 0
        self._dir: Path | None = None
        self._fds: tuple[int, int] | None = None

    def __enter__(self) -> PatternSpool:
        parent = Path(self.folder or tempfile.gettempdir())
        _remove_orphans(parent)
        self._dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
        flags = os.O_CREAT | os.O_RDWR | os.O_APPEND
        self._fds = tuple(os.open(self._dir / name, flags, 0o600)  # type: ignore[assignment]
                          for name in ("patterns.f32", "sticks.f32"))  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds or ():
            os.close(fd)
        self._fds = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def _open(self) -> tuple[int, int]:
        if self._fds is None:
            raise RuntimeError("PatternSpool is used outside its `with` block")
        return self._fds

    def __getitem__(self, entry_id: str) -> np.ndarray:
        """The pattern (draw 0) of ``entry_id``: a spool reads like ``{entry id: pattern}``."""
        return self.patterns([entry_id])[0]

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    @property
    def nbytes(self) -> int:
        """Bytes on disk."""
        return (self._rows * self.n_points + self._values) * _FLOAT.itemsize

    def add(self, entry_id: str, rows: np.ndarray, sticks: np.ndarray | None = None) -> None:
        """Append the patterns of one entry (shape ``(n_points,)`` or ``(draws, n_points)``)."""
        rows = np.ascontiguousarray(np.atleast_2d(rows), dtype=_FLOAT)
        if rows.shape[1] != self.n_points:
            raise ValueError(f"{entry_id}: {rows.shape[1]} points, not {self.n_points}")
        if entry_id in self._where:
            raise ValueError(f"{entry_id} is already in the spool")
        patterns_fd, sticks_fd = self._open
        os.write(patterns_fd, rows.tobytes())
        self._where[entry_id] = (self._rows, len(rows))
        self._rows += len(rows)
        if sticks is not None:
            table = np.ascontiguousarray(sticks, dtype=_FLOAT).reshape(-1, len(STICK_COLUMNS))
            os.write(sticks_fd, table.tobytes())
            self._sticks[entry_id] = (self._values, len(table))
            self._values += table.size

    def keep(self, record: StructureRecord) -> StructureRecord:
        """Append a record's arrays and return it without them (the light record)."""
        if record.pattern is None or record.entry_id in self._where:
            return dataclasses.replace(record, pattern=None, sticks=None, extra_draws=None)
        rows = record.pattern[None, :]
        if record.extra_draws is not None:
            rows = np.concatenate([rows, np.atleast_2d(record.extra_draws)])
        self.add(record.entry_id, rows, record.sticks)
        return dataclasses.replace(record, pattern=None, sticks=None, extra_draws=None)

    def draws(self, entry_id: str) -> int:
        """How many draws of ``entry_id`` are kept."""
        return self._where[entry_id][1]

    def patterns(self, entry_ids: Sequence[str], draws: Sequence[int] | None = None) -> np.ndarray:
        """The patterns of ``entry_ids`` (draw ``draws[i]``, default 0), shape (n, n_points)."""
        fd = self._open[0]
        width = self.n_points * _FLOAT.itemsize
        out = np.empty((len(entry_ids), self.n_points), dtype=_FLOAT)
        draws = [0] * len(entry_ids) if draws is None else draws
        positions = []
        for entry, draw in zip(entry_ids, draws, strict=True):
            first, n = self._where[entry]
            if not 0 <= int(draw) < n:
                raise KeyError(f"{entry} has {n} draw(s), not a draw {draw}")
            positions.append(first + int(draw))
        # Read in file order (sequential on disk), put back in the order asked.
        for k in np.argsort(positions, kind="stable"):
            out[k] = np.frombuffer(os.pread(fd, width, positions[k] * width), dtype=_FLOAT)
        return out

    def sticks(self, entry_id: str) -> np.ndarray:
        """The reflections of ``entry_id``, shape (n, len(STICK_COLUMNS)), float32."""
        first, n = self._sticks[entry_id]
        size = n * len(STICK_COLUMNS) * _FLOAT.itemsize
        data = os.pread(self._open[1], size, first * _FLOAT.itemsize)
        return np.frombuffer(data, dtype=_FLOAT).reshape(n, len(STICK_COLUMNS))


class RowView:
    """The patterns of a list of rows, read from a spool when indexed.

    Behaves like a read-only 2D array for ``len``, ``shape``, an integer, a slice
    or an integer array: enough for code written for arrays to screen or plot a
    build's rows a block at a time.
    """

    def __init__(self, spool: PatternSpool, entry_ids: Iterable[str],
                 draws: Iterable[int] | None = None) -> None:  # fmt: skip
        self.spool = spool
        self.entry_ids = np.asarray(list(entry_ids), dtype=object)
        self.draws = (np.zeros(len(self.entry_ids), dtype=np.int64) if draws is None
                      else np.asarray(list(draws), dtype=np.int64))  # fmt: skip

    def __len__(self) -> int:
        return len(self.entry_ids)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, points)``, as an array's."""
        return len(self), self.spool.n_points

    def __getitem__(self, index: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.spool.patterns([self.entry_ids[index]], [int(self.draws[index])])[0]
        ids, draws = self.entry_ids[index], self.draws[index]
        return self.spool.patterns(list(ids), [int(d) for d in draws])

    def blocks(self, size: int = BLOCK) -> Iterable[np.ndarray]:
        """The rows ``size`` at a time, in order."""
        for start in range(0, len(self), size):
            yield self[start:start + size]
