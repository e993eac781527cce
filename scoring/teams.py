"""Team and admin tokens, and the login sessions built on them, in the leaderboard store.

A token is ``xb1.<selector>.<secret>``: the selector finds the credential, the
secret is checked against its stored SHA-256 with a constant-time comparison, so
the store never holds a usable token and a lookup leaks nothing through timing.
Tokens are 256-bit random, so a plain hash is enough (no password stretching).
Sessions (the website's login cookie) are random ids, stored hashed, tied to the
credential: issuing a new token for a team ends the old token's sessions.

Removing a team keeps its submissions in the store and takes them off every
board (:meth:`scoring.leaderboard.Leaderboard.submissions` leaves removed teams out).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

import pandas as pd

from scoring.leaderboard import (
    Leaderboard,
    LeaderboardError,
    check_name_is_distinct,
    clean_team_name,
    utc_now,
)
from scoring.leaderboard.rules import _parse_stamp, _stamp

PREFIX: Final = "xb1"
SESSION_LIFETIME: Final = timedelta(days=14)
"""How long a website login lasts."""

Role = Literal["team", "admin"]


@dataclass(frozen=True)
class Identity:
    """Who a token or session belongs to.

    Attributes
    ----------
    role : {"team", "admin"}
    team : str or None
        The team's name (``None`` for the admin).
    selector : str
        The credential's public half (names it in logs; not a secret).
    """

    role: Role
    team: str | None
    selector: str

    @property
    def is_admin(self) -> bool:
        """Whether this is the organisers' token."""
        return self.role == "admin"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_token(board: Leaderboard, role: Role, team_id: int | None) -> str:
    """Store a fresh credential (revoking the role's or team's old one) and return it."""
    selector, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    with board._write() as db:
        if role == "admin":
            db.execute("DELETE FROM credentials WHERE role = 'admin'")
        else:
            db.execute("DELETE FROM credentials WHERE team_id = ?", (team_id,))
        db.execute(
            "INSERT INTO credentials (selector, verifier, role, team_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (selector, _digest(secret), role, team_id, _stamp(utc_now())),
        )
    return f"{PREFIX}.{selector}.{secret}"


