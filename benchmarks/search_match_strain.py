"""How much search-match gains from comparing patterns at several cell sizes, by blur.

Search-match (:func:`baselines.lattice.search_match.make_search_match`) compares each
pattern also as if its cell were up to ``strain`` larger or smaller. This benchmark
chooses ``strain`` and the blur on a build's **training rows** alone, never on its
test rows: 3 folds grouped by compound and stratified by lattice (the folds of the
temperature fit); each held-out row is matched against the other folds' references,
once as it is (clean) and once as a realism copy (one draw of the builder's realism
model per row, :func:`baselines.lattice.augment.realism_copies`), which looks like a
measured pattern. It prints the held-out accuracy for every strain and blur, and the
seconds each took.

Run from the repository root::

    .venv/bin/python -m benchmarks.search_match_strain --competition amcsd
    .venv/bin/python -m benchmarks.search_match_strain --competition amcsd --rows 2000
    .venv/bin/python -m benchmarks.search_match_strain --competition amcsd --strain 0,0.03
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

from baselines.data import Patterns, read_patterns, stratified_sample
from baselines.lattice.augment import realism_copies
from baselines.lattice.search_match import make_search_match, temperature_folds
from xrd_bravais.contract import layout


def held_out_accuracy(train: Patterns, strains: list[float], blurs: list[float], realism: bool,
                      random_state: int = 0) -> dict[tuple[float, float], float]:  # fmt: skip
    """Accuracy of held-out training rows matched against the other folds' references.

    Parameters
    ----------
    train : Patterns
        Training rows with their grid, lattices and compounds.
    strains, blurs : list of float
        Largest cell changes (fractions) and blurs (degrees) to try.
    realism : bool
        Match a realism copy of each held-out row instead of the row itself.
    random_state : int, default=0
        Of the folds and of the realism draws.

    Returns
    -------
    dict
        ``(strain, blur) -> accuracy``.
    """
    if train.grid is None:
        raise ValueError("the training rows carry no grid (a parquet written by a build has one)")
    y, groups = train.target(layout.LATTICE), train.groups()
    queries = train.X
    if realism:
        queries = realism_copies(train.X, y, train.grid, draws=1, keep_clean=False,
                                 random_state=random_state)[0]  # fmt: skip
    found = {}
    for blur in blurs:
        model = make_search_match(train.grid, sigma_degrees=blur, temperature=1.0)
        prepare = model[:-1]
        references = np.asarray(prepare.fit_transform(train.X), dtype=np.float32)
        asked = references if not realism else np.asarray(prepare.transform(queries),
                                                          dtype=np.float32)  # fmt: skip
        folds = temperature_folds(references, y, groups, random_state=random_state)
        if folds is None:
            raise ValueError("the training rows hold fewer than two compounds")
        for strain in strains:
            right = 0
            for kept, held in folds:
                match = clone(model[-1]).set_params(strain=strain)
                match.fit(references[kept], y[kept])
                right += int(np.sum(match.predict(asked[held]) == y[held]))
            found[(strain, blur)] = right / len(y)
    return found


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> None:
    """Print the held-out accuracies of a build's training rows (see the module)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competition", "-c", type=Path, required=True)
    parser.add_argument("--strain", type=_floats, default=[0.0, 0.01, 0.02, 0.03, 0.05],
                        help="largest cell changes to try, comma-separated fractions")
    parser.add_argument("--blur", type=_floats, default=[0.2, 0.4, 0.8],
                        help="blurs to try, comma-separated degrees")
    parser.add_argument("--rows", type=int, default=0,
                        help="a stratified sample of this many training rows (0: all)")
    args = parser.parse_args(argv)
    train = read_patterns(args.competition / layout.TRAIN)
    if args.rows:
        keep = stratified_sample(train.target(layout.LATTICE), args.rows)
        labels = None if train.labels is None else train.labels.iloc[keep].reset_index(drop=True)
        train = Patterns(ids=train.ids[keep], X=train.X[keep], labels=labels, grid=train.grid)
    print(f"{len(train.ids):,} training rows of {args.competition}; held-out accuracy, "
          "3 folds grouped by compound")  # fmt: skip
    blurs = " | ".join(f"{b} degrees" for b in args.blur)
    print(f"| queries | largest cell change | {blurs} |")
    print("|---|---:|" + "---:|" * len(args.blur))
    for realism in (False, True):
        start = time.perf_counter()
        found = held_out_accuracy(train, args.strain, args.blur, realism)
        for strain in args.strain:
            cells = " | ".join(f"{100 * found[(strain, b)]:.1f} %" for b in args.blur)
            kind = "realism copies" if realism else "clean"
            print(f"| {kind} | {100 * strain:g} % | {cells} |")
        print(f"({'realism copies' if realism else 'clean'}: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
