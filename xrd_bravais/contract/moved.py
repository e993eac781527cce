"""Where modules moved, so that pickles written before a move still load.

A saved model (``model.pkl``) and the build's result cache hold pickles, which
name the module of every class they contain. :func:`load_pickle` reads them with
the modules' current names (:data:`MOVED`); nothing else changes.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Final

MOVED: Final = {
    "contract": "xrd_bravais.contract",
    "platforms": "xrd_bravais.platforms",
    "website": "xrd_bravais.web",
    "competition.sources": "competition.sources.catalog",
    "competition.reader": "competition.sources.reader",
    "competition.structures": "competition.sources.structures",
    "competition.measured": "competition.sources.measured",
    "competition.diffraction": "competition.physics.diffraction",
    "competition.patterns": "competition.physics.patterns",
    "competition.realism": "competition.physics.realism",
    "competition.labels": "competition.lattice.labels",
    "competition.pipeline": "competition.lattice.worker",
    "competition.cluster": "competition.lattice.cluster",
    "competition.splits": "competition.lattice.splits",
    "competition.outliers": "competition.lattice.outliers",
    "competition.build": "competition.lattice.build",
    "competition.summary": "competition.lattice.summary",
    "competition.aggregates": "competition.aggregates.draw",
    "baselines.random_guess": "baselines.lattice.random_guess",
    "baselines.forest": "baselines.lattice.forest",
    "baselines.svm": "baselines.lattice.svm",
    "baselines.boosting": "baselines.lattice.boosting",
    "baselines.cnn1d": "baselines.lattice.cnn1d",
    "baselines.blend": "baselines.lattice.blend",
    "baselines.features": "baselines.lattice.features",
    "baselines.log_d": "baselines.lattice.log_d",
    "baselines.augment": "baselines.lattice.augment",
    "baselines.aggregates": "baselines.aggregates.models",
}
"""Old module -> new module, for every module whose classes a pickle may name.
A submodule of a moved package moves with it (``contract.grid`` ->
``xrd_bravais.contract.grid``)."""


def current_module(name: str) -> str:
    """The module's name today (``contract.grid`` -> ``xrd_bravais.contract.grid``).

    Examples
    --------
    >>> current_module("baselines.cnn1d"), current_module("numpy")
    ('baselines.lattice.cnn1d', 'numpy')
    """
    if name in MOVED:
        return MOVED[name]
    top, _, rest = name.partition(".")
    if rest and top in MOVED:
        return f"{MOVED[top]}.{rest}"
    return name


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(current_module(module), name)


def load_pickle(data: bytes) -> Any:
    """``pickle.loads`` that finds classes under their modules' current names.

    Only load pickles you made: unpickling runs code.
    """
    return _Unpickler(io.BytesIO(data)).load()
