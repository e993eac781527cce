r"""Probe a Public board, plain and Ladder, as Blum and Hardt's boosting attack does.

Run from the repository root on a built competition whose baselines have run
(their files are in ``DIR/submissions/``)::

    .venv/bin/python -m benchmarks.board_attack --competition demo
    .venv/bin/python -m benchmarks.board_attack --competition amcsd --base xgboost \\
        --alternative search-match --ks 10 50 200 --trials 5

The attacker (Blum and Hardt, ICML 2015, section 3.1, on a 14-class task) holds two
weak models of about the same accuracy, ``--base`` and ``--alternative`` (the
baselines' files). It sends the base, then *k* random mixtures of the two (each row
from either model with probability 1/2), keeps the mixtures the board says did well,
and sends the row-wise majority vote of the kept ones. On the plain board it keeps
the mixtures whose Public score is above the mean of the *k* scores; under the Ladder
it sees only released scores, so it keeps the mixtures that were released. Each run
uses a fresh store (a copy of the answer key in a temporary folder) through the real
:class:`scoring.leaderboard.Leaderboard`, with the quota lifted.

It prints, for each board and *k*, the attacker's Public gain (the Public score the
board shows after the vote, minus the base's), its Private gain (the vote's
Private accuracy minus the base's) and their difference (how far the board overstates
the attacker), mean and standard deviation over the trials;
then an honest team whose true accuracy rises step by step (the base with more and
more of its wrong rows put right, on every portion alike) and the score each board
shows it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python benchmarks/...): find the project
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.grade import AnswerKey, load_answer_key
from scoring.leaderboard import DB_PATH, Leaderboard
from xrd_bravais.contract import layout
from xrd_bravais.contract.tasks import Track


@dataclass(frozen=True)
class Setting:
    """What every run shares: the answer key, the two models, the portions."""

    key: AnswerKey
    track: Track
    ids: pd.Series
    truth: npt.NDArray[np.int64]
    base: npt.NDArray[np.int64]
    alternative: npt.NDArray[np.int64]
    public: npt.NDArray[np.bool_]
    private: npt.NDArray[np.bool_]

    def frame(self, codes: npt.NDArray[np.int64]) -> pd.DataFrame:
        """A submission of these label codes."""
        labels = np.asarray(self.track.labels, dtype=object)
        return pd.DataFrame({layout.ID: self.ids, self.track.column: labels[codes]})

    def accuracy(self, codes: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> float:
        """The share of the rows in ``mask`` these label codes get right."""
        return float((codes[mask] == self.truth[mask]).mean())


def load_setting(competition: Path, base: str, alternative: str) -> Setting:
    """The answer key and the two baselines' predictions, in the key's row order."""
    key = load_answer_key(competition)
    track = key.task.default
    frame = key.frame
    codes = {}
    for name in (base, alternative):
        path = competition / "submissions" / f"{name}.csv"
        if not path.is_file():
            sys.exit(f"{path} not found: run `xrd-bravais baselines run -c {competition}` first, "
                     "or name other baselines with --base and --alternative")
        sub = pd.read_csv(path, dtype=str).set_index(layout.ID)[track.column]
        lookup = {str(label): i for i, label in enumerate(track.labels)}
        codes[name] = sub.reindex(frame[layout.ID]).map(lookup).to_numpy(dtype=np.int64)
    return Setting(
        key=key, track=track, ids=frame[layout.ID], truth=key.codes(track),
        base=codes[base], alternative=codes[alternative],
        public=key.portion_mask(layout.PUBLIC_PORTION),
        private=key.portion_mask(layout.PRIVATE_PORTION),
    )  # fmt: skip


def fresh_board(copy: Path, kind: str) -> Leaderboard:
    """An empty store on the copied competition, with the quota lifted."""
    shutil.rmtree(copy / Path(DB_PATH).parent, ignore_errors=True)
    board = Leaderboard.open(copy)
    board.set_rules(daily_quota=100_000, public_board=kind)
    return board


def shown_score(board: Leaderboard, team: str, track: Track) -> float:
    """The Public accuracy the board shows for a team."""
    table = board.public_board(track)
    return float(table.loc[table["team"] == team, "accuracy"].iloc[0])


def attack(copy: Path, s: Setting, kind: str, k: int, seed: int) -> tuple[float, float, int]:
    """One boosting attack; its Public gain (as shown), Private gain, and mixtures kept."""
    rng = np.random.default_rng(seed)
    with fresh_board(copy, kind) as board:
        first = board.submit(s.frame(s.base), "attacker", s.track, answer_key=s.key)
        assert first.public is not None
        start = shown_score(board, "attacker", s.track)
        choices, scores, released = [], [], []
        for _ in range(k):
            take = rng.random(s.truth.size) < 0.5
            receipt = board.submit(s.frame(np.where(take, s.alternative, s.base)), "attacker",
                                   s.track, answer_key=s.key)  # fmt: skip
            choices.append(take)
            scores.append(receipt.public.accuracy if receipt.public is not None else np.nan)
            released.append(bool(receipt.released))
        if kind == "ladder":
            kept = [c for c, r in zip(choices, released, strict=True) if r]
        else:
            threshold = float(np.nanmean(scores))
            kept = [c for c, a in zip(choices, scores, strict=True) if a > threshold]
        if kept:
            votes = np.mean(kept, axis=0)
            vote = np.where(votes > 0.5, s.alternative, s.base)
        else:
            vote = s.base
        board.submit(s.frame(vote), "attacker", s.track, answer_key=s.key)
        end = shown_score(board, "attacker", s.track)
    private_gain = s.accuracy(vote, s.private) - s.accuracy(s.base, s.private)
    return end - start, private_gain, len(kept)


def honest(copy: Path, s: Setting, kind: str, steps: int, share: float, seed: int) -> list[dict]:
    """An honest team: the base, then more and more of its wrong rows put right."""
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero(s.base != s.truth)
    order = rng.permutation(wrong)
    rows = []
    with fresh_board(copy, kind) as board:
        for step in range(steps + 1):
            fixed = order[: round(share * len(wrong) * step / steps)]
            codes = s.base.copy()
            codes[fixed] = s.truth[fixed]
            receipt = board.submit(s.frame(codes), "honest", s.track, answer_key=s.key)
            rows.append({
                "step": step,
                "true Private %": 100 * s.accuracy(codes, s.private),
                "own Public %": 100 * s.accuracy(codes, s.public),
                f"{kind} board shows %": 100 * shown_score(board, "honest", s.track),
                f"{kind}: released": "" if receipt.released is None else
                ("yes" if receipt.released else "no"),
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the attack on both boards for each k, then the honest team; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competition", "-c", type=Path, required=True)
    parser.add_argument("--base", default="random-forest", help="the attacker's first model")
    parser.add_argument("--alternative", default="xgboost",
                        help="its second model, of about the same accuracy")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="the honest team's submissions")
    parser.add_argument("--share", type=float, default=0.4,
                        help="share of the base's wrong rows the honest team puts right in all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    s = load_setting(args.competition, args.base, args.alternative)
    n_public = int(s.public.sum())
    base_public = s.accuracy(s.base, s.public)
    noise = np.sqrt(base_public * (1 - base_public) / n_public)
    print(f"{args.competition}: {n_public} Public rows, {int(s.private.sum())} Private rows")
    print(f"base {args.base}: Public {100 * base_public:.1f} %, Private "
          f"{100 * s.accuracy(s.base, s.private):.1f} %; alternative {args.alternative}: Public "
          f"{100 * s.accuracy(s.alternative, s.public):.1f} %, Private "
          f"{100 * s.accuracy(s.alternative, s.private):.1f} %")
    mixture = 0.5 * (s.accuracy(s.base, s.private) + s.accuracy(s.alternative, s.private))
    print(f"a random mixture's expected Private accuracy: {100 * mixture:.1f} % "
          f"({100 * (mixture - s.accuracy(s.base, s.private)):+.1f} points over the base)")
    print(f"noise of a Public score (one standard error): {100 * noise:.1f} points\n")
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "competition"
        (copy / "private").mkdir(parents=True)
        shutil.copy2(args.competition / layout.MANIFEST, copy / layout.MANIFEST)
        shutil.copy2(args.competition / layout.SOLUTION, copy / layout.SOLUTION)
        (copy / "public").symlink_to((args.competition / "public").resolve())
        for kind in ("plain", "ladder"):
            for k in args.ks:
                runs = [attack(copy, s, kind, k, args.seed + 1000 * k + trial)
                        for trial in range(args.trials)]  # fmt: skip
                public, private, kept = (np.array(v, dtype=float)
                                         for v in zip(*runs, strict=True))  # fmt: skip
                overstated = public - private
                results.append({
                    "board": kind, "k": k,
                    "Public gain (points)":
                        f"{100 * public.mean():+.1f} ± {100 * public.std():.1f}",
                    "Private gain (points)":
                        f"{100 * private.mean():+.1f} ± {100 * private.std():.1f}",
                    "Public - Private (points)": f"{100 * overstated.mean():+.1f} ± "
                                                 f"{100 * overstated.std():.1f}",
                    "mixtures kept": f"{kept.mean():.1f}",
                })  # fmt: skip
                print(f"  {kind:6s} k={k:4d}: {results[-1]}", flush=True)
        print(f"\nBoosting attack, {args.trials} trials each (mean ± standard deviation):")
        print(pd.DataFrame(results).to_string(index=False))
        plain = pd.DataFrame(honest(copy, s, "plain", args.steps, args.share, args.seed))
        ladder = pd.DataFrame(honest(copy, s, "ladder", args.steps, args.share, args.seed))
    table = plain.merge(ladder[["step", "ladder board shows %", "ladder: released"]], on="step")
    print("\nAn honest team improving step by step, and what each board shows:")
    print(table.round(1).drop(columns="plain: released").to_string(index=False))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
