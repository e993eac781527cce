"""A build with real measurements as a third test portion: kept apart, hidden, scored apart."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import solution_frame
from test_cli import run

from competition.manifest import read_manifest, verify_manifest
from xrd_bravais.contract import layout

N_GOOD = 152


@pytest.fixture(scope="session")
def measured_with_defects(measured_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 152 real measurements (linked, not copied) plus one bad file and one bad label."""
    folder = tmp_path_factory.mktemp("measured")
    for path in measured_dir.iterdir():
        if path.name != "labels.csv":
            (folder / path.name).symlink_to(path)
    labels = (measured_dir / "labels.csv").read_text().rstrip("\n").splitlines()
    (folder / "truncated.xy").write_text("5.0 1\n5.02\n")
    (folder / "unlabelled.xy").write_text("5.0 1\n90.0 2\n")
    labels += ["truncated.xy,14", "unlabelled.xy,999"]
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    return folder


@pytest.fixture(scope="session")
def measured_build(cod_build, cod_cifs, measured_with_defects, tmp_path_factory):
    """The COD build again (from its cache) with the Measured portion."""
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import cod_dir_source

    out = tmp_path_factory.mktemp("measured_build") / "out"
    return build_competition(
        cod_dir_source(cod_cifs), out, BuildConfig(), workers=2,
        cache_dir=cod_build.out.parent / "cache", progress=False,
        measured_test=measured_with_defects,
    )  # fmt: skip


def test_measurements_join_the_test_set_as_a_third_portion(measured_build, cod_build):
    out = measured_build.out
    key = solution_frame(out)
    assert (key[layout.USAGE] == layout.MEASURED_PORTION).sum() == N_GOOD
    # The simulated portions are exactly those of the same build without measurements.
    plain = solution_frame(cod_build.out)
    for portion in layout.PORTIONS:
        assert (key[layout.USAGE] == portion).sum() == (plain[layout.USAGE] == portion).sum()
    test = pd.read_parquet(out / layout.TEST)
    assert sorted(test[layout.ID]) == sorted(key[layout.ID]) == test[layout.ID].tolist()
    # A measured row's id looks like any other: same prefix and width, no order.
    assert {len(i) for i in test[layout.ID]} == {len(test[layout.ID].iloc[0])}
    sample = pd.read_csv(out / layout.sample_submission("bravais"))
    assert sample[layout.ID].tolist() == test[layout.ID].tolist()
    assert verify_manifest(out) == []


def test_each_measured_row_is_its_file_on_the_grid(measured_build, measured_dir):
    from competition.config import PRESETS
    from competition.lattice.write import quantize
    from competition.sources.measured import read_measured
    from xrd_bravais.contract.layout import PATTERN_QUANTUM

    out = measured_build.out
    meta = pd.read_parquet(out / layout.TEST_META)
    rows = meta[meta["entry_id"].str.startswith("measured:")].set_index("source_file")
    assert len(rows) == N_GOOD
    assert rows[layout.COD_ID].isna().all()
    test = pd.read_parquet(out / layout.TEST).set_index(layout.ID)
    expected = read_measured(measured_dir, PRESETS["default"].to_grid())
    key = solution_frame(out).set_index(layout.ID)
    for k in (0, 75, 151):
        name = expected.files[k]
        row_id = rows.loc[name, layout.ID]
        # Stored as every pattern is: multiples of 2^-11 of the row's maximum (1).
        stored = test.loc[row_id].to_numpy(np.float32)
        np.testing.assert_array_equal(stored, quantize(expected.X[k:k + 1])[0])
        assert np.abs(stored - expected.X[k]).max() <= PATTERN_QUANTUM / 2
        assert key.loc[row_id, layout.LATTICE] == expected.bravais_lattice[k]
        assert key.loc[row_id, layout.USAGE] == layout.MEASURED_PORTION


def test_bad_measurements_are_in_rejects_and_the_build_goes_on(measured_build):
    out = measured_build.out
    rejects = pd.read_csv(out / layout.REJECTS, keep_default_na=False).set_index("source_file")
    assert "line 2 is not two numbers" in rejects.loc["truncated.xy", "reason"]
    assert "not an integer in 1..230" in rejects.loc["unlabelled.xy", "reason"]
    manifest = read_manifest(out)
    assert manifest["measured_test"]["n_used"] == N_GOOD
    assert manifest["measured_test"]["n_rejected"] == 2
    assert len(manifest["measured_test"]["sha256"]) == 64
    counts = manifest["counts"]["per_portion"]
    assert sum(counts[layout.MEASURED_SPLIT].values()) == N_GOOD


