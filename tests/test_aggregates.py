"""The aggregates task: geometry, scattering physics, the build, the grader, the kit, baselines."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import run

from competition.aggregates.build import PARTICLES, build_aggregates
from competition.aggregates.draw import (
    Aggregate,
    AggregateConfig,
    draw_aggregate,
    intensity,
    is_connected,
    radial_profile,
    render,
    scattering,
)
from scoring.grade import grade
from scoring.submission import SubmissionError, validate_submission
from xrd_bravais.contract import layout
from xrd_bravais.contract.manifest import verify_manifest
from xrd_bravais.contract.tasks import load_task

SMALL = AggregateConfig(size=48, radius=(3.0, 3.0), per_count=30, seed=5)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aggregates") / "comp"
    build_aggregates(out, SMALL, progress=False)
    return out


# --------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("overlap", ["touching", "overlapping"])
@pytest.mark.parametrize("radius", [(4.0, 4.0), (2.5, 5.0)])
def test_every_aggregate_has_its_count_its_radii_and_is_connected(overlap, radius):
    config = AggregateConfig(size=64, radius=radius, overlap=overlap)
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 5):
        for _ in range(40):
            a = draw_aggregate(n, config, rng)
            assert a.n == n and len(a.centres) == n
            assert np.all((a.radii >= radius[0]) & (a.radii <= radius[1]))
            assert np.all(a.centres[0] >= 16) and np.all(a.centres[0] < 48)  # central N/2
            assert np.all(a.centres - a.radii[:, None] >= 0)
            assert np.all(a.centres + a.radii[:, None] <= 64)
            assert is_connected(a)
            if n == 1:
                continue
            d = np.hypot(*(a.centres[:, None] - a.centres[None, :]).T)
            sums = a.radii[:, None] + a.radii[None, :]
            off = ~np.eye(n, dtype=bool)
            if overlap == "touching":
                assert np.all(d[off] >= sums[off] - 1e-9)  # nobody overlaps
                # each particle touches another (tangent)
                assert np.all(np.min(np.where(off, d - sums, np.inf), axis=1) < 1e-9)
            else:
                assert np.all(np.min(np.where(off, d - sums, np.inf), axis=1) < 0)  # overlaps one
                assert np.all(d[off] >= 0.5 * sums[off] - 1e-9)  # never hidden inside


def test_a_connected_check_that_can_fail():
    apart = Aggregate(np.array([[10.0, 10.0], [30.0, 10.0]]), np.array([4.0, 4.0]))
    assert not is_connected(apart)
    touching = Aggregate(np.array([[10.0, 10.0], [18.0, 10.0]]), np.array([4.0, 4.0]))
    assert is_connected(touching)


def test_a_config_that_cannot_work_is_refused_with_every_reason():
    with pytest.raises(ValueError) as err:
        AggregateConfig(size=8, radius=(5, 2), overlap="glued", view="xray", per_count=1)
    for word in ("radius", "size", "overlap", "view", "per_count"):
        assert word in str(err.value)


# --------------------------------------------------------------------------- physics
def test_a_single_disc_scatters_as_the_airy_pattern():
    size, radius = 256, 8.0
    disc = render(Aggregate(np.array([[128.0, 128.0]]), np.array([radius])), size)
    # Area fractions on 4 x 4 sub-pixels: the area within 0.5 % (a binary mask: ~3 %).
    assert disc.sum() == pytest.approx(np.pi * radius**2, rel=5e-3)
    profile = radial_profile(intensity(disc))
    minima = [k for k in range(1, len(profile) - 1)
              if profile[k] < profile[k - 1] and profile[k] < profile[k + 1]]  # fmt: skip
    # J1(2 pi R q) = 0 first at 2 pi R q = 3.8317: q = 0.6098 / R cycles per pixel.
    analytic = 0.6098 / radius * size
    assert minima[0] == int(analytic)  # ring k holds radii [k, k + 1)
    # The amplitude along an axis, its phase ramp removed (the centre is at pixel
    # index 127.5), is real and changes sign at the zero: interpolate it.
    k = np.arange(40)
    amplitude = np.fft.fft2(disc)[0, :40] * np.exp(2j * np.pi * k * (128.0 - 0.5) / size)
    assert np.abs(amplitude.imag).max() < 1e-6 * np.abs(amplitude.real).max()
    a = amplitude.real
    i = int(np.flatnonzero(np.sign(a[:-1]) != np.sign(a[1:]))[0])
    zero = i + a[i] / (a[i] - a[i + 1])
    assert zero == pytest.approx(analytic, abs=0.05)  # measured: 19.498 against 19.514


def test_moving_an_aggregate_leaves_its_scattering_unchanged():
    rng = np.random.default_rng(3)
    config = AggregateConfig(size=64, overlap="overlapping")
    a = draw_aggregate(4, config, np.random.default_rng(1))
    while True:  # a shift that keeps every particle inside the frame
        dx, dy = rng.integers(-8, 9, 2)
        moved = a.shifted(float(dx), float(dy))
        if np.all(moved.centres - moved.radii[:, None] >= 0) and np.all(
            moved.centres + moved.radii[:, None] <= 64):  # fmt: skip
            break
    assert (dx, dy) != (0, 0)
    before, after = render(a, 64), render(moved, 64)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(intensity(before), intensity(after), rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(scattering(before), scattering(after))


def test_the_beamstop_and_photon_noise():
    image = render(Aggregate(np.array([[32.0, 32.0]]), np.array([4.0])), 64)
    stopped = scattering(image, beamstop=3)
    assert stopped[32, 32] == 0 and stopped[32, 35] == 0 and stopped[34, 34] == 0
    assert stopped[32, 36] > 0 and stopped[35, 35] > 0  # 4 and 4.2 pixels out
    noisy = scattering(image, photons=1e4, rng=np.random.default_rng(0))
    counts = np.expm1(noisy * np.log1p(1e4))
    assert np.allclose(counts, np.round(counts), atol=1e-2)  # whole photons
    assert 0.95e4 < counts.sum() < 1.05e4
    with pytest.raises(ValueError, match="random generator"):
        scattering(image, photons=10.0)


# --------------------------------------------------------------------------- build
def test_the_build_has_the_layout_and_guarantees_of_the_lattice_task(built):
    assert verify_manifest(built) == []
    task = load_task(built)
    assert task.name == "aggregates" and task.default.labels == (1, 2, 3, 4, 5)
    train = pd.read_parquet(built / layout.TRAIN)
    test = pd.read_parquet(built / layout.TEST)
    n_pixels = SMALL.size**2
    assert list(train.columns[:2]) == ["id", "n_particles"] and len(train.columns) == 2 + n_pixels
    assert list(test.columns) == ["id", *(f"y{i}" for i in range(n_pixels))]
    assert set(train["n_particles"].value_counts()) == {24}  # balanced: 30 - 6 per count
    key = pd.read_csv(built / layout.SOLUTION)
    assert set(key["id"]) == set(test["id"]) and not set(key["id"]) & set(train["id"])
    assert key.groupby("Usage")["n_particles"].value_counts().unstack().nunique(axis=1).max() == 1
    # A student's copy (public/ only) knows its task from test.parquet.
    student = built.parent / "student"
    (student / "public").mkdir(parents=True)
    (student / layout.TEST).write_bytes((built / layout.TEST).read_bytes())
    assert load_task(student).name == "aggregates"
    # The particles of each row reproduce its image.
    particles = pd.read_parquet(built / PARTICLES).set_index("id")
    row = train.iloc[0]
    entry = particles.loc[row["id"]]
    a = Aggregate(np.array(json.loads(entry["centres"])), np.array(json.loads(entry["radii"])))
    assert a.n == row["n_particles"]
    expected = scattering(render(a, SMALL.size)).ravel()
    np.testing.assert_allclose(row.iloc[2:].to_numpy(np.float32), expected, atol=1e-5)


def test_one_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    config = AggregateConfig(size=32, radius=(2.0, 3.0), per_count=8, seed=11, photons=1e5)
    a, b = tmp_path / "a", tmp_path / "b"
    build_aggregates(a, config, progress=False)
    build_aggregates(b, config, progress=False)
    files = [layout.MANIFEST, layout.TRAIN, layout.TEST, layout.SOLUTION, PARTICLES,
             layout.DATA_CARD, layout.sample_submission("count")]  # fmt: skip
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    other = tmp_path / "c"
    build_aggregates(other, AggregateConfig(size=32, radius=(2.0, 3.0), per_count=8, seed=12,
                                            photons=1e5), progress=False)  # fmt: skip
    assert (other / layout.TRAIN).read_bytes() != (a / layout.TRAIN).read_bytes()


def test_both_views_put_the_image_first(tmp_path):
    config = AggregateConfig(size=32, per_count=5, view="both", radius=(3.0, 3.0))
    build_aggregates(tmp_path / "both", config, progress=False)
    train = pd.read_parquet(tmp_path / "both" / layout.TRAIN)
    row = train.iloc[0, 2:].to_numpy(np.float32)
    assert len(row) == 2 * 32 * 32
    image, pattern = row[:1024].reshape(32, 32), row[1024:].reshape(32, 32)
    np.testing.assert_allclose(pattern, scattering(image), atol=1e-6)


# --------------------------------------------------------------------------- grader
def test_the_grader_names_this_tasks_labels(built, tmp_path):
    test_ids = pd.read_parquet(built / layout.TEST, columns=["id"])["id"]
    frame = pd.DataFrame({"id": test_ids, "n_particles": "3"})
    frame.loc[0, "n_particles"] = "7"
    frame.loc[1, "n_particles"] = "many"
    frame.loc[2, "n_particles"] = ""
    frame.loc[3, "n_particles"] = "2.0"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SubmissionError) as err:
        validate_submission(path, built)
    text = str(err.value)
    assert "2 rows have a n_particles value that is not one of 1, 2, 3, 4, 5: '7', 'many'" in text
    assert "1 row has no n_particles value" in text
    assert "space group" not in text and "lattice" not in text
    assert any("written like '14.0'" in n for n in err.value.notices)
    key = pd.read_csv(built / layout.SOLUTION)
    perfect = tmp_path / "perfect.csv"
    key[["id", "n_particles"]].to_csv(perfect, index=False)
    result = grade(perfect, built)
    assert result.public.accuracy == result.private.accuracy == 1.0
    assert len(result.public.recall) == 5


def test_the_leaderboard_and_the_kit_work_unchanged(built, tmp_path):
    done = run("submit", str(built / layout.sample_submission("count")), "--team", "a",
               "-c", str(built), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Public score: accuracy 20.00 %" in done.stdout  # one count of five
    kit = tmp_path / "kit.zip"
    done = run("starter-kit", "-c", str(built), "--out", str(kit), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(kit).namelist()
    readme = zipfile.ZipFile(kit).read(next(n for n in names if n.endswith("README.md"))).decode()
    assert "how many particles" in readme and "${" not in readme
    assert any(n.endswith("make_submission.py") for n in names)
    assert not any("notebook" in n or "private" in n for n in names)
    # A kit that would carry the answers is refused.
    key = pd.read_csv(built / layout.SOLUTION)
    leak = built / "public" / "extra.csv"
    key[["id", "n_particles"]].to_csv(leak, index=False)
    try:
        done = run("starter-kit", "-c", str(built), "--out", str(tmp_path / "k2.zip"),
                   cwd=tmp_path)  # fmt: skip
    finally:
        leak.unlink()
    assert done.returncode != 0 and "n_particles" in done.stderr


# --------------------------------------------------------------------------- baselines
def test_the_cnn_follows_the_scikit_learn_contract_and_keeps_its_history(built, tmp_path):
    from sklearn.base import clone

    from baselines.aggregates.models import CNN2DClassifier, read_images

    train = read_images(built / layout.TRAIN)
    model = CNN2DClassifier(epochs=3, batch_size=32, random_state=0)
    assert clone(model).get_params() == model.get_params()
    assert model.fit(train.X, train.y) is model
    assert list(model.history_.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss",
                                            "val_accuracy"]  # fmt: skip
    assert len(model.history_) == 3 and 1 <= model.best_epoch_ <= 3
    assert list(model.classes_) == [1, 2, 3, 4, 5]
    again = CNN2DClassifier(epochs=3, batch_size=32, random_state=0).fit(train.X, train.y)
    np.testing.assert_array_equal(model.predict(train.X[:20]), again.predict(train.X[:20]))
    assert model.plot_history(tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="channels, size, size"):
        CNN2DClassifier(epochs=1).fit(train.X.reshape(len(train.X), -1), train.y)


def test_baselines_run_through_the_command_line_and_are_recorded(built, tmp_path):
    import shutil

    comp = Path(shutil.copytree(built, tmp_path / "comp"))
    done = run("baselines", "run", "-c", str(comp), "--set", "cnn2d:epochs=2", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("random", "forest", "cnn2d"):
        assert f"{name}: Public accuracy" in done.stdout
        assert (comp / "submissions" / f"{name}_count.csv").is_file()
    assert (comp / "baselines" / "count" / "cnn2d" / "history.png").is_file()
    forest = float(done.stdout.split("forest: Public accuracy ")[1].split(" %")[0])
    assert forest > 60  # the radial profile counts touching discs well above chance (20 %)
    board = run("leaderboard", "-c", str(comp), cwd=tmp_path)
    assert "Random forest (radial profile)" in board.stdout and "baseline" in board.stdout
    bad = run("baselines", "run", "svm", "-c", str(comp), cwd=tmp_path)
    assert bad.returncode != 0 and "random, forest, cnn2d" in bad.stderr


def test_the_command_line_builds_and_refuses_bad_settings(tmp_path):
    done = run("build", "--task", "aggregates", "--out", str(tmp_path / "a"), "--size", "32",
               "--radius", "2:3", "--counts", "1..3", "--per-count", "6", "-q",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Aggregates per particle count" in done.stdout
    assert load_task(tmp_path / "a").default.labels == (1, 2, 3)
    bad = run("build", "--task", "aggregates", "--out", str(tmp_path / "b"), "--view", "xray",
              "--counts", "3..1", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "view" in bad.stderr and "counts" in bad.stderr
    assert not (tmp_path / "b").exists()
    other = run("build", "--task", "molecules", "--out", str(tmp_path / "c"), cwd=tmp_path)
    assert other.returncode == 2 and "lattice or aggregates" in other.stderr


@pytest.mark.parametrize("platform", ["kaggle", "codabench"])
def test_the_platform_exports_carry_this_task(built, tmp_path, platform):
    from test_codabench import HERE, run_program

    from xrd_bravais.platforms.codabench import export_codabench
    from xrd_bravais.platforms.kaggle import export_kaggle

    key = pd.read_csv(built / layout.SOLUTION)
    if platform == "kaggle":
        out = export_kaggle(built, tmp_path / "k")
        solution = pd.read_csv(out / "solution" / "solution.csv")
        assert list(solution.columns) == ["id", "n_particles", "Usage"]
        assert (out / "data" / "sample_submission.csv").read_bytes() == (
            built / layout.sample_submission("count")).read_bytes()  # fmt: skip
        return
    bundle = export_codabench(built, tmp_path / "b.zip", **HERE)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "b")
    submission = tmp_path / "perfect.csv"
    key[["id", "n_particles"]].to_csv(submission, index=False)
    done, out = run_program(tmp_path / "b", "final", submission, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "scores.json").read_text())["accuracy"] == 1.0
