"""The rules of a competition and the clock they are read by.

Quotas count per team, track and UTC day; times are stored as fixed-width ISO text
in UTC, so SQL string order is time order.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


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
    public_board : {"plain", "ladder"}
        ``plain``: each submission's Public score is shown and a team's best counts.
        ``ladder``: a team's Public score is released only when a submission beats
        its released score by more than the noise (:mod:`scoring.ladder`), so
        probing the Public rows gains nothing. The Private board is the same under
        both.
    """

    daily_quota: int = 5
    invalid_daily_quota: int = 20
    max_selected: int = 2
    deadline: datetime | None = None
    public_board: str = "plain"

    @property
    def is_ladder(self) -> bool:
        """Whether the Public board is the Ladder."""
        return self.public_board == "ladder"

    def is_closed(self, now: datetime) -> bool:
        """Whether ``now`` is at or after the deadline."""
        return self.deadline is not None and now >= self.deadline



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



def day_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the UTC day holding ``moment``."""
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)

