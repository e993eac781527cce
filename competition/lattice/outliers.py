"""An outlier screen of a built competition, for the organiser to review before release.

An isolation forest (scikit-learn's ``IsolationForest``, seeded by the build's
seed) looks at every pattern of the competition, training and test, through a
few features: the square-rooted pattern pooled to ``POOL`` points, the number of
peaks and where the strongest one is. The ``CONTAMINATION`` share that it
isolates fastest lands in ``reports/outliers.csv`` with the row's provenance and
why it stands out (its peak count and strongest peak against the median), and
``reports/outliers.png`` shows the scores and the most unusual patterns. Nothing
is removed: a structure with one strong peak or a very large cell may be
perfectly real; the organiser decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from competition.lattice.spool import BLOCK
from xrd_bravais.contract import layout
from xrd_bravais.contract.io import atomic_path, atomic_write_text

OUTLIERS: Final = "reports/outliers.csv"
OUTLIERS_PLOT: Final = "reports/outliers.png"
CONTAMINATION: Final = 0.01
"""The share of rows flagged."""
POOL: Final = 60
"""Points of the pooled pattern the forest sees (the shape, not every peak)."""
PEAK_HEIGHT: Final = 0.02
"""A local maximum counts as a peak above this share of the strongest."""
COLUMNS: Final = ("id", "split", "entry_id", "formula", "spacegroup_number", "bravais_lattice",
                  "score", "n_peaks", "strongest_two_theta", "why")  # fmt: skip


def pattern_features(X: npt.NDArray[np.floating], two_theta: npt.NDArray[np.floating]
                     ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64],
                                npt.NDArray[np.float64]]:  # fmt: skip
    """The forest's features of each row, and the peak count and strongest-peak angle in them."""
    n, m = X.shape
    width = max(m // POOL, 1)
    usable = (m // width) * width
    pooled = np.sqrt(np.clip(X[:, :usable], 0, None)).reshape(n, -1, width).mean(axis=2)
    middle = X[:, 1:-1]
    peaks = (middle > X[:, :-2]) & (middle >= X[:, 2:]) & (middle > PEAK_HEIGHT)
    n_peaks = peaks.sum(axis=1).astype(np.int64)
    strongest = two_theta[np.argmax(X, axis=1)].astype(np.float64)
    features = np.column_stack([pooled, np.log1p(n_peaks), strongest / two_theta.max()])
    return features, n_peaks, strongest


def screen(X: npt.NDArray[np.floating], two_theta: npt.NDArray[np.floating], seed: int
           ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64],
                      npt.NDArray[np.float64]]:  # fmt: skip
    """Anomaly scores (higher: more unusual), the flagged rows, peak counts, strongest angles.

    ``X`` is an array of patterns, or anything that slices into one
    (:class:`competition.lattice.spool.RowView`).
    """
    from sklearn.ensemble import IsolationForest

    # A block of rows at a time: X may be a spool's rows read from disk (RowView).
    parts = [pattern_features(np.asarray(X[start:start + BLOCK]), two_theta)
             for start in range(0, len(X), BLOCK)]  # fmt: skip
    features, n_peaks, strongest = (np.concatenate(column) for column in zip(*parts, strict=True))
    forest = IsolationForest(n_estimators=200, contamination=CONTAMINATION, random_state=seed)
    flagged = forest.fit_predict(features) == -1
    scores = -forest.score_samples(features)
    return scores, flagged, n_peaks, strongest


def _why(n_peaks: int, strongest: float, median_peaks: float, median_strongest: float) -> str:
    reasons = []
    if n_peaks < 0.5 * median_peaks:
        reasons.append(f"few peaks ({n_peaks}; median {median_peaks:.0f})")
    elif n_peaks > 2 * median_peaks:
        reasons.append(f"many peaks ({n_peaks}; median {median_peaks:.0f})")
    if abs(strongest - median_strongest) > 15:
        reasons.append(f"strongest peak at {strongest:.1f} deg (median {median_strongest:.1f})")
    return "; ".join(reasons) or "unusual shape of the whole pattern"


def write_outlier_report(
    out: Path, rows: pd.DataFrame, X: npt.NDArray[np.floating],
    two_theta: npt.NDArray[np.floating], seed: int,
) -> pd.DataFrame:  # fmt: skip
    """Screen every row and write ``reports/outliers.csv`` and ``reports/outliers.png``.

    Parameters
    ----------
    rows : DataFrame
        ``id``, ``split`` (train, Public, Private ...), ``entry_id``, ``formula``,
        ``spacegroup_number``, ``bravais_lattice``: one per row of ``X``.

    Returns
    -------
    DataFrame
        The flagged rows, most unusual first (what the CSV holds).
    """
    scores, flagged, n_peaks, strongest = screen(X, two_theta, seed)
    median_peaks, median_strongest = float(np.median(n_peaks)), float(np.median(strongest))
    table = rows.assign(score=scores.round(4), n_peaks=n_peaks,
                        strongest_two_theta=strongest.round(2))  # fmt: skip
    table["why"] = [_why(int(n), float(s), median_peaks, median_strongest)
                    for n, s in zip(n_peaks, strongest, strict=True)]  # fmt: skip
    found = table[flagged].sort_values(["score", "id"], ascending=[False, True])
    found = found[list(COLUMNS)].reset_index(drop=True)
    atomic_write_text(out / OUTLIERS, found.to_csv(index=False, lineterminator="\n"))
    _plot(out / OUTLIERS_PLOT, scores, flagged, X, two_theta, table, found)
    return found


def _plot(path: Path, scores: np.ndarray, flagged: np.ndarray, X: np.ndarray,
          two_theta: np.ndarray, table: pd.DataFrame, found: pd.DataFrame) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 8), layout="constrained")
    grid = fig.add_gridspec(3, 3)
    ax = fig.add_subplot(grid[0, :])
    ax.hist(scores, bins=60, color="tab:blue")
    if flagged.any():
        ax.axvline(scores[flagged].min(), color="tab:red", ls="--",
                   label=f"flagged: {int(flagged.sum())} rows")  # fmt: skip
        ax.legend()
    ax.set_xlabel("anomaly score (isolation forest; higher is more unusual)")
    ax.set_ylabel("rows")
    position = {row_id: k for k, row_id in enumerate(table[layout.ID])}
    for k, row in enumerate(found.head(6).itertuples()):
        sub = fig.add_subplot(grid[1 + k // 3, k % 3])
        sub.plot(two_theta, X[position[row.id]], lw=0.6, color="black")
        sub.set_title(f"{row.id} ({row.split}): {row.formula}, {row.bravais_lattice}\n{row.why}",
                      fontsize=8)  # fmt: skip
        sub.set_yticks([])
        sub.tick_params(axis="x", labelsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
