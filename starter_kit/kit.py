"""Bundle what students receive: the public files and the starter kit, in one zip.

The kit's ``README.md`` is a template filled in from the competition's own
manifest and training counts. Before anything is written, every file bound for
the zip is checked for answer-key content, and the zip is refused (nothing
written) with every finding listed:

* nothing from ``private/``, and no file that is a copy of one;
* no symbolic link that leads out of ``public/``;
* ``test.parquet`` holds ``id`` and ``y0 .. y{N-1}`` only;
* no text or table pairs test ids with their true labels (lattice, space group
  or Public/Private portion) more often than a constant guess would;
* no test-only ``cod_id`` or formula appears anywhere.

Layout of the zip (unpacked, it is a competition folder that the validator
accepts as ``--competition .``)::

    <name>/README.md
    <name>/starter_notebook.ipynb
    <name>/make_submission.py
    <name>/public/...
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Final

import numpy as np
import pandas as pd

KIT_FILES: Final = ("README.md", "starter_notebook.ipynb", "make_submission.py")
"""The starter kit's own files (package data of :mod:`starter_kit`)."""

SOURCE_NAMES: Final = {
    "amcsd": "mineral structures of the American Mineralogist Crystal Structure Database",
    "cod-dir": "entries of the Crystallography Open Database (COD)",
    "cod-ids": "entries of the Crystallography Open Database (COD)",
    "generated": "random crystals generated with pyxtal",
}

# A constant guess agrees with the true label as often as that label's share of
# the test set; a file agreeing more than this much above the commonest share is
# carrying answers, not guesses.
_AGREEMENT_MARGIN: Final = 0.1
# Fewer matching rows than this are not evidence (the README's three example
# rows may agree with the truth by chance).
_MIN_HITS: Final = 5
_ZIP_TIME: Final = (2020, 1, 1, 0, 0, 0)  # fixed stamps: the same inputs give the same zip


class KitLeakError(RuntimeError):
    """The kit would carry answer-key content; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"refusing to write the starter kit: {len(problems)} problem(s) with answer-key "
            f"content\n{listing}\nremove these files from public/ (or rebuild) and try again"
        )


# -- the README ------------------------------------------------------------------


def _percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def readme_values(competition: str | Path) -> dict[str, str]:
    """The figures the kit README quotes, from ``manifest.json`` and ``public/`` only.

    Nothing here comes from ``private/``: test counts per lattice would reveal
    hidden labels in aggregate, so only the test size is given.
    """
    import pyarrow.parquet as pq

    from competition.lattices import BRAVAIS_LATTICES, LATTICE_NAMES
    from scoring.grade import train_counts
    from scoring.leaderboard import DB_PATH, Leaderboard, Rules
    from scoring.metrics import reference_scores
    from scoring.render import markdown_table

    root = Path(competition)
    manifest = json.loads((root / "manifest.json").read_text())
    grid, config = manifest["grid"], manifest["config"]
    counts = train_counts(root, "bravais")
    references = reference_scores(counts)
    test_ids = pq.read_table(root / "public" / "test.parquet", columns=["id"]).column("id")
    rules = Rules()
    if (root / DB_PATH).is_file():
        with Leaderboard.open(root) as board:
            rules = board.rules
    majority = BRAVAIS_LATTICES[int(np.argmax(counts))]
    examples = [f"{test_ids[i].as_py()},{lab}" for i, lab in zip(range(3), ("cF", "hP", "mS"),
                                                                  strict=False)]  # fmt: skip
    return {
        "title": root.resolve().name,
        "lattice_table": markdown_table(
            pd.DataFrame(
                {
                    "symbol": [f"`{s}`" for s in BRAVAIS_LATTICES],
                    "lattice": [LATTICE_NAMES[s] for s in BRAVAIS_LATTICES],
                }
            ),
            left=("symbol", "lattice"),
        ).rstrip("\n"),
        "count_table": markdown_table(
            pd.DataFrame(
                {
                    "lattice": [*(f"`{s}`" for s in BRAVAIS_LATTICES), "total"],
                    "training rows": [f"{n:,}" for n in [*counts, counts.sum()]],
                }
            )
        ).rstrip("\n"),
        "n_train": f"{int(counts.sum()):,}",
        "n_test": f"{len(test_ids):,}",
        "last_column": str(grid["n_points"] - 1),
        "n_points": f"{grid['n_points']:,}",
        "wavelength": str(grid["wavelength"]),
        "two_theta_min": f"{grid['two_theta_min']:g}",
        "two_theta_max": f"{grid['two_theta_max']:g}",
        "step": f"{grid['step']:g}",
        "fwhm": f"{grid['fwhm']:.3g}",
        "source": SOURCE_NAMES.get(manifest["source"].get("kind", ""), "see DATA.md"),
        "test_share": _percent(config["test_fraction"]),
        "public_share": _percent(config["public_fraction"]),
        "private_share": _percent(1 - config["public_fraction"]),
        "uniform": _percent(references["uniform"]),
        "prior": _percent(references["prior"]),
        "majority": _percent(references["majority"]),
        "majority_label": majority,
        "example_rows": "\n".join(examples),
        "daily_quota": str(rules.daily_quota),
        "invalid_quota": str(rules.invalid_daily_quota),
        "max_selected": str(rules.max_selected),
    }


def kit_file(name: str) -> bytes:
    """The bytes of one of :data:`KIT_FILES`, as installed with the package."""
    return resources.files("starter_kit").joinpath(name).read_bytes()


def render_readme(competition: str | Path) -> str:
    """The kit README filled in with the competition's figures."""
    template = Template(kit_file("README.md").decode())
    return template.substitute(readme_values(competition))


