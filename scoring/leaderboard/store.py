"""The store: one competition's SQLite file, its schema, and the reading of it.

``<competition>/leaderboard/leaderboard.sqlite`` (stdlib :mod:`sqlite3`, WAL mode)
holds teams, every submission's bytes once (content-addressed by sha256), its
time, message, validity, scores, grader version and answer-key hash. Labels are
never stored. Writes take the database's write lock up front (``BEGIN
IMMEDIATE``), after a lock of this process's own, so concurrent writers queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Self

import pandas as pd

from scoring.leaderboard.ranking import _measured_figures
from scoring.leaderboard.rules import LeaderboardError, Rules, _parse_stamp, _stamp, utc_now
from xrd_bravais.contract import layout
from xrd_bravais.contract.tasks import Task, Track, load_task

DB_PATH: Final = Path(layout.LEADERBOARD_DB)
"""Where the store lives, relative to the competition folder (never in ``public/``)."""

MAX_MESSAGE: Final = 500

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    baseline INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    content BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    track TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES files(sha256),
    submitted_at TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    valid INTEGER NOT NULL,
    problems TEXT,
    public_accuracy REAL,
    public_macro_f1 REAL,
    private_accuracy REAL,
    private_macro_f1 REAL,
    scores TEXT,
    grader_version TEXT NOT NULL,
    answer_key_sha256 TEXT NOT NULL,
    selected INTEGER NOT NULL DEFAULT 0,
    late INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS submissions_by_team ON submissions (team_id, track, submitted_at);
CREATE TABLE IF NOT EXISTS credentials (
    selector TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('team', 'admin')),
    team_id INTEGER REFERENCES teams(id),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS finalists (
    track TEXT NOT NULL,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    PRIMARY KEY (track, submission_id)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS public_hits (
    submission_id INTEGER PRIMARY KEY REFERENCES submissions(id),
    answer_key_sha256 TEXT NOT NULL,
    hits BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    selector TEXT NOT NULL REFERENCES credentials(selector) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""

# Columns added after the first release: (table, column, declaration), added on open.
_MIGRATIONS: Final = (("teams", "removed", "INTEGER NOT NULL DEFAULT 0"),)
# The settings key holding the deadline at which the finalists were chosen.
_FROZEN_KEY: Final = "finalists_deadline"


_PROCESS_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(competition: Path) -> threading.Lock:
    """The write lock of this process for one competition's store."""
    path = Path(competition).resolve()
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(path, threading.Lock())



def _set_deadline(db: sqlite3.Connection, deadline: datetime | None) -> None:
    """Store the deadline and mark every submission at or after it late."""
    if deadline is None:
        db.execute("DELETE FROM settings WHERE key = 'deadline'")
    else:
        db.execute(
            "INSERT INTO settings (key, value) VALUES ('deadline', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_stamp(deadline),),
        )
    cut = _stamp(deadline) if deadline else None
    db.execute(
        "UPDATE submissions SET late = (? IS NOT NULL AND submitted_at >= ?)", (cut, cut)
    )


def _log(db: sqlite3.Connection, moment: datetime, action: str, detail: dict[str, Any]) -> None:
    """Add a line to the store's audit log."""
    db.execute(
        "INSERT INTO audit (at, action, detail) VALUES (?, ?, ?)",
        (_stamp(moment), action, json.dumps(detail, sort_keys=True)),
    )



