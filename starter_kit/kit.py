"""Bundle what students receive: the public files and the starter kit, in one zip.

The kit's ``README.md`` is a template filled in from the competition's own
manifest and training counts. Before anything is written, every file bound for
the zip is checked for answer-key content, and the zip is refused (nothing
written) with every finding listed:

* every file of ``public/`` is one the build wrote, unchanged (its sha256 is the
  manifest's);
* nothing from ``private/``, and no file that is a copy of one; compressed files
  and archives are unpacked and checked like the rest;
* no symbolic link that leads out of ``public/``;
* ``test.parquet`` holds ``id`` and ``y0 .. y{N-1}`` only;
* no text or table pairs test ids with their true labels (lattice, space group
  or Public/Private portion) more often than a constant guess would (ids and
  labels compared without regard to case);
* no test-only ``cod_id`` or formula appears anywhere.

Layout of the zip (unpacked, it is a competition folder that the validator
accepts as ``--competition .``)::

    <name>/README.md
    <name>/starter_notebook.ipynb
    <name>/make_submission.py
    <name>/requirements.txt   (the versions the kit was tested with, no PyTorch)
    <name>/wheels/xrd_bravais-<version>-py3-none-any.whl   (the grader's validator and more)
    <name>/public/...
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Final

import pandas as pd

from competition.sources import SourceKind
from contract import layout
from contract.manifest import read_manifest
from starter_kit.wheel import project_wheel

KIT_FILES: Final = ("README.md", "starter_notebook.ipynb", "make_submission.py")
"""The starter kit's own files (package data of :mod:`starter_kit`)."""
AGGREGATES_KIT_FILES: Final = {"README.md": "README_aggregates.md",
                               "make_submission.py": "make_submission_aggregates.py"}  # fmt: skip
"""The aggregates task's kit: its name in the kit -> the package file."""

SOURCE_NAMES: Final = {
    SourceKind.amcsd: "mineral structures of the American Mineralogist Crystal Structure Database",
    SourceKind.cod_dir: "entries of the Crystallography Open Database (COD)",
    SourceKind.cod_ids: "entries of the Crystallography Open Database (COD)",
    SourceKind.generated: "random crystals generated with pyxtal",
}

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


# -- the README ------------------------------------------------------------------


def _percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def readme_values(competition: str | Path) -> dict[str, str]:
    """The figures the kit README quotes, from ``manifest.json`` and ``public/`` only.

    Nothing here comes from ``private/``: only the test size is given (the
    test set's counts per lattice follow the training mix, as DATA.md says).
    """
    import pyarrow.parquet as pq

    from contract.labels import BRAVAIS_LATTICES, LATTICE_NAMES
    from contract.references import majority_label
    from scoring.grade import train_counts
    from scoring.leaderboard import competition_rules
    from scoring.metrics import reference_scores
    from scoring.render import markdown_table

    root = Path(competition)
    manifest = read_manifest(root)
    grid, config = manifest["grid"], manifest["config"]
    counts = train_counts(root, "bravais")
    references = reference_scores(counts)
    test_ids = pq.read_table(root / layout.TEST, columns=[layout.ID]).column(layout.ID)
    rules = competition_rules(root)
    majority = majority_label(counts, BRAVAIS_LATTICES)
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
        "peaks": _peaks_text(config, grid),
        "measured": _measured_text(manifest),
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


KIT_REQUIREMENTS: Final = (
    "numpy", "pandas", "pyarrow", "scikit-learn", "matplotlib", "typer", "tqdm",
)  # fmt: skip
"""What the notebook and script import besides ``xrd-bravais`` itself, pinned in the
kit's ``requirements.txt``."""
WHEELS: Final = "wheels"
"""The kit's folder for the wheel of ``xrd-bravais`` (on no package index)."""


def requirements_text() -> str:
    """``requirements.txt``: the kit's own wheel, and :data:`KIT_REQUIREMENTS` pinned.

    The kit is tested with the organiser's installation, so students get the
    same versions (a newer pandas or scikit-learn may change behaviour). PyTorch
    is left out: the notebook and script do not need it. ``xrd-bravais`` comes
    from the wheel in ``wheels/`` (:mod:`starter_kit.wheel`), named by a path
    relative to the kit's folder, where the README runs pip.
    """
    from importlib import metadata

    from starter_kit.wheel import wheel_name

    lines = ["# The versions this starter kit was built and tested with; run pip in this",
             "# folder: pip install -r requirements.txt jupyter",
             f"./{WHEELS}/{wheel_name()}"]  # fmt: skip
    for name in KIT_REQUIREMENTS:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(name)
    return "\n".join(lines) + "\n"


def _peaks_text(config: dict[str, object], grid: dict[str, object]) -> str:
    """How the kit README describes the patterns of this competition's profile."""
    if config.get("profile", "clean") == "measured":
        return (
            "measured-looking (profile `measured`): each pattern drawn through a model of a "
            "laboratory Cu diffractometer, with the K-alpha doublet, pseudo-Voigt peaks, "
            "peak shifts, texture, background and counting noise; the training and test "
            "patterns are drawn alike (see DATA.md)"
        )
    fwhm = float(grid["fwhm"])  # type: ignore[arg-type]
    return f"Gaussian (profile `clean`), full width at half maximum {fwhm:.3g} degrees"


