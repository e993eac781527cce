"""On-disk cache of per-structure results, so that a killed build resumes.

Results are stored in one SQLite file keyed by a hash of (entry id, CIF text,
the settings that shape a result). The build commits every few results, so a
build killed at any point restarts with everything committed before the kill;
SQLite's journal guarantees the file is never left half-written.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Any

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
    """A key -> pickled-result store in SQLite, written by one process.

    Use as a context manager; :meth:`put` commits at most every
    ``commit_every`` seconds and on exit.

    Parameters
    ----------
    path : Path
        The SQLite file (created with its folder if missing).
    commit_every : float
        Seconds between commits while results arrive. The default, 0, commits
        every result: an open write transaction would hold the lock that other
        builds sharing the cache wait on, for as long as the next result takes.
    """

    def __init__(self, path: str | Path, commit_every: float = 0.0) -> None:
        self.path = Path(path)
        self.commit_every = commit_every
        self._con: sqlite3.Connection | None = None
        self._last_commit = 0.0

    def __enter__(self) -> ResultCache:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Owner-only: it holds the label of every structure, test entries included.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        # Builds running at the same time share the cache: each waits for the other's
        # commit (at most ``commit_every`` apart) instead of failing on the lock.
        self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)
        self._con.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL still survives a crash of the process; only an OS
        # crash may lose the last commits, which the build then recomputes.
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, payload BLOB NOT NULL)"
        )
        self._con.commit()
        self._last_commit = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._con is not None:
            self._con.commit()
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
        row = self.con.execute("SELECT payload FROM results WHERE key = ?", (key,)).fetchone()
        return None if row is None else pickle.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (committed within ``commit_every`` seconds)."""
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.con.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (key, blob))
        if time.monotonic() - self._last_commit >= self.commit_every:
            self.con.commit()
            self._last_commit = time.monotonic()

    def __len__(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM results").fetchone()[0])
