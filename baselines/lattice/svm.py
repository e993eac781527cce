"""Support-vector machine with an RBF kernel on pooled, standardised patterns.

A kernel compares whole patterns, so it needs them smooth and on a common scale:
square-rooted, pooled to 0.2-degree bins and standardised per column.
"""

from __future__ import annotations

from typing import Any, Final

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from baselines.lattice.features import IntensityTransform, Pool

PARAM_GRID: Final[dict[str, list[Any]]] = {
    "model__C": [1.0, 10.0, 100.0],
    "model__gamma": ["scale", 3e-4],
}
"""Search space of :func:`make_svm`."""


def make_svm(random_state: int = 0) -> Pipeline:
    """A seeded RBF-SVM pipeline with class weights and probability estimates off.

    Examples
    --------
    >>> make_svm().named_steps["model"].kernel
    'rbf'
    """
    model = SVC(kernel="rbf", C=10.0, class_weight="balanced", random_state=random_state)
    return Pipeline([
        ("intensity", IntensityTransform("sqrt")),
        ("pool", Pool(10)),
        ("scale", StandardScaler()),
        ("model", model),
    ])  # fmt: skip
