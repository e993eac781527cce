"""Every ``Examples`` section of the packages' docstrings runs and prints what it shows.

The examples are what a reader copies first, so a wrong one (a number computed by
hand, a class's module after a move) misleads more than a missing one.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest
from test_docs import PACKAGES

REPO = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    """Dotted names of the packages' modules whose source holds an example."""
    names = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf-8"):
                names.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return names


MODULES = _modules()


def test_examples_are_found() -> None:
    # Guards the walk itself: modules known to hold examples are among those run.
    assert {"competition.sources.cif_block", "baselines.lattice.blend"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
