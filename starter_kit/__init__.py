"""What students receive with the public files: README, notebook and example script.

The kit's files are package data beside this module; :mod:`starter_kit.kit`
fills the README in from a competition and zips everything after checking it
for answer-key content.
"""
