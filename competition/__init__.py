"""Build a competition from crystal structures (or, as a second task, aggregates).

The folders follow the data::

    sources/   where structures come from: the catalogue of sources, the CIF reader,
               the structure checks, and real measurements for a test portion
    physics/   from a structure to a pattern: reflections, the clean profile, the
               measured-looking one
    lattice/   the lattice competition: labels -> pipeline (pool or dask) -> splits ->
               build (write) -> report
    aggregates/  the second task: draw aggregates, build a competition of them

beside ``config`` (the build's settings), ``manifest`` (what a build records) and
``cli`` (``xrd-bravais build``). Importing this package is cheap: pymatgen, spglib
and matplotlib are imported by the stages that use them.
"""

from xrd_bravais.contract.labels import BRAVAIS_LATTICES, bravais_lattice

__all__ = ["BRAVAIS_LATTICES", "bravais_lattice"]
__version__ = "0.1.0"