def _team_row(board: Leaderboard, name: str) -> tuple[int, bool, bool] | None:
    row = board.connection.execute(
        "SELECT id, baseline, removed FROM teams WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else (int(row["id"]), bool(row["baseline"]), bool(row["removed"]))


def add_team(board: Leaderboard, name: str) -> str:
    """Create a team (or bring back a removed one) and return its new token.

    Raises
    ------
    LeaderboardError
        If the name is malformed, taken by a live team or a baseline, or passes
        for another team, a baseline or a reference row.
    """
    name = clean_team_name(name)
    found = _team_row(board, name)
    if found is not None:
        team_id, baseline, removed = found
        if baseline:
            raise LeaderboardError(f"{name!r} is a baseline row; pick another name")
        if not removed:
            raise LeaderboardError(
                f"the team {name!r} exists; `xrd-bravais teams token {name!r}` gives it a new token"
            )
        with board._write() as db:
            db.execute("UPDATE teams SET removed = 0 WHERE id = ?", (team_id,))
        return _new_token(board, "team", team_id)
    with board._write() as db:
        check_name_is_distinct(name, [r[0] for r in db.execute("SELECT name FROM teams")])
        cursor = db.execute(
            "INSERT INTO teams (name, baseline, created_at) VALUES (?, 0, ?)",
            (name, _stamp(utc_now())),
        )
        team_id = int(cursor.lastrowid or 0)
    return _new_token(board, "team", team_id)


def reissue_team_token(board: Leaderboard, name: str) -> str:
    """A new token for a live team; the old token and its sessions stop working."""
    found = _team_row(board, name)
    if found is None or found[1] or found[2]:
        raise LeaderboardError(f"no team called {name!r} (see `xrd-bravais teams list`)")
    return _new_token(board, "team", found[0])


def admin_token(board: Leaderboard) -> str:
    """A new admin token; the previous one and its sessions stop working."""
    return _new_token(board, "admin", None)


def remove_team(board: Leaderboard, name: str) -> int:
    """Revoke a team's token and take it off the boards; its submissions stay stored.

    Returns
    -------
    int
        The team's stored submissions (kept, no longer shown).

    Raises
    ------
    LeaderboardError
        If there is no such live team.
    """
    found = _team_row(board, name)
    if found is None or found[1] or found[2]:
        raise LeaderboardError(f"no team called {name!r} (see `xrd-bravais teams list`)")
    team_id = found[0]
    with board._write() as db:
        db.execute("UPDATE teams SET removed = 1 WHERE id = ?", (team_id,))
        db.execute("DELETE FROM credentials WHERE team_id = ?", (team_id,))
        (n,) = db.execute(
            "SELECT COUNT(*) FROM submissions WHERE team_id = ?", (team_id,)
        ).fetchone()
    return int(n)


def list_teams(board: Leaderboard) -> pd.DataFrame:
    """Every team (not the baselines): name, created, token issued, submissions, removed."""
    return pd.read_sql_query(
        "SELECT t.name AS team, t.created_at, "
        "EXISTS (SELECT 1 FROM credentials c WHERE c.team_id = t.id) AS has_token, "
        "(SELECT COUNT(*) FROM submissions s WHERE s.team_id = t.id) AS submissions, "
        "t.removed FROM teams t WHERE t.baseline = 0 ORDER BY t.id",
        board.connection,
    )


def authenticate(board: Leaderboard, token: str) -> Identity | None:
    """The identity a token belongs to, or ``None`` for a wrong, revoked or malformed one."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    _, selector, secret = parts
    row = board.connection.execute(
        "SELECT c.verifier, c.role, t.name, COALESCE(t.removed, 0) AS removed "
        "FROM credentials c LEFT JOIN teams t ON t.id = c.team_id WHERE c.selector = ?",
        (selector,),
    ).fetchone()
    # Compare even when the selector is unknown, so both paths cost the same.
    verifier = row["verifier"] if row is not None else _digest("")
    if not hmac.compare_digest(verifier, _digest(secret)) or row is None or row["removed"]:
        return None
    return Identity(role=row["role"], team=row["name"], selector=selector)


def open_session(board: Leaderboard, identity: Identity, now: datetime | None = None) -> str:
    """Start a login session for ``identity`` and return its id (the cookie's value)."""
    session_id = secrets.token_urlsafe(32)
    moment = now or utc_now()
    with board._write() as db:
        db.execute("DELETE FROM sessions WHERE expires_at < ?", (_stamp(moment),))
        db.execute(
            "INSERT INTO sessions (id_hash, selector, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (_digest(session_id), identity.selector, _stamp(moment),
             _stamp(moment + SESSION_LIFETIME)),
        )  # fmt: skip
    return session_id


def session_identity(
    board: Leaderboard, session_id: str, now: datetime | None = None
) -> Identity | None:
    """Who a live session belongs to; ``None`` once it expired or its token was revoked."""
    row = board.connection.execute(
        "SELECT s.expires_at, c.selector, c.role, t.name, COALESCE(t.removed, 0) AS removed "
        "FROM sessions s JOIN credentials c ON c.selector = s.selector "
        "LEFT JOIN teams t ON t.id = c.team_id WHERE s.id_hash = ?",
        (_digest(session_id),),
    ).fetchone()
    if row is None or row["removed"] or _parse_stamp(row["expires_at"]) <= (now or utc_now()):
        return None
    return Identity(role=row["role"], team=row["name"], selector=row["selector"])


def end_session(board: Leaderboard, session_id: str) -> None:
    """Log out: forget the session."""
    with board._write() as db:
        db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(session_id),))


def server_secret(board: Leaderboard) -> bytes:
    """The site's signing key (CSRF tokens), made once and kept in the store."""
    with board._write() as db:
        row = db.execute("SELECT value FROM settings WHERE key = 'web_secret'").fetchone()
        if row is None:
            value = secrets.token_hex(32)
            db.execute("INSERT INTO settings (key, value) VALUES ('web_secret', ?)", (value,))
        else:
            value = row[0]
    return bytes.fromhex(value)
