"""Benchmark the aggregates task: build throughput and the baselines' accuracy per count.

Run from the repository root::

    .venv/bin/python -m benchmarks.aggregates                 # default build, then a hard one
    .venv/bin/python -m benchmarks.aggregates --per-count 200 --epochs 10

For each configuration (the default build: touching discs of radius 4 in 64 x 64
pixels, noiseless scattering; and a hard one: overlapping discs, a beamstop of 2
pixels and 10^5 photons of Poisson noise) it builds the competition in a
temporary folder (aggregates per second drawn, and in all), fits the three
baselines on the training rows, and prints the accuracy of each on the whole
test set (Public and Private, with the answer key: an organiser's tool) per
particle count, then how often a 4 is read as 5 and a 5 as 4, where overlapping
particles hide one another.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from baselines.aggregates.models import NAMES, make_baseline, read_images
from competition.aggregates.build import build_aggregates
from competition.aggregates.draw import AggregateConfig
from xrd_bravais.contract import layout

CONFIGS = {
    "default": {},
    "hard": {"overlap": "overlapping", "beamstop": 2.0, "photons": 1e5},
}


def run(name: str, settings: dict, per_count: int, epochs: int) -> None:
    """Build one configuration, fit the baselines, print throughput and accuracies."""
    config = AggregateConfig(per_count=per_count, **settings)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        start = time.perf_counter()
        summary = build_aggregates(out, config, progress=False)
        total = time.perf_counter() - start
        n = summary.n_rows
        photons = f"{config.photons:g}" if config.photons else "none"
        print(f"\n== {name}: {config.size} x {config.size} pixels, radius {config.radius[0]:g}, "
              f"{config.overlap}, beamstop {config.beamstop:g}, photons {photons}")  # fmt: skip
        print(f"build: {n:,} aggregates, drawn at {n / summary.seconds['draw']:,.0f}/s, "
              f"{n / total:,.0f}/s with writing ({total:.1f} s)")  # fmt: skip
        train = read_images(out / layout.TRAIN)
        test = read_images(out / layout.TEST)
        key = pd.read_csv(out / layout.SOLUTION).set_index("id").loc[test.ids, "n_particles"]
        truth = key.to_numpy()
        rows = {}
        for baseline in NAMES:
            params = {"epochs": epochs} if baseline == "cnn2d" else {}
            model = make_baseline(baseline, 0, False, **params)
            flat = baseline == "random"
            start = time.perf_counter()
            model.fit(train.X.reshape(len(train.X), -1) if flat else train.X, train.y)
            fit = time.perf_counter() - start
            predicted = model.predict(test.X.reshape(len(test.X), -1) if flat else test.X)
            row = {"all": 100 * float((predicted == truth).mean())}
            row |= {str(c): 100 * float((predicted[truth == c] == c).mean()) for c in config.counts}
            row["4 read as 5"] = 100 * float((predicted[truth == 4] == 5).mean())
            row["5 read as 4"] = 100 * float((predicted[truth == 5] == 4).mean())
            row["fit s"] = fit
            rows[baseline] = row
        table = pd.DataFrame(rows).T
        print(f"accuracy % on the {len(truth):,} test rows, per count (train {len(train.y):,}):")
        print(table.round(1).to_string())


def main() -> None:
    """Parse the options and run each configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-count", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=25, help="CNN epochs")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    np.set_printoptions(precision=3)
    for name in args.configs:
        run(name, CONFIGS[name], args.per_count, args.epochs)


if __name__ == "__main__":
    main()
