"""Real measured patterns: read onto the grid, bad files rejected one defect at a time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from competition.config import PRESETS
from competition.measured import MeasuredError, read_measured

GRID = PRESETS["default"].to_grid()


def test_every_real_measurement_is_read_onto_the_grid(measured_dir):
    patterns = read_measured(measured_dir, GRID)
    assert len(patterns.files) == 152 and not patterns.rejected
    assert patterns.X.shape == (152, GRID.n_points) and patterns.X.dtype == np.float32
    np.testing.assert_allclose(patterns.X.max(axis=1), 1.0)
    assert patterns.X.min() >= 0
    assert len(set(patterns.bravais_lattice)) == 13  # no hR among them


def test_resampling_keeps_the_peaks_where_they_were_measured(measured_dir):
    from competition.measured import read_two_columns

    patterns = read_measured(measured_dir, GRID)
    two_theta, intensity = read_two_columns(measured_dir / patterns.files[0])
    peak = GRID.two_theta()[patterns.X[0].argmax()]
    assert abs(peak - two_theta[intensity.argmax()]) <= 0.02


@pytest.mark.parametrize(
    ("content", "label", "reason"),
    [
        ("5.0 1\n5.02\n", "14", "line 2 is not two numbers"),
        ("5.0 1\n5.01 abc\n", "14", "line 2 is not two numbers"),
        ("# nothing\n", "14", "no data"),
        ("".join(f"{20 + 0.01 * i:.2f} {i % 7}\n" for i in range(3000)), "14", "measured from 20"),
        ("".join(f"{90 - 0.01 * i:.2f} 1\n" for i in range(8600)), "14", "does not increase"),
        (None, "14", "no row in labels.csv"),
        ("5.0 1\n90.0 2\n", "231", "not an integer in 1..230"),
        ("5.0 1\n90.0 2\n", "cubic", "not an integer in 1..230"),
    ],
)
def test_bad_measurements_are_rejected_with_their_reason(measured_dir, tmp_path, content,
                                                         label, reason):  # fmt: skip
    folder = tmp_path / "measured"
    folder.mkdir()
    for name in ("rruff_000.xy", "rruff_001.xy"):
        shutil.copy(measured_dir / name, folder / name)
    rows = ["file,spacegroup_number", "rruff_000.xy,12", "rruff_001.xy,113"]
    if content is not None:
        (folder / "bad.xy").write_text(content)
        rows.append(f"bad.xy,{label}")
    else:
        (folder / "bad.xy").write_text("5.0 1\n90.0 2\n")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    patterns = read_measured(folder, GRID)
    assert patterns.files == ["rruff_000.xy", "rruff_001.xy"]
    assert len(patterns.rejected) == 1 and reason in patterns.rejected[0].reason


def test_a_folder_without_labels_or_of_another_radiation_is_refused(measured_dir, tmp_path):
    with pytest.raises(MeasuredError, match=r"labels\.csv"):
        read_measured(tmp_path, GRID)
    from dataclasses import replace

    with pytest.raises(MeasuredError, match="Cu K-alpha"):
        read_measured(measured_dir, replace(GRID, wavelength="MoKa"))
