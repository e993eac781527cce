"""Random forest on pooled, square-rooted patterns plus peak features.

The course's first model. Pooling 4,251 points to 426 (0.2 degrees a bin, the
maximum kept) makes each feature robust to the small peak shifts that separate
two structures of the same lattice; the peak features and the peaks' relations
add the indexing quantities (see :mod:`baselines.lattice.features`).
``feature_importances_`` over the pooled columns shows which angles the forest
looks at.
"""

from __future__ import annotations

from typing import Any, Final

from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from baselines.lattice.features import IntensityTransform, PeakFeatures, PeakRelations, Pool
from xrd_bravais.contract.grid import Grid

PARAM_GRID: Final[dict[str, list[Any]]] = {
    "model__max_features": ["sqrt", 0.05],
    "model__min_samples_leaf": [1, 2],
    "features__pooled__pool__factor": [5, 10],
}
"""Search space of :func:`make_forest` (keys in the pipeline's parameter names)."""


def pattern_features(grid: Grid, pool_factor: int = 10, n_peaks: int = 12,
                     relations: bool = True) -> FeatureUnion:  # fmt: skip
    """Pooled sqrt intensities beside peak features: the input of the tree models.

    ``grid`` places the columns in 2theta for the peak features. With
    ``relations`` (the default), the peaks' pair ratios and additive triples
    (:class:`baselines.lattice.features.PeakRelations`, 226 columns) follow;
    ``relations=False`` gives the columns alone that come before them.

    Examples
    --------
    >>> from xrd_bravais.contract.grid import Grid
    >>> pattern_features(Grid(5.0, 90.0, 0.02, 4251)).get_params()["pooled__pool__factor"]
    10
    """
    pooled = Pipeline([("intensity", IntensityTransform("sqrt")), ("pool", Pool(pool_factor))])
    parts = [("pooled", pooled), ("peaks", PeakFeatures(n_peaks=n_peaks, grid=grid))]
    if relations:
        parts.append(("relations", PeakRelations(grid=grid)))
    return FeatureUnion(parts)


def make_forest(grid: Grid, random_state: int = 0, n_jobs: int | None = None,
                relations: bool = True) -> Pipeline:  # fmt: skip
    """A seeded random forest pipeline (300 trees, balanced class weights) for ``grid``.

    ``relations`` adds the peaks' pair ratios and additive triples
    (:func:`pattern_features`; the default, as the ``random-forest`` baseline does).

    Examples
    --------
    >>> from xrd_bravais.contract.grid import Grid
    >>> make_forest(Grid(5.0, 90.0, 0.02, 4251)).named_steps["model"].n_estimators
    300
    """
    model = RandomForestClassifier(
        n_estimators=300,
        class_weight="balanced",
        n_jobs=n_jobs,
        random_state=random_state,
    )
    return Pipeline([("features", pattern_features(grid, relations=relations)),
                     ("model", model)])  # fmt: skip
