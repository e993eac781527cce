r"""Which floor search-match should subtract from a measured pattern, chosen on training rows.

Search-match (:func:`baselines.lattice.search_match.make_search_match`) subtracts a
floor after SNIP: 2 % of the strongest peak, or where a pattern is noisier its median
plus ``noise_floor`` times its noise (:class:`baselines.lattice.search_match.Floor`).
This benchmark compares floors on a build's **training rows** alone, never on its
test rows: folds grouped by compound (those of the temperature fit), the held-out
rows of the build's own source (not ``--train-extra`` structures: the minerals a
test holds) matched against the other folds' references, as they are (clean) and as
one realism copy each (one seeded draw of the builder's realism model: what a
measured pattern looks like). The references are prepared once, as shipped; each
floor is applied to the held-out queries (a clean reference keeps the 2 % floor
under every noise-following floor anyway). It prints the held-out accuracy for each
floor and symmetry window, and the seconds each floor took.

Run from the repository root::

    .venv/bin/python -m benchmarks.search_match_floor --competition amcsd
    .venv/bin/python -m benchmarks.search_match_floor --competition amcsd-mpall --folds 1 \
        --floors 0.02:0,0.035:0,0.02:3,0.02:5,0.02:8 --windows 0,0.015,0.02
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

from baselines.data import own_source_rows, read_patterns
from baselines.lattice.augment import realism_copies
from baselines.lattice.search_match import (
    _symmetric_answer,
    _symmetry_ranks,
    make_search_match,
    temperature_folds,
)
from xrd_bravais.contract import layout


def held_out_floors(competition: Path, floors: list[tuple[float, float]], windows: list[float],
                    n_folds: int = 3, random_state: int = 0) -> list[dict[str, float]]:  # fmt: skip
    """Held-out accuracy of the build's own training rows under each floor and window.

    Parameters
    ----------
    competition : Path
        A built competition (its training rows, their grid and ``train_meta.parquet``).
    floors : list of (float, float)
        ``(level, noise)`` pairs of :class:`baselines.lattice.search_match.Floor`.
    windows : list of float
        Symmetry windows to answer with.
    n_folds : int, default=3
        How many of the 3 folds to hold out (1: a third of the rows, a third of the time).
    random_state : int, default=0
        Of the realism draws.

    Returns
    -------
    list of dict
        One per floor: ``level``, ``noise``, ``rows``, ``seconds`` and
        ``"<clean|realism>@<window>"`` accuracies.
    """
    train = read_patterns(competition / layout.TRAIN)
    if train.grid is None:
        raise ValueError("the training rows carry no grid (a parquet written by a build has one)")
    y, groups = train.target(layout.LATTICE), train.groups()
    own = own_source_rows(competition, train.ids)
    own = np.ones(len(y), dtype=bool) if own is None else own
    model = make_search_match(train.grid)
    prepare = model[:-1].fit(train.X[:1])  # stateless steps: fitted to know the columns
    shipped = prepare["floor"].get_params()  # the references' floor, before the loop moves it
    found = [{"level": level, "noise": noise, "rows": 0.0, "seconds": 0.0}
             for level, noise in floors]  # fmt: skip
    hits: dict[tuple[int, str, float], list[np.ndarray]] = {}
    for kept, held in (temperature_folds(train.X, y, groups) or [])[:n_folds]:
        held = held[own[held]]
        prepare["floor"].set_params(**shipped)
        match = clone(model[-1]).set_params(temperature=1.0, symmetry_window=0.0)
        match.fit(prepare.transform(train.X[kept]), y[kept])
        held = held[np.isin(y[held], match.classes_)]
        ranks = _symmetry_ranks(match.classes_)
        copies, _ = realism_copies(train.X[held], y[held], train.grid, draws=1, keep_clean=False,
                                   random_state=random_state)  # fmt: skip
        for k, (level, noise) in enumerate(floors):
            start = time.perf_counter()
            prepare.set_params(floor__level=level, floor__noise=noise)
            for kind, queries in (("clean", train.X[held]), ("realism", copies)):
                scores = match.best_cosines(prepare.transform(queries)).astype(np.float64)
                for window in windows:
                    answers = _symmetric_answer(scores, ranks, window).argmax(axis=1)
                    hits.setdefault((k, kind, window), []).append(
                        match.classes_[answers] == y[held])
            found[k]["seconds"] += time.perf_counter() - start
            found[k]["rows"] += len(held)
    for (k, kind, window), parts in hits.items():
        found[k][f"{kind}@{window:g}"] = float(np.concatenate(parts).mean())
    return found


def _pairs(text: str) -> list[tuple[float, float]]:
    pairs = []
    for item in text.split(","):
        level, _, noise = item.partition(":")
        pairs.append((float(level), float(noise or 0)))
    return pairs


def _floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    """Print the held-out accuracy of each floor and window as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competition", "-c", type=Path, required=True)
    parser.add_argument("--floors", type=_pairs, default=_pairs("0.02:0,0.035:0,0.02:3,0.02:5"),
                        help="LEVEL:NOISE pairs, separated by commas (default: "
                             "0.02:0,0.035:0,0.02:3,0.02:5)")  # fmt: skip
    parser.add_argument("--windows", type=_floats, default=[0.0, 0.015, 0.02],
                        help="symmetry windows, separated by commas (default: 0,0.015,0.02)")
    parser.add_argument("--folds", type=int, default=3, choices=(1, 2, 3),
                        help="how many of the 3 folds to hold out (default: 3)")
    args = parser.parse_args(argv)
    found = held_out_floors(args.competition, args.floors, args.windows, args.folds)
    columns = [f"{kind}@{w:g}" for kind in ("clean", "realism") for w in args.windows]
    print(f"{int(found[0]['rows']):,} held-out training rows of the build's own source, "
          f"{args.folds} of 3 folds\n")
    print("| floor | " + " | ".join(columns) + " | s |")
    print("|---|" + "---:|" * (len(columns) + 1))
    for row in found:
        name = (f"{100 * row['level']:g} %" if row["noise"] == 0
                else f"median + {row['noise']:g} x noise (at least {100 * row['level']:g} %)")
        cells = " | ".join(f"{100 * row[c]:.1f} %" for c in columns)
        print(f"| {name} | {cells} | {row['seconds']:.0f} |")


if __name__ == "__main__":
    main()
