"""Reference models shown beside the students on the leaderboard.

The folders follow the data::

    data.py     read a competition's parquet files into arrays and its grid
    lattice/    the lattice task's models (random guess, forest, SVM, XGBoost, 1D-CNN,
                the blend) and what they share (features, augmentation, the ln d axis)
    aggregates/ the aggregates task's models
    runner/     search, refit, predict, write, record (run); the report; the course's
                methods (learning and validation curves, PCA and k-means)
    cli.py      ``xrd-bravais baselines``

Heavy dependencies (scikit-learn, xgboost, torch, matplotlib) are imported by
the modules that use them, never here.
"""
