"""Count the particles: radial profile + random forest, compared with random guessing.

The aggregates starter kit's script. Run it from the unpacked kit::

    python make_submission.py            # 5-fold CV, then fit on everything
    python make_submission.py --cv 3

Steps: read ``public/train.parquet`` and ``public/test.parquet``; reduce each
pattern to its radial profile (the azimuthal mean in rings: the aggregate's size
and the distances between particles, whatever its orientation); compare a random
forest with random guessing by cross-validation; refit, predict the test set,
write ``submission.csv`` and check it with the grader's own validator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from baselines.aggregates.models import make_forest, read_images
from scoring.submission import validate_submission


def main() -> None:
    """Compare, fit, predict, write and validate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--out", type=Path, default=Path("submission.csv"))
    args = parser.parse_args()

    train = read_images(Path("public/train.parquet"))
    test = read_images(Path("public/test.parquet"))
    print(f"{len(train.y):,} training and {len(test.ids):,} test aggregates, "
          f"channels {', '.join(train.channels)}, {train.X.shape[-1]} pixels a side")  # fmt: skip
    folds = StratifiedKFold(args.cv, shuffle=True, random_state=0)
    guess = cross_val_score(DummyClassifier(strategy="uniform", random_state=0),
                            train.X.reshape(len(train.X), -1), train.y, cv=folds)  # fmt: skip
    forest = cross_val_score(make_forest(), train.X, train.y, cv=folds)
    print(f"CV accuracy: random guess {100 * guess.mean():.1f} %, "
          f"random forest {100 * forest.mean():.1f} % (+/- {100 * forest.std():.1f})")
    model = make_forest().fit(train.X, train.y)
    predicted = model.predict(test.X)
    pd.DataFrame({"id": test.ids, "n_particles": predicted.astype(np.int64)}).to_csv(
        args.out, index=False)  # fmt: skip
    valid = validate_submission(args.out, ".")
    print(f"Wrote {args.out}: {len(valid.frame):,} rows, valid. Submit it.")


if __name__ == "__main__":
    main()