class Store:
    """The store of one competition: opening it, its write lock, the rules, reading.

    The operations on it live in the classes built on this one
    (:mod:`scoring.leaderboard.closing`, :mod:`~scoring.leaderboard.boards`,
    :mod:`~scoring.leaderboard.submitting`), which
    :class:`scoring.leaderboard.Leaderboard` joins.
    """

    def __init__(self, competition: Path, connection: sqlite3.Connection) -> None:
        self.competition = competition
        self.connection = connection
        self.task: Task = load_task(competition)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, competition: str | os.PathLike[str]) -> Self:
        """Open (creating if needed) the store of a built competition.

        Raises
        ------
        LeaderboardError
            If the folder is not a built competition.
        """
        root = Path(competition)
        if not layout.Layout(root).is_built():
            raise LeaderboardError(f"{root} is not a built competition (no manifest.json)")
        path = root / DB_PATH
        # Owner-only: the store holds Private scores and every team's files.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        if not (os.access(path, os.R_OK | os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
            # SQLite would say "attempt to write a readonly database" much later.
            raise LeaderboardError(
                f"cannot write the store {path} (permission denied): run the command as the "
                f"user who owns {root}, or ask them for access"
            )
        # Long busy timeout: concurrent submitters queue on the write lock.
        connection = sqlite3.connect(path, timeout=120, isolation_level=None)
        connection.row_factory = sqlite3.Row
        board = cls(root, connection)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # Another process may be switching it at the same moment; either way it
                # ends WAL.
                with contextlib.suppress(sqlite3.OperationalError):
                    connection.execute("PRAGMA journal_mode = WAL")
            with board._write():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    connection.execute(statement)
                for table, column, declaration in _MIGRATIONS:
                    have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        connection.execute(
                            f"ALTER TABLE {table} ADD COLUMN {column} {declaration}"
                        )
        except sqlite3.DatabaseError as err:
            connection.close()
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                raise LeaderboardError(f"{path} is locked by another process: {err}") from None
            raise LeaderboardError(
                f"{path} is not a readable leaderboard ({err}); it may be damaged: restore it "
                "from a backup, or move it away to start an empty one"
            ) from None
        return board

    def close_connection(self) -> None:
        """Close the database connection."""
        self.connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the database's write lock up front.

        Threads of one process (a web server's) queue on a lock of their own first:
        SQLite's busy handler would make them poll the file lock with sleeps of up to
        100 ms, which is where a busy server's slowest answers came from.
        """
        with _process_lock(self.competition):
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    # ------------------------------------------------------------------ rules
    @property
    def rules(self) -> Rules:
        """The rules now in force."""
        rows = dict(self.connection.execute("SELECT key, value FROM settings").fetchall())
        defaults = Rules()
        deadline = rows.get("deadline")
        return Rules(
            daily_quota=int(rows.get("daily_quota", defaults.daily_quota)),
            invalid_daily_quota=int(rows.get("invalid_daily_quota", defaults.invalid_daily_quota)),
            max_selected=int(rows.get("max_selected", defaults.max_selected)),
            deadline=_parse_stamp(deadline) if deadline else None,
            public_board=rows.get("public_board", defaults.public_board),
        )

    def is_closed(self, now: datetime | None = None) -> bool:
        """Whether the deadline has passed."""
        return self.rules.is_closed(now or utc_now())

    def team_names(self) -> list[str]:
        """Every team and baseline name."""
        return [row[0] for row in self.connection.execute("SELECT name FROM teams ORDER BY id")]

    # ------------------------------------------------------------------ reading
    def submissions(
        self, track: str | Track | None = None, *, removed: bool = False
    ) -> pd.DataFrame:
        """Every stored submission of a track (grader view: includes hidden columns).

        Teams removed by the organisers (``xrd-bravais teams remove``) are left out
        (their rows stay in the store, off every board), unless ``removed`` asks for
        them: then a ``removed`` column marks them (the organisers' export).
        ``measured_accuracy`` and ``measured_macro_f1`` (from the stored scores; NaN
        where the competition has no Measured portion) follow the Private ones, then
        ``measured_public_accuracy`` and ``measured_public_macro_f1`` (the
        MeasuredPublic portion).
        """
        spec = self.task.track(track)
        frame = pd.read_sql_query(
            "SELECT s.id AS submission_id, t.name AS team, t.baseline, s.track, s.sha256, "
            "s.submitted_at, s.message, s.valid, s.public_accuracy, s.public_macro_f1, "
            "s.private_accuracy, s.private_macro_f1, s.scores, s.selected, s.late, "
            "s.grader_version, s.answer_key_sha256, t.removed "
            "FROM submissions s JOIN teams t ON t.id = s.team_id "
            "WHERE s.track = ? AND (t.removed = 0 OR ?) ORDER BY s.id",
            self.connection,
            params=(spec.name, int(removed)),
        )
        if not removed:
            frame = frame.drop(columns="removed")
        at = frame.columns.get_loc("private_macro_f1") + 1
        for key in ("measured", "measured_public"):
            figures = [_measured_figures(scores, key) for scores in frame["scores"]]
            frame.insert(at, f"{key}_accuracy", [m[0] for m in figures])
            frame.insert(at + 1, f"{key}_macro_f1", [m[1] for m in figures])
            at += 2
        return frame

    def file(self, sha256: str) -> bytes:
        """The stored bytes of a submission file."""
        row = self.connection.execute(
            "SELECT content FROM files WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is None:
            raise LeaderboardError(f"no stored file with sha256 {sha256}")
        content: bytes = bytes(row[0])
        return content

