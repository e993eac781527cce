"""Human-facing outputs of a build: the DATA.md data card and the figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from competition.lattice.splits import NEAR_COPY_COSINE
from competition.physics.diffraction import DEFAULT_B
from competition.sources.catalog import SourceKind
from xrd_bravais.contract.grid import SCHEMA_METADATA_KEY
from xrd_bravais.contract.io import atomic_path, atomic_write_text
from xrd_bravais.contract.labels import BRAVAIS_LATTICES
from xrd_bravais.contract.layout import (
    MEASURED_PUBLIC_SPLIT,
    MEASURED_SPLIT,
    PATTERN_QUANTUM,
    PATTERN_QUANTUM_KEY,
)
from xrd_bravais.contract.references import majority_label, reference_scores

if TYPE_CHECKING:
    from pathlib import Path

    from competition.config import BuildConfig
    from competition.lattice.example import MeasuredExample
    from competition.lattice.summary import BuildSummary

_COD_LICENCE = (
    "Structures from the Crystallography Open Database (Gražulis et al., "
    "*J. Appl. Cryst.* 42, 726-729, 2009); COD data are in the public domain."
)
_LICENCES = {
    SourceKind.amcsd: (
        "Structures from the American Mineralogist Crystal Structure Database "
        "(Downs & Hall-Wallace, *Am. Mineral.* 88, 247-250, 2003), as shipped by the "
        "`larixite` package; the database is freely available for research and teaching."
    ),
    SourceKind.cod_dir: _COD_LICENCE,
    SourceKind.cod_ids: _COD_LICENCE,
    SourceKind.generated: (
        "Random crystals generated with pyxtal (Fredericks et al., 2021); no licence needed."
    ),
    SourceKind.archive: (
        "Structures from the archive named in `manifest.json` (`source`, with its sha256); "
        "its licence applies. Materials Project structures (ids `mp-...`) are CC-BY 4.0: "
        "credit the Materials Project (A. Jain et al., *APL Materials* 1, 011002, 2013) "
        "in anything built from them. COD structures are public domain (CC0)."
    ),
}


def markdown_table(table: pd.DataFrame, index_name: str = "lattice") -> str:
    """A Markdown table: the index first (a left-aligned column), numbers right-aligned."""
    header = f"| {index_name} | " + " | ".join(table.columns) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    rows = [
        f"| {index} | " + " | ".join(str(v) for v in row) + " |" for index, row in table.iterrows()
    ]
    return "\n".join([header, rule, *rows])


def _profile_text(config: BuildConfig) -> str:
    """The DATA.md lines on how measured-looking patterns were drawn."""
    if config.profile == "clean":
        return "- Profile: clean (ideal peaks on a zero background, no noise)."
    r = config.realism
    return (
        "- Profile: measured. Each pattern was drawn through a model of a laboratory\n"
        "  Bragg-Brentano Cu diffractometer, with its own random settings: the Cu\n"
        "  K-alpha1/K-alpha2 doublet (ratio 2:1, in "
        f"{100 * r.kalpha2_probability:g} % of patterns), pseudo-Voigt peaks\n"
        f"  (Caglioti W {r.w[0]:g}..{r.w[1]:g} deg^2, crystallite size {r.size_nm[0]:g}.."
        f"{r.size_nm[1]:g} nm,\n  microstrain up to {r.strain[1]:g}), zero offset within "
        f"+-{r.zero[1]:g} deg, sample displacement\n  within +-{r.displacement[1]:g} mm, "
        f"March-Dollase texture ({r.texture_ratio[0]:g}..{r.texture_ratio[1]:g}) in "
        f"{100 * r.texture_probability:g} % of patterns,\n  a background of "
        f"{100 * r.background[0]:g}..{100 * r.background[1]:g} % of the strongest peak "
        f"with air scatter and sometimes an amorphous hump,\n  a log-normal graininess of "
        f"{100 * r.graininess:g} % on each reflection, weak peaks of an impurity in "
        f"{100 * r.impurity_probability:g} % of patterns,\n  and Poisson noise with the "
        f"strongest peak at {r.counts[0]:.0e}..{r.counts[1]:.0e} counts. In "
        f"{100 * r.background_subtracted_probability:g} % of patterns\n  the background "
        "was then subtracted, as in processed data; in the others the minimum\n"
        "  of a pattern is its background, not 0. The ranges, calibrated on the aggregate\n"
        "  statistics of real patterns (benchmarks/realism_calibration.py), are in\n"
        "  `competition/physics/realism.py` and in `manifest.json` (`config.realism`)."
        + (f"\n- Draws: {config.draws} patterns per training structure, each with its own "
           "settings and\n  noise (rows with the same formula and space group are one "
           "structure);\n  test structures are drawn once." if config.draws > 1 else "")
    )


def _ladder_text(config: BuildConfig, agreement: dict[str, object]) -> str:
    """The DATA.md line on the symprec ladder, when one was used."""
    if not config.symprec_ladder:
        return ""
    used = agreement.get("labelled_at_symprec") or {}
    counts = ", ".join(f"{n} at {t}" for t, n in used.items())  # type: ignore[union-attr]
    ladder = ", ".join(f"{t:g}" for t in config.symprec_ladder)
    return (
        f"\n- Where spglib at {config.symprec:g} Angstrom missed the declared group, the\n"
        f"  larger tolerances {ladder} were tried in turn, the first that found it kept\n"
        f"  (entries labelled: {counts})."
    )


def _reference_text(train_counts: np.ndarray) -> str:
    if train_counts.sum() == 0:
        return "(no training rows)"
    ref = reference_scores(train_counts)
    majority = majority_label(train_counts, BRAVAIS_LATTICES)
    return "\n".join([
        f"- uniform guess (each lattice with probability 1/14): {100 * ref['uniform']:.2f} %",
        f"- prior-matched guess (each lattice with its training share): "
        f"{100 * ref['prior']:.2f} %",
        f"- majority guess (always `{majority}`, the commonest training lattice): "
        f"{100 * ref['majority']:.2f} %",
    ])  # fmt: skip


_STICKS = "`two_theta`, `d`, `intensity`, `h`, `k`, `l`, `nx`, `ny`, `nz` (see below)"


def _generated_text(generated: dict[str, Any] | None) -> str:
    """The extra training crystals in words: how many, of which lattices, from what."""
    if not generated:
        return ""
    n = int(generated["n"])
    per = ", ".join(f"{lattice} {count}" for lattice, count in generated["per_lattice"].items())
    source = generated.get("source") or {}
    return (
        f"\n{n} of these training structures are not real: they are random crystals made by\n"
        f"pyxtal (seed {source.get('seed', 'n/a')}) in the space groups of the rarest lattices "
        f"({per or 'none kept'}),\nadded to the training split only so that rare lattices have "
        "more examples. None of\ntheir compounds (formula and space group) is in the test "
        "set, which holds real\nstructures only.\n"
    )


_TRAIN_META = (
    "each training row's provenance: `id`, `source` (where the structure came from), "
    "`entry_id`, `cod_id`, `formula`, `declared_spacegroup` (the file's own, if any), "
    "`n_sites`, `symprec_used`, the conventional cell `a b c alpha beta gamma`, `draw`"
)


def _minimum_text(config: BuildConfig, table: pd.DataFrame) -> str:
    """How scarce lattices were topped up in the test set, and where they could not be."""
    minimum = config.min_test_per_lattice
    if not minimum:
        return ""
    # Which lattices fell short, not by how much: the exact counts of a portion
    # would tell students something about its labels.
    fewest = table.loc[list(BRAVAIS_LATTICES), ["public", "private"]].min(axis=1)
    short = [lattice for lattice in BRAVAIS_LATTICES if fewest[lattice] < minimum]
    where = ("; the source had too few for " + ", ".join(short)) if short else ""
    return (
        f", except that every lattice has at least {minimum} rows on each of the two\n"
        "leaderboards where the source allows (a scarce lattice gives up to half of its\n"
        f"structures to the test set, all of them when other sources train it){where}"
    )


def _tolerance_text(descriptions: list[dict[str, Any]]) -> str:
    """How many labels of a known archive change between spglib at 0.01 and 0.1 A."""
    from competition.sources.archive import TOLERANCE_CHANGES

    lines = []
    for description in descriptions:
        known = TOLERANCE_CHANGES.get(str(description.get("sha256")))
        if known is None or description.get("kind") != "archive":
            continue
        n = known["labelled"]
        lines.append(
            f"\n- On {known['name']}, spglib at 0.01 Angstrom puts {known['lattice']:,} of its\n"
            f"  {n:,} structures ({100 * known['lattice'] / n:.1f} %) in another Bravais "
            f"lattice than at 0.1\n  and {known['spacegroup']:,} "
            f"({100 * known['spacegroup'] / n:.1f} %) in another space group (the whole "
            "archive, at both\n  tolerances); relaxed cells want the looser one."
        )
    return "".join(lines)


def _extra_text(extras: list[dict[str, Any]]) -> str:
    """The extra training sources in words: what each gave, per lattice."""
    if not extras:
        return ""
    lines = ["", "Training structures from other sources (training split only; no compound of "
             "a test row,", "no repeat of a structure kept before, at most --per-class "
             "rows per lattice):", ""]  # fmt: skip
    for extra in extras:
        per = ", ".join(f"{lattice} {n}" for lattice, n in extra["per_lattice"].items() if n)
        lines.append(
            f"- `{extra['label']}`: {extra['n']} rows kept of {extra['accepted']} structures "
            f"accepted ({extra['read']} read), labelled at symprec {extra['symprec']:g}: "
            f"{per or 'none kept'}."
        )
    lines.append("`train_meta.parquet` (`source`) says which source each training row came from.")
    return "\n".join(lines) + "\n"


def _licence_text(source_kind: str, extras: list[dict[str, Any]]) -> str:
    """The licence of the main source's structures, then those of any extra source."""
    kinds = [str(source_kind), *(e["kind"] for e in extras if e["kind"] != str(source_kind))]
    texts = dict.fromkeys(_LICENCES.get(k, "See the source of the structures.") for k in kinds)
    return "\n\n".join(texts)


