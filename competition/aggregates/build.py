"""Build the aggregates competition: count the particles from the scattering.

The same layout and guarantees as the lattice task (see :mod:`xrd_bravais.contract.layout`):
``public/`` holds ``train.parquet`` (``id``, ``n_particles``, ``y0 ..``),
``test.parquet`` (``id``, ``y0 ..``), the sample submission and ``DATA.md``;
``private/`` the answer key and the particles of every row; ``reports/`` the
overview figure; ``manifest.json`` the config, task and sha256 of every file.
Each count gets ``per_count`` aggregates; the test set takes the same share of
each count, and its Public portion the same share of each count again.
Everything follows from the seed: one seed, the same bytes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from competition.aggregates.draw import (
    AggregateConfig,
    draw_aggregate,
    features,
    render,
    scattering,
)
from competition.lattice.splits import opaque_ids
from competition.manifest import package_versions
from competition.outdir import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    BuildError,
    begin_writing,
    check_out_dir,
    end_writing,
    exclusive,
    leftovers,
    remove,
)
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import atomic_path, atomic_write_text
from xrd_bravais.contract.manifest import FORMAT, hashed_files, write_manifest_dict
from xrd_bravais.contract.references import majority_label
from xrd_bravais.contract.tasks import (
    AGGREGATES_TASK_NAME,
    COUNT_COLUMN,
    COUNT_TRACK_NAME,
    TASK_METADATA_KEY,
    aggregates_task,
)

PARTICLES: Final = "private/particles.parquet"
"""Centres and radii of every row's particles (organisers: regenerate or inspect)."""
SOURCE: Final = {"kind": "aggregates", "description": "synthetic aggregates of discs"}

AGGREGATE_FILES: Final = (
    layout.TRAIN, layout.TEST, layout.sample_submission(COUNT_TRACK_NAME), layout.DATA_CARD,
    layout.SOLUTION, PARTICLES, layout.OVERVIEW,
)  # fmt: skip
"""Every file the build writes besides ``manifest.json``."""


@dataclass
class AggregatesSummary:
    """What a build made: rows per count and split, and how long it took."""

    out: Path
    counts: dict[str, dict[str, int]]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Rows in all splits."""
        return sum(sum(split.values()) for split in self.counts.values())


def _split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A mask taking ``round(fraction * n)`` rows of each label, at random."""
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = round(fraction * len(rows))
        mask[rng.choice(rows, take, replace=False)] = True
    return mask


