"""Benchmarks that print the figures the issues ask for.

Run each as a module from the repository root (``python -m benchmarks.grading_speed``),
so that no file here shadows a package of the same name.
"""