def _measured_text(n_measured: int, measured: dict[str, Any] | None, n_excluded: int,
                   n_public: int = 0) -> str:  # fmt: skip
    """The real measurements in words: how many, from where; never which rows or labels."""
    if not n_measured:
        return " "
    if n_public:
        shown = (
            f"{n_public} of them, drawn at random within each lattice, are scored during the\n"
            "course and shown on the Public board as a separate figure, Real (Public) (they\n"
            f"do not count in the Public accuracy); the other {n_measured - n_public} make a "
            "third portion,\nMeasured, shown only when the competition is closed."
        )
    else:
        shown = ("they make a third portion, Measured, which is scored apart from the\n"
                 "simulated ones and shown only when the competition is closed.")  # fmt: skip
    n_formula = int((measured or {}).get("n_with_formula", 0))
    if n_formula:
        overlap = (
            f"{n_formula} of the measurements name their phase's formula: those compounds\n"
            f"(formula and space group) were kept out of training ({n_excluded} training\n"
            "structures left out)"
            + (", the others may share a mineral with training" if n_formula < n_measured
               else "")
            + ".\n\n"
        )  # fmt: skip
    else:
        overlap = (
            "The measurements name no formula, so the minerals measured may also be among\n"
            "the training structures (the Measured portion tests transfer from simulated\n"
            "to real patterns, not unseen compounds).\n\n"
        )
    return (
        f" {n_measured} of them are real laboratory measurements (Cu K-alpha, read\n"
        "from two-column files and averaged over each bin of the grid above, scaled to a\n"
        "maximum of 1): " + shown + " Their labels come\n"
        "from the organisers' identification of each sample, not from spglib, and their\n"
        "lattice mix is the samples', not the training set's. Nothing in the `id` tells\n"
        "them apart. " + overlap
    )