def _measured_text(manifest: dict[str, Any]) -> str:
    """A README bullet on the real measurements in the test set, where there are some."""
    measured = manifest.get("measured_test")
    if not measured:
        return ""
    return (
        f"\n- **Real measurements**: {measured['n_used']:,} of the test rows are real "
        "laboratory\n  measurements (Cu K-alpha), not simulations. They are scored on "
        "their own, as\n  the Measured portion, shown when the competition closes: a "
        "model that only\n  knows clean simulated patterns will be seen for what it is. "
        "Their lattice mix\n  is the samples', not the training set's."
    )


def kit_file(name: str) -> bytes:
    """The bytes of one of :data:`KIT_FILES`, as installed with the package."""
    return resources.files("starter_kit").joinpath(name).read_bytes()


def _is_aggregates(competition: str | Path) -> bool:
    from contract.tasks import AGGREGATES_TASK_NAME, load_task

    return load_task(competition).name == AGGREGATES_TASK_NAME


def render_readme(competition: str | Path) -> str:
    """The kit README filled in with the competition's figures."""
    if _is_aggregates(competition):
        template = Template(kit_file(AGGREGATES_KIT_FILES["README.md"]).decode())
        return template.substitute(aggregates_readme_values(competition))
    template = Template(kit_file("README.md").decode())
    return template.substitute(readme_values(competition))


def aggregates_readme_values(competition: str | Path) -> dict[str, str]:
    """The figures the aggregates kit README quotes, from ``manifest.json`` and ``public/``."""
    import pyarrow.parquet as pq

    from contract.references import majority_label
    from contract.tasks import load_task
    from scoring.grade import train_counts
    from scoring.leaderboard import competition_rules
    from scoring.metrics import reference_scores

    root = Path(competition)
    config = read_manifest(root)["config"]
    track = load_task(root).default
    counts = train_counts(root, track)
    references = reference_scores(counts)
    test_ids = pq.read_table(root / layout.TEST, columns=[layout.ID]).column(layout.ID)
    channels = ["image", "scattering"] if config["view"] == "both" else [config["view"]]
    views = {"image": "its projected image", "scattering": "its X-ray scattering pattern",
             "both": "its projected image and its X-ray scattering pattern"}  # fmt: skip
    size = int(config["size"])
    rules = competition_rules(root)
    labels = [str(n) for n in track.labels]
    return {
        "title": root.resolve().name,
        "count_range": f"{labels[0]} to {labels[-1]}",
        "count_list": ", ".join(labels),
        "view_text": views[config["view"]],
        "channel_text": " and ".join(f"`{c}`" for c in channels),
        "n_channels": str(len(channels)),
        "size": str(size),
        "last_column": str(len(channels) * size * size - 1),
        "n_train": f"{int(counts.sum()):,}",
        "n_test": f"{len(test_ids):,}",
        "public_share": _percent(config["public_fraction"]),
        "private_share": _percent(1 - config["public_fraction"]),
        "uniform": _percent(references["uniform"]),
        "majority": _percent(references["majority"]),
        "majority_label": str(majority_label(counts, list(track.labels))),
        "example_rows": "\n".join(
            f"{test_ids[i].as_py()},{labels[i % len(labels)]}" for i in range(min(3, len(test_ids)))
        ),
        "daily_quota": str(rules.daily_quota),
        "invalid_quota": str(rules.invalid_daily_quota),
        "max_selected": str(rules.max_selected),
    }


# -- collecting and checking ---------------------------------------------------------


def collect_files(competition: str | Path, name: str) -> tuple[dict[str, bytes], list[str]]:
    """Every file bound for the kit, and the problems found while collecting.

    Files come as ``{path in zip: bytes}``; the problems are links out of ``public/``.
    """
    root = Path(competition)
    public = (root / layout.PUBLIC).resolve()
    files = {f"{name}/README.md": render_readme(root).encode()}
    if _is_aggregates(root):
        files |= {
            f"{name}/{kit}": kit_file(package)
            for kit, package in AGGREGATES_KIT_FILES.items()
            if kit != "README.md"
        }
    else:
        files |= {f"{name}/{f}": kit_file(f) for f in KIT_FILES if f != "README.md"}
    files[f"{name}/requirements.txt"] = requirements_text().encode()
    wheel, data = project_wheel()
    files[f"{name}/{WHEELS}/{wheel}"] = data
    problems = []
    for path in sorted((root / layout.PUBLIC).rglob("*")):
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
        private = competition / layout.PRIVATE
        hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p.relative_to(competition).as_posix()
                  for p in sorted(private.rglob("*")) if p.is_file()}  # fmt: skip
        solution = pd.read_csv(competition / layout.SOLUTION, dtype=str, keep_default_na=False)
        labels, share = {}, {}
        # Ids and values compared case-insensitively: T000123 and mS vs ms are the same key.
        ids = solution["id"].str.lower()
        from contract.tasks import load_task

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
    from contract.io import atomic_write_zip

    root = Path(competition)
    for needed in (layout.MANIFEST, layout.TEST, layout.TRAIN, layout.SOLUTION):
        if not (root / needed).is_file():
            raise FileNotFoundError(f"{root} is not a built competition (no {needed})")
    name = name or f"{root.resolve().name}-starter-kit"
    files, problems = collect_files(root, name)
    problems += check_public_against_manifest(files, root)
    problems += find_leaks(files, root)
    if problems:
        raise KitLeakError(problems)
    atomic_write_zip(Path(out), files)
    return Path(out)
