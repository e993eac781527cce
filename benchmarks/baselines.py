"""Benchmark the reference baselines on a competition built from the default AMCSD source.

Run from the repository root::

    .venv/bin/python -m benchmarks.baselines     # builds AMCSD (all, default cap) first
    .venv/bin/python -m benchmarks.baselines --competition /tmp/full --names random-forest xgboost
    .venv/bin/python -m benchmarks.baselines --competition /tmp/full --track spacegroup --cv 0

For each baseline it runs ``baselines.run.run_baseline`` (search, refit, predict,
write, validate, record) and then grades the submission on both portions with
the private answer key (this is an organiser's tool). Prints a table with the
training rows, search / fit / predict seconds, Public and Private accuracy and
macro-F1, and the peak resident memory of the process. Issue 4's figures: random
forest about 58 %, XGBoost about 60 %, majority 19 %; the 1D-CNN aims at 85 %
accuracy and macro-F1 0.75.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import pandas as pd

from baselines.data import read_patterns
from baselines.report import write_report
from baselines.run import registry, resolve_names, run_baseline
from scoring.grade import grade, load_answer_key


def build_default(out: Path) -> Path:
    """Build the AMCSD competition (all entries, default cap) unless ``out`` has one."""
    from competition.build import build_competition
    from competition.config import BuildConfig
    from competition.sources import amcsd_source

    if not (out / "manifest.json").is_file():
        build_competition(amcsd_source(), out, BuildConfig())
    return out


def main() -> None:
    """Run the chosen baselines and print their table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competition", type=Path, help="a built competition (default: build)")
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=Path("bench-amcsd"),
        help="where to build the AMCSD competition when none is given",
    )
    parser.add_argument("--names", nargs="*", default=["all"], choices=[*registry(), "all"])
    parser.add_argument("--track", default="bravais", choices=["bravais", "spacegroup"])
    parser.add_argument("--cv", type=int, default=3, help="folds of the search (0: defaults)")
    parser.add_argument(
        "--cnn-cv", type=int, default=0, help="folds of the CNN's search (default 0: one fit)"
    )
    parser.add_argument("--sample", type=int, help="train on a stratified sample of this size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    competition = args.competition or build_default(args.build_dir)
    train = read_patterns(competition / "public" / "train.parquet")
    test = read_patterns(competition / "public" / "test.parquet")
    key = load_answer_key(competition)
    cpu = platform.processor() or platform.machine()
    print(
        f"{competition}: {len(train.ids):,} training and {len(test.ids):,} test patterns of "
        f"{train.X.shape[1]:,} points; {os.cpu_count()} CPUs ({cpu})"
    )
    rows = []
    for baseline in resolve_names(args.names):
        cv = args.cnn_cv if baseline.name == "cnn1d" else args.cv
        start = time.perf_counter()
        result = run_baseline(
            competition,
            baseline,
            track=args.track,
            sample=args.sample,
            cv=cv,
            random_state=args.seed,
            train=train,
            test=test,
            verbose=False,
        )
        total = time.perf_counter() - start
        scores = grade(competition / result.submission, key, args.track)
        rows.append(
            {
                "baseline": baseline.name,
                "n_train": result.n_train,
                "cv": result.cv,
                "cv_acc": result.cv_accuracy,
                "search_s": result.search_seconds,
                "fit_s": result.fit_seconds,
                "predict_s": result.predict_seconds,
                "total_s": round(total, 1),
                "public_acc": scores.public.accuracy,
                "public_f1": scores.public.macro_f1,
                "private_acc": scores.private.accuracy,
                "private_f1": scores.private.macro_f1,
                "best_params": result.best_params,
            }
        )
        print(
            pd.DataFrame(rows[-1:]).drop(columns="best_params").to_string(index=False), flush=True
        )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(f"\n{args.track} track, seed {args.seed}:")
        print(table.drop(columns="best_params").round(4).to_string(index=False))
        print(table[["baseline", "best_params"]].to_string(index=False))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:,.0f} MiB")
    print(f"report: {write_report(competition, args.track)}")


if __name__ == "__main__":
    main()
