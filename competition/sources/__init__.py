"""Where structures come from, and the measurements that join a test set.

The first stage of a build, in the order of the data::

    catalog (the sources an organiser chooses: AMCSD, COD folder or ids, pyxtal)
    -> reader (CIF blocks to structures, with array code)
    -> structures (checks and the compound key of each structure)

and :mod:`competition.sources.measured`, real measured patterns read onto a grid.
"""
