"""The leak checks: nothing bound for students may carry the answer key.

Every file bound for a kit or a platform's participants passes :func:`find_leaks`:

* every file of ``public/`` is one the build wrote, unchanged (its sha256 is the
  manifest's);
* nothing from ``private/``, and no file that is a copy of one; compressed files
  and archives are unpacked and checked like the rest;
* ``test.parquet`` holds ``id`` and ``y0 .. y{N-1}`` only;
* no text or table pairs test ids with their true labels (lattice, space group
  or Public/Private portion) more often than a constant guess would (ids and
  labels compared without regard to case);
* no test-only ``cod_id`` or formula appears anywhere.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from starter_kit.wheel import project_wheel
from xrd_bravais.contract import layout
from xrd_bravais.contract.manifest import read_manifest

WHEELS: Final = "wheels"
"""The kit's folder for the wheel of ``xrd-bravais`` (on no package index)."""

# A constant guess agrees with the true label as often as that label's share of
# the test set; a file agreeing more than this much above the commonest share is
# carrying answers, not guesses.
_AGREEMENT_MARGIN: Final = 0.1
# Fewer matching rows than this are not evidence (the README's three example
# rows may agree with the truth by chance).
_MIN_HITS: Final = 5


class KitLeakError(RuntimeError):
    """The kit would carry answer-key content; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"refusing to write the starter kit: {len(problems)} problem(s) with answer-key "
            f"content\n{listing}\nremove these files from public/ (or rebuild) and try again"
        )



@dataclass(frozen=True)
class _Secrets:
    """What must not leave ``private/``, read once."""

    hashes: dict[str, str]  # sha256 -> private file
    labels: dict[str, dict[str, str]]  # column -> {test id: value}
    constant_share: dict[str, float]  # column -> share of the commonest value
    tokens: frozenset[str]  # test-only cod ids and formulas

    @classmethod
    def read(cls, competition: Path) -> _Secrets:
        private = competition / layout.PRIVATE
        hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p.relative_to(competition).as_posix()
                  for p in sorted(private.rglob("*")) if p.is_file()}  # fmt: skip
        solution = pd.read_csv(competition / layout.SOLUTION, dtype=str, keep_default_na=False)
        labels, share = {}, {}
        # Ids and values compared case-insensitively: T000123 and mS vs ms are the same key.
        ids = solution["id"].str.lower()
        from xrd_bravais.contract.tasks import load_task

        columns = [t.column for t in load_task(competition).tracks] + [layout.USAGE]
        for column in columns:
            values = solution[column]
            labels[column] = dict(zip(ids, values.str.lower(), strict=True))
            share[column] = float(values.value_counts(normalize=True).iloc[0])
        return cls(hashes, labels, share, _secret_tokens(competition))


def _secret_tokens(competition: Path) -> frozenset[str]:
    """Test-only cod ids and formulas: the values that would identify a test entry.

    A formula that also names a training entry is not secret; neither is a
    single element (``Si``), which any text may mention.
    """
    meta_path = competition / layout.TEST_META
    if not meta_path.is_file():
        return frozenset()
    import pyarrow.parquet as pq

    # Arrow reads the files itself (pandas would hand it Python file objects; see
    # _parquet_text).
    meta = pq.read_table(meta_path, columns=["cod_id", "formula"]).to_pandas()
    train = pq.read_table(competition / layout.TRAIN,
                          columns=[layout.COD_ID, layout.FORMULA]).to_pandas()  # fmt: skip
    secrets: set[str] = set()
    for column in ("cod_id", "formula"):
        known = set(train[column].dropna().astype(str))
        secrets |= {v for v in meta[column].dropna().astype(str) if v and v not in known}
    return frozenset(s for s in secrets if not _ELEMENT.fullmatch(s))


_ELEMENT: Final = re.compile(r"[A-Z][a-z]?\d*")
# Whole values only: a formula inside a longer one (FeO2 in Ca(FeO2)2) is another compound.
_SEPARATORS: Final = re.compile(r"[\s,;|\"'`]+")


def _parquet_text(data: bytes) -> tuple[str, list[str]]:
    """Non-intensity columns of a parquet file as CSV text, and its column names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Read in this thread (ParquetFile, not the dataset scanner of read_table): a Python
    # buffer that a scanner's thread releases while the interpreter exits aborts the
    # process (std::terminate in PyGILState_Ensure).
    table = pq.ParquetFile(pa.BufferReader(data)).read()
    names = [n for n in table.column_names if not (n.startswith("y") and n[1:].isdigit())]
    text = table.select(names).to_pandas().astype(str).to_csv(index=False) if names else ""
    return text, list(table.column_names)


