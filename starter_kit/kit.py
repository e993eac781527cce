"""Bundle what students receive: the public files and the starter kit, in one zip.

The kit's ``README.md`` is a template filled in from the competition's own
manifest and training counts. Before anything is written, every file bound for
the zip is checked for answer-key content (:mod:`starter_kit.leaks`), and the zip
is refused (nothing written) with every finding listed; a symbolic link that leads
out of ``public/`` is refused too.

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

from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from competition.sources.catalog import SourceKind
from starter_kit.leaks import (
    WHEELS,
    KitLeakError,
    check_public_against_manifest,
    find_leaks,
)
from starter_kit.wheel import project_wheel
from xrd_bravais.contract import layout
from xrd_bravais.contract.manifest import read_manifest

if TYPE_CHECKING:
    from scoring.leaderboard import Rules

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

# -- the README ------------------------------------------------------------------


def _percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def readme_values(competition: str | Path) -> dict[str, str]:
    """The figures the kit README quotes, from ``manifest.json`` and ``public/`` only.

    Nothing here comes from ``private/``: only the test size is given (the
    test set's counts per lattice follow the training mix, as DATA.md says).
    """
    import pyarrow.parquet as pq

    from scoring.grade import train_counts
    from scoring.leaderboard import competition_rules
    from scoring.metrics import reference_scores
    from scoring.render import markdown_table
    from xrd_bravais.contract.labels import BRAVAIS_LATTICES, LATTICE_NAMES
    from xrd_bravais.contract.references import majority_label

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
        **public_board_fields(rules),
    }


def public_board_fields(rules: Rules) -> dict[str, str]:
    """What the kit's README says of the Public board in force when the kit was made."""
    if rules.is_ladder:
        text = (
            "Your Public score changes only when a submission beats your released score by "
            "more than the noise of the comparison (Blum and Hardt's Ladder, a paired test on "
            "the Public rows); otherwise the submission is scored and kept, its Public score "
            "stays hidden until the close, and the board keeps your released one. Tweaks tuned "
            "to the board show nothing; real progress does."
        )
    else:
        text = "Every valid submission's Public score is shown; your best one counts."
    return {"public_board": rules.public_board, "public_board_text": text}


KIT_REQUIREMENTS: Final = (
    "numpy", "pandas", "pyarrow", "scikit-learn", "matplotlib", "typer", "tqdm",
)  # fmt: skip
"""What the notebook and script import besides ``xrd-bravais`` itself, pinned in the
kit's ``requirements.txt``."""


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
    per_portion = manifest.get("counts", {}).get("per_portion", {})
    shown = sum(per_portion.get(layout.MEASURED_PUBLIC_SPLIT, {}).values())
    when = (
        f"{shown:,} of them are scored\n  from your first submission (the \"Public (real "
        "measurements)\" line of your\n  receipt and the board's `Real (Public) %` column, "
        "not ranked on); the others\n  only when the competition closes"
        if shown else "shown when the competition closes"
    )  # fmt: skip
    return (
        f"\n- **Real measurements**: {measured['n_used']:,} of the test rows are real "
        "laboratory\n  measurements (Cu K-alpha), not simulations. They are scored on "
        f"their own: {when}. A model that only\n  knows clean simulated patterns will be "
        "seen for what it is. Their lattice mix\n  is the samples', not the training set's."
    )


def kit_file(name: str) -> bytes:
    """The bytes of one of :data:`KIT_FILES`, as installed with the package."""
    return resources.files("starter_kit").joinpath(name).read_bytes()


def _is_aggregates(competition: str | Path) -> bool:
    from xrd_bravais.contract.tasks import AGGREGATES_TASK_NAME, load_task

    return load_task(competition).name == AGGREGATES_TASK_NAME


def render_readme(competition: str | Path, host: str | None = None) -> str:
    """The kit README filled in with the competition's figures.

    ``host``: the platform that runs the leaderboard (``"Kaggle"``, ``"Codabench"``)
    where it is not our grader; its board shows every Public score, whatever
    ``rules --public-board`` says.
    """
    if _is_aggregates(competition):
        template = Template(kit_file(AGGREGATES_KIT_FILES["README.md"]).decode())
        values = aggregates_readme_values(competition)
    else:
        template = Template(kit_file("README.md").decode())
        values = readme_values(competition)
    if host is not None:
        values |= {
            "public_board": f"plain (on {host})",
            "public_board_text": f"{host}'s leaderboard shows every submission's Public score: "
            "do not tune to it.",
        }
    return template.substitute(values)


def aggregates_readme_values(competition: str | Path) -> dict[str, str]:
    """The figures the aggregates kit README quotes, from ``manifest.json`` and ``public/``."""
    import pyarrow.parquet as pq

    from scoring.grade import train_counts
    from scoring.leaderboard import competition_rules
    from scoring.metrics import reference_scores
    from xrd_bravais.contract.references import majority_label
    from xrd_bravais.contract.tasks import load_task

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
        **public_board_fields(rules),
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
    from xrd_bravais.contract.io import atomic_write_zip

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

