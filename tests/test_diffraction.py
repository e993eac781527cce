"""The vectorised reflection engine: golden peaks, and pymatgen's output on every real file."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from competition.config import PRESETS, BuildConfig
from competition.physics.diffraction import ENGINES, powder_reflections, shell_points
from competition.physics.patterns import broaden, xrd_pattern
from competition.sources.catalog import RawEntry, Source, amcsd_source, cod_dir_source
from competition.sources.structures import RejectError, parse_structure

pytest.importorskip("pymatgen")
CU_KA = 1.54184
RANGE = (4.4, 90.6)  # the default grid widened by its Gaussian tails


def _bragg(d: float) -> float:
    return math.degrees(2 * math.asin(CU_KA / (2 * d)))


def _cubic(species, coords, a):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(species[0], Lattice.cubic(a), species[1], coords)


def test_fcc_copper_lists_111_then_200_at_their_bragg_angles():
    copper = _cubic(("Fm-3m", ["Cu"]), [[0, 0, 0]], 3.615)
    found = powder_reflections(copper, CU_KA, RANGE)
    assert found.hkl[:3].tolist() == [[1, 1, 1], [2, 0, 0], [2, 2, 0]]
    np.testing.assert_allclose(found.two_theta[:2], [_bragg(3.615 / 3**0.5), _bragg(3.615 / 2)])
    np.testing.assert_allclose(found.d[:2], [3.615 / 3**0.5, 3.615 / 2])
    assert found.intensity[0] > found.intensity[1] > 0


def test_bcc_iron_has_no_100_reflection():
    iron = _cubic(("Im-3m", ["Fe"]), [[0, 0, 0]], 2.8665)
    found = powder_reflections(iron, CU_KA, RANGE)
    # h + k + l odd is extinct in a body-centred cell: 110 comes first, then 200.
    assert found.hkl[:2].tolist() == [[1, 1, 0], [2, 0, 0]]
    assert _bragg(2.8665) not in set(np.round(found.two_theta, 6))


def _same_reflections(structure, two_theta_range=RANGE):
    mine = powder_reflections(structure, CU_KA, two_theta_range)
    ref = powder_reflections(structure, CU_KA, two_theta_range, engine="pymatgen")
    np.testing.assert_allclose(mine.two_theta, ref.two_theta, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mine.intensity, ref.intensity, rtol=1e-9)
    np.testing.assert_allclose(mine.d, ref.d, rtol=1e-12)
    return mine, ref


def test_hexagonal_peaks_are_named_with_three_of_their_four_indices():
    from pymatgen.core import Lattice, Structure

    magnesium = Structure.from_spacegroup(
        "P6_3/mmc", Lattice.hexagonal(3.209, 5.211), ["Mg"], [[1 / 3, 2 / 3, 1 / 4]]
    )
    mine, ref = _same_reflections(magnesium)
    assert mine.hkl.tolist() == ref.hkl.tolist()
    assert mine.hkl[:3].tolist() == [[1, 0, 0], [0, 0, 2], [1, 0, 1]]


def test_a_disordered_triclinic_cell_matches_pymatgen_reflection_by_reflection():
    from pymatgen.core import Lattice, Structure

    lattice = Lattice.from_parameters(5.1, 6.3, 7.7, 81.0, 97.5, 104.2)
    cell = Structure(
        lattice,
        [{"Fe": 0.6, "Ni": 0.4}, "O", {"O": 0.5}, "Si", "H"],
        [[0.1, 0.2, 0.3], [0.45, 0.05, 0.77], [0.9, 0.61, 0.13], [0.33, 0.71, 0.52],
         [0.62, 0.38, 0.94]],
    )  # fmt: skip
    mine, ref = _same_reflections(cell)
    assert len(mine) > 300
    assert mine.hkl.tolist() == ref.hkl.tolist()


def test_the_shell_holds_every_lattice_point_once_per_friedel_pair():
    reciprocal = np.array([[0.21, 0.0, 0.0], [0.04, 0.17, 0.0], [-0.03, 0.02, 0.13]])
    hkl, g = shell_points(reciprocal, 0.2, 0.8)
    span = np.arange(-12, 13)
    box = np.stack(np.meshgrid(span, span, span, indexing="ij"), -1).reshape(-1, 3)
    norms = np.linalg.norm(box @ reciprocal, axis=1)
    inside = box[(norms >= 0.2) & (norms <= 0.8)]
    assert len(hkl) * 2 == len(inside)
    assert {tuple(v) for v in hkl} | {tuple(-v) for v in hkl} == {tuple(v) for v in inside}
    np.testing.assert_allclose(g, np.linalg.norm(hkl @ reciprocal, axis=1))


def test_an_element_without_scattering_factors_is_rejected_with_its_name():
    from pymatgen.core import DummySpecies, Lattice, Structure

    cell = Structure(Lattice.cubic(4.0), [DummySpecies("Xx")], [[0, 0, 0]])
    with pytest.raises(RejectError, match="no scattering coefficients for Xx"):
        powder_reflections(cell, CU_KA, RANGE)


def test_anisotropic_displacements_go_to_pymatgen_which_applies_them():
    from pymatgen.core import Lattice, Structure

    rock_salt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    plain = powder_reflections(rock_salt, CU_KA, RANGE)
    for name in ("U11_cif", "U22_cif", "U33_cif"):
        rock_salt.add_site_property(name, [0.02] * len(rock_salt))
    for name in ("U23_cif", "U13_cif", "U12_cif"):
        rock_salt.add_site_property(name, [0.0] * len(rock_salt))
    damped = powder_reflections(rock_salt, CU_KA, RANGE)
    reference = powder_reflections(rock_salt, CU_KA, RANGE, engine="pymatgen")
    np.testing.assert_array_equal(damped.intensity, reference.intensity)
    assert (damped.intensity[-1] / damped.intensity[0]) < (plain.intensity[-1] / plain.intensity[0])


def test_an_unknown_engine_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="vectorised, pymatgen"):
        BuildConfig(engine="fortran")


def _worst_difference(source: Source, max_sites: int) -> tuple[int, float]:
    """Count and largest difference of both engines' patterns (the file's B), every entry."""
    config = PRESETS["default"]
    worst, n = 0.0, 0
    for entry in source.entries():
        if not isinstance(entry, RawEntry):
            continue
        try:
            parsed = parse_structure(entry.text, max_sites)
            structure, factors = parsed.structure, parsed.debye_waller
            reference = xrd_pattern(structure, config, "pymatgen", factors)
        except RejectError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mine = xrd_pattern(structure, config, debye_waller=factors)
        worst = max(worst, float(np.abs(mine - reference).max()))
        n += 1
    return n, worst


@pytest.mark.parametrize("folder", ["cod_cifs", "cif_edge_cases"])
def test_patterns_equal_pymatgens_on_every_real_file(folder, cod_cifs):
    # cod_cifs fixture: skips when the shared data is absent.
    n, worst = _worst_difference(cod_dir_source(Path(cod_cifs).parent / folder), 5000)
    assert n > 300
    assert worst <= 1e-3


def test_patterns_equal_pymatgens_on_a_sample_of_the_amcsd_source():
    sample = [e for i, e in enumerate(amcsd_source().entries()) if i % 25 == 0]
    n, worst = _worst_difference(Source("amcsd", {}, lambda: sample, len(sample)), 500)
    assert n > 300
    assert worst <= 1e-3


def test_broadened_stick_lists_agree_between_engines(cod_cifs):
    structure = parse_structure((cod_cifs / "1000027.cif").read_text("latin-1"), 500).structure
    config = PRESETS["default"]
    a = powder_reflections(structure, CU_KA, RANGE)
    b = powder_reflections(structure, CU_KA, RANGE, engine="pymatgen")
    np.testing.assert_allclose(
        broaden(a.two_theta, a.intensity, config), broaden(b.two_theta, b.intensity, config),
        rtol=1e-9,
    )  # fmt: skip


def test_a_cell_too_small_to_diffract_gets_the_same_reason_from_both_engines():
    from pymatgen.core import Lattice, Structure

    tiny = Structure(Lattice.cubic(0.7), ["H"], [[0, 0, 0]])
    reasons = []
    for engine in ("vectorised", "pymatgen"):
        with pytest.raises(RejectError) as caught:
            xrd_pattern(tiny, PRESETS["default"], engine)
        reasons.append(caught.value.reason)
    assert reasons[0] == reasons[1]
    assert "largest d-spacing (0.7 A) is too small for CuKa" in reasons[0]


def test_debye_waller_weakens_each_peak_by_exp_minus_2_b_s_squared_in_both_engines():
    from competition.physics.diffraction import DEFAULT_B

    copper = _cubic(("Fm-3m", ["Cu"]), [[0, 0, 0]], 3.615)
    rigid = powder_reflections(copper, CU_KA, RANGE, debye_waller={"Cu": 0.0})
    for engine in ENGINES:
        damped = powder_reflections(copper, CU_KA, RANGE, engine, debye_waller={"Cu": 0.5})
        s2 = 1 / (2 * damped.d) ** 2  # (sin(theta) / lambda)^2 = 1 / (4 d^2)
        np.testing.assert_allclose(damped.intensity / rigid.intensity, np.exp(-2 * 0.5 * s2),
                                   rtol=1e-9)  # fmt: skip
    # No value given: DEFAULT_B for every element.
    default = powder_reflections(copper, CU_KA, RANGE)
    given = powder_reflections(copper, CU_KA, RANGE, debye_waller={"Cu": DEFAULT_B})
    np.testing.assert_array_equal(default.intensity, given.intensity)


def test_the_cifs_displacements_reach_the_pattern(cod_cifs):
    # An AMCSD entry with U_iso: its B per element reaches the reflections, whose
    # high-angle peaks weaken relative to a rigid lattice.
    from pymatgen.io.cif import CifParser

    from competition.sources.displacements import debye_waller_factors

    entry = next(e for e in amcsd_source().entries() if "_atom_site_U_iso_or_equiv" in e.text)
    parsed = parse_structure(entry.text, 500)
    block = next(iter(CifParser.from_str(entry.text).as_dict().values()))
    assert parsed.debye_waller == debye_waller_factors(block) and parsed.debye_waller
    assert all(0 < b <= 10 for b in parsed.debye_waller.values())
    rigid = powder_reflections(parsed.structure, CU_KA, RANGE,
                               debye_waller=dict.fromkeys(parsed.debye_waller, 0.0))  # fmt: skip
    real = powder_reflections(parsed.structure, CU_KA, RANGE, debye_waller=parsed.debye_waller)
    # The weakest peaks may fall under the cut-off in one of them: compare those in both.
    _, i, j = np.intersect1d(np.round(real.d, 9), np.round(rigid.d, 9), return_indices=True)
    ratio = real.intensity[i] / rigid.intensity[j]
    ratio = ratio[np.argsort(real.d[i])[::-1]]  # by increasing angle
    assert np.all(ratio <= 1 + 1e-12) and ratio[-1] < ratio[0]