def test_the_data_card_says_how_many_but_not_which(measured_build):
    out = measured_build.out
    card = (out / layout.DATA_CARD).read_text()
    assert f"{N_GOOD} of them are real laboratory measurements" in card
    assert "name no formula, so the minerals measured may also be among" in card
    assert "Measured" in card and "shown only when the competition is closed" in card
    # The kit's leak checks (ids with labels, in any public file) pass.
    from starter_kit.kit import collect_files, find_leaks, render_readme

    assert f"{N_GOOD} of the test rows are real" in render_readme(out)

    files, _ = collect_files(out, "kit")
    assert find_leaks(files, out) == []


def test_measured_scores_are_hidden_until_close_then_shown_apart(measured_build, tmp_path):
    comp = Path(shutil.copytree(measured_build.out, tmp_path / "comp"))
    key = solution_frame(comp)
    # Right on the simulated rows, wrong on every measurement.
    guess = key[[layout.ID, layout.LATTICE]].copy()
    real = guess[layout.ID].isin(key.loc[key[layout.USAGE] == layout.MEASURED_PORTION, layout.ID])
    guess.loc[real, layout.LATTICE] = np.where(guess.loc[real, layout.LATTICE] == "cP", "aP", "cP")
    guess.to_csv(tmp_path / "sim.csv", index=False)
    key[[layout.ID, layout.LATTICE]].to_csv(tmp_path / "perfect.csv", index=False)

    first = run("submit", str(tmp_path / "sim.csv"), "--team", "sim", "-c", str(comp),
                "--details", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "Public score: accuracy 100.00 %" in first.stdout
    assert "Measured" not in first.stdout and "Private" not in first.stdout
    assert run("submit", str(tmp_path / "perfect.csv"), "--team", "real", "-c", str(comp),
               cwd=tmp_path).returncode == 0  # fmt: skip
    board = run("leaderboard", "-c", str(comp), cwd=tmp_path)
    assert board.returncode == 0 and "Measured" not in board.stdout
    hidden = run("leaderboard", "-c", str(comp), "--measured", cwd=tmp_path)
    assert hidden.returncode == 2 and "stay hidden" in hidden.stderr
    hidden = run("score", str(tmp_path / "sim.csv"), "-c", str(comp), "--private", cwd=tmp_path)
    assert hidden.returncode == 2 and "Measured" not in hidden.stdout

    assert run("close", "-c", str(comp), cwd=tmp_path).returncode == 0
    final = run("leaderboard", "-c", str(comp), "--private", cwd=tmp_path)
    assert final.returncode == 0 and "Measured %" in final.stdout
    assert "0.00" in final.stdout and "100.00" in final.stdout
    measured = run("leaderboard", "-c", str(comp), "--measured", "-f", "csv", cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    board = pd.read_csv(io.StringIO(measured.stdout), dtype=str)
    ranked = board[board["Kind"] == "team"]
    assert ranked["Team"].tolist() == ["real", "sim"]
    assert ranked["Accuracy %"].tolist() == ["100.00", "0.00"]
    scored = run("score", str(tmp_path / "sim.csv"), "-c", str(comp), "--private", cwd=tmp_path)
    assert "Measured score: accuracy 0.00 %" in scored.stdout
    assert "Private score: accuracy 100.00 %" in scored.stdout


def test_a_build_without_measurements_has_no_measured_board(cod_build, tmp_path):
    comp = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    sample = str(comp / layout.sample_submission("bravais"))
    assert run("submit", sample, "--team", "a", "-c", str(comp), cwd=tmp_path).returncode == 0
    assert run("close", "-c", str(comp), cwd=tmp_path).returncode == 0
    final = run("leaderboard", "-c", str(comp), "--private", cwd=tmp_path)
    assert final.returncode == 0 and "Measured" not in final.stdout
    none = run("leaderboard", "-c", str(comp), "--measured", cwd=tmp_path)
    assert none.returncode == 2 and "has no Measured portion" in none.stderr


def test_the_command_line_refuses_an_unusable_folder_before_any_work(cod_cifs, tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = run("build", "--source", "cod-dir", "--input", str(cod_cifs), "--out", "comp",
                 "--measured-test", str(empty), "--no-cache", "-q", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "--measured-test" in result.stderr
    assert "labels.csv not found" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "comp" / "manifest.json").exists()
    clean = run("build", "--source", "cod-dir", "--input", str(cod_cifs), "--out", "comp2",
                "--draws", "2", "-q", cwd=tmp_path)  # fmt: skip
    assert clean.returncode == 2 and "needs profile 'measured'" in clean.stderr


def test_a_formula_in_labels_csv_keeps_that_compound_out_of_training(
    cod_build, cod_cifs, measured_dir, tmp_path
):
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import cod_dir_source

    train = pd.read_parquet(cod_build.out / layout.TRAIN, columns=["formula", "spacegroup_number"])
    formula, group = train.iloc[0]
    n_rows = int(((train["formula"] == formula) & (train["spacegroup_number"] == group)).sum())
    folder = tmp_path / "measured"
    folder.mkdir()
    names = sorted(p.name for p in measured_dir.glob("*.xy"))[:2]
    for name in names:
        (folder / name).symlink_to(measured_dir / name)
    # The first names the training compound (with the same space group), the second nothing.
    (folder / "labels.csv").write_text(
        f"file,spacegroup_number,formula\n{names[0]},{group},{formula}\n{names[1]},2,\n"
    )
    out = build_competition(
        cod_dir_source(cod_cifs), tmp_path / "out", BuildConfig(), workers=2,
        cache_dir=cod_build.out.parent / "cache", progress=False, measured_test=folder,
    ).out  # fmt: skip
    after = pd.read_parquet(out / layout.TRAIN, columns=["formula", "spacegroup_number"])
    assert not ((after["formula"] == formula) & (after["spacegroup_number"] == group)).any()
    rejects = pd.read_csv(out / "reports" / "rejects.csv")
    left_out = rejects[rejects["stage"] == "measured-compound"]
    assert len(left_out) == n_rows and left_out["reason"].str.contains(names[0]).all()
    card = (out / layout.DATA_CARD).read_text()
    assert "1 of the measurements name their phase's formula" in card
    assert f"({n_rows} training\nstructures left out)" in card
    assert "the others may share a mineral with training" in card


# -- a share of the real measurements on the Public board ---------------------------


@pytest.fixture(scope="module")
def shown_build(cod_build, cod_cifs, measured_dir, tmp_path_factory):
    """The COD build (from its cache) with a fifth of each lattice's measurements Public."""
    from competition.config import BuildConfig
    from competition.lattice.build import build_competition
    from competition.sources.catalog import cod_dir_source

    out = tmp_path_factory.mktemp("shown_build") / "out"
    return build_competition(
        cod_dir_source(cod_cifs), out, BuildConfig(measured_public_fraction=0.2), workers=2,
        cache_dir=cod_build.out.parent / "cache", progress=False, measured_test=measured_dir,
    )  # fmt: skip


def test_a_share_of_each_lattice_of_measurements_goes_on_the_public_board(shown_build,
                                                                          measured_build):
    key = solution_frame(shown_build.out)
    real = key[key[layout.USAGE].isin([layout.MEASURED_PORTION, layout.MEASURED_PUBLIC_PORTION])]
    assert len(real) == N_GOOD
    for lattice, rows in real.groupby(layout.LATTICE):
        shown = int((rows[layout.USAGE] == layout.MEASURED_PUBLIC_PORTION).sum())
        assert shown == round(0.2 * len(rows)), lattice
    # The simulated portions are those of the build without the option: same seed streams.
    other = solution_frame(measured_build.out)
    for portion in layout.PORTIONS:
        assert (key[layout.USAGE] == portion).sum() == (other[layout.USAGE] == portion).sum()
    counts = read_manifest(shown_build.out)["counts"]["per_portion"]
    assert sum(counts["measured"].values()) == N_GOOD
    assert sum(counts["measured_public"].values()) == int(
        (key[layout.USAGE] == layout.MEASURED_PUBLIC_PORTION).sum())
    card = (shown_build.out / layout.DATA_CARD).read_text()
    n_shown = sum(counts["measured_public"].values())
    assert f"{n_shown} of them, drawn at random within each lattice" in card
    assert f"the other {N_GOOD - n_shown} make a third portion" in card
    from starter_kit.kit import _measured_text

    kit = " ".join(_measured_text(read_manifest(shown_build.out)).split())
    assert f"{n_shown:,} of them are scored from your first submission" in kit


def test_public_real_scores_show_during_the_course_and_the_hidden_ones_do_not(shown_build,
                                                                              tmp_path):
    comp = Path(shutil.copytree(shown_build.out, tmp_path / "comp"))
    key = solution_frame(comp)
    guess = key[[layout.ID, layout.LATTICE]].copy()
    # Right on the simulated rows and the Public measurements, wrong on the hidden ones.
    hidden = (key[layout.USAGE] == layout.MEASURED_PORTION).to_numpy()
    guess.loc[hidden, layout.LATTICE] = np.where(guess.loc[hidden, layout.LATTICE] == "cP", "aP",
                                                 "cP")  # fmt: skip
    guess.to_csv(tmp_path / "sub.csv", index=False)
    n_shown = int((key[layout.USAGE] == layout.MEASURED_PUBLIC_PORTION).sum())
    n_public = int((key[layout.USAGE] == layout.PUBLIC_PORTION).sum())

    done = run("submit", str(tmp_path / "sub.csv"), "--team", "t", "-c", str(comp), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Public score: accuracy 100.00 %" in done.stdout
    assert f"on {n_public:,} Public rows" in done.stdout  # the measurements are apart
    assert ("Public (real measurements) score: accuracy 100.00 % (95 % CI"
            in done.stdout and f"on {n_shown:,} Public (real measurements) rows" in done.stdout)
    assert "Measured score" not in done.stdout and "Private" not in done.stdout
    board = run("leaderboard", "-c", str(comp), "-f", "csv", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    table = pd.read_csv(io.StringIO(board.stdout), dtype=str)
    assert table.loc[table["Team"] == "t", "Real (Public) %"].tolist() == ["100.00"]
    assert "Measured %" not in table
    assert run("close", "-c", str(comp), cwd=tmp_path).returncode == 0
    scored = run("score", str(tmp_path / "sub.csv"), "-c", str(comp), "--private", cwd=tmp_path)
    assert "Measured score: accuracy 0.00 %" in scored.stdout


def test_public_measurements_need_measurements(cod_cifs, tmp_path):
    result = run("build", "--source", "cod-dir", "--input", str(cod_cifs), "--out", "comp",
                 "--measured-public-fraction", "0.3", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert "--measured-test" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "comp" / "manifest.json").exists()


def test_the_website_shows_the_public_real_score_and_no_hidden_one(shown_build, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from conftest import SiteServer

    server = SiteServer(Path(shutil.copytree(shown_build.out, tmp_path / "comp"))).start()
    try:
        key = solution_frame(server.competition)
        n_shown = int((key[layout.USAGE] == layout.MEASURED_PUBLIC_PORTION).sum())
        token = server.token("alpha")
        answer = httpx.post(
            f"{server.url}/api/v1/submissions", headers={"Authorization": f"Bearer {token}"},
            files={"file": ("s.csv", key[[layout.ID, layout.LATTICE]].to_csv(index=False),
                            "text/csv")}, data={"track": "bravais"}, timeout=60,
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["public_real"]["n"] == n_shown and body["public_real"]["accuracy"] == 1.0
        assert "private" not in answer.text.lower() and "Measured" not in answer.text
        board = httpx.get(f"{server.url}/leaderboard", timeout=30).text
        assert "Real (Public) %" in board and "Measured %" not in board
    finally:
        server.stop()


def test_the_example_is_the_measurement_a_training_structure_matches_best(tmp_path):
    from competition.lattice.example import best_matches, choose_example
    from competition.lattice.spool import PatternSpool
    from competition.physics.realism import RealismRanges, bragg_two_theta, grid_wavelength
    from competition.sources.measured import MeasuredPatterns
    from xrd_bravais.contract.grid import Grid

    grid = Grid.spanning(5.0, 90.0, 0.02)
    x = grid.two_theta()
    wavelength = grid_wavelength(grid)

    def two_theta(d: float) -> float:
        return float(bragg_two_theta(d, wavelength))

    def peaks(*centres: float) -> np.ndarray:
        y = sum(np.exp(-0.5 * ((x - c) / 0.05) ** 2) for c in centres)
        return (y / y.max()).astype(np.float32)

    def sticks(*ds: float) -> np.ndarray:
        rows = [[two_theta(d), d, 1.0, 1, 0, 0, 1.0, 0.0, 0.0] for d in ds]
        return np.asarray(rows, dtype=np.float32)

    # Three training structures; the real rows: a shifted, noisy copy of "b" (group 14),
    # a pattern of group 14 unlike any, and one of a group no training structure has.
    ds = {"a": (3.0, 2.0), "b": (4.0, 2.5, 1.8), "c": (3.5, 1.5)}
    train = pd.DataFrame({"entry_id": ["a", "b", "c"], "formula": ["A", "B", "C"],
                          "spacegroup_number": [14, 14, 225]})  # fmt: skip
    rng = np.random.default_rng(0)
    real_b = peaks(*(two_theta(d) + 0.05 for d in ds["b"]))
    real_b = (0.2 + real_b + 0.02 * rng.random(x.size)).astype(np.float32)
    measured = MeasuredPatterns(
        files=["m1.xy", "m2.xy", "m3.xy"],
        X=np.stack([peaks(60.0, 70.0), real_b, peaks(*map(two_theta, ds["a"]))]),
        spacegroup_number=np.array([14, 14, 62]), bravais_lattice=np.array(["mP", "mP", "oP"]),
        rejected=[], description={},
    )  # fmt: skip
    with PatternSpool(grid.n_points, tmp_path) as spool:
        for entry, d in ds.items():
            spool.add(entry, peaks(*map(two_theta, d))[None, :], sticks(*d))
        example = choose_example(measured, train, spool, grid, RealismRanges(), seed=3)
        again = choose_example(measured, train, spool, grid, RealismRanges(), seed=3)
        matches = best_matches(measured, train, spool, grid)
        spool_b = spool["b"]
    assert example is not None
    assert (example.file, example.entry_id, example.formula) == ("m2.xy", "b", "B")
    assert (example.spacegroup_number, example.bravais_lattice) == (14, "mP")
    # m3 matches "a" best of all, but "a" is of another group: never compared.
    assert sorted(matches["index"]) == [0, 1]
    assert example.cosine == matches["cosine"].max() > 2 * matches["cosine"].min()
    assert np.array_equal(example.real, measured.X[1])
    # The measured profile is the same reflections, drawn again: peaks where "b" has them.
    top = x[np.argmax(example.measured_profile)]
    assert min(abs(top - two_theta(d)) for d in ds["b"]) < 0.5
    assert np.abs(example.measured_profile - example.clean).max() > 0.05
    assert np.array_equal(example.clean, spool_b)
    assert np.array_equal(example.measured_profile, again.measured_profile)  # seeded
    assert choose_example(measured, train.iloc[2:], spool, grid, RealismRanges(), 3) is None


def test_the_data_page_shows_the_real_example_only_after_the_close(measured_build, tmp_path):
    import httpx
    from conftest import SiteServer

    out = measured_build.out
    assert (out / layout.PUBLIC_OVERVIEW).is_file() and (out / layout.MEASURED_EXAMPLE).is_file()
    verify_manifest(out)  # both figures are in the manifest
    comp = Path(shutil.copytree(out, tmp_path / "comp"))
    server = SiteServer(comp).start()
    try:
        page = httpx.get(f"{server.url}/data").text
        assert '<img src="/data/overview.png"' in page and "measured-example" not in page
        assert "appears here when the competition closes" in page
        image = httpx.get(f"{server.url}/data/overview.png")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert httpx.get(f"{server.url}/data/measured-example.png").status_code == 404
        server.cli("close")
        page = httpx.get(f"{server.url}/data").text
        assert '<img src="/data/measured-example.png"' in page
        image = httpx.get(f"{server.url}/data/measured-example.png")
        assert image.status_code == 200 and image.content == (
            out / layout.MEASURED_EXAMPLE).read_bytes()
        # Nothing else of the competition folder is served under /data.
        assert httpx.get(f"{server.url}/data/DATA.png").status_code == 404
    finally:
        server.stop()
