"""Patterns: golden Bragg positions, broadening, and agreement with pymatgen on real files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from competition.config import PRESETS, PatternConfig
from competition.physics.diffraction import debye_waller_table
from competition.physics.patterns import broaden, xrd_pattern
from competition.sources.structures import RejectError, parse_structure

pytest.importorskip("pymatgen")
CU_KA = 1.54184  # pymatgen's WAVELENGTHS["CuKa"], Angstrom


def _bragg(d: float) -> float:
    return math.degrees(2 * math.asin(CU_KA / (2 * d)))


def _dense_reference(structure, config: PatternConfig, factors=None) -> np.ndarray:
    """Broaden pymatgen's sticks with a full Gaussian at every grid point (no cut-off).

    ``factors``: the Debye-Waller ``B`` per element the build applied.
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    calculator = XRDCalculator("CuKa", debye_waller_factors=factors)
    pattern = calculator.get_pattern(structure, scaled=False, two_theta_range=(0, 120))
    grid = config.grid()
    x, y = np.asarray(pattern.x), np.asarray(pattern.y)
    profile = (y[:, None] * np.exp(-0.5 * ((grid[None, :] - x[:, None]) / config.sigma) ** 2)).sum(
        0
    )
    return profile / profile.max()


def test_rock_salt_peaks_at_bragg_angles():
    from pymatgen.core import Lattice, Structure

    a = 5.64
    nacl = Structure.from_spacegroup(
        225, Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    config = PRESETS["default"]
    y = xrd_pattern(nacl, config)
    assert y.dtype == np.float32 and y.shape == (4251,) and y.max() == 1.0 and y.min() >= 0
    grid = config.grid()
    # The strongest reflection of rock salt is (200), then (220).
    assert grid[np.argmax(y)] == pytest.approx(_bragg(a / 2), abs=0.02)
    for hkl in [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2)]:
        position = _bragg(a / math.sqrt(sum(h * h for h in hkl)))
        near = np.abs(grid - position) <= 0.02
        assert y[near].max() > 0.01, hkl
    # Forbidden in a face-centred lattice: (100), (110), (210).
    for hkl in [(1, 0, 0), (1, 1, 0), (2, 1, 0)]:
        position = _bragg(a / math.sqrt(sum(h * h for h in hkl)))
        assert y[np.abs(grid - position) <= 0.1].max() < 1e-6, hkl


def test_single_stick_gives_a_gaussian_of_the_right_width():
    config = PRESETS["default"]
    y = broaden(np.array([45.0]), np.array([2.0]), config)
    grid = config.grid()
    assert y.max() == pytest.approx(2.0)
    variance = (y * (grid - 45.0) ** 2).sum() / y.sum()
    assert math.sqrt(variance) == pytest.approx(config.sigma, rel=1e-3)
    assert grid[y >= 1.0].min() >= 45.0 - config.fwhm / 2
    assert y.sum() * config.step == pytest.approx(
        2.0 * config.sigma * math.sqrt(2 * math.pi), rel=1e-6
    )


def test_sticks_outside_the_grid_contribute_their_tails():
    config = PRESETS["default"]
    y = broaden(np.array([4.95, 90.05]), np.array([1.0, 1.0]), config)
    assert y[0] > 0.4 and y[-1] > 0.4


