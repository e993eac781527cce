"""The leaderboard: a SQLite store of teams and submissions beside the competition.

One class, :class:`Leaderboard`, joins the parts, each a module of its own:

* :mod:`~scoring.leaderboard.store`: the file, its schema and migrations, the write
  lock, reading the stored submissions;
* :mod:`~scoring.leaderboard.rules`: the rules, quotas and the clock;
* :mod:`~scoring.leaderboard.names`: team names and their look-alikes;
* :mod:`~scoring.leaderboard.submitting`: submit within the quota, pick finals;
* :mod:`~scoring.leaderboard.closing`: close, reopen, rescore, the audit log;
* :mod:`~scoring.leaderboard.ranking` and :mod:`~scoring.leaderboard.boards`: the
  boards, as queries over the store;
* :mod:`~scoring.leaderboard.released`: the Ladder's released Public scores
  (``rules --public-board ladder``);
* :mod:`~scoring.leaderboard.copying`: pairs of teams whose submissions agree
  beyond chance (``xrd-bravais integrity``, organisers only).

Phases: before the deadline only Public scores leave this package through
student-facing functions (:meth:`Leaderboard.submit`'s receipt and
:meth:`Leaderboard.public_board`); :meth:`Leaderboard.private_board` refuses
until :meth:`Leaderboard.close` has frozen the competition. Later submissions are
kept as *late*: scored, never ranked.
"""

from __future__ import annotations

import os
from pathlib import Path

from scoring.leaderboard.boards import Boards, TeamSubmission
from scoring.leaderboard.closing import Change
from scoring.leaderboard.copying import Copying
from scoring.leaderboard.names import (
    MAX_TEAM_NAME,
    RESERVED_NAMES,
    check_name_is_distinct,
    clean_team_name,
    name_skeleton,
)
from scoring.leaderboard.rules import (
    LeaderboardError,
    Quota,
    QuotaExceeded,
    Rules,
    day_bounds,
    utc_now,
)
from scoring.leaderboard.store import DB_PATH
from scoring.leaderboard.submitting import MAX_MESSAGE, Receipt, Submitting

__all__ = [
    "DB_PATH", "MAX_MESSAGE", "MAX_TEAM_NAME", "RESERVED_NAMES", "Change", "Leaderboard",
    "LeaderboardError", "Quota", "QuotaExceeded", "Receipt", "Rules", "TeamSubmission",
    "check_name_is_distinct", "clean_team_name", "competition_rules", "day_bounds",
    "name_skeleton", "utc_now",
]  # fmt: skip


class Leaderboard(Submitting, Boards, Copying):
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


def competition_rules(competition: str | os.PathLike[str]) -> Rules:
    """The rules of a competition: its store's, or the defaults where it has no store yet.

    Reads without creating a store, so a build that no grader has opened stays as built.
    """
    root = Path(competition)
    if not (root / DB_PATH).is_file():
        return Rules()
    with Leaderboard.open(root) as board:
        return board.rules

