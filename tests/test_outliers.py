"""The outlier screen of a build: the odd patterns are flagged, with a reason, and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd

from competition.lattice.outliers import (
    CONTAMINATION,
    OUTLIERS,
    OUTLIERS_PLOT,
    write_outlier_report,
)


def _pattern(two_theta, centres, rng):
    y = np.zeros_like(two_theta)
    for c in centres:
        y += rng.uniform(0.2, 1) * np.exp(-0.5 * ((two_theta - c) / 0.05) ** 2)
    return y / y.max()


def test_a_one_peak_and_a_crowded_pattern_are_flagged_with_their_reason(tmp_path):
    rng = np.random.default_rng(0)
    two_theta = np.linspace(5, 90, 4251)
    X = [_pattern(two_theta, rng.uniform(20, 70, 25), rng) for _ in range(300)]
    X.append(_pattern(two_theta, [8.0], rng))  # one peak, far from the usual strongest
    X.append(_pattern(two_theta, rng.uniform(10, 85, 400), rng))  # a huge cell: crowded
    rows = pd.DataFrame({
        "id": [f"r{i:06d}" for i in range(302)], "split": "train",
        "entry_id": [f"e{i}" for i in range(302)], "formula": "X", "spacegroup_number": 1,
        "bravais_lattice": "aP",
    })  # fmt: skip
    (tmp_path / "reports").mkdir()
    found = write_outlier_report(tmp_path, rows, np.array(X), two_theta, seed=0)
    assert {"r000300", "r000301"} <= set(found["id"])
    assert len(found) <= int(np.ceil(CONTAMINATION * 302)) + 1
    why = found.set_index("id")["why"]
    assert why["r000300"].startswith("few peaks (1;")
    assert "strongest peak at 8.0 deg" in why["r000300"]
    assert why["r000301"].startswith("many peaks")
    assert found["score"].is_monotonic_decreasing
    on_disk = pd.read_csv(tmp_path / OUTLIERS)
    assert list(on_disk["id"]) == list(found["id"])
    assert (tmp_path / OUTLIERS_PLOT).read_bytes()[:4] == b"\x89PNG"
