"""Benchmark the reference baselines on a competition built from the default AMCSD source.

Run from the repository root::

    .venv/bin/python -m benchmarks.baseline_scores     # builds AMCSD (all, default cap) first
    .venv/bin/python -m benchmarks.baseline_scores --competition /tmp/full \
        --names random-forest xgboost
    .venv/bin/python -m benchmarks.baseline_scores --competition /tmp/full --track spacegroup --cv 0
    .venv/bin/python -m benchmarks.baseline_scores --competition /tmp/full \
        --track bravais spacegroup
    .venv/bin/python -m benchmarks.baseline_scores --competition /tmp/full --names cnn1d \
        --set cnn1d:epochs=120

For each track and baseline it runs ``baselines.runner.run.run_baseline`` (search,
refit, predict, write, validate, record) and then grades the submission on both
portions with the private answer key (this is an organiser's tool). Prints a
table with the training rows, search / fit / predict seconds, Public and Private
accuracy (95 % Wilson interval) and macro-F1 (95 % row-bootstrap interval), the
device the model ran on, and the peak resident memory of the process so far.
Issue 4's figures: random forest about 58 %, XGBoost about 60 %, majority 19 %;
the 1D-CNN aims at 85 % accuracy and macro-F1 0.75. The ``blend`` (1D-CNN +
XGBoost, a log-linear pool) runs last and votes with the two models fitted before
it (its ``reused`` column), after fitting a clone of each on four fifths of the
training rows to learn its exponents; run on its own, it fits them with their
defaults.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import pandas as pd

from baselines.cli import parse_overrides
from baselines.data import read_patterns
from baselines.runner.report import write_report
from baselines.runner.run import registry, resolve_names, run_baseline
from scoring.grade import grade, load_answer_key


def build_default(out: Path) -> Path:
    """Build the AMCSD competition (all entries, default cap) unless ``out`` has one."""
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import amcsd_source

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
    parser.add_argument("--track", nargs="+", default=["bravais"],
                        choices=["bravais", "spacegroup"], help="one or both tracks")  # fmt: skip
    parser.add_argument("--cv", type=int, default=3, help="folds of the search (0: defaults)")
    parser.add_argument(
        "--cnn-cv", type=int, default=0, help="folds of the CNN's search (default 0: one fit)"
    )
    parser.add_argument("--sample", type=int, help="train on a stratified sample of this size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME:PARAM=VALUE",
                        help="a parameter, as in `xrd-bravais baselines run`")  # fmt: skip
    args = parser.parse_args()
    try:
        args.overrides = parse_overrides(args.set, [b.name for b in resolve_names(args.names)])
    except ValueError as err:
        parser.error(str(err))

    competition = args.competition or build_default(args.build_dir)
    train = read_patterns(competition / "public" / "train.parquet")
    test = read_patterns(competition / "public" / "test.parquet")
    key = load_answer_key(competition)
    cpu = platform.processor() or platform.machine()
    print(
        f"{competition}: {len(train.ids):,} training and {len(test.ids):,} test patterns of "
        f"{train.X.shape[1]:,} points; {os.cpu_count()} CPUs ({cpu})"
    )
    for track in args.track:
        run_track(competition, track, args, train, test, key)


def _interval(value: float, ci: tuple[float, float], scale: float = 100.0) -> str:
    low, high = ci
    digits = 1 if scale == 100 else 3
    return f"{scale * value:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_track(competition: Path, track: str, args: argparse.Namespace, train: Any, test: Any,
              key: Any) -> None:  # fmt: skip
    """Run the chosen baselines on one track and print their table."""
    rows = []
    for baseline in resolve_names(args.names):
        cv = args.cnn_cv if baseline.name == "cnn1d" else args.cv
        start = time.perf_counter()
        result = run_baseline(
            competition, baseline, track=track, sample=args.sample, cv=cv,
            random_state=args.seed, train=train, test=test, verbose=False,
            params=args.overrides.get(baseline.name),
        )  # fmt: skip
        total = time.perf_counter() - start
        scores = grade(competition / result.submission, key, track)
        public, private = scores.public, scores.private
        rows.append({
            "baseline": baseline.name,
            "n_train": result.n_train,
            "cv_acc": None if result.cv_accuracy is None else round(100 * result.cv_accuracy, 1),
            "search_s": round(result.search_seconds, 1),
            "fit_s": round(result.fit_seconds, 1),
            "predict_s": round(result.predict_seconds, 2),
            "total_s": round(total, 1),
            "public_acc %": _interval(public.accuracy, public.accuracy_ci),
            "public_f1": _interval(public.macro_f1, public.macro_f1_ci, 1.0),
            "private_acc %": _interval(private.accuracy, private.accuracy_ci),
            "private_f1": _interval(private.macro_f1, private.macro_f1_ci, 1.0),
            "device": result.extras.get("device", "cpu"),
            # A blend votes with the members fitted just before it (its fit is theirs).
            "reused": ", ".join(k for k, v in result.extras.get("members", {}).items()
                                if v == "reused") or "-",
            "peak_MiB": round(_peak_mib()),
            "best_params": result.best_params,
        })  # fmt: skip
        print(pd.DataFrame(rows[-1:]).drop(columns="best_params").to_string(index=False),
              flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_colwidth", 80):
        print(f"\n{track} track, seed {args.seed}:")
        print(table.drop(columns="best_params").to_string(index=False))
        print(table[["baseline", "best_params"]].to_string(index=False))
    print(f"peak resident memory: {_peak_mib():,.0f} MiB")
    print(f"report: {write_report(competition, track)}")


if __name__ == "__main__":
    main()
