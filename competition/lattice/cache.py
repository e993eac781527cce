"""On-disk cache of per-structure results, so that a killed build resumes.

Results are stored in one SQLite file keyed by a hash of (entry id, CIF text,
the settings that shape a result). Every result is committed as it arrives, so
a build killed at any point restarts with everything finished before the kill;
SQLite's journal guarantees the file is never left half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from xrd_bravais.contract.moved import load_pickle

DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xrd-bravais"
"""Where caches live unless ``--cache-dir`` says otherwise (``$XDG_CACHE_HOME/xrd-bravais``)."""


BUSY_TIMEOUT = 300.0
"""Seconds a build waits for another build's hold on the cache before giving up."""


def result_key(entry_id: str, text: str, settings_key: str) -> str:
    """Cache key of one structure's result."""
    digest = hashlib.sha256()
    for part in (entry_id, settings_key, text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


class ResultCache:
    """A key -> pickled-result store in SQLite, shared safely by concurrent builds.

    Use as a context manager. Every :meth:`put` is its own transaction that takes
    the write lock before anything else, so a build holds the lock no longer than
    one insert and never has to upgrade a read to a write: SQLite answers such an
    upgrade with "database is locked" at once, without waiting, when another
    build has written in between.

    Parameters
    ----------
    path : Path
        The SQLite file (created with its folder if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None

    def __enter__(self) -> ResultCache:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Owner-only: it holds the label of every structure, test entries included.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        # Builds running at the same time share the cache: each waits for the other's
        # insert instead of failing on the lock.
        self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._con.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                # Switching the journal mode needs the file to itself for a moment; a
                # build that opens the cache at that very moment tries again.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # In WAL mode NORMAL still survives a crash of the process; only an OS
        # crash may lose the last inserts, which the build then recomputes.
        self._con.execute("PRAGMA synchronous=NORMAL")
        with self._write():
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, payload BLOB NOT NULL)"
            )
        return self

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction that takes the write lock first (waiting for it).

        A statement that reads and then writes in WAL mode gets "database is locked"
        at once, without waiting, if another build wrote in between; taking the
        lock up front (``BEGIN IMMEDIATE``) waits instead.
        """
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> sqlite3.Connection:
        """The open connection (inside the ``with`` block only)."""
        if self._con is None:
            raise RuntimeError("ResultCache is used outside its `with` block")
        return self._con

    def get(self, key: str) -> Any | None:
        """The stored result for ``key``, or ``None``."""
        # fetchall() finishes the statement, so no read transaction stays open.
        rows = self.con.execute("SELECT payload FROM results WHERE key = ?", (key,)).fetchall()
        # Results cached before a module moved load under its current name.
        return load_pickle(rows[0][0]) if rows else None

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (committed at once)."""
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with self._write():
            self.con.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (key, blob))

    def __len__(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM results").fetchall()[0][0])
