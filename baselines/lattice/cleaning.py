"""Smoothing and background removal as a fixed torch layer, the CNN's first.

What ``Smooth(9) -> SubtractBackground(50)`` (:mod:`baselines.lattice.features`)
does in front of the scikit-learn baselines, inside the network: a saved model
then cleans a measured pattern exactly as it cleaned the training batches (after
their augmentation), and nothing has to be remembered at prediction time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def snip(v: torch.Tensor, half_width: int) -> torch.Tensor:
    """SNIP background of each row of ``v`` (rows, channels, points), as ``SubtractBackground``.

    For widths ``p = 1 .. half_width`` every point becomes the smaller of itself
    and the mean of its neighbours ``p`` points away (Ryan et al., *Nucl. Instrum.
    Meth. B* 34, 396, 1988).
    """
    v = v.clone()
    for p in range(1, min(half_width, (v.shape[-1] - 1) // 2) + 1):
        middle = 0.5 * (v[..., : -2 * p] + v[..., 2 * p :])
        v[..., p:-p] = middle.minimum(v[..., p:-p])
    return v


class Cleaning(nn.Module):
    """Savitzky-Golay smoothing, then SNIP background removal, on square-rooted patterns.

    The input and output are square roots of intensities (what the network reads);
    the smoothing and the subtraction act on the intensities, as the scikit-learn
    transformers do, and each row is scaled to maximum 1 again. No weights.

    Parameters
    ----------
    smooth : int
        Odd window (grid points) of a quadratic Savitzky-Golay filter; 0 for none.
    background : int
        Widest SNIP window (grid points); 0 for none. The background is estimated on
        the pattern averaged over pairs of points, with half the window (a
        background is smooth; a quarter of the cost), and interpolated back.

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 1, 401)
    >>> pattern = 0.2 + 0.1 * x + torch.exp(-0.5 * ((x - 0.5) / 0.005) ** 2)
    >>> out = Cleaning(9, 20)(pattern.sqrt().view(1, 1, -1))
    >>> bool(out[0, 0, 0] < 0.05 and abs(out.max() - 1) < 1e-6)
    True
    """

    def __init__(self, smooth: int, background: int) -> None:
        super().__init__()
        self.smooth = smooth
        self.background = background
        self.taps: list[float] = []
        if smooth:
            from scipy.signal import savgol_coeffs

            self.taps = savgol_coeffs(smooth, 2).tolist()

    def extra_repr(self) -> str:
        """The settings, as ``print(model)`` shows them."""
        return f"smooth={self.smooth}, background={self.background}"

    def forward(self, root: torch.Tensor) -> torch.Tensor:
        """Clean ``(rows, channels, points)`` square-rooted patterns; same shape out."""
        x = root.square()
        if self.taps:
            # Shifted sums: a one-channel conv1d is several times slower on a CPU.
            n, half = x.shape[-1], len(self.taps) // 2
            padded = F.pad(x, (half, half), mode="replicate")
            x = sum((w * padded[..., i : i + n] for i, w in enumerate(self.taps)),
                    torch.zeros_like(x))  # fmt: skip
        x = x.clamp(min=0)
        if self.background:
            with torch.no_grad():  # a fixed estimate: no gradient flows through it
                coarse = F.avg_pool1d(x, 2, ceil_mode=True).sqrt()
                floor = snip(coarse, max(self.background // 2, 1)).square()
                floor = F.interpolate(floor, size=x.shape[-1], mode="linear")
            x = (x - floor).clamp(min=0)
        return (x / x.amax(dim=2, keepdim=True).clamp(min=1e-6)).sqrt()
