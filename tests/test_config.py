"""The grid presets and the build configuration."""

from __future__ import annotations

import numpy as np
import pytest

from competition.config import FWHM_PER_SIGMA, PRESETS, BuildConfig, PatternConfig


def test_default_grid_is_5_to_90_in_4251_points():
    grid = PRESETS["default"].grid()
    assert grid.shape == (4251,)
    assert grid[0] == 5.0
    assert grid[-1] == pytest.approx(90.0, abs=1e-9)
    assert np.allclose(np.diff(grid), 0.02)
    assert PRESETS["default"].fwhm == 0.1
    assert PRESETS["default"].column_names()[-1] == "y4250"


def test_nano281_grid_reproduces_the_course_format():
    preset = PRESETS["nano281"]
    assert preset.n_points == 180
    assert preset.grid()[0] == 0.5
    assert preset.grid()[-1] == pytest.approx(90.0)
    assert preset.sigma == pytest.approx(0.2)


def test_fwhm_sigma_ratio():
    assert pytest.approx(2.35482, abs=1e-5) == FWHM_PER_SIGMA


@pytest.mark.parametrize(
    "kwargs",
    [
        {"two_theta_min": 10, "two_theta_max": 5, "step": 0.1, "fwhm": 0.1},
        {"two_theta_min": 5, "two_theta_max": 90, "step": 0, "fwhm": 0.1},
        {"two_theta_min": 5, "two_theta_max": 190, "step": 0.1, "fwhm": 0.1},
    ],
)
def test_bad_grids_are_refused(kwargs):
    with pytest.raises(ValueError):
        PatternConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"preset": "nope"}, {"test_fraction": 1.0}, {"public_fraction": 0}, {"per_class": 0}]
)
def test_bad_build_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        BuildConfig(**kwargs)


def test_structure_key_ignores_split_settings_but_not_the_grid():
    base = BuildConfig()
    assert base.structure_key() == base.with_(per_class=10, seed=3, timeout=5).structure_key()
    assert base.structure_key() != base.with_(preset="nano281").structure_key()
    assert base.structure_key() != base.with_(symprec=0.1).structure_key()


def test_a_custom_grid_from_python():
    from xrd_bravais.contract.grid import Grid

    pattern = PatternConfig(two_theta_min=10.0, two_theta_max=80.0, step=0.05, fwhm=0.15)
    config = BuildConfig(preset="custom", pattern=pattern)
    assert config.pattern.to_grid() == Grid(10.0, 80.0, 0.05, 1401, "CuKa", 0.15)
    assert config.structure_key() != BuildConfig().structure_key()
    assert config.with_(preset="nano281").pattern == PRESETS["nano281"]
    with pytest.raises(ValueError, match="say preset='custom'"):
        BuildConfig(preset="default", pattern=pattern)
