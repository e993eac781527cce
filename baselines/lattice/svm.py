"""Support-vector machine with an RBF kernel on pooled, standardised patterns.

A kernel compares whole patterns, so it needs them smooth and on a common scale:
square-rooted, pooled to 0.2-degree bins and standardised per column. The peaks'
relations (:class:`baselines.lattice.features.PeakRelations`: the ratios of every
pair of peaks' ``sin^2(theta)`` and their additive triples) join the pooled bins
before the scaling, so the kernel also compares what an indexing program reads.
"""

from __future__ import annotations

from typing import Any, Final

from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from baselines.lattice.features import IntensityTransform, PeakRelations, Pool
from xrd_bravais.contract.grid import Grid

PARAM_GRID: Final[dict[str, list[Any]]] = {
    "model__C": [1.0, 10.0, 100.0],
    "model__gamma": ["scale", 3e-4],
}
"""Search space of :func:`make_svm`."""


def make_svm(grid: Grid, random_state: int = 0, relations: bool = True) -> Pipeline:
    """A seeded RBF-SVM pipeline with class weights and probability estimates off.

    ``grid`` places the columns in 2theta for the peaks' relations; without
    ``relations`` the kernel sees the pooled pattern alone, as the ``svm``
    baseline did before it read them.

    Examples
    --------
    >>> from xrd_bravais.contract.grid import Grid
    >>> svm = make_svm(Grid(5.0, 90.0, 0.02, 4251))
    >>> svm.named_steps["model"].kernel, [name for name, _ in svm.steps]
    ('rbf', ['features', 'scale', 'model'])
    """
    pooled = Pipeline([("intensity", IntensityTransform("sqrt")), ("pool", Pool(10))])
    parts: list[tuple[str, Any]] = [("pooled", pooled)]
    if relations:
        parts.append(("relations", PeakRelations(grid=grid)))
    model = SVC(kernel="rbf", C=10.0, class_weight="balanced", random_state=random_state)
    return Pipeline([("features", FeatureUnion(parts)), ("scale", StandardScaler()),
                     ("model", model)])  # fmt: skip
