"""Load test of the competition website: 20 teams submitting at once to ``xrd-bravais serve``.

Run from the repository root::

    .venv/bin/python -m benchmarks.serve_load                    # 20 teams x 10, 1 server process
    .venv/bin/python -m benchmarks.serve_load --workers 2        # two server processes
    .venv/bin/python -m benchmarks.serve_load --competition demo # a copy of a real build

A server runs in a subprocess on 127.0.0.1 over a fresh copy of the competition (a
synthetic one with the full AMCSD build's 1,450 test rows by default). Each team has
its own connection and sends its submissions one after another, all teams at once
(``--concurrency`` teams in flight; the ``burst`` scenario sends all of them at the same
instant). Every team sends 7 valid files and 3 invalid ones against a quota of 5 valid
and 2 invalid a day, so 3 of its 10 must be refused.

Prints throughput, p50/p95/max latency, the server's peak memory, and checks that
every accepted submission is stored exactly once, that no refused one is stored,
and that every quota is exact. Target (issue 14): nothing lost, p95 under 1 s on
2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python benchmarks/...): find the project
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

from scoring.leaderboard import Leaderboard
from scoring.teams import add_team
from tests.conftest import SiteServer
from tests.synthetic import make_synthetic_competition

VALID_PER_TEAM, INVALID_PER_TEAM = 7, 3
QUOTA, INVALID_QUOTA = 5, 2


def _files(competition: Path, team: int, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """A team's submissions, in a shuffled order: (kind, CSV bytes)."""
    key = pd.read_csv(competition / "private" / "solution.csv", keep_default_na=False)
    labels = key["bravais_lattice"].to_numpy().copy()
    files = []
    for i in range(VALID_PER_TEAM):
        guess = labels.copy()
        flip = rng.random(len(guess)) < 0.1 + 0.05 * i  # a different score each time
        guess[flip] = rng.choice(labels, flip.sum())
        files.append(("valid", pd.DataFrame({"id": key["id"], "bravais_lattice": guess})
                      .to_csv(index=False).encode()))  # fmt: skip
    for i in range(INVALID_PER_TEAM):
        broken = pd.DataFrame({"id": key["id"].iloc[i + 1:], "bravais_lattice": "cubic"})
        files.append(("invalid", broken.to_csv(index=False).encode()))
    order = rng.permutation(len(files))
    return [files[j] for j in order]


