"""Pickles written before a module moved (saved models, the build's cache) still load."""

from __future__ import annotations

import pickle

import numpy as np

from baselines.lattice.features import Pool
from competition.config import PRESETS
from xrd_bravais.contract.moved import current_module, load_pickle


def _as_before(obj: object, moves: dict[str, str]) -> bytes:
    """``obj`` pickled as the earlier layout would have named its classes."""
    data = pickle.dumps(obj, protocol=0)  # text opcodes: module names can be edited
    for new, old in moves.items():
        data = data.replace(f"c{new}\n".encode(), f"c{old}\n".encode())
    return data


def test_an_estimator_pickled_under_the_old_module_names_loads():
    grid = PRESETS["nano281"].to_grid()
    pool = Pool(4).fit(np.ones((2, 8)))
    data = _as_before({"grid": grid, "pool": pool},
                      {"xrd_bravais.contract.grid": "contract.grid",
                       "baselines.lattice.features": "baselines.features"})  # fmt: skip
    assert b"ccontract.grid\n" in data and b"cbaselines.features\n" in data
    loaded = load_pickle(data)
    assert loaded["grid"] == grid and isinstance(loaded["pool"], Pool)


def test_current_module_names():
    assert current_module("competition.pipeline") == "competition.lattice.worker"
    assert current_module("contract.layout") == "xrd_bravais.contract.layout"
    assert current_module("website.app") == "xrd_bravais.web.app"
    assert current_module("competition.config") == "competition.config"
    assert current_module("sklearn.ensemble") == "sklearn.ensemble"
