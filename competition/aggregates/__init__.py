"""The second kind of competition: count the particles in an aggregate.

* :mod:`competition.aggregates.draw`: the geometry of an aggregate, its image and its
  scattering pattern;
* :mod:`competition.aggregates.build`: draw, split and write a competition of them.
"""
