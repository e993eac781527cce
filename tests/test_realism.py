"""The realism model, one effect at a time, against its physics."""

from __future__ import annotations

import numpy as np
import pytest

from competition.realism import (
    CU_KALPHA1,
    CU_KALPHA2,
    KALPHA2_RATIO,
    Measurement,
    bragg_two_theta,
    march_dollase,
    peak_list,
    peak_widths,
    poisson_counts,
    position_shift,
    pseudo_voigt,
    render,
    tch_mixing,
)
from contract.grid import Grid

GRID = Grid.spanning(5.0, 90.0, 0.005)
SHARP = Measurement(caglioti=(0.0, 0.0, 0.0025), kalpha2=False)  # 0.05 degree Gaussian


def _peak_centres(profile: np.ndarray) -> np.ndarray:
    """Centroids of the regions above a fifth of the maximum (one per resolved peak)."""
    above = profile > 0.2 * profile.max()
    edges = np.flatnonzero(np.diff(above.astype(int)))
    x = GRID.two_theta()
    bounds = zip(edges[::2] + 1, edges[1::2] + 1, strict=True)
    return np.array([np.average(x[a:b], weights=profile[a:b]) for a, b in bounds])


def test_kalpha2_sits_where_braggs_law_puts_it_at_half_intensity():
    d = np.array([2.0])
    two_theta, area, _, _ = peak_list(d, [100.0], Measurement())
    np.testing.assert_allclose(two_theta, [bragg_two_theta(d, CU_KALPHA1)[0],
                                           bragg_two_theta(d, CU_KALPHA2)[0]])  # fmt: skip
    assert area[1] / area[0] == pytest.approx(KALPHA2_RATIO)
    # At high angle the doublet is resolved: two maxima 2 asin(l2/2d) - 2 asin(l1/2d) apart.
    high = np.array([1.1])
    measured = Measurement(caglioti=(0.0, 0.0, 0.0025))
    centres = _peak_centres(render(high, [1.0], GRID, measured))
    expected = bragg_two_theta(high, CU_KALPHA2) - bragg_two_theta(high, CU_KALPHA1)
    assert len(centres) == 2 and centres[1] - centres[0] == pytest.approx(expected[0], abs=0.01)
    single = render(high, [1.0], GRID, SHARP)
    assert len(_peak_centres(single)) == 1  # monochromated: K-alpha1 only


def test_zero_shift_is_constant_and_displacement_follows_cos_theta():
    two_theta = np.array([20.0, 50.0, 80.0])
    np.testing.assert_allclose(position_shift(two_theta, zero=0.07), 0.07)
    shift = position_shift(two_theta, displacement=0.1, radius=240.0)
    expected = np.degrees(-2 * 0.1 * np.cos(np.radians(two_theta / 2)) / 240.0)
    np.testing.assert_allclose(shift, expected)
    assert np.all(np.diff(np.abs(shift)) < 0)  # largest at low angle
    moved, _, _, _ = peak_list([3.0, 1.5], [1, 1], Measurement(kalpha2=False, zero=-0.05))
    np.testing.assert_allclose(moved - bragg_two_theta([3.0, 1.5], CU_KALPHA1), -0.05)


def test_scherrer_width_scales_as_one_over_size_times_cos_theta():
    two_theta = np.array([20.0, 60.0, 100.0])
    _, small = peak_widths(two_theta, size_nm=20.0)
    _, large = peak_widths(two_theta, size_nm=80.0)
    np.testing.assert_allclose(small / large, 4.0)
    cos = np.cos(np.radians(two_theta / 2))
    np.testing.assert_allclose(small * cos, small[0] * cos[0])
    # Scherrer: K lambda / (L cos theta), in degrees of 2theta.
    assert small[0] == pytest.approx(np.degrees(0.9 * CU_KALPHA1 / (200.0 * cos[0])))


def test_pseudo_voigt_integrates_to_its_intensity():
    x = np.linspace(-2000, 2000, 4_000_001)
    for eta in (0.0, 0.3, 1.0):
        area = np.trapezoid(pseudo_voigt(x, 0.0, 0.1, eta), x)
        assert area == pytest.approx(1.0, abs=2e-5)
        assert pseudo_voigt(np.array([0.05]), 0.0, 0.1, eta)[0] == pytest.approx(
            0.5 * pseudo_voigt(np.array([0.0]), 0.0, 0.1, eta)[0], rel=1e-9
        )  # half maximum at half the FWHM
    profile = render([2.0, 1.5], [3.0, 2.0], GRID, SHARP)
    assert profile.sum() == pytest.approx(5.0, rel=1e-3)


def test_tch_limits_are_pure_gaussian_and_pure_lorentzian():
    h, eta = tch_mixing([0.1, 0.0], [0.0, 0.1])
    np.testing.assert_allclose(h, [0.1, 0.1])
    np.testing.assert_allclose(eta, [0.0, 1.0], atol=1e-4)


