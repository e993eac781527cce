"""The contract between the parts: what every other package may rely on.

The bottom layer of the project. Both producers (the builder, :mod:`competition`,
and the grader, :mod:`scoring`) and everything above them import from here, and
this package imports from none of them (checked by import-linter in CI):

* :mod:`xrd_bravais.contract.labels`: the 14 Bravais lattices, the 230 space groups and the
  rule between them;
* :mod:`xrd_bravais.contract.tasks`: tracks and tasks (the label column and label set a
  submission is scored on), as the manifest of a competition records them;
* :mod:`xrd_bravais.contract.grid`: the 2theta grid of the patterns, typed, as stored in the
  parquet schema metadata;
* :mod:`xrd_bravais.contract.layout`: every path, file name, column and portion of a built
  competition, and the compound key;
* :mod:`xrd_bravais.contract.manifest`: reading and verifying ``manifest.json``;
* :mod:`xrd_bravais.contract.references`: the random-guess references from class counts;
* :mod:`xrd_bravais.contract.io`: atomic writes and hashing;
* :mod:`xrd_bravais.contract.console`: the one-line error of every command.

Everything here needs only the standard library, numpy and pyarrow.
"""
