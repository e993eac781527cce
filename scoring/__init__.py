"""Validate, score and rank competition submissions.

The modules run in the order of grading::

    submission (validate, no labels) -> metrics -> grade (answer key) -> leaderboard -> render

This package imports without pymatgen, torch or scikit-learn: students install
it to check their ``submission.csv`` before they submit. Its labels come from
:mod:`xrd_bravais.contract.labels` through :mod:`xrd_bravais.contract.tasks`, as the
competition's manifest records them.
"""

from scoring.grade import GRADER_VERSION, grade
from scoring.submission import SubmissionError, validate_submission

__all__ = ["GRADER_VERSION", "SubmissionError", "grade", "validate_submission"]