def write_data_card(
    path: Path, config: BuildConfig, summary: BuildSummary, source_kind: str,
    source_description: dict[str, Any] | None = None,
) -> None:
    """Write the public data card: what the columns mean, how patterns were made, counts.

    ``source_description`` (the source's manifest entry) lets the card quote what is
    known of an archive's labels (:data:`competition.sources.archive.TOLERANCE_CHANGES`).
    """
    grid = config.pattern
    agreement = summary.label_agreement
    rate = agreement["spacegroup_agreement"]
    rate_text = "n/a" if rate is None else f"{100 * rate:.1f} %"
    last = f"`y0 .. y{grid.n_points - 1}`"
    table = summary.class_table()
    train_counts = table[["train"]]
    n_measured = int(table.loc["total", MEASURED_SPLIT]) if MEASURED_SPLIT in table else 0
    n_test = int(table.loc["total", "public"] + table.loc["total", "private"]) + n_measured
    reference = _reference_text(table.loc[list(BRAVAIS_LATTICES), "train"].to_numpy())
    ladder = _ladder_text(config, agreement)
    n_near = summary.rejected_by_stage.get("near-copy", 0)
    n_excluded = summary.rejected_by_stage.get("measured-compound", 0)
    n_public = sum(summary.counts.get(MEASURED_PUBLIC_SPLIT, {}).values())
    measured_text = _measured_text(n_measured, summary.measured_test, n_excluded, n_public)
    text = f"""# Data card

Classify each simulated powder X-ray diffraction pattern into one of the 14
Bravais lattices ({", ".join(BRAVAIS_LATTICES)}), or, in the second track,
into one of the 230 space groups.

## Files

| file | content |
|---|---|
| `train.parquet` | `id`, `cod_id`, `formula`, `spacegroup_number`, `bravais_lattice`, {last} |
| `train_sticks.parquet` | each training row's reflections: `id`, {_STICKS} |
| `train_meta.parquet` | {_TRAIN_META} |
| `test.parquet` | `id`, {last} (no labels) |
| `sample_submission.csv` | `id,bravais_lattice`: a valid file, the commonest training lattice |
| `sample_submission_spacegroup.csv` | `id,spacegroup_number`: the same for the space-group track |
| `overview.png` | training structures per lattice and one training pattern of each |

`cod_id` is the Crystallography Open Database id where the structure came from
COD, and empty otherwise. Test ids are opaque and in random order.
`train_sticks.parquet` lists the reflections each training pattern was made from
(within 3 degrees of the grid's ends: 2theta, d-spacing in Angstrom, intensity
relative to the strongest, the `hkl` that names each peak and its reciprocal-lattice
vector in Cartesian coordinates, 1/Angstrom), so that a training loop can render them
again as a different instrument would measure them (`competition.physics.realism`);
there is no such file for the test set.

## Patterns

- Radiation: {grid.wavelength} (the physics of pymatgen's `XRDCalculator`: kinematic
  intensities with atomic scattering factors, multiplicities, the
  Lorentz-polarisation factor and each element's Debye-Waller factor (the file's
  isotropic displacement, else B = {DEFAULT_B:g} A^2); computed by the
  `{config.engine}` engine).
- Grid: 2theta from {grid.two_theta_min:g} to {grid.two_theta_max:g} degrees in steps of
  {grid.step:g} degrees, {grid.n_points} points; column `yK` is at
  `{grid.two_theta_min:g} + {grid.step:g} * K` degrees.
- Peak shape: Gaussian, FWHM {grid.fwhm:.4g} degrees (standard deviation {grid.sigma:.4g}).
- Scale: each pattern is divided by its maximum (so the largest value is 1); float32,
  stored as multiples of {PATTERN_QUANTUM:.6g} (2^-11) of that maximum: each value is
  within {PATTERN_QUANTUM / 2:.2g} of the simulated one, and the files take about a
  quarter of the space. The quantum is also in the schema metadata
  (`{PATTERN_QUANTUM_KEY.decode()}`).
{_profile_text(config)}
- The grid is also stored in the parquet schema metadata (`{SCHEMA_METADATA_KEY.decode()}`).

## Labels

- `spacegroup_number`: found by spglib at `symprec` = {config.symprec:g} Angstrom and
  angle tolerance {config.angle_tolerance:g} degrees, on the unit cell given in the CIF.
- `bravais_lattice`: crystal family letter plus centring (A, B, C centring is written `S`).
- Agreement of spglib with the space group declared in the source files:
  {agreement["n_spacegroup_agree"]} of {agreement["n_declared"]} ({rate_text}).{ladder}\
{_tolerance_text([source_description or {}, *(e["source"] for e in summary.train_extra)])}

## How the set was built

- Repeated entries (same formula per formula unit, space group and conventional
  cell) were dropped; at most {config.per_class} structures per lattice were kept.
- {100 * config.test_fraction:g} % of the structures are in the test set, chosen per lattice
  and by compound (formula per formula unit + space group, whatever cell a file
  used), so no compound is in both train and test. Different compounds whose clean
  patterns are near-copies of a test pattern (cosine similarity >= {NEAR_COPY_COSINE})
  were taken out of training: {n_near} structures.
  {100 * config.public_fraction:g} % of the test set is scored on the public
  leaderboard, the rest on the private one at the end.
- Seed: {config.seed}.

## Counts

Training structures per lattice:

{markdown_table(train_counts)}
{_generated_text(summary.train_generated)}{_extra_text(summary.train_extra)}
Test set: {n_test} patterns.{measured_text}\
The simulated test set was drawn
per lattice with the same share
({100 * config.test_fraction:g} %) of every lattice, so its count per lattice is about
{config.test_fraction / (1 - config.test_fraction):.3g} times the training count above
(of real structures){_minimum_text(config, table)}:
the class mix of the test set is not a secret, only which pattern is which.

## Metric and the random-guess reference

Submissions are ranked by accuracy on the test set (the public leaderboard uses
its public share; the final ranking uses the rest, at the end), ties broken by
macro-F1, then by the earlier submission. Guessing without looking at the
patterns scores, in expectation, if the test set follows the training class
counts:

{reference}

## Licence

{_licence_text(source_kind, summary.train_extra)}
"""
    atomic_write_text(path, text)


