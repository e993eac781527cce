"""Reference models shown beside the students on the leaderboard.

Modules in the order of the data flow:

* :mod:`baselines.data`: read a competition's parquet files into arrays and its grid;
* :mod:`baselines.features`: reusable transformers (intensity transform, pooling,
  peak features in sin^2(theta));
* :mod:`baselines.random_guess`, :mod:`baselines.forest`, :mod:`baselines.svm`,
  :mod:`baselines.boosting`, :mod:`baselines.cnn1d`: the models, each a
  scikit-learn estimator or pipeline;
* :mod:`baselines.blend`: a soft vote of fitted models (the CNN with XGBoost);
* :mod:`baselines.run`: search, refit, predict, write, validate, record, save;
* :mod:`baselines.report`: the Markdown report with its figures.

Heavy dependencies (scikit-learn, xgboost, torch, matplotlib) are imported by
the modules that use them, never here.
"""
