"""Exports of a built competition to the platforms classes already use.

* :mod:`platforms.kaggle`: the files a host uploads for a Kaggle community competition;
* :mod:`platforms.codabench`: a Codabench competition bundle, whose scoring program
  (:mod:`platforms.codabench_score`) is our grader, vendored for the platform's image;
* :mod:`platforms.common`: the public files every export carries and the leak checks
  (the starter kit's) that run before anything is written.
"""
