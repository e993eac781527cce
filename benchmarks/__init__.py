"""Benchmarks that print the figures the issues ask for.

Run each as a module from the repository root (``python -m benchmarks.scoring``),
so that no file here shadows a package of the same name.
"""
