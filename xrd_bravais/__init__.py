"""xrd-bravais: the project's own namespace, and the ``xrd-bravais`` command.

* :mod:`xrd_bravais.contract`: the bottom layer, what every part relies on (labels,
  tasks, grid, layout, manifest, references, atomic io, the one-line error);
* :mod:`xrd_bravais.platforms`: exports to Kaggle and Codabench;
* :mod:`xrd_bravais.web`: the competition's own website (``xrd-bravais serve``);
* :mod:`xrd_bravais.cli`: the composition root, the one place that registers every
  subcommand.

This file imports nothing, so importing the contract stays cheap.
"""
