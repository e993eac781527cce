"""The state one server keeps: the competition, its store per thread, the answer key.

Everything that must survive a restart lives in the SQLite store (teams, tokens,
sessions, submissions, the signing key); this object only caches.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from scoring.grade import AnswerKey, load_answer_key
from scoring.leaderboard import Leaderboard
from scoring.submission import size_limit
from scoring.teams import Identity, authenticate, server_secret, session_identity
from xrd_bravais.contract import layout
from xrd_bravais.contract.tasks import Task, load_task


@dataclass
class Site:
    """One served competition.

    Parameters
    ----------
    competition : Path
        The built competition folder.
    kit : Path or None
        The starter-kit zip offered for download (built on demand when ``None``).
    secure_cookies : bool
        Mark cookies ``Secure`` (behind HTTPS).
    """

    competition: Path
    kit: Path | None = None
    secure_cookies: bool = False
    task: Task = field(init=False)
    secret: bytes = field(init=False)
    upload_limit: int = field(init=False)
    _local: threading.local = field(init=False, default_factory=threading.local)
    _key: AnswerKey | None = field(init=False, default=None)
    _key_stamp: tuple[int, int] | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.competition = Path(self.competition)
        self.task = load_task(self.competition)
        with Leaderboard.open(self.competition) as board:
            self.secret = server_secret(board)
        self.upload_limit = size_limit(len(self.answer_key()))

    @property
    def name(self) -> str:
        """The competition's folder name, as the CLI's titles show it."""
        return self.competition.resolve().name

    def board(self) -> Leaderboard:
        """The store, one connection per thread (sqlite3 connections stay in their thread)."""
        board: Leaderboard | None = getattr(self._local, "board", None)
        if board is None:
            board = Leaderboard.open(self.competition)
            self._local.board = board
        return board

    def answer_key(self) -> AnswerKey:
        """The answer key, read again when ``amend-key`` replaced the file."""
        stat = (self.competition / layout.SOLUTION).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._key is None or stamp != self._key_stamp:
                self._key = load_answer_key(self.competition)
                self._key_stamp = stamp
            return self._key

    def reload_key(self) -> AnswerKey:
        """Forget the cached key (after an admin rescore) and read it again."""
        with self._lock:
            self._key = None
        return self.answer_key()

    def from_token(self, token: str | None) -> Identity | None:
        """Who a bearer token belongs to."""
        return None if not token else authenticate(self.board(), token)

    def from_session(self, session_id: str | None) -> Identity | None:
        """Who a session cookie belongs to."""
        return None if not session_id else session_identity(self.board(), session_id)

    def starter_kit(self) -> Path:
        """The starter-kit zip: the given one, or one built (leak-checked) beside the store."""
        if self.kit is not None:
            return self.kit
        from starter_kit.kit import build_kit

        path = self.competition / "leaderboard" / "starter-kit.zip"
        manifest = self.competition / layout.MANIFEST
        with self._lock:
            if not path.is_file() or path.stat().st_mtime < manifest.stat().st_mtime:
                build_kit(self.competition, path, name=f"{self.name}-starter-kit")
        return path
