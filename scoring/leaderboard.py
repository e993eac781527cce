"""The leaderboard: a SQLite store of teams and submissions beside the competition.

``<competition>/leaderboard/leaderboard.sqlite`` (stdlib :mod:`sqlite3`, WAL mode)
holds teams, every submission's bytes once (content-addressed by sha256), its
time, message, validity, scores, grader version and answer-key hash. Labels are
never stored. Each submission is checked against the quotas and written in one
``BEGIN IMMEDIATE`` transaction, so concurrent submitters never exceed a quota
and nothing is lost.

Phases: before the deadline only Public scores leave this module through
student-facing functions (:meth:`Leaderboard.submit`'s receipt and
:meth:`Leaderboard.public_board`); :meth:`Leaderboard.private_board` refuses
until :meth:`Leaderboard.close` has frozen the competition. Later submissions are
kept as *late*: scored, never ranked.

The final ranking is a function of the first close alone: when the deadline passes,
the submissions that count for each team (its picks, or its best Public ones) are
written to the ``finalists`` table once, and the Private and Measured boards rank
those. Closing a closed competition is refused; only an explicit reopen (logged in
the ``audit`` table with what it changed) moves a passed deadline, turns late
submissions into on-time ones and lets the finalists be chosen again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from contract import layout
from contract.tasks import Task, Track, load_task
from scoring.grade import GRADER_VERSION, AnswerKey, GradeResult, grade, load_answer_key
from scoring.metrics import Scores
from scoring.submission import (
    SubmissionError,
    SubmissionInput,
    read_submission_bytes,
    size_limit,
)

DB_PATH: Final = Path(layout.LEADERBOARD_DB)
"""Where the store lives, relative to the competition folder (never in ``public/``)."""

MAX_TEAM_NAME: Final = 64
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


def competition_rules(competition: str | os.PathLike[str]) -> Rules:
    """The rules of a competition: its store's, or the defaults where it has no store yet.

    Reads without creating a store, so a build that no grader has opened stays as built.
    """
    root = Path(competition)
    if not (root / DB_PATH).is_file():
        return Rules()
    with Leaderboard.open(root) as board:
        return board.rules


class LeaderboardError(RuntimeError):
    """A request the leaderboard refuses (unknown team, closed competition, ...)."""


class QuotaExceeded(LeaderboardError):
    """The team has used today's submissions; nothing was stored."""


@dataclass(frozen=True)
class Rules:
    """Competition rules kept in the store.

    Attributes
    ----------
    daily_quota : int
        Valid submissions per team, track and UTC day.
    invalid_daily_quota : int
        Invalid submissions per team, track and UTC day (kept apart so a student
        fixing a file does not lose scored submissions).
    max_selected : int
        Submissions a team may pick for the private leaderboard.
    deadline : datetime or None
        When the competition closes (UTC); ``None`` while open-ended.
    """

    daily_quota: int = 5
    invalid_daily_quota: int = 20
    max_selected: int = 2
    deadline: datetime | None = None

    def is_closed(self, now: datetime) -> bool:
        """Whether ``now`` is at or after the deadline."""
        return self.deadline is not None and now >= self.deadline


@dataclass(frozen=True)
class Receipt:
    """What a team learns from a submission: never anything from Private rows.

    Attributes
    ----------
    submission_id : int
    team : str
    track : str
    sha256 : str
        Hex digest of the file as stored.
    submitted_at : datetime
    valid : bool
    problems : tuple of str
        The validator's findings when not valid.
    notices : tuple of str
    public : Scores or None
        Public-portion scores of a valid submission.
    quota_left : int or None
        Valid submissions left today (None for baselines).
    quota_resets_at : datetime
        Next midnight UTC.
    late : bool
        Sent after the deadline: scored, not ranked.
    """

    submission_id: int
    team: str
    track: str
    sha256: str
    submitted_at: datetime
    valid: bool
    problems: tuple[str, ...]
    notices: tuple[str, ...]
    public: Scores | None
    quota_left: int | None
    quota_resets_at: datetime
    late: bool


@dataclass(frozen=True)
class TeamSubmission:
    """A stored submission as its team may see it: Public scores only.

    Attributes
    ----------
    submission_id : int
    team, track, sha256 : str
    submitted_at : datetime
    message : str
    valid : bool
    problems : tuple of str
        Every problem the validator found, for an invalid file.
    public : Scores or None
        Public-portion scores of a valid submission.
    selected, late : bool
    """

    submission_id: int
    team: str
    track: str
    sha256: str
    submitted_at: datetime
    message: str
    valid: bool
    problems: tuple[str, ...]
    public: Scores | None
    selected: bool
    late: bool


@dataclass(frozen=True)
class Change:
    """How one stored submission's scores moved in a rescore."""

    submission_id: int
    team: str
    track: str
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class Quota:
    """Submissions a team has left today on one track.

    Attributes
    ----------
    valid_left : int
        Scored submissions left.
    invalid_left : int
        Invalid files the team may still send.
    resets_at : datetime
        Next midnight UTC.
    """

    valid_left: int
    invalid_left: int
    resets_at: datetime


