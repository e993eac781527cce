"""The 1D-CNN's network, built from the estimator's parameters, and its input.

The network is described in :mod:`baselines.lattice.cnn1d`; this module builds it
(torch is imported only here and in :mod:`baselines.lattice.cnn_training`).
"""

from __future__ import annotations

import numpy as np

from xrd_bravais.contract.grid import Grid, require_grid

# The stem convolution reads the pattern max-pooled by STEM_POOL grid points, through
# STEM_KERNEL taps (0.36 degrees on the default grid: a peak and its near neighbours).
STEM_POOL = 2
STEM_KERNEL = 9


def network(n_features: int, n_classes: int, pool: int, channels: tuple[int, ...],
             kernel_size: int, dropout: float, axis: str = "two-theta",
             grid: Grid | None = None, stem: int = 0, smooth: int = 0,
             background: int = 0):  # type: ignore[no-untyped-def]  # fmt: skip
    """The ``torch.nn.Sequential`` network of the estimator's parameters."""
    import torch.nn as nn

    # With a stem, the pattern is first read at 2 grid points (0.04 degrees on the
    # default grid, finer than a 0.1-degree peak) and pooled the rest of the way after.
    first = STEM_POOL if stem else pool
    layers: list[nn.Module]
    if axis == "log-d":
        from baselines.lattice.log_d import LogD

        layers = [LogD(require_grid(grid, "axis='log-d'"), -(-n_features // first))]
    else:
        layers = [nn.MaxPool1d(first, ceil_mode=True)] if first > 1 else []
    if smooth or background:
        # In the network, so that a saved model cleans a measured pattern as it
        # cleaned the (augmented) training rows.
        from baselines.lattice.cleaning import Cleaning

        layers.insert(0, Cleaning(smooth, background))
    previous = 1
    if stem:
        layers += [
            nn.Conv1d(1, stem, STEM_KERNEL, padding=STEM_KERNEL // 2, bias=False),
            nn.BatchNorm1d(stem),
            nn.ReLU(),
        ]
        if pool // STEM_POOL > 1:
            layers.append(nn.MaxPool1d(pool // STEM_POOL, ceil_mode=True))
        previous = stem
    for width in channels:
        layers += [
            nn.Conv1d(previous, width, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
        ]
        previous = width
    layers += [
        nn.AdaptiveAvgPool1d(16),
        nn.Flatten(),
        nn.Linear(16 * previous, 128),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, n_classes),
    ]
    return nn.Sequential(*layers)



def pick_device(requested: str) -> str:
    """``cuda`` or ``cpu``: ``auto`` takes CUDA where torch sees a device."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA device")
    return requested


def prepare(X: np.ndarray) -> np.ndarray:
    """Patterns as a (rows, 1 channel, points) float32 array."""
    return np.ascontiguousarray(X[:, None, :], dtype=np.float32)


def forward(model, x):  # type: ignore[no-untyped-def]
    """The network on square-rooted intensities (after any augmentation of the raw ones)."""
    return model(x.clamp(min=0).sqrt())


