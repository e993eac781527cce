"""Amend the answer key of a running competition, on the record.

A label found wrong after the build (a mislabelled mineral, a spglib tolerance
that split a group) is fixed by handing the grader a corrected
``solution.csv``. :func:`amend_answer_key` checks it against the current key,
keeps the old key beside it, writes the new one, and records the change in
``manifest.json`` (when, why, which hashes, how many rows moved), so the grader's
hash check passes again and every later score can be traced to the key it was
graded with. Rescoring the stored submissions is then
:meth:`scoring.leaderboard.Leaderboard.rescore`.

Only labels may change: the ids and their Public/Private portions are fixed by
the build (changing them would change what students were promised).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd

from scoring.grade import SOLUTION_PATH, AnswerKeyError, load_answer_key
from xrd_bravais.contract import layout

AMENDMENTS_FOLDER: Final = layout.AMENDMENTS
"""Where each replaced key is kept, named by the time of its replacement."""
_COLUMNS: Final = list(layout.SOLUTION_COLUMNS)


@dataclass(frozen=True)
class Amendment:
    """What one amendment changed.

    Attributes
    ----------
    at : datetime
    reason : str
    previous_sha256, sha256 : str
        Hashes of the replaced and the new ``solution.csv``.
    changed : dict
        Rows whose labels changed, per portion (``{"Public": 2, "Private": 5}``).
    archived : str
        Where the replaced key is kept, relative to the competition.
    """

    at: datetime
    reason: str
    previous_sha256: str
    sha256: str
    changed: dict[str, int]
    archived: str

    def to_dict(self) -> dict[str, Any]:
        """The manifest's record of it."""
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "reason": self.reason,
            "previous_sha256": self.previous_sha256,
            "sha256": self.sha256,
            "changed_rows": self.changed,
            "archived": self.archived,
        }


def _read_new_key(data: bytes) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise AnswerKeyError(f"the corrected key cannot be read as CSV: {err}") from None
    if list(frame.columns) != _COLUMNS:
        raise AnswerKeyError(
            f"the corrected key has columns {list(frame.columns)}, expected {_COLUMNS} "
            f"(start from a copy of {SOLUTION_PATH})"
        )
    return frame