def _used_today(
    db: sqlite3.Connection, team_id: int, track: str, moment: datetime
) -> tuple[int, int]:
    """Valid and invalid submissions of a team on a track during ``moment``'s UTC day."""
    start, end = (_stamp(t) for t in day_bounds(moment))
    used = dict(
        db.execute(
            "SELECT valid, COUNT(*) FROM submissions WHERE team_id = ? AND track = ? "
            "AND submitted_at >= ? AND submitted_at < ? GROUP BY valid",
            (team_id, track, start, end),
        ).fetchall()
    )
    return int(used.get(1, 0)), int(used.get(0, 0))


_PROCESS_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(competition: Path) -> threading.Lock:
    """The write lock of this process for one competition's store."""
    path = Path(competition).resolve()
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(path, threading.Lock())


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    # Fixed-width ISO text, so SQL string order is time order.
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


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


def day_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the UTC day holding ``moment``."""
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def clean_team_name(name: str) -> str:
    """Check a team name: 1..64 printable characters, surrounding spaces removed.

    Raises
    ------
    LeaderboardError
        If the name is empty, too long or has control characters.
    """
    name = unicodedata.normalize("NFC", name).strip()
    if not name or len(name) > MAX_TEAM_NAME:
        raise LeaderboardError(f"team name must have 1 to {MAX_TEAM_NAME} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise LeaderboardError("team name must not contain control characters")
    return name


RESERVED_NAMES: Final = (
    "random guess: uniform", "random guess: prior-matched", "random guess: majority class",
    "random guess (uniform)", "random guess (prior-matched)", "random guess (majority class)",
    "uniform", "prior", "majority", "random forest", "random-forest", "svm",
    "SVM (RBF kernel)", "xgboost", "1D-CNN", "cnn1d", "baseline", "reference",
)  # fmt: skip
"""Names of the baseline and random-guess rows: no team may take one or a look-alike."""

# Letters of other scripts drawn like Latin ones (Unicode's confusables, the ones a
# keyboard reaches), and digits that pass for letters in a name.
_CONFUSABLES: Final = str.maketrans(
    "\u0430\u0432\u0435\u0451\u0437\u0456\u0457\u0458\u043a\u04cf\u043c\u043d\u043e\u0440"
    "\u0441\u0501\u0442\u0443\u0445\u04bb\u0455\u051b\u051d\u044c\u03b1\u03b2\u03b5\u03b7"
    "\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u03f2\u013101",
    "abee3iijklmhopcdtyxhsqwbabenikvoptuxciol",
)


def name_skeleton(name: str) -> str:
    """What a name looks like, for comparing names as a reader sees them.

    Compatibility-folded, case-folded, look-alike letters mapped to Latin,
    accents, punctuation and spaces dropped.

    Examples
    --------
    >>> name_skeleton("Random Forest") == name_skeleton("r\u0430ndom-forest")  # Cyrillic a
    True
    """
    folded = unicodedata.normalize("NFKC", name).casefold().translate(_CONFUSABLES)
    stripped = "".join(c for c in unicodedata.normalize("NFKD", folded)
                       if not unicodedata.combining(c))  # fmt: skip
    return "".join(c for c in stripped if c.isalnum())


def _scripts(name: str) -> set[str]:
    """The scripts of the letters of ``name`` (first word of each Unicode name)."""
    return {unicodedata.name(c, "?").split(" ")[0] for c in name if c.isalpha()}


def check_name_is_distinct(name: str, taken: Sequence[str]) -> None:
    """Refuse a new team name that passes for a reserved or an existing one.

    Raises
    ------
    LeaderboardError
        If the name mixes Latin letters with Cyrillic or Greek ones (the usual
        homoglyph trick), or looks like a baseline, a random-guess reference or
        another team once case, accents, punctuation and look-alike letters are
        set aside.
    """
    scripts = _scripts(name)
    if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
        raise LeaderboardError(
            f"team name {name!r} mixes Latin letters with {'/'.join(sorted(scripts - {'LATIN'}))} "
            "ones that look alike; write it in one script"
        )
    skeleton = name_skeleton(name)
    if not skeleton:
        raise LeaderboardError("team name must contain letters or digits")
    for other in (*RESERVED_NAMES, *taken):
        if name_skeleton(other) == skeleton:
            what = "a baseline or reference row" if other in RESERVED_NAMES else "another team"
            raise LeaderboardError(
                f"team name {name!r} looks like {other!r} ({what}); pick a name that "
                "cannot be mistaken for it"
            )


class Leaderboard:
    """The store of one competition's submissions.

    Open it with :meth:`open`; every method runs its own short transaction, so one
    object may be used for a whole session and several processes may share the
    file.

    Examples
    --------
    >>> board = Leaderboard.open("comp")  # doctest: +SKIP
    >>> receipt = board.submit("submission.csv", team="alpha")  # doctest: +SKIP
    >>> board.public_board().head()  # doctest: +SKIP
    """

    def __init__(self, competition: Path, connection: sqlite3.Connection) -> None:
        self.competition = competition
        self.connection = connection
        self.task: Task = load_task(competition)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, competition: str | os.PathLike[str]) -> Leaderboard:
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

    def __enter__(self) -> Leaderboard:
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
        )

    def set_rules(self, **changes: Any) -> Rules:
        """Change some rules (``daily_quota=10``, ``deadline=datetime(...)``) and return them.

        Raises
        ------
        LeaderboardError
            For a negative quota, or a new deadline for a competition that has
            closed (only :meth:`close` with ``reopen=True`` moves a passed deadline).
        """
        self._ensure_frozen()
        rules = replace(self.rules, **changes)
        for name in ("daily_quota", "invalid_daily_quota", "max_selected"):
            if getattr(rules, name) < 0:
                raise LeaderboardError(f"{name} must be 0 or more")
        if rules.deadline != self.rules.deadline and self.is_closed():
            raise LeaderboardError(
                "the competition has closed and its final ranking stands; its deadline moves "
                "only by reopening it (xrd-bravais close --reopen --at ..., recorded in the "
                "audit log)"
            )
        values = {
            "daily_quota": str(rules.daily_quota),
            "invalid_daily_quota": str(rules.invalid_daily_quota),
            "max_selected": str(rules.max_selected),
        }
        with self._write() as db:
            db.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )
            if rules.deadline != self.rules.deadline:
                _set_deadline(db, rules.deadline)
        return self.rules

    def close(
        self,
        at: datetime | None = None,
        *,
        retroactive: bool = False,
        reopen: bool = False,
        now: datetime | None = None,
    ) -> Rules:
        """Freeze the competition at ``at`` (default: now).

        Submissions from that moment on are late. The private leaderboard and the
        shake-up report become available once the moment has passed, and the
        submissions that count for each team are fixed then, once.

        Parameters
        ----------
        at : datetime, optional
            The deadline (UTC); default: now.
        retroactive : bool
            Confirm a deadline in the past that turns stored on-time submissions
            into late ones (they leave both boards).
        reopen : bool
            Confirm moving the deadline of a closed competition into the future:
            its private leaderboard has already been visible. The reopen is
            recorded in the audit log with the submissions it makes on-time.
        now : datetime, optional
            The present (tests).

        Raises
        ------
        LeaderboardError
            For a closed competition (closing again changes nothing), or either
            change without its confirmation; nothing is changed.
        """
        moment = now or utc_now()
        deadline = at or moment
        if deadline.tzinfo is None:
            raise LeaderboardError("the deadline must say its time zone (UTC)")
        rules = self.rules
        if rules.is_closed(moment):
            assert rules.deadline is not None
            closed = f"{rules.deadline:%Y-%m-%d %H:%M:%S} UTC"
            if deadline <= moment:
                raise LeaderboardError(
                    f"the competition is already closed (since {closed}); closing it again "
                    "changes nothing and its final ranking stands. To take submissions again, "
                    "reopen it with a deadline in the future: xrd-bravais close --reopen "
                    "--at YYYY-MM-DDTHH:MM:SS"
                )
            if not reopen:
                raise LeaderboardError(
                    f"the competition closed at {closed} and its private leaderboard may have "
                    f"been seen; a deadline of {deadline:%Y-%m-%d %H:%M:%S} UTC would reopen "
                    "it. Confirm with --reopen (the Private scores are then no longer a fair "
                    "final test)"
                )
            return self._reopen(deadline, moment)
        if deadline < moment and not retroactive:
            (n,) = self.connection.execute(
                "SELECT COUNT(*) FROM submissions WHERE late = 0 AND submitted_at >= ?",
                (_stamp(deadline),),
            ).fetchone()
            if n:
                raise LeaderboardError(
                    f"a deadline of {deadline:%Y-%m-%d %H:%M:%S} UTC is in the past and would "
                    f"make {n} on-time submission{'s' * (n != 1)} late (removed from both "
                    "boards); confirm with --retroactive, or close now without --at"
                )
        with self._write() as db:
            if self.rules.is_closed(moment):  # closed by another process meanwhile
                raise LeaderboardError("the competition was closed meanwhile; nothing changed")
            _set_deadline(db, deadline)
            passed = deadline <= moment
            _log(db, moment, "close" if passed else "schedule", {"deadline": _stamp(deadline)})
            if passed:
                self._freeze(db)
        return self.rules

    def _reopen(self, deadline: datetime, moment: datetime) -> Rules:
        """Move a passed deadline to ``deadline`` (in the future), logging what it changes."""
        with self._write() as db:
            before = self.rules.deadline
            (n,) = db.execute(
                "SELECT COUNT(*) FROM submissions WHERE late = 1 AND submitted_at < ?",
                (_stamp(deadline),),
            ).fetchone()
            _set_deadline(db, deadline)
            db.execute("DELETE FROM finalists")
            db.execute("DELETE FROM settings WHERE key = ?", (_FROZEN_KEY,))
            _log(db, moment, "reopen", {
                "closed_at": _stamp(before) if before else None,
                "deadline": _stamp(deadline),
                "late_made_on_time": int(n),
            })  # fmt: skip
        return self.rules

    def _freeze(self, db: sqlite3.Connection) -> None:
        """Write the finalists of every track for the deadline now in force (once)."""
        rules = self.rules
        assert rules.deadline is not None
        stamp = _stamp(rules.deadline)
        row = db.execute("SELECT value FROM settings WHERE key = ?", (_FROZEN_KEY,)).fetchone()
        if row is not None and row[0] == stamp:
            return
        db.execute("DELETE FROM finalists")
        for name in self.task.track_names:
            frame = self.submissions(name)
            frame = frame[frame["late"] == 0]
            chosen = _final_candidates(frame, rules.max_selected)
            ids = chosen.loc[chosen["valid"] == 1, "submission_id"]
            db.executemany(
                "INSERT INTO finalists (track, submission_id) VALUES (?, ?)",
                [(name, int(i)) for i in ids],
            )
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_FROZEN_KEY, stamp),
        )

    def _ensure_frozen(self, now: datetime | None = None) -> None:
        """Fix the finalists if the deadline has passed and they are not fixed yet.

        A deadline set in advance passes by the clock, with no call to :meth:`close`:
        the first operation after it that reads or could change the final ranking
        fixes them, before anything else happens.
        """
        moment = now or utc_now()
        rules = self.rules
        if not rules.is_closed(moment):
            return
        assert rules.deadline is not None
        row = self.connection.execute(
            "SELECT value FROM settings WHERE key = ?", (_FROZEN_KEY,)
        ).fetchone()
        if row is not None and row[0] == _stamp(rules.deadline):
            return
        with self._write() as db:
            self._freeze(db)

    def audit_log(self) -> pd.DataFrame:
        """Every close, reopen and rescore, oldest first: ``at, action, detail``."""
        return pd.read_sql_query(
            "SELECT at, action, detail FROM audit ORDER BY id", self.connection
        )

    def is_closed(self, now: datetime | None = None) -> bool:
        """Whether the deadline has passed."""
        return self.rules.is_closed(now or utc_now())

    # ------------------------------------------------------------------ teams
    def _team_id(self, db: sqlite3.Connection, name: str, baseline: bool, now: str) -> int:
        row = db.execute(
            "SELECT id, baseline, removed FROM teams WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            taken = [r[0] for r in db.execute("SELECT name FROM teams")]
            if baseline:
                # A baseline may take a reserved name, never an existing team's look-alike.
                skeleton = name_skeleton(name)
                clash = [t for t in taken if name_skeleton(t) == skeleton]
                if clash:
                    raise LeaderboardError(f"{name!r} looks like the team {clash[0]!r}")
            else:
                check_name_is_distinct(name, taken)
            cursor = db.execute(
                "INSERT INTO teams (name, baseline, created_at) VALUES (?, ?, ?)",
                (name, int(baseline), now),
            )
            return int(cursor.lastrowid or 0)
        if bool(row["baseline"]) != baseline:
            kind = "a baseline" if row["baseline"] else "a team"
            raise LeaderboardError(f"{name!r} is already {kind}; pick another name")
        if row["removed"]:
            raise LeaderboardError(
                f"the team {name!r} was removed by the organisers; it takes no submissions"
            )
        return int(row["id"])

    def team_names(self) -> list[str]:
        """Every team and baseline name."""
        return [row[0] for row in self.connection.execute("SELECT name FROM teams ORDER BY id")]

    # ------------------------------------------------------------------ submitting
    def submit(
        self,
        submission: SubmissionInput,
        team: str,
        track: str | Track | None = None,
        message: str = "",
        *,
        baseline: bool = False,
        answer_key: AnswerKey | None = None,
        now: datetime | None = None,
    ) -> Receipt:
        """Validate, score and store a submission within the team's quota.

        Parameters
        ----------
        submission : path, bytes, binary file or DataFrame
            The CSV.
        team : str
            Team name; a new name creates the team.
        track : {"bravais", "spacegroup"}
        message : str
            A note for the team's own record (at most 500 characters).
        baseline : bool
            Store as a reference row: shown, never ranked, no quota.
        answer_key : AnswerKey, optional
            Loaded key, to avoid reading it per call.
        now : datetime, optional
            The submission time (tests); default: the clock, read inside the
            write transaction so quota days are exact.

        Returns
        -------
        Receipt
            Public scores only.

        Raises
        ------
        QuotaExceeded
            If the team has no submission left today; nothing is stored.
        AnswerKeyError
            If the answer key does not match the manifest; nothing is stored.
        """
        spec = self.task.track(track)
        name = clean_team_name(team)
        message = message.strip()[:MAX_MESSAGE]
        key = answer_key or load_answer_key(self.competition)
        problems: tuple[str, ...] = ()
        notices: tuple[str, ...] = ()
        result: GradeResult | None = None
        # Refused before reading if missing or oversize: neither stored nor counted.
        content = read_submission_bytes(submission, size_limit(len(key)))
        try:
            result = grade(content, key, spec)
            notices = result.notices
        except SubmissionError as err:
            problems, notices = tuple(err.problems), tuple(err.notices)
        digest = hashlib.sha256(content).hexdigest()
        with self._write() as db:
            moment = now or utc_now()
            stamp = _stamp(moment)
            team_id = self._team_id(db, name, baseline, stamp)
            rules = self.rules
            left = None if baseline else self._check_quota(db, team_id, spec, moment, rules, result)
            db.execute(
                "INSERT OR IGNORE INTO files (sha256, size, content) VALUES (?, ?, ?)",
                (digest, len(content), content),
            )
            late = rules.is_closed(moment)
            cursor = db.execute(
                "INSERT INTO submissions (team_id, track, sha256, submitted_at, message, valid, "
                "problems, public_accuracy, public_macro_f1, private_accuracy, private_macro_f1, "
                "scores, grader_version, answer_key_sha256, late) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    team_id, spec.name, digest, stamp, message, int(result is not None),
                    json.dumps(list(problems)) if problems else None,
                    *_score_columns(result),
                    json.dumps(result.to_dict()) if result else None,
                    GRADER_VERSION, key.sha256, int(late),
                ),
            )  # fmt: skip
            submission_id = int(cursor.lastrowid or 0)
        return Receipt(
            submission_id=submission_id,
            team=name,
            track=spec.name,
            sha256=digest,
            submitted_at=moment,
            valid=result is not None,
            problems=problems,
            notices=notices,
            public=result.public if result else None,
            quota_left=left,
            quota_resets_at=day_bounds(moment)[1],
            late=late,
        )

    def _check_quota(
        self,
        db: sqlite3.Connection,
        team_id: int,
        track: Track,
        moment: datetime,
        rules: Rules,
        result: GradeResult | None,
    ) -> int:
        n_valid, n_invalid = _used_today(db, team_id, track.name, moment)
        reset = f"resets at {day_bounds(moment)[1]:%Y-%m-%d %H:%M} UTC"
        if result is not None and n_valid >= rules.daily_quota:
            raise QuotaExceeded(
                f"daily quota reached: {n_valid} of {rules.daily_quota} valid submissions "
                f"today on the {track.name} track; it {reset}; the file was not stored"
            )
        if result is None and n_invalid >= rules.invalid_daily_quota:
            raise QuotaExceeded(
                f"too many invalid submissions today ({n_invalid} of "
                f"{rules.invalid_daily_quota}); check files with `xrd-bravais validate` first "
                f"(it is free); the limit {reset}"
            )
        return int(rules.daily_quota - n_valid - (result is not None))

    def quota(
        self, team: str, track: str | Track | None = None, now: datetime | None = None
    ) -> Quota:
        """What a team has left today on a track (the rule :meth:`submit` enforces).

        Raises
        ------
        LeaderboardError
            If there is no such team.
        """
        spec = self.task.track(track)
        moment = now or utc_now()
        row = self.connection.execute("SELECT id FROM teams WHERE name = ?", (team,)).fetchone()
        if row is None:
            raise LeaderboardError(f"no team called {team!r}")
        n_valid, n_invalid = _used_today(self.connection, int(row["id"]), spec.name, moment)
        rules = self.rules
        return Quota(
            valid_left=max(rules.daily_quota - n_valid, 0),
            invalid_left=max(rules.invalid_daily_quota - n_invalid, 0),
            resets_at=day_bounds(moment)[1],
        )

    # ------------------------------------------------------------------ selection
    def select(
        self, team: str, submission_ids: Sequence[int], track: str | Track | None = None,
        now: datetime | None = None,
    ) -> list[int]:  # fmt: skip
        """Pick the submissions that count for the private leaderboard.

        Replaces the team's earlier picks on that track. With no picks, the team's
        two best Public submissions count.

        Raises
        ------
        LeaderboardError
            Too many picks, an id that is not the team's valid, on-time submission
            on this track, or a closed competition.
        """
        spec = self.task.track(track)
        ids = sorted(set(int(i) for i in submission_ids))
        rules = self.rules
        if rules.is_closed(now or utc_now()):
            raise LeaderboardError("the competition is closed; selections are final")
        if len(ids) > rules.max_selected:
            raise LeaderboardError(
                f"at most {rules.max_selected} submissions may be selected, got {len(ids)}"
            )
        with self._write() as db:
            row = db.execute("SELECT id FROM teams WHERE name = ?", (team,)).fetchone()
            if row is None:
                raise LeaderboardError(f"no team called {team!r}")
            own = {
                r[0]
                for r in db.execute(
                    "SELECT id FROM submissions WHERE team_id = ? AND track = ? AND valid = 1 "
                    "AND late = 0",
                    (row["id"], spec.name),
                )
            }
            foreign = [i for i in ids if i not in own]
            if foreign:
                raise LeaderboardError(
                    f"submission(s) {', '.join(map(str, foreign))} are not valid on-time "
                    f"{spec.name} submissions of team {team!r}"
                )
            db.execute(
                "UPDATE submissions SET selected = (id IN (SELECT value FROM json_each(?))) "
                "WHERE team_id = ? AND track = ?",
                (json.dumps(ids), row["id"], spec.name),
            )
        return ids

    # ------------------------------------------------------------------ reading
    def submissions(
        self, track: str | Track | None = None, *, removed: bool = False
    ) -> pd.DataFrame:
        """Every stored submission of a track (grader view: includes hidden columns).

        Teams removed by the organisers (``xrd-bravais teams remove``) are left out
        (their rows stay in the store, off every board), unless ``removed`` asks for
        them: then a ``removed`` column marks them (the organisers' export).
        ``measured_accuracy`` and ``measured_macro_f1`` (from the stored scores; NaN
        where the competition has no Measured portion) follow the Private ones.
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
        measured = [_measured_figures(scores) for scores in frame["scores"]]
        at = frame.columns.get_loc("private_macro_f1") + 1
        frame.insert(at, "measured_accuracy", [m[0] for m in measured])
        frame.insert(at + 1, "measured_macro_f1", [m[1] for m in measured])
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

    def team_history(self, team: str, track: str | Track | None = None) -> pd.DataFrame:
        """A team's own submissions with Public scores only (safe to show the team)."""
        frame = self.submissions(track)
        frame = frame[frame["team"] == team]
        columns = [
            "submission_id", "submitted_at", "message", "valid",
            "public_accuracy", "public_macro_f1", "selected", "late",
        ]  # fmt: skip
        return frame[columns].reset_index(drop=True)

    def team_submission(self, team: str, submission_id: int) -> TeamSubmission:
        """One of a team's own submissions, with its Public scores only (safe to show it).

        Raises
        ------
        LeaderboardError
            If the team has no submission with that id (another team's id reads the
            same as a missing one).
        """
        if not 0 < int(submission_id) < 2**63:  # beyond SQLite's integers: no such row
            raise LeaderboardError(f"team {team!r} has no submission {submission_id}")
        row = self.connection.execute(
            "SELECT s.id, s.track, s.sha256, s.submitted_at, s.message, s.valid, s.problems, "
            "s.scores, s.selected, s.late FROM submissions s JOIN teams t ON t.id = s.team_id "
            "WHERE s.id = ? AND t.name = ? AND t.removed = 0",
            (int(submission_id), team),
        ).fetchone()
        if row is None:
            raise LeaderboardError(f"team {team!r} has no submission {submission_id}")
        scores = json.loads(row["scores"]) if row["scores"] else None
        return TeamSubmission(
            submission_id=int(row["id"]),
            team=team,
            track=row["track"],
            sha256=row["sha256"],
            submitted_at=_parse_stamp(row["submitted_at"]),
            message=row["message"],
            valid=bool(row["valid"]),
            problems=tuple(json.loads(row["problems"])) if row["problems"] else (),
            public=Scores.from_dict(scores["public"]) if scores else None,
            selected=bool(row["selected"]),
            late=bool(row["late"]),
        )

    def public_board(self, track: str | Track | None = None) -> pd.DataFrame:
        """The public leaderboard: each team's best on-time Public score.

        Returns
        -------
        pandas.DataFrame
            Columns ``rank, team, baseline, accuracy, macro_f1, accuracy_ci_low,
            accuracy_ci_high, entries, submission_id, submitted_at``; sorted by
            accuracy, macro-F1, then the earlier submission; teams without a valid
            submission last with no rank; baselines flagged and unranked.
        """
        frame = self.submissions(track)
        frame = frame[frame["late"] == 0]
        return _board(frame, "public")

    def private_board(
        self, track: str | Track | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """The final leaderboard, with the shake-up: only after the deadline.

        Each team is scored by the best Private accuracy among its selected
        submissions (or, with none selected, its two best Public ones).

        Returns
        -------
        pandas.DataFrame
            The :meth:`public_board` columns on Private scores, plus
            ``public_rank``, ``change`` (places gained) and ``gap`` (Public minus
            Private accuracy of the submission that counts).

        Raises
        ------
        LeaderboardError
            Before the deadline.
        """
        frame = self._final_submissions(track, now, "the private leaderboard stays")
        public = _board(frame, "public")
        board = _board(self._finalist_rows(frame, track), "private")
        public_rank = public.set_index("team")["rank"]
        public_accuracy = frame.set_index("submission_id")["public_accuracy"]
        board["public_rank"] = board["team"].map(public_rank).astype("Int64")
        # Entries count every on-time valid submission, not only the finalists.
        board["entries"] = board["team"].map(public.set_index("team")["entries"])
        board["change"] = board["public_rank"] - board["rank"]
        board["gap"] = board["submission_id"].map(public_accuracy) - board["accuracy"]
        # The same submission's score on the real measurements, if the test set has them.
        measured = frame.set_index("submission_id")["measured_accuracy"]
        board["measured_accuracy"] = board["submission_id"].map(measured).astype(float)
        return board

    def _final_submissions(
        self, track: str | Track | None, now: datetime | None, what: str
    ) -> pd.DataFrame:
        """On-time submissions of a track, for a board of hidden scores: after close only."""
        if not self.is_closed(now):
            raise LeaderboardError(
                f"{what} hidden until the competition is closed (xrd-bravais close)"
            )
        self._ensure_frozen(now)
        frame = self.submissions(track)
        return frame[frame["late"] == 0]

    def _finalist_rows(self, frame: pd.DataFrame, track: str | Track | None) -> pd.DataFrame:
        """The submissions fixed at the close, and one unscored row per other team.

        A team with no finalist (no valid on-time submission at the close) is shown
        unranked, whatever a later rescore makes of its files.
        """
        spec = self.task.track(track)
        ids = {row[0] for row in self.connection.execute(
            "SELECT submission_id FROM finalists WHERE track = ?", (spec.name,))}  # fmt: skip
        chosen = frame[frame["submission_id"].isin(ids)]
        others = frame[~frame["team"].isin(chosen["team"])].drop_duplicates("team").copy()
        hidden = [c for c in others.columns if c.endswith(("_accuracy", "_macro_f1"))]
        others[hidden] = float("nan")
        others["scores"] = None
        others["valid"] = 0
        return pd.concat([chosen, others], ignore_index=True) if len(others) else chosen

    def measured_board(
        self, track: str | Track | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """The final submissions ranked on the real measurements: only after the deadline.

        Each team is represented by the submissions that count for the private
        leaderboard (its picks, or its two best Public ones), and ranked by the
        best accuracy among them on the Measured portion.

        Returns
        -------
        pandas.DataFrame
            The :meth:`public_board` columns on Measured scores (empty where the
            competition has no Measured portion).

        Raises
        ------
        LeaderboardError
            Before the deadline.
        """
        frame = self._final_submissions(track, now, "the Measured scores stay")
        if frame["measured_accuracy"].isna().all():
            return _board(frame.iloc[:0], "measured")
        return _board(self._finalist_rows(frame, track), "measured")

    def late_board(
        self, track: str | Track | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """Submissions after the deadline: scored for information, never ranked."""
        frame = self.submissions(track)
        frame = frame[frame["late"] == 1]
        closed = self.is_closed(now)
        columns = ["submission_id", "team", "submitted_at", "valid", "public_accuracy",
                   "public_macro_f1"]  # fmt: skip
        if closed:
            columns += ["private_accuracy", "private_macro_f1"]
            if frame["measured_accuracy"].notna().any():
                columns += ["measured_accuracy", "measured_macro_f1"]
        return frame[columns].reset_index(drop=True)

    # ------------------------------------------------------------------ rescoring
    def rescore(self, answer_key: AnswerKey | None = None) -> list[Change]:
        """Grade every stored submission again with the current key and grader.

        Returns
        -------
        list of Change
            The submissions whose validity or scores changed.
        """
        key = answer_key or load_answer_key(self.competition)
        # The final ranking's submissions are fixed before any score moves.
        self._ensure_frozen()
        rows = self.connection.execute(
            "SELECT s.id, s.track, s.sha256, s.valid, s.public_accuracy, s.public_macro_f1, "
            "s.private_accuracy, s.private_macro_f1, s.scores, t.name FROM submissions s "
            "JOIN teams t ON t.id = s.team_id ORDER BY s.id"
        ).fetchall()
        updates, changes = [], []
        fields = ("valid", "public_accuracy", "public_macro_f1", "private_accuracy",
                  "private_macro_f1", "measured_accuracy", "measured_macro_f1")  # fmt: skip
        for row in rows:
            content = self.file(row["sha256"])
            try:
                result: GradeResult | None = grade(content, key, row["track"])
                problems = None
            except SubmissionError as err:
                result, problems = None, json.dumps(err.problems)
            measured = _measured_figures(json.dumps(result.to_dict()) if result else None)
            new = dict(zip(fields, (int(result is not None), *_score_columns(result), *measured),
                           strict=True))  # fmt: skip
            old = {name: row[name] for name in fields[:5]}
            old |= dict(zip(fields[5:], _measured_figures(row["scores"]), strict=True))
            if not _same(old, new):
                changes.append(Change(row["id"], row["name"], row["track"], old, new))
            updates.append((
                new["valid"], problems, *_score_columns(result),
                json.dumps(result.to_dict()) if result else None,
                GRADER_VERSION, key.sha256, row["id"],
            ))  # fmt: skip
        with self._write() as db:
            db.executemany(
                "UPDATE submissions SET valid = ?, problems = ?, public_accuracy = ?, "
                "public_macro_f1 = ?, private_accuracy = ?, private_macro_f1 = ?, scores = ?, "
                "grader_version = ?, answer_key_sha256 = ? WHERE id = ?",
                updates,
            )
            _log(db, utc_now(), "rescore", {"answer_key_sha256": key.sha256,
                                            "grader_version": GRADER_VERSION,
                                            "submissions": len(rows), "changed": len(changes)})
        return changes


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    for name, value in old.items():
        other = new[name]
        if _missing(value) or _missing(other):
            if _missing(value) != _missing(other):
                return False
        elif not np.isclose(value, other, rtol=0, atol=1e-12):
            return False
    return True


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _score_columns(result: GradeResult | None) -> tuple[float | None, ...]:
    if result is None:
        return (None, None, None, None)
    values = (result.public.accuracy, result.public.macro_f1,
              result.private.accuracy, result.private.macro_f1)  # fmt: skip
    return tuple(None if np.isnan(v) else float(v) for v in values)


def _measured_figures(scores_json: object) -> tuple[float, float]:
    """Accuracy and macro-F1 on the Measured portion from a stored scores column."""
    if not isinstance(scores_json, str):
        return (float("nan"), float("nan"))
    measured = json.loads(scores_json).get("measured")
    if measured is None:
        return (float("nan"), float("nan"))
    return tuple(  # type: ignore[return-value]
        float("nan") if measured.get(k) is None else float(measured[k])
        for k in ("accuracy", "macro_f1")
    )


def _ci(scores_json: object, portion: str) -> tuple[float, float]:
    if not isinstance(scores_json, str):  # NULL: an invalid submission
        return (float("nan"), float("nan"))
    figures = json.loads(scores_json).get(portion)
    if figures is None:  # no such portion in this competition
        return (float("nan"), float("nan"))
    low, high = figures["accuracy_ci"]
    return (float("nan") if low is None else low, float("nan") if high is None else high)


def _final_candidates(frame: pd.DataFrame, max_selected: int) -> pd.DataFrame:
    """Per team, the selected valid submissions, or its best Public ones if none."""
    valid = frame[frame["valid"] == 1]
    picked = []
    for _, team_rows in valid.groupby("team", sort=False):
        chosen = team_rows[team_rows["selected"] == 1]
        if chosen.empty:
            chosen = _sort_best(team_rows, "public").head(max_selected)
        picked.append(chosen)
    invalid_only = frame[~frame["team"].isin(valid["team"])]
    return pd.concat([*picked, invalid_only], ignore_index=True) if picked else invalid_only


def _sort_best(frame: pd.DataFrame, portion: str) -> pd.DataFrame:
    return frame.sort_values(
        [f"{portion}_accuracy", f"{portion}_macro_f1", "submitted_at", "submission_id"],
        ascending=[False, False, True, True],
        na_position="last",
        kind="stable",
    )


def _board(frame: pd.DataFrame, portion: str) -> pd.DataFrame:
    """Best submission per team on a portion, ranked with shared ranks for ties."""
    columns = ["rank", "team", "baseline", "accuracy", "macro_f1", "accuracy_ci_low",
               "accuracy_ci_high", "entries", "submission_id", "submitted_at"]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ordered = _sort_best(frame, portion)
    best = ordered.drop_duplicates("team", keep="first")
    entries = frame.groupby("team")["valid"].sum()
    ci = [_ci(s, portion) for s in best["scores"]]
    board = pd.DataFrame({
        "team": best["team"].to_numpy(),
        "baseline": best["baseline"].astype(bool).to_numpy(),
        "accuracy": best[f"{portion}_accuracy"].astype(float).to_numpy(),
        "macro_f1": best[f"{portion}_macro_f1"].astype(float).to_numpy(),
        "accuracy_ci_low": [c[0] for c in ci],
        "accuracy_ci_high": [c[1] for c in ci],
        "entries": best["team"].map(entries).astype(int).to_numpy(),
        "submission_id": best["submission_id"].to_numpy(),
        "submitted_at": best["submitted_at"].to_numpy(),
    })  # fmt: skip
    board.insert(0, "rank", pd.array(_competition_ranks(board), dtype="Int64"))
    return board[columns]


def _competition_ranks(board: pd.DataFrame) -> list[int | None]:
    """Ranks 1, 2, 3 ... over ranked rows, in the board's order.

    The board is sorted by accuracy, then macro-F1, then the earlier submission,
    so equal scores are ranked by time, as the rules say (the earlier submission
    wins a tie). Baselines and rows without a score get no rank.
    """
    ranks: list[int | None] = []
    position = 0
    for accuracy, baseline in zip(board["accuracy"], board["baseline"], strict=True):
        if baseline or np.isnan(accuracy):
            ranks.append(None)
            continue
        position += 1
        ranks.append(position)
    return ranks
