"""Real measured patterns: read onto the grid, bad files rejected one defect at a time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from competition.config import PRESETS
from competition.sources.measured import MeasuredError, read_measured

GRID = PRESETS["default"].to_grid()


def test_every_real_measurement_is_read_onto_the_grid(measured_dir):
    patterns = read_measured(measured_dir, GRID)
    assert len(patterns.files) == 152 and not patterns.rejected
    assert patterns.X.shape == (152, GRID.n_points) and patterns.X.dtype == np.float32
    np.testing.assert_allclose(patterns.X.max(axis=1), 1.0)
    assert patterns.X.min() >= 0
    assert len(set(patterns.bravais_lattice)) == 13  # no hR among them


def test_resampling_keeps_the_peaks_where_they_were_measured(measured_dir):
    from competition.sources.measured import read_two_columns

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


def _folder(measured_dir, tmp_path, rows: list[str], files=("rruff_000.xy", "rruff_001.xy"),
            header: str = "file,spacegroup_number", encoding: str = "utf-8"):  # fmt: skip
    folder = tmp_path / "measured"
    folder.mkdir()
    for name in files:
        shutil.copy(measured_dir / name, folder / name)
    (folder / "labels.csv").write_bytes("\n".join([header, *rows, ""]).encode(encoding))
    return folder


def test_a_file_labelled_twice_is_left_out_and_an_exact_repeat_listed_once(
    measured_dir, tmp_path
):
    folder = _folder(measured_dir, tmp_path,
                     ["rruff_000.xy,12", "rruff_000.xy,225", "rruff_001.xy,113",
                      "rruff_001.xy,113"])  # fmt: skip
    patterns = read_measured(folder, GRID)
    assert patterns.files == ["rruff_001.xy"]
    reasons = {r.entry_id: r.reason for r in patterns.rejected}
    assert len(patterns.rejected) == 2
    assert "labelled 12 on row 2 and 225 on row 3" in reasons["measured:rruff_000.xy"]
    assert "row 5 repeats row 4" in reasons["measured:labels.csv:5"]


def test_every_label_row_is_used_or_rejected_with_its_reason(measured_dir, tmp_path):
    folder = _folder(measured_dir, tmp_path,
                     ["rruff_000.xy,12", "missing.xy,14", "notes.dat,14", ",14"])  # fmt: skip
    (folder / "notes.dat").write_text("a note\n")
    patterns = read_measured(folder, GRID)
    assert patterns.files == ["rruff_000.xy"]
    reasons = sorted(r.reason for r in patterns.rejected)
    assert any("'missing.xy', which is not in the folder" in r for r in reasons)
    assert any("'notes.dat', which is not a measurement file" in r for r in reasons)
    assert any("row 5 names no file" in r for r in reasons)
    assert any(r == "no row in labels.csv" for r in reasons)  # rruff_001.xy, unlabelled


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252", "utf-16"])
def test_labels_written_by_excel_are_read(measured_dir, tmp_path, encoding):
    folder = _folder(measured_dir, tmp_path, ["rruff_000.xy,12", "rruff_001.xy,113",
                                              "Müller.xy,14"], encoding=encoding)  # fmt: skip
    patterns = read_measured(folder, GRID)
    assert patterns.files == ["rruff_000.xy", "rruff_001.xy"]
    assert [r.source_file for r in patterns.rejected] == ["Müller.xy"]


def test_a_wrong_header_says_which_columns_it_found(measured_dir, tmp_path):
    folder = _folder(measured_dir, tmp_path, ["rruff_000.xy,12"], header="name;group")
    with pytest.raises(MeasuredError, match="must name the columns file,spacegroup_number; it "
                                            "has name;group"):  # fmt: skip
        read_measured(folder, GRID)


def test_nothing_usable_names_the_reasons(measured_dir, tmp_path):
    folder = _folder(measured_dir, tmp_path, ["a.xy,12", "b.xy,14"], files=())
    with pytest.raises(MeasuredError, match=r"2 rejected: a\.xy: labels\.csv names 'a\.xy', "
                                            "which is not in the folder"):  # fmt: skip
        read_measured(folder, GRID)


def test_files_that_are_not_regular_or_too_large_are_never_read(measured_dir, tmp_path):
    import os

    folder = _folder(measured_dir, tmp_path,
                     ["rruff_000.xy,12", "dir.xy,14", "gone.xy,14", "pipe.xy,14",
                      "huge.xy,14"])  # fmt: skip
    (folder / "dir.xy").mkdir()
    (folder / "gone.xy").symlink_to(folder / "nowhere.xy")
    os.mkfifo(folder / "pipe.xy")  # opening it would block the build
    with open(folder / "huge.xy", "wb") as handle:  # sparse: 2 GB on paper, nothing on disk
        handle.truncate(2 * 2**30)
    patterns = read_measured(folder, GRID)
    assert patterns.files == ["rruff_000.xy"]
    reasons = {r.source_file: r.reason for r in patterns.rejected}
    assert "a folder" in reasons["dir.xy"]
    assert "a link to nothing" in reasons["gone.xy"]
    assert "not a regular file" in reasons["pipe.xy"]
    assert "2,147,483,648 bytes" in reasons["huge.xy"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("".join(f"{-50 + 0.05 * i:.2f} 1\n" for i in range(2800)), "between 0 and 180"),
        ("5.0 1\n90.0 2\n", "needs at least 100"),
        ("".join(f"{5 + 0.5 * i:.2f} {i % 5}\n" for i in range(171)), "steps of 0.5 degrees"),
    ],
)
def test_physically_impossible_measurements_are_rejected(measured_dir, tmp_path, content,
                                                         reason):  # fmt: skip
    folder = _folder(measured_dir, tmp_path, ["rruff_000.xy,12", "bad.xy,14"])
    (folder / "bad.xy").write_text(content)
    patterns = read_measured(folder, GRID)
    assert patterns.files == ["rruff_000.xy"]
    assert reason in patterns.rejected[0].reason


def test_bin_average_integrates_the_measured_curve_over_each_bin():
    from competition.sources.measured import bin_average
    from xrd_bravais.contract.grid import Grid

    grid = Grid.spanning(5.0, 90.0, 0.02)
    x = np.round(np.arange(4.9, 90.1, 0.01), 6)
    # A straight line is its own average over any bin.
    np.testing.assert_allclose(bin_average(x, 3 * x + 2, grid), 3 * grid.two_theta() + 2,
                               rtol=1e-12)  # fmt: skip
    # Counting noise at 0.01-degree steps: averaged, not decimated (interpolation at
    # the grid's points keeps every other count, and all of its variance).
    noise = np.random.default_rng(0).normal(0.0, 1.0, len(x))
    averaged = bin_average(x, noise, grid).std()
    decimated = np.interp(grid.two_theta(), x, noise).std()
    assert decimated == pytest.approx(1.0, abs=0.05)
    assert averaged == pytest.approx(np.sqrt(0.375), abs=0.05)  # weights 1/4, 1/2, 1/4