def write_overview_figure(
    path: Path,
    summary: BuildSummary,
    train: pd.DataFrame,
    patterns: Mapping[str, np.ndarray],
    two_theta: np.ndarray,
) -> None:
    """Write a PNG with the class histogram and one training pattern per lattice.

    ``patterns`` gives an entry's pattern by its id: a dict, or the build's
    :class:`competition.lattice.spool.PatternSpool`.

    The figure is for organisers (it lives in ``reports/``): the test bars are
    computed from hidden labels. The example patterns come from the training set.
    """
    plt = _pyplot()
    table = summary.class_table().drop(index="total")
    fig = plt.figure(figsize=(14, 12), layout="constrained")
    grid = fig.add_gridspec(5, 4, height_ratios=[1.4, 1, 1, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    x = np.arange(len(BRAVAIS_LATTICES))
    ax.bar(x, table["train"], label="train", color="tab:blue")
    ax.bar(
        x,
        table["public"] + table["private"],
        bottom=table["train"],
        label="test",
        color="tab:orange",
    )
    if MEASURED_SPLIT in table:
        ax.bar(
            x,
            table[MEASURED_SPLIT],
            bottom=table["train"] + table["public"] + table["private"],
            label="test: real measurements",
            color="tab:green",
        )
    ax.set_xticks(x, BRAVAIS_LATTICES)
    ax.set_ylabel("structures")
    n_used = int(table.to_numpy()[:, :3].sum())
    ax.set_title(
        f"Structures per Bravais lattice: {n_used} in the competition "
        f"({summary.n_accepted} accepted of {summary.n_input} entries)"
    )
    ax.legend()

    _lattice_patterns(fig, grid, train, patterns, two_theta)
    _save(fig, path)


def write_public_overview(
    path: Path,
    train: pd.DataFrame,
    patterns: Mapping[str, np.ndarray],
    two_theta: np.ndarray,
) -> None:
    """Write the students' overview: training structures per lattice and one pattern of each.

    Made from training rows only (``public/overview.png``): unlike the organisers'
    figure it shows no test count, which hidden labels would give.
    """
    plt = _pyplot()
    first = train.drop_duplicates("entry_id")
    counts = first["bravais_lattice"].value_counts().reindex(BRAVAIS_LATTICES, fill_value=0)
    fig = plt.figure(figsize=(14, 12), layout="constrained")
    grid = fig.add_gridspec(5, 4, height_ratios=[1.4, 1, 1, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    ax.bar(np.arange(len(BRAVAIS_LATTICES)), counts.to_numpy(), color="tab:blue")
    ax.set_xticks(np.arange(len(BRAVAIS_LATTICES)), BRAVAIS_LATTICES)
    ax.set_ylabel("structures")
    ax.set_title(f"Training structures per Bravais lattice: {len(first)}")
    _lattice_patterns(fig, grid, train, patterns, two_theta)
    _save(fig, path)


def write_measured_example(path: Path, example: MeasuredExample) -> None:
    """Write a real measurement below the clean and measured-profile patterns of its match.

    For organisers until the close (``reports/``): it names a real test row's label.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True, layout="constrained")
    panels = [
        (example.clean, "tab:blue",
         f"Clean (as built): {example.formula}, space group {example.spacegroup_number} "
         f"({example.bravais_lattice}), a training structure"),
        (example.measured_profile, "tab:orange",
         "Measured profile: the same reflections through the realism model "
         "(instrument, sample, background, counting noise)"),
        (example.real, "black",
         f"Real measurement: {example.file} (a hidden test row until the close); "
         f"cosine {example.cosine:.2f} to the clean pattern"),
    ]  # fmt: skip
    for ax, (y, colour, title) in zip(axes, panels, strict=True):
        ax.plot(example.two_theta, y, lw=0.6, color=colour)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_yticks([])
    axes[-1].set_xlabel("2θ (degrees)")
    _save(fig, path)


def _pyplot() -> Any:
    """The pyplot module of matplotlib, on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lattice_patterns(
    fig: Any, grid: Any, train: pd.DataFrame, patterns: Mapping[str, np.ndarray],
    two_theta: np.ndarray,
) -> None:
    """One training pattern per lattice (the first by entry id) in rows 1-4 of ``grid``."""
    first = (
        train.sort_values("entry_id")
        .drop_duplicates("bravais_lattice")
        .set_index("bravais_lattice")
    )
    for k, lattice in enumerate(BRAVAIS_LATTICES):
        sub = fig.add_subplot(grid[1 + k // 4, k % 4])
        if lattice in first.index:
            row = first.loc[lattice]
            sub.plot(two_theta, patterns[row["entry_id"]], lw=0.6, color="black")
            sub.set_title(
                f"{lattice}: {row['formula']} (SG {row['spacegroup_number']})", fontsize=9
            )
        else:
            sub.set_title(f"{lattice}: none in train", fontsize=9)
        sub.set_yticks([])
        sub.tick_params(axis="x", labelsize=7)
        if k >= len(BRAVAIS_LATTICES) - 4:
            sub.set_xlabel("2θ (degrees)", fontsize=8)


def _save(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG through a temporary file, and free it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
