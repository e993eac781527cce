"""The array CIF reader: pymatgen's structure, site for site, on hand-built and real files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from competition.sources.catalog import RawEntry, amcsd_source, cod_dir_source
from competition.sources.reader import fast_structure
from competition.sources.structures import RejectError, parse_structure

pytest.importorskip("pymatgen")

P21C = """data_test
_cell_length_a 5.0
_cell_length_b 6.0
_cell_length_c 7.0
_cell_angle_alpha 90
_cell_angle_beta 101.5
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1 21/c 1'
loop_
_symmetry_equiv_pos_as_xyz
x,y,z
-x,y+1/2,-z+1/2
-x,-y,-z
x,-y+1/2,z+1/2
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Fe1 Fe2+ 0 0 0 0.5
Mg1 Mg 0 0 0 0.5
O1 O 0.2(1) 0.3 0.4 1
Si1 Si 0.5 0.00003 0.5 1
"""


def _blocks_of(text: str) -> dict:
    """The data blocks of ``text`` by name, as pymatgen reads them."""
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CifParser.from_str(text).as_dict()


def _block(text: str) -> dict:
    return next(iter(_blocks_of(text).values()))


def _mixes(structure) -> list[list[tuple[str, str, float]]]:
    # Compared item by item: pymatgen's Composition with both D and H is not equal
    # to itself (D is an Element that prints as H), as in amcsd:0013470.
    return [[(getattr(k, "name", ""), repr(k), v) for k, v in site.species.items()]
            for site in structure]  # fmt: skip


def _identical(a, b) -> bool:
    """Same lattice, and the same species and coordinates site by site, to the bit."""
    return (
        np.array_equal(a.lattice.matrix, b.lattice.matrix)
        and len(a) == len(b)
        and _mixes(a) == _mixes(b)
        and np.array_equal(a.frac_coords, b.frac_coords)
    )


def test_a_hand_built_p21c_cell_is_pymatgens_site_for_site():
    fast = fast_structure(_block(P21C))
    reference = parse_structure(P21C, 500, reader="pymatgen").structure
    assert fast is not None and _identical(fast, reference)
    # Fe and Mg share the inversion centre: one mixed site, kept once (2 images
    # under the four operations); O and Si take general positions (4 each).
    mixed = [s for s in fast if len(s.species) == 2]
    assert len(mixed) == 2 and all(s.species.num_atoms == pytest.approx(1.0) for s in mixed)
    assert sum(s.specie.symbol == "O" for s in fast if s.is_ordered) == 4
    # Si is 3e-5 from the inversion centre at (1/2, 0, 1/2): its inverted copy lies
    # 6e-5 away, within pymatgen's 1e-4, so it counts once (2 sites, not 4).
    assert sum(s.specie.symbol == "Si" for s in fast if s.is_ordered) == 2


def test_a_copy_just_beyond_the_site_tolerance_is_kept_as_pymatgen_keeps_it():
    text = P21C.replace("Si1 Si 0.5 0.00003 0.5 1", "Si1 Si 0.5 0.00006 0.5 1")
    fast = fast_structure(_block(text))
    reference = parse_structure(text, 500, reader="pymatgen").structure
    assert fast is not None and _identical(fast, reference)
    assert sum(s.specie.symbol == "Si" for s in fast if s.is_ordered) == 4


@pytest.mark.parametrize(("change", "why"), [
    (("Fe1 Fe2+ 0 0 0 0.5", "Fe1 Fe2+ 0 0 0 0.7"), "occupancies summing above 1"),
    (("O1 O 0.2(1)", "O1 Wat 0.2(1)"), "water brings implicit hydrogens"),
    (("Mg1 Mg 0 0 0 0.5", "Mg1 Mg 0 0 0 0.3"), None),
    (("O1 O 0.2(1) 0.3 0.4 1", "O1 O ? 0.3 0.4 1"), "an unreadable coordinate"),
    (("O1 O 0.2(1) 0.3 0.4 1", "O1 O 0.2 0.3 0.4 0"), "a zero occupancy"),
])  # fmt: skip
def test_what_pymatgen_decides_is_left_to_it(change, why):
    text = P21C.replace(*change)
    fast = fast_structure(_block(text))
    if why is None:
        assert fast is not None
    else:
        assert fast is None, why


def test_oxidation_states_and_a_one_line_symmetry_list_are_left_to_pymatgen():
    oxidised = P21C + "loop_\n_atom_type_symbol\n_atom_type_oxidation_number\nFe2+ 2\nO2- -2\n"
    assert fast_structure(_block(oxidised)) is None
    one_line = P21C.replace("loop_\n_symmetry_equiv_pos_as_xyz\nx,y,z\n-x,y+1/2,-z+1/2\n"
                            "-x,-y,-z\nx,-y+1/2,z+1/2\n", "_symmetry_equiv_pos_as_xyz x,y,z\n")
    assert fast_structure(_block(one_line)) is None


def _check_source(entries) -> tuple[int, int]:
    """Both readers on every entry: equal outcomes; returns (accepted, read by arrays)."""
    accepted = fast = 0
    for entry in entries:
        if not isinstance(entry, RawEntry):
            continue
        outcomes = []
        for reader in ("arrays", "pymatgen"):
            try:
                outcomes.append(parse_structure(entry.text, 5000, reader=reader))
            except RejectError as err:
                outcomes.append((err.stage, err.reason))
        mine, reference = outcomes
        if isinstance(reference, tuple):
            assert mine == reference, entry.entry_id
            continue
        assert not isinstance(mine, tuple), (entry.entry_id, mine)
        assert _identical(mine.structure, reference.structure), entry.entry_id
        assert (mine.declared_spacegroup, mine.block, mine.extra_blocks) == (
            reference.declared_spacegroup, reference.block, reference.extra_blocks
        )
        accepted += 1
        blocks = _blocks_of(entry.text)
        fast += len(blocks) == 1 and fast_structure(next(iter(blocks.values()))) is not None
    return accepted, fast


@pytest.mark.parametrize("folder", ["cod_cifs", "cif_edge_cases"])
def test_every_real_file_reads_as_pymatgen_reads_it(folder, cod_cifs):
    accepted, fast = _check_source(cod_dir_source(Path(cod_cifs).parent / folder).entries())
    assert accepted > 300
    assert fast > 0.5 * accepted  # the array path does most of the work


def test_a_sample_of_the_amcsd_source_reads_as_pymatgen_reads_it():
    # Every 20th entry, and the two that mix deuterium and hydrogen on one site.
    sample = [e for i, e in enumerate(amcsd_source().entries())
              if i % 20 == 0 or e.entry_id in ("amcsd:0013470", "amcsd:0013472")]  # fmt: skip
    accepted, fast = _check_source(sample)
    assert accepted > 400
    assert fast > 0.8 * accepted