def _check_new_key(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """Every way ``new`` is not a label-only correction of ``old``."""
    from xrd_bravais.contract.labels import SPACEGROUP_NUMBERS, bravais_lattice

    problems = []
    if new["id"].duplicated().any():
        problems.append(f"ids repeat: {', '.join(new.loc[new['id'].duplicated(), 'id'][:3])}")
    missing = sorted(set(old["id"]) - set(new["id"]))
    extra = sorted(set(new["id"]) - set(old["id"]))
    if missing or extra:
        problems.append(
            f"the ids must be the test ids: {len(missing)} missing "
            f"(e.g. {', '.join(missing[:3])}), {len(extra)} unknown (e.g. {', '.join(extra[:3])})"
        )
    if problems:
        return problems
    merged = old.merge(new, on="id", suffixes=("_old", ""), validate="one_to_one")
    moved = merged[merged[f"{layout.USAGE}_old"] != merged[layout.USAGE]]
    if len(moved):
        problems.append(
            f"{len(moved)} row(s) change portion (Public/Private), e.g. {moved['id'].iloc[0]}: "
            "portions are fixed by the build; only labels may be corrected"
        )
    groups = pd.to_numeric(merged["spacegroup_number"], errors="coerce")
    first, last = SPACEGROUP_NUMBERS[0], SPACEGROUP_NUMBERS[-1]
    bad = merged[groups.isna() | ~groups.between(first, last) | (groups % 1 != 0)]
    if len(bad):
        problems.append(
            f"{len(bad)} space group(s) are not integers in {first}..{last}, e.g. "
            f"{bad['id'].iloc[0]}: {bad['spacegroup_number'].iloc[0]!r}"
        )
        return problems
    implied = [bravais_lattice(int(g)) for g in groups]
    wrong = merged[merged["bravais_lattice"] != pd.Series(implied, index=merged.index)]
    if len(wrong):
        row = wrong.iloc[0]
        problems.append(
            f"{len(wrong)} row(s) have a lattice that their space group does not imply, e.g. "
            f"{row['id']}: space group {row['spacegroup_number']} is "
            f"{bravais_lattice(int(row['spacegroup_number']))}, not {row['bravais_lattice']}"
        )
    return problems


def amend_answer_key(
    competition: str | os.PathLike[str],
    corrected: str | os.PathLike[str] | bytes,
    reason: str,
    now: datetime | None = None,
) -> Amendment:
    """Replace the answer key with a corrected one and record why.

    Parameters
    ----------
    competition : path
        The built competition (its ``private/`` folder must be here).
    corrected : path or bytes
        The corrected ``solution.csv``: the same ids and portions, new labels.
    reason : str
        Why, in a sentence (kept in the manifest).
    now : datetime, optional
        The time of the amendment (tests); default the clock.

    Returns
    -------
    Amendment

    Raises
    ------
    AnswerKeyError
        If the current key fails its hash check, the reason is empty, or the
        corrected key is not a label-only correction (every problem listed).
        Nothing is changed then.
    """
    from xrd_bravais.contract.io import atomic_write_bytes, atomic_write_text, sha256_file
    from xrd_bravais.contract.manifest import read_manifest, write_manifest_dict

    root = Path(competition)
    reason = " ".join(reason.split())
    if not reason:
        raise AnswerKeyError("say why the key changes (--reason): it is kept in the manifest")
    current = load_answer_key(root)  # refuses a key altered by hand
    data = corrected if isinstance(corrected, bytes) else Path(corrected).read_bytes()
    new = _read_new_key(data)
    old = current.frame.astype(str)
    problems = _check_new_key(old, new)
    if problems:
        raise AnswerKeyError(
            "the corrected key is refused:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    merged = old.merge(new, on="id", suffixes=("_old", ""), validate="one_to_one")
    differs = (merged["bravais_lattice_old"] != merged["bravais_lattice"]) | (
        merged["spacegroup_number_old"].astype(int) != merged["spacegroup_number"].astype(int)
    )
    if not differs.any():
        raise AnswerKeyError("the corrected key has the same labels as the current one")
    portions = [p for p in layout.ALL_PORTIONS if (merged[layout.USAGE] == p).any()]
    changed = {p: int((differs & (merged[layout.USAGE] == p)).sum()) for p in portions}

    moment = (now or datetime.now(UTC)).astimezone(UTC)
    archived = f"{AMENDMENTS_FOLDER}/{moment:%Y%m%dT%H%M%S}-solution.csv"
    private_mode = 0o600
    # Keep the old key first: if writing the new one fails, nothing is lost.
    (root / AMENDMENTS_FOLDER).mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_bytes(root / archived, (root / SOLUTION_PATH).read_bytes(), mode=private_mode)
    # Rows in the old key's order, labels as the build writes them.
    key = old[["id"]].merge(new, on="id", how="left", validate="one_to_one")
    key["spacegroup_number"] = key["spacegroup_number"].astype(int)
    atomic_write_text(root / SOLUTION_PATH, key.to_csv(index=False, lineterminator="\n"),
                      mode=private_mode)  # fmt: skip

    amendment = Amendment(
        at=moment, reason=reason, previous_sha256=current.sha256,
        sha256=sha256_file(root / SOLUTION_PATH), changed=changed, archived=archived,
    )  # fmt: skip
    manifest = read_manifest(root)
    manifest["files"][SOLUTION_PATH] = amendment.sha256
    manifest["files"][archived] = amendment.previous_sha256
    manifest["files"] = dict(sorted(manifest["files"].items()))
    manifest.setdefault("amendments", []).append(amendment.to_dict())
    per_portion = manifest.get("counts", {}).get("per_portion")
    if per_portion:
        for portion in portions:
            if portion.lower() not in per_portion:
                continue
            rows = key[key[layout.USAGE] == portion][layout.LATTICE].value_counts()
            per_portion[portion.lower()] = {
                lattice: int(rows.get(lattice, 0)) for lattice in per_portion[portion.lower()]
            }
    write_manifest_dict(root, manifest)
    return amendment
