"""The reference models of the lattice task, each a scikit-learn estimator or pipeline.

* :mod:`baselines.lattice.features`: reusable transformers (intensity transform,
  pooling, peak features, smoothing, background subtraction);
* :mod:`baselines.lattice.random_guess`, :mod:`~baselines.lattice.forest`,
  :mod:`~baselines.lattice.svm`, :mod:`~baselines.lattice.boosting`,
  :mod:`~baselines.lattice.cnn1d`: the models;
* :mod:`baselines.lattice.blend`: a soft vote and a log-linear pool of fitted models;
* :mod:`baselines.lattice.augment`, :mod:`baselines.lattice.log_d`: realism copies
  and the ln d axis.
"""
