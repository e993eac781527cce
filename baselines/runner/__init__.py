"""Running the baselines on a competition and reporting them.

* :mod:`baselines.runner.run`: search, refit, predict, write, validate, record, save;
* :mod:`baselines.runner.report`: the Markdown report with its figures;
* :mod:`baselines.runner.methods`: the course's methods (learning and validation
  curves, PCA and k-means).
"""