# -- collecting and checking ---------------------------------------------------------


def collect_files(competition: str | Path, name: str) -> tuple[dict[str, bytes], list[str]]:
    """Every file bound for the kit as ``{path in zip: bytes}``, and the problems
    found while collecting (links out of ``public/``)."""
    root = Path(competition)
    public = (root / "public").resolve()
    files = {f"{name}/README.md": render_readme(root).encode()}
    files |= {f"{name}/{f}": kit_file(f) for f in KIT_FILES if f != "README.md"}
    problems = []
    for path in sorted((root / "public").rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() and not path.resolve().is_relative_to(public):
            problems.append(f"{relative} is a link to {path.resolve()}, outside public/")
            continue
        if path.is_file():
            files[f"{name}/{relative}"] = path.read_bytes()
    return files, problems


@dataclass(frozen=True)
class _Secrets:
    """What must not leave ``private/``, read once."""

    hashes: dict[str, str]  # sha256 -> private file
    labels: dict[str, dict[str, str]]  # column -> {test id: value}
    constant_share: dict[str, float]  # column -> share of the commonest value
    tokens: frozenset[str]  # test-only cod ids and formulas

    @classmethod
    def read(cls, competition: Path) -> _Secrets:
        private = competition / "private"
        hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p.relative_to(competition).as_posix()
                  for p in sorted(private.rglob("*")) if p.is_file()}  # fmt: skip
        solution = pd.read_csv(private / "solution.csv", dtype=str, keep_default_na=False)
        labels, share = {}, {}
        for column in ("bravais_lattice", "spacegroup_number", "Usage"):
            values = solution[column]
            labels[column] = dict(zip(solution["id"], values, strict=True))
            share[column] = float(values.value_counts(normalize=True).iloc[0])
        return cls(hashes, labels, share, _secret_tokens(competition))


def _secret_tokens(competition: Path) -> frozenset[str]:
    """Test-only cod ids and formulas: the values that would identify a test entry.

    A formula that also names a training entry is not secret; neither is a
    single element (``Si``), which any text may mention.
    """
    meta_path = competition / "private" / "test_meta.parquet"
    if not meta_path.is_file():
        return frozenset()
    meta = pd.read_parquet(meta_path, columns=["cod_id", "formula"])
    train = pd.read_parquet(competition / "public" / "train.parquet", columns=["cod_id", "formula"])
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
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    names = [n for n in table.column_names if not (n.startswith("y") and n[1:].isdigit())]
    text = table.select(names).to_pandas().astype(str).to_csv(index=False) if names else ""
    return text, list(table.column_names)


def _pairs_leak(text: str, secrets: _Secrets) -> list[str]:
    """Label columns whose values sit beside test ids more often than a constant guess."""
    ids = secrets.labels["bravais_lattice"]
    findings = []
    lines = [line for line in text.splitlines() if line]
    tokenised = [(tokens[0], set(tokens))
                 for tokens in (re.findall(r"[A-Za-z0-9_.]+", line) for line in lines)
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


def find_leaks(files: dict[str, bytes], competition: str | Path) -> list[str]:
    """Every answer-key finding in ``files`` (``{path in zip: bytes}``); empty if clean."""
    root = Path(competition)
    secrets = _Secrets.read(root)
    problems = []
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
            if inner == "public/test.parquet":
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


def build_kit(competition: str | Path, out: str | Path, name: str | None = None) -> Path:
    """Write the starter-kit zip for students, after checking it for answer-key content.

    Parameters
    ----------
    competition : path
        A built competition (its ``private/`` is read to check for leaks, never copied).
    out : path
        The zip to write (atomically: a refused kit leaves nothing behind).
    name : str, optional
        The folder inside the zip; default: ``<competition folder>-starter-kit``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    FileNotFoundError
        If ``competition`` is not a built competition.
    KitLeakError
        Listing every finding, if the kit would carry answer-key content.
    """
    from competition.io import atomic_write_bytes

    root = Path(competition)
    for needed in ("manifest.json", "public/test.parquet", "public/train.parquet",
                   "private/solution.csv"):  # fmt: skip
        if not (root / needed).is_file():
            raise FileNotFoundError(f"{root} is not a built competition (no {needed})")
    name = name or f"{root.resolve().name}-starter-kit"
    files, problems = collect_files(root, name)
    problems += find_leaks(files, root)
    if problems:
        raise KitLeakError(problems)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[path])
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)