def _pairs_leak(text: str, secrets: _Secrets) -> list[str]:
    """Label columns whose values sit beside test ids more often than a constant guess."""
    ids = secrets.labels[layout.USAGE]  # every test id
    findings = []
    lines = [line for line in text.splitlines() if line]
    tokenised = [(tokens[0], set(tokens))
                 for tokens in (re.findall(r"[a-z0-9_.]+", line.lower()) for line in lines)
                 if tokens]  # fmt: skip
    rows = [(first, tokens) for first, tokens in tokenised if first in ids]
    # Ids anywhere on the line count too (e.g. a label before the id).
    rows += [(t, tokens) for first, tokens in tokenised if first not in ids
             for t in tokens if t in ids]  # fmt: skip
    if not rows:
        return findings
    for column, truth in secrets.labels.items():
        hits = sum(truth[i] in tokens for i, tokens in rows)
        share = hits / len(rows)
        if hits >= _MIN_HITS and share > secrets.constant_share[column] + _AGREEMENT_MARGIN:
            findings.append(
                f"pairs {len(rows):,} test id(s) with values that match the hidden "
                f"{column} {100 * share:.0f} % of the time (a constant guess: "
                f"{100 * secrets.constant_share[column]:.0f} %)"
            )
    return findings


_MAX_UNPACKED: Final = 256 << 20  # a decompression bomb is refused, not unpacked


def _unpacked(path: str, data: bytes) -> dict[str, bytes] | None:
    """The content of a compressed file or archive as ``{inner path: bytes}``.

    None if ``data`` is not compressed. :func:`_expand` unpacks members of
    archives one level deeper (a zip of a .gz), which is as deep as an accident goes.
    """
    import bz2
    import gzip
    import lzma

    openers = ((b"\x1f\x8b", gzip.decompress), (b"BZh", bz2.decompress),
               (b"\xfd7zXZ\x00", lzma.decompress))  # fmt: skip
    for magic, decompress in openers:
        if data.startswith(magic):
            return {f"{path} (decompressed)": decompress(data)}
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > _MAX_UNPACKED:
                raise ValueError("unpacks to more than 256 MiB")
            return {f"{path}:{name}": archive.read(name) for name in archive.namelist()
                    if not name.endswith("/")}  # fmt: skip
    return None


def _expand(files: dict[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
    """``files`` plus the content of every compressed file among them (two levels)."""
    out, problems = dict(files), []
    frontier = dict(files)
    for _ in range(2):
        found: dict[str, bytes] = {}
        for path, data in frontier.items():
            try:
                inner = _unpacked(path, data)
            except Exception as err:  # unreadable: cannot be shown to be clean
                problems.append(f"{path}: compressed file that cannot be unpacked ({err})")
                continue
            found |= inner or {}
        out |= found
        frontier = found
    return out, problems


def check_public_against_manifest(files: dict[str, bytes], competition: Path) -> list[str]:
    """Files under ``public/`` that the build did not write, or that changed since.

    The manifest holds the sha256 of every public file as built; anything else in
    ``public/`` was put there by hand and is refused (a reordered sample
    submission can carry the answer key as well as a copy of it can).
    """
    recorded = read_manifest(competition)["files"]
    problems = []
    for path, data in files.items():
        inner = path.split("/", 1)[-1]
        if not inner.startswith("public/"):
            continue
        digest = recorded.get(inner)
        if digest is None:
            problems.append(f"{path} is not a file of the build (not in manifest.json)")
        elif digest != hashlib.sha256(data).hexdigest():
            problems.append(f"{path} changed after the build (its sha256 differs from "
                            "manifest.json)")  # fmt: skip
    return problems


def find_leaks(files: dict[str, bytes], competition: str | Path) -> list[str]:
    """Every answer-key finding in ``files`` (``{path in zip: bytes}``); empty if clean.

    Compressed files and archives are unpacked and their content checked too.
    """
    root = Path(competition)
    secrets = _Secrets.read(root)
    # The project's own wheel holds code, not data (a docstring may cite a COD id): it is
    # set aside when it is byte for byte the one built from the installed packages.
    wheel, own = project_wheel()
    files = {path: data for path, data in files.items()
             if not (path.endswith(f"/{WHEELS}/{wheel}") and data == own)}  # fmt: skip
    files, problems = _expand(files)
    for path, data in files.items():
        inner = path.split("/", 1)[-1]
        if inner.startswith("private/") or "/private/" in f"/{inner}":
            problems.append(f"{path}: files under private/ never go to students")
        digest = hashlib.sha256(data).hexdigest()
        if digest in secrets.hashes:
            problems.append(f"{path} is a copy of {secrets.hashes[digest]}")
            continue
        if data[:4] == b"PAR1":
            try:
                text, columns = _parquet_text(data)
            except Exception as err:  # unreadable: cannot be shown to be clean
                problems.append(f"{path}: unreadable parquet file ({err})")
                continue
            if inner == layout.TEST:
                extra = [c for c in columns if c != "id" and not (c[:1] == "y" and c[1:].isdigit())]
                if extra:
                    problems.append(f"{path} has columns besides id and y0 .. y{{N-1}}: "
                                    f"{', '.join(extra)}")  # fmt: skip
        else:
            text = data.decode("utf-8", errors="replace")
        problems += [f"{path} {finding}" for finding in _pairs_leak(text, secrets)]
        if secrets.tokens:
            found = sorted(secrets.tokens.intersection(_SEPARATORS.split(text)))
            if found:
                problems.append(f"{path} names {len(found)} test-only formula(s) or cod id(s), "
                                f"e.g. {', '.join(found[:3])}")  # fmt: skip
    return problems


