"""Benchmark the grader: validate + grade a 1,000,000-row submission, render a big leaderboard.

Run from the repository root::

    .venv/bin/python -m benchmarks.grading_speed   # 1,000,000 test rows, 10,000 submissions
    .venv/bin/python -m benchmarks.grading_speed --rows 100000 --submissions 1000

Prints seconds and peak memory (resident set of this process, sampled) for each
step. Target (issue 3): the 1M-row grade in under 3 s and 1 GiB on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python benchmarks/...): find the project
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from scoring.grade import grade
from scoring.leaderboard import Leaderboard
from scoring.render import display_frame, render
from tests.synthetic import make_synthetic_competition


class PeakRSS:
    """Sample this process's resident memory every 5 ms while the block runs."""

    def __enter__(self) -> PeakRSS:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def bench_grade(root: Path, n_rows: int) -> None:
    """Validate and grade an ``n_rows`` submission; print time and peak memory."""
    comp = make_synthetic_competition(root / "big", n_test=n_rows, n_train=1000, seed=0)
    key = pd.read_csv(comp / "private" / "solution.csv", usecols=["id", "bravais_lattice"])
    rng = np.random.default_rng(0)
    wrong = rng.random(len(key)) < 0.3
    key.loc[wrong, "bravais_lattice"] = "cF"
    path = root / "submission.csv"
    key.to_csv(path, index=False)
    del key
    size = path.stat().st_size
    for label in ("cold", "warm"):
        with PeakRSS() as memory:
            start = time.perf_counter()
            result = grade(path, comp)
            seconds = time.perf_counter() - start
        print(
            f"grade {n_rows:,} rows ({size / 1e6:.1f} MB, {label}): {seconds:.2f} s, peak RSS "
            f"{memory.peak / 2**20:.0f} MiB (+{(memory.peak - memory.start) / 2**20:.0f} MiB); "
            f"public accuracy {result.public.accuracy:.4f}"
        )


def bench_leaderboard(root: Path, n_submissions: int) -> None:
    """Store ``n_submissions`` and render the board; print the times."""
    comp = make_synthetic_competition(root / "small", n_test=700, n_train=350, seed=1)
    key = pd.read_csv(comp / "private" / "solution.csv")
    rng = np.random.default_rng(1)
    with Leaderboard.open(comp) as board:
        board.set_rules(daily_quota=n_submissions)
        from scoring.grade import load_answer_key

        answer = load_answer_key(comp)
        start = time.perf_counter()
        for k in range(n_submissions):
            guess = key[["id", "bravais_lattice"]].copy()
            wrong = rng.random(len(guess)) < rng.random()
            guess.loc[wrong, "bravais_lattice"] = "aP"
            board.submit(guess, f"team{k % 500}", answer_key=answer)
        stored = time.perf_counter() - start
        print(f"submit {n_submissions:,} submissions (500 teams): {stored:.1f} s, "
              f"{1000 * stored / n_submissions:.1f} ms each")  # fmt: skip
        for fmt in ("table", "html"):
            with PeakRSS() as memory:
                start = time.perf_counter()
                text = render(display_frame(board.public_board(), {"uniform": 1 / 14}), fmt)
                seconds = time.perf_counter() - start
            print(f"render leaderboard of {n_submissions:,} submissions as {fmt}: "
                  f"{seconds:.2f} s, {len(text):,} characters, peak RSS "
                  f"{memory.peak / 2**20:.0f} MiB")  # fmt: skip


def main() -> None:
    """Run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--submissions", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_grade(Path(tmp), args.rows)
        bench_leaderboard(Path(tmp), args.submissions)


if __name__ == "__main__":
    main()