class PeakRSS(threading.Thread):
    """Sample a process tree's resident memory every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        """Sample until told to stop."""
        while not self.done.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.02)


async def _team(client: httpx.AsyncClient, url: str, token: str, files, tag: str, gate,
                results: list) -> None:  # fmt: skip
    for n, (kind, content) in enumerate(files):
        async with gate:
            message = f"{tag}-{n}"
            start = time.perf_counter()
            answer = await client.post(
                f"{url}/api/v1/submissions", headers={"Authorization": f"Bearer {token}"},
                files={"file": ("s.csv", content, "text/csv")},
                data={"track": "bravais", "message": message}, timeout=120,
            )  # fmt: skip
            results.append({"team": tag, "kind": kind, "message": message,
                            "status": answer.status_code, "seconds": time.perf_counter() - start,
                            "id": answer.json().get("submission_id")})  # fmt: skip


async def _load(url: str, teams: dict[str, tuple[str, list]], concurrency: int) -> list[dict]:
    results: list[dict] = []
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=max(concurrency, 1))
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(
            _team(client, url, token, files, tag, gate, results)
            for tag, (token, files) in teams.items()
        ))  # fmt: skip
    return results


def _check(store: Path, results: list[dict]) -> list[str]:
    """Every accepted submission stored once, no refused one stored, quotas exact."""
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT s.id, s.message, s.valid, t.name FROM submissions s "
            "JOIN teams t ON t.id = s.team_id WHERE t.baseline = 0").fetchall()  # fmt: skip
    problems = []
    stored = Counter(message for _, message, _, _ in rows)
    ids = {message: sid for sid, message, _, _ in rows}
    for r in results:
        accepted = r["status"] in (201, 422)
        if accepted and (stored[r["message"]] != 1 or ids.get(r["message"]) != r["id"]):
            problems.append(f"{r['message']}: answered {r['status']}, stored "
                            f"{stored[r['message']]} time(s)")  # fmt: skip
        if not accepted and stored[r["message"]]:
            problems.append(f"{r['message']}: refused ({r['status']}) but stored")
        if r["status"] not in (201, 422, 429):
            problems.append(f"{r['message']}: unexpected status {r['status']}")
    per_team = Counter((name, valid) for _, _, valid, name in rows)
    for team in {r["team"] for r in results}:
        if per_team[(team, 1)] != min(QUOTA, VALID_PER_TEAM):
            problems.append(f"{team}: {per_team[(team, 1)]} valid stored, quota {QUOTA}")
        if per_team[(team, 0)] != min(INVALID_QUOTA, INVALID_PER_TEAM):
            problems.append(f"{team}: {per_team[(team, 0)]} invalid stored, "
                            f"quota {INVALID_QUOTA}")  # fmt: skip
    return problems


def run_scenario(source: Path, n_teams: int, concurrency: int, workers: int, seed: int) -> None:
    """Serve a fresh copy, send every team's files, print the figures and the checks."""
    with tempfile.TemporaryDirectory() as tmp:
        competition = Path(shutil.copytree(source, Path(tmp) / "comp"))
        rng = np.random.default_rng(seed)
        teams = {}
        with Leaderboard.open(competition) as board:
            board.set_rules(daily_quota=QUOTA, invalid_daily_quota=INVALID_QUOTA)
            for i in range(n_teams):
                tag = f"team{i:02d}"
                teams[tag] = (add_team(board, tag), _files(competition, i, rng))
        server = SiteServer(competition)
        server.extra = ["--workers", str(workers)]
        server.start()
        try:
            memory = PeakRSS(server.process.pid)
            memory.start()
            start = time.perf_counter()
            results = asyncio.run(_load(server.url, teams, concurrency))
            elapsed = time.perf_counter() - start
            memory.done.set()
            memory.join()
        finally:
            server.stop()
        problems = _check(competition / "leaderboard" / "leaderboard.sqlite", results)
    seconds = sorted(r["seconds"] for r in results)
    statuses = Counter(r["status"] for r in results)
    p95 = seconds[int(np.ceil(0.95 * len(seconds))) - 1]
    label = "burst (all at once)" if concurrency >= len(results) else f"{concurrency} in flight"
    print(f"\n{len(results)} submissions from {n_teams} teams, {label}, "
          f"{workers} server process{'es' * (workers != 1)}")
    print(f"  throughput      {len(results) / elapsed:8.1f} submissions/s ({elapsed:.2f} s)")
    print(f"  latency p50     {1000 * statistics.median(seconds):8.0f} ms")
    print(f"  latency p95     {1000 * p95:8.0f} ms   (target < 1000 ms)")
    print(f"  latency max     {1000 * seconds[-1]:8.0f} ms")
    print(f"  server peak RSS {memory.peak / 2**20:8.0f} MiB")
    print(f"  answers         {dict(sorted(statuses.items()))} "
          "(201 scored, 422 invalid and stored, 429 over quota and not stored)")
    expected = n_teams * (min(QUOTA, VALID_PER_TEAM) + min(INVALID_QUOTA, INVALID_PER_TEAM))
    print(f"  stored          {statuses[201] + statuses[422]} of {expected} expected; "
          f"checks: {'all passed' if not problems else f'{len(problems)} FAILED'}")
    for problem in problems[:20]:
        print(f"    - {problem}")


def main() -> None:
    """Parse the options and run the scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competition", type=Path, help="A built competition to copy.")
    parser.add_argument("--rows", type=int, default=1450, help="Test rows of the synthetic one.")
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20,
                        help="Submissions in flight (default: one per team).")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="Server processes.")
    parser.add_argument("--burst", action="store_true",
                        help="Also send every submission at the same instant.")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.competition or make_synthetic_competition(
            Path(tmp) / "synthetic", n_test=args.rows, n_train=100, seed=args.seed)
        print(f"competition: {args.competition or f'synthetic, {args.rows:,} test rows'}; "
              f"{psutil.cpu_count()} cores")
        run_scenario(source, args.teams, args.concurrency, args.workers, args.seed)
        if args.burst:
            run_scenario(source, args.teams, args.teams * 10, args.workers, args.seed)


if __name__ == "__main__":
    main()