def draw_rows(
    config: AggregateConfig, progress: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every aggregate of a build: one row each (``n_particles``, particles), and the features.

    Each aggregate has its own generator spawned from the seed, so a row does
    not depend on the rows before it.
    """
    from tqdm.auto import tqdm

    labels = np.repeat(np.array(config.counts), config.per_count)
    streams = np.random.SeedSequence([config.seed, 1]).spawn(len(labels))
    rows, X = [], np.empty((len(labels), config.n_features), dtype=np.float32)
    bar = tqdm(list(zip(labels, streams, strict=True)), desc="aggregates", unit="row",
               disable=not progress)  # fmt: skip
    for k, (n, stream) in enumerate(bar):
        rng = np.random.default_rng(stream)
        aggregate = draw_aggregate(int(n), config, rng)
        X[k] = features(aggregate, config, rng)
        rows.append({COUNT_COLUMN: int(n), "centres": aggregate.centres.round(6).tolist(),
                     "radii": aggregate.radii.round(6).tolist()})  # fmt: skip
    return pd.DataFrame(rows), X


def _write_parquet(frame: pd.DataFrame, X: np.ndarray, path: Path, config: AggregateConfig) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: pa.array(frame[name]) for name in frame.columns}
    columns |= {f"y{i}": pa.array(X[:, i]) for i in range(X.shape[1])}
    task = aggregates_task(config.counts)
    metadata = {
        TASK_METADATA_KEY: json.dumps(task.to_dict(), sort_keys=True).encode(),
        layout.IMAGE_METADATA_KEY: json.dumps(
            {"size": config.size, "channels": list(config.channels)}
        ).encode(),
    }
    table = pa.table(columns).replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _counts(frame: pd.DataFrame, counts: tuple[int, ...]) -> dict[str, int]:
    found = frame[COUNT_COLUMN].value_counts()
    return {str(n): int(found.get(n, 0)) for n in counts}


def build_aggregates(
    out: str | os.PathLike[str],
    config: AggregateConfig | None = None,
    *,
    progress: bool = True,
    force: bool = False,
) -> AggregatesSummary:
    """Draw, split and write an aggregates competition to ``out``.

    Parameters
    ----------
    out : path
        Output folder: new, empty, or an earlier build that is not in use.
    config : AggregateConfig, optional
        Geometry, view, noise, sizes, seed; default ``AggregateConfig()``.
    progress : bool
        Show a progress bar.
    force : bool
        Rebuild over a competition in use (its leaderboard and baselines are deleted).

    Raises
    ------
    BuildError
        If the output folder is unsuitable or in use by another build.
    """
    config = config or AggregateConfig()
    out = Path(out)
    check_out_dir(out, AGGREGATE_FILES, force)
    with exclusive(out):
        stale = check_out_dir(out, AGGREGATE_FILES, force)
        start = time.perf_counter()
        rows, X = draw_rows(config, progress)
        _check_images(X, config)
        seconds = {"draw": time.perf_counter() - start}
        start = time.perf_counter()
        seeds = np.random.SeedSequence([config.seed, 2]).spawn(3)
        streams = [np.random.default_rng(s) for s in seeds]
        labels = rows[COUNT_COLUMN].to_numpy()
        in_test = _split(labels, config.test_fraction, streams[0])
        in_public = _split(labels[in_test], config.public_fraction, streams[1])
        rows["split"] = "train"
        rows.loc[in_test, "split"] = np.where(in_public, *layout.PORTIONS)
        ids = np.empty(len(rows), dtype=object)
        ids[~in_test] = opaque_ids(int((~in_test).sum()), "r", streams[2])
        ids[in_test] = opaque_ids(int(in_test.sum()), "t", streams[2])
        rows.insert(0, layout.ID, ids)
        order = np.argsort(ids, kind="stable")
        rows, X = rows.iloc[order].reset_index(drop=True), X[order]
        train = rows["split"] == "train"
        begin_writing(out, AGGREGATES_TASK_NAME)
        remove([*stale, *leftovers(out)], out)
        _write_files(out, config, rows, X, train.to_numpy())
        counts = {"train": _counts(rows[train], config.counts)}
        for portion in layout.PORTIONS:
            counts[portion.lower()] = _counts(rows[rows["split"] == portion], config.counts)
        summary = AggregatesSummary(out, counts)
        write_data_card(out, config, summary)
        write_overview(out / layout.OVERVIEW, config, rows[train])
        write_manifest_dict(out, {
            "format": FORMAT,
            "seed": config.seed,
            "config": config.to_dict(),
            "task": aggregates_task(config.counts).to_dict(),
            "source": SOURCE,
            "versions": package_versions(),
            "counts": {"per_portion": counts},
            "files": hashed_files(out),
        })  # fmt: skip
        end_writing(out)
        seconds["write"] = time.perf_counter() - start
    summary.seconds = seconds
    return summary


def _check_images(X: np.ndarray, config: AggregateConfig) -> None:
    """Refuse settings whose images hold nothing to learn: blank, or all the same.

    Raises
    ------
    BuildError
        If an image is blank or every image is identical.
    """
    blank = int((np.ptp(X, axis=1) == 0).sum())
    if blank:
        raise BuildError(
            f"{blank:,} of {len(X):,} images are blank with these settings (radius "
            f"{config.radius}, size {config.size}, beamstop {config.beamstop}); use larger "
            "particles or a smaller beamstop"
        )
    if len(X) > 1 and bool(np.all(X[0] == X)):
        raise BuildError("every image is the same with these settings; nothing to learn")


def _write_files(out: Path, config: AggregateConfig, rows: pd.DataFrame, X: np.ndarray,
                 train: np.ndarray) -> None:  # fmt: skip
    """The data files: train, test, sample submission, answer key, particles."""
    _write_parquet(rows.loc[train, [layout.ID, COUNT_COLUMN]], X[train], out / layout.TRAIN, config)
    _write_parquet(rows.loc[~train, [layout.ID]], X[~train], out / layout.TEST, config)
    # The sample predicts the commonest training count: valid, from public data only.
    counts = [int((rows.loc[train, COUNT_COLUMN] == n).sum()) for n in config.counts]
    sample = rows.loc[~train, [layout.ID]].assign(
        **{COUNT_COLUMN: majority_label(counts, list(config.counts))}
    )
    atomic_write_text(out / layout.sample_submission(COUNT_TRACK_NAME),
                      sample.to_csv(index=False, lineterminator="\n"))  # fmt: skip
    (out / layout.PRIVATE).mkdir(parents=True, exist_ok=True)
    os.chmod(out / layout.PRIVATE, PRIVATE_DIR_MODE)
    key = rows.loc[~train, [layout.ID, COUNT_COLUMN, "split"]]
    key = key.rename(columns={"split": layout.USAGE})
    atomic_write_text(out / layout.SOLUTION, key.to_csv(index=False, lineterminator="\n"),
                      mode=PRIVATE_FILE_MODE)  # fmt: skip
    particles = rows[[layout.ID, COUNT_COLUMN, "centres", "radii", "split"]].copy()
    particles["centres"] = particles["centres"].map(json.dumps)
    particles["radii"] = particles["radii"].map(json.dumps)
    with atomic_path(out / PARTICLES, mode=PRIVATE_FILE_MODE) as tmp:
        particles.to_parquet(tmp, index=False, compression="zstd")


def write_data_card(out: Path, config: AggregateConfig, summary: AggregatesSummary) -> None:
    """``public/DATA.md``: what the rows are, how they were made, how many of each count."""
    from competition.lattice.report import markdown_table

    def column(split: str) -> list[int]:
        return [summary.counts[split][str(n)] for n in config.counts]

    table = pd.DataFrame(
        {"train": column("train"), "test": np.add(column("public"), column("private"))},
        index=[str(n) for n in config.counts],
    )
    low, high = config.radius
    radius = f"{low:g} pixels" if low == high else f"{low:g} to {high:g} pixels (uniform)"
    channels = " and ".join(f"`{c}`" for c in config.channels)
    noise = (f"Poisson photon noise ({config.photons:g} expected counts per pattern)"
             if config.photons else "no photon noise")  # fmt: skip
    beamstop = (f"a beamstop blocks frequencies within {config.beamstop:g} pixels of the centre"
                if config.beamstop else "no beamstop")  # fmt: skip
    n = config.size
    text = f"""# Aggregates: how many particles?

Each row is an aggregate of {config.counts[0]} to {config.counts[-1]} particles
(discs of radius {radius}) in a {n} x {n} image, each particle
{"touching" if config.overlap == "touching" else "overlapping"} another so that
the aggregate is connected, the first within the central {n // 2} x {n // 2} pixels.
Predict `{COUNT_COLUMN}`, the number of particles.

## Files

- `train.parquet`: `id`, `{COUNT_COLUMN}`, then `y0 .. y{config.n_features - 1}`:
  {channels}, each {n} x {n} pixels row by row (`row.reshape({len(config.channels)}, {n}, {n})`).
- `test.parquet`: `id` and the same columns, without the label.
- `{Path(layout.sample_submission(COUNT_TRACK_NAME)).name}`: a valid submission
  (`id,{COUNT_COLUMN}`).

## How the rows were made

- `image`: the projected thickness, the fraction of each pixel covered by a particle.
- `scattering`: the far-field (Fraunhofer) intensity |FFT(image)|^2, zero frequency at
  the centre, log-scaled to [0, 1]; {beamstop}; {noise}. Moving an aggregate does
  not change it: the count is in the shape of the pattern, not in a position.

## Rows per count

{markdown_table(table, "particles")}

Test rows are {100 * config.test_fraction:.0f} % of each count; the leaderboard
during the competition uses {100 * config.public_fraction:.0f} % of them, the
final ranking the rest. Seed {config.seed}: the same seed gives the same files.

## Licence

Synthetic data made by xrd-bravais; no licence needed.
"""
    atomic_write_text(out / layout.DATA_CARD, text)


def write_overview(path: Path, config: AggregateConfig, train: pd.DataFrame) -> None:
    """``reports/overview.png``: two training examples per count, image and scattering."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from competition.aggregates.draw import Aggregate

    n = config.size
    fig, axes = plt.subplots(4, len(config.counts), figsize=(2.2 * len(config.counts), 9),
                             layout="constrained", squeeze=False)  # fmt: skip
    for j, count in enumerate(config.counts):
        examples = train.index[train[COUNT_COLUMN] == count][:2]
        for e, row in enumerate(examples):
            entry = train.loc[row]
            aggregate = Aggregate(np.array(entry["centres"]), np.array(entry["radii"]))
            image = render(aggregate, n)
            pattern = scattering(image, config.beamstop)  # noiseless, for the eye
            axes[2 * e, j].imshow(image, cmap="gray_r")
            axes[2 * e + 1, j].imshow(pattern, cmap="magma")
            axes[2 * e, j].set_title(f"{count} particle{'s' * (count > 1)}", fontsize=9)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("scattering")
    fig.suptitle(f"Training examples per count ({n} x {n} pixels)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
