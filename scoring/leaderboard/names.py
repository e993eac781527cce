"""Team names: checked, and never a look-alike of a baseline or of another team."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Final

from scoring.leaderboard.rules import LeaderboardError
from xrd_bravais.contract.references import GUESS_TITLES

MAX_TEAM_NAME: Final = 64


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
    *GUESS_TITLES.values(),
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