def test_texture_ratio_one_changes_nothing_and_otherwise_only_intensities():
    d = np.array([3.0, 2.5, 2.0])
    normals = np.array([[0, 0, 1.0], [1.0, 0, 0], [1.0, 0, 1.0]])
    plain = peak_list(d, [1, 1, 1], Measurement(kalpha2=False), normals)
    same = peak_list(d, [1, 1, 1], Measurement(kalpha2=False, texture_ratio=1.0), normals)
    for a, b in zip(plain, same, strict=True):
        np.testing.assert_array_equal(a, b)
    plates = peak_list(d, [1, 1, 1], Measurement(kalpha2=False, texture_ratio=0.6), normals)
    np.testing.assert_array_equal(plates[0], plain[0])  # positions unchanged
    np.testing.assert_array_equal(plates[2], plain[2])  # widths unchanged
    weights = plates[1]
    np.testing.assert_allclose(weights, march_dollase(np.cos([0, np.pi / 2, np.pi / 4]), 0.6))
    assert weights[0] > 1 > weights[1]  # plates: normals along the direction gain
    # Over a random powder the weight averages to 1: texture moves intensity only.
    rng = np.random.default_rng(0)
    assert march_dollase(rng.uniform(-1, 1, 2_000_000), 0.6).mean() == pytest.approx(1, abs=3e-3)


def test_poisson_noise_has_poisson_statistics():
    rng = np.random.default_rng(1)
    for level in (100.0, 10_000.0):
        counts = poisson_counts(np.full(200_000, level), rng)
        assert counts.mean() == pytest.approx(level, rel=0.01)
        assert counts.var() == pytest.approx(level, rel=0.02)
    first, second = (poisson_counts(np.full(10, 50.0), np.random.default_rng(7)) for _ in "ab")
    np.testing.assert_array_equal(first, second)


# -- the measured profile of a build -------------------------------------------------


def test_reflections_carry_d_spacings_and_symmetry_equivalent_normals():
    from pymatgen.core import Lattice, Structure

    from competition.patterns import reflections

    magnesium = Structure.from_spacegroup(194, Lattice.hexagonal(3.21, 5.21), ["Mg"],
                                          [[1 / 3, 2 / 3, 0.25]])  # fmt: skip
    d, intensity, normals = reflections(magnesium, GRID)
    assert d.shape == intensity.shape == normals.shape[:1] and normals.shape[2] == 3
    # |normal| = 1/d for every equivalent direction (four-index hkl handled).
    lengths = np.linalg.norm(normals, axis=2)
    np.testing.assert_allclose(lengths, np.broadcast_to(1 / d[:, None], lengths.shape), rtol=1e-9)
    assert normals.shape[1] == 24  # the order of 6/mmm


def test_a_measured_build_is_deterministic_and_looks_measured(cod_cifs, tmp_path):
    from competition.build import build_competition
    from competition.config import BuildConfig
    from competition.sources import cod_dir_source
    from contract.manifest import read_manifest

    def build(name, workers, **changes):
        return build_competition(cod_dir_source(cod_cifs).head(40), tmp_path / name,
                                 BuildConfig(**changes), workers=workers,
                                 cache_dir=tmp_path / "cache", progress=False).out  # fmt: skip

    def patterns(out):
        import pandas as pd

        frame = pd.read_parquet(out / "public" / "train.parquet")
        return frame.filter(regex=r"^y\d+$").to_numpy()

    first = build("a", 2, profile="measured")
    again = build("b", 1, profile="measured")  # from the cache, on one worker
    fresh = build("c", 1, profile="measured", seed=0)
    for name in ("train.parquet", "test.parquet"):
        a = (first / "public" / name).read_bytes()
        assert a == (again / "public" / name).read_bytes() == (fresh / "public" / name).read_bytes()
    clean, other_seed = patterns(build("d", 2)), patterns(build("e", 2, profile="measured", seed=1))
    measured = patterns(first)
    assert measured.shape == clean.shape and not np.array_equal(measured, clean)
    assert not np.array_equal(measured, other_seed)
    np.testing.assert_allclose(measured.max(axis=1), 1.0)
    # A background and counting noise: no flat zero baseline, unlike the clean patterns.
    assert np.median(measured.min(axis=1)) > 0 and np.median(clean.min(axis=1)) == 0
    config = read_manifest(first)["config"]
    assert config["profile"] == "measured" and config["realism"]["counts"] == [100.0, 100000.0]
    assert "Profile: measured" in (first / "public" / "DATA.md").read_text()
    from starter_kit.kit import render_readme

    assert "profile `measured`" in render_readme(first)
    assert "profile `clean`" in render_readme(tmp_path / "d")
