"""Exports of a built competition to the platforms classes already use.

* :mod:`xrd_bravais.platforms.kaggle`: the files a host uploads for a Kaggle community competition;
* :mod:`xrd_bravais.platforms.codabench`: a Codabench competition bundle, whose scoring program
  (:mod:`xrd_bravais.platforms.codabench_score`) is our grader, vendored for the platform's image;
* :mod:`xrd_bravais.platforms.common`: the public files every export carries and the leak checks
  (the starter kit's) that run before anything is written.
"""
