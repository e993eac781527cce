"""The physics of a powder pattern, from a structure to what a diffractometer records.

* :mod:`competition.physics.diffraction`: the reflections (2theta, intensity, hkl) of a
  structure, vectorised, within 2e-5 of pymatgen's ``XRDCalculator``;
* :mod:`competition.physics.patterns`: sticks to a clean pattern on the grid;
* :mod:`competition.physics.realism`: the measured-looking profile (K-alpha doublet,
  peak shapes, shifts, texture, background, counting noise).
"""
