"""Validate, score and rank competition submissions.

This package must import without pymatgen or torch: students install it to check
their ``submission.csv`` before they submit. Its modules arrive with the scoring
issue; the label set it will check against is :mod:`competition.lattices`.
"""
