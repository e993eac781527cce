"""Powder patterns resampled onto an axis evenly spaced in ln d, as a fixed torch layer.

On a 2theta axis a larger cell moves each reflection by a different amount. On
``ln d`` (``= ln(lambda / 2) - ln sin(theta)``) a cell scaled by ``1 + e`` moves
every reflection by the same ``ln(1 + e)``: the size of a cell becomes a shift,
which a convolution sees the same wherever it happens, and the ratios of
d-spacings that tell the lattices apart become fixed distances.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xrd_bravais.contract.grid import Grid


def log_d_positions(grid: Grid, n_out: int, oversample: int = 16) -> np.ndarray:
    """Fractional column indices of ``n_out * oversample`` points evenly spaced in ln d.

    They run from the grid's first positive angle to its last, evenly spaced in
    ``ln sin(theta)`` (and so, reversed, in ``ln d``).
    """
    two_theta = grid.two_theta()
    lowest = two_theta[two_theta > 0][0]  # ln sin(0) is -inf
    u = np.linspace(np.log(np.sin(np.radians(lowest) / 2)),
                    np.log(np.sin(np.radians(grid.two_theta_max) / 2)),
                    n_out * oversample)  # fmt: skip
    angle = 2 * np.degrees(np.arcsin(np.exp(u)))
    return np.clip((angle - grid.two_theta_min) / grid.step, 0, grid.n_points - 1)


class LogD(nn.Module):
    """Resample ``(rows, channels, grid points)`` onto ``n_out`` points evenly spaced in ln d.

    Each output point is the largest value of the linearly interpolated pattern
    over its bin of ``oversample`` samples: where the new axis is coarser than the
    grid (high angles) no peak falls between points, and where it is finer (low
    angles) the pattern is interpolated.

    Parameters
    ----------
    grid : Grid
        Where the input columns lie in 2theta.
    n_out : int
        Points of the resampled pattern.
    oversample : int, default=16
        Samples of the interpolated pattern per output point.
    """

    def __init__(self, grid: Grid, n_out: int, oversample: int = 16) -> None:
        super().__init__()
        position = torch.as_tensor(log_d_positions(grid, n_out, oversample))
        # Fixed by the grid, which the checkpoint keeps: plain tensors rather than
        # buffers, so the state dict (and its checkpoints) carries only weights.
        self.low = position.floor().long().clamp(max=grid.n_points - 2)
        self.weight = (position - self.low).float()
        self.oversample = oversample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The resampled patterns, ``(rows, channels, n_out)``."""
        if self.low.device != x.device:
            self.low, self.weight = self.low.to(x.device), self.weight.to(x.device)
        weight = self.weight.to(x.dtype)
        value = x[..., self.low] * (1 - weight) + x[..., self.low + 1] * weight
        return F.max_pool1d(value, self.oversample)