def test_nano281_pattern_shape():
    from pymatgen.core import Lattice, Structure

    iron = Structure(Lattice.cubic(2.8665), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    y = xrd_pattern(iron, PRESETS["nano281"])
    assert y.shape == (180,) and y.max() == 1.0


def test_no_reflection_in_range_is_rejected():
    from pymatgen.core import Lattice, Structure

    tiny = Structure(Lattice.cubic(0.5), ["H"], [[0, 0, 0]])
    with pytest.raises(RejectError, match="no reflection"):
        xrd_pattern(tiny, PRESETS["default"])


def test_built_patterns_match_direct_pymatgen_within_1e3(cod_build, cod_cifs):
    """Every pattern in the built competition against an independent dense computation."""
    out = cod_build.out
    config = PRESETS["default"]
    columns = config.column_names()
    train = pq.read_table(out / "public" / "train.parquet").to_pandas()
    test = pq.read_table(out / "public" / "test.parquet").to_pandas()
    meta = pd.read_parquet(out / "private" / "test_meta.parquet")
    train_meta = cod_build_train_sources(train, cod_cifs)
    pairs = [(row.source_file, row.id) for row in meta.itertuples()]
    frames = {"t": test.set_index("id"), "r": train.set_index("id")}
    pairs += train_meta
    assert len(pairs) == len(train) + len(test)
    worst = 0.0
    for source_file, row_id in pairs:
        text = Path(source_file).read_text(encoding="latin-1")
        parsed = parse_structure(text, 500)
        factors = debye_waller_table(parsed.structure, parsed.debye_waller)
        expected = _dense_reference(parsed.structure, config, factors)
        built = frames[row_id[0]].loc[row_id, columns].to_numpy(dtype=np.float64)
        worst = max(worst, float(np.abs(built - expected).max()))
    assert worst <= 1e-3


def cod_build_train_sources(train: pd.DataFrame, cod_cifs) -> list[tuple[str, str]]:
    """Training rows carry cod_id; every file in cod_cifs is named after its COD id."""
    return [
        (str(cod_cifs / f"{int(c)}.cif"), i)
        for c, i in zip(train["cod_id"], train["id"], strict=True)
    ]


def test_stick_table_of_rock_salt():
    from pymatgen.core import Lattice, Structure

    from competition.physics.patterns import xrd_pattern_and_sticks

    a = 5.64
    nacl = Structure.from_spacegroup(
        225, Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    pattern, sticks = xrd_pattern_and_sticks(nacl, PRESETS["default"])
    np.testing.assert_array_equal(pattern, xrd_pattern(nacl, PRESETS["default"]))
    first = sticks[0]  # (111), the lowest-angle reflection
    assert sorted(np.abs(first[3:6])) == [1, 1, 1]
    assert first[1] == pytest.approx(a / math.sqrt(3), rel=1e-6)
    assert first[0] == pytest.approx(_bragg(a / math.sqrt(3)), abs=1e-6)
    np.testing.assert_allclose(np.linalg.norm(sticks[:, 6:9], axis=1), 1 / sticks[:, 1])
    strongest = sticks[np.argmax(sticks[:, 2])]
    assert strongest[2] == 1.0 and sorted(np.abs(strongest[3:6])) == [0, 0, 2]


def test_point_group_rotations_are_pymatgens_from_one_spglib_call(cod_cifs):
    """The texture's rotations: pymatgen's matrices, in pymatgen's order, on real files.

    Those of the labels' own symmetry (at the same tolerance) are the same set.
    """
    import warnings

    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from competition.lattice.labels import symmetry_labels
    from competition.physics.patterns import cartesian_rotations, point_group_rotations

    checked = 0
    for path in sorted(cod_cifs.glob("*.cif"))[:40]:
        try:
            structure = parse_structure(path.read_text(encoding="latin-1"), 500).structure
        except RejectError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = [op.rotation_matrix for op in
                      SpacegroupAnalyzer(structure).get_point_group_operations(cartesian=True)]
        mine = point_group_rotations(structure)
        assert len(mine) == len(theirs), path.name
        np.testing.assert_allclose(mine, theirs, atol=1e-12)
        from_labels = cartesian_rotations(structure, symmetry_labels(structure, 0.01).rotations)
        key = sorted(np.round(np.asarray(m), 6).tobytes() for m in from_labels)
        assert key == sorted(np.round(np.asarray(m), 6).tobytes() for m in theirs), path.name
        checked += 1
    assert checked >= 30
