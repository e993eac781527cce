"""Build a powder-XRD Bravais-lattice competition from crystal structures.

The pipeline runs in the order of its modules::

    sources -> structures -> labels -> patterns -> splits -> build

Importing this package is cheap: pymatgen, spglib and matplotlib are imported by
the stages that use them.
"""

from contract.labels import BRAVAIS_LATTICES, bravais_lattice

__all__ = ["BRAVAIS_LATTICES", "bravais_lattice"]
__version__ = "0.1.0"
