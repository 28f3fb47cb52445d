"""Trainable variable-rate scalar quantizer with a thermometer code (paper 000, Sec. III-A/B).

Boundaries (eq. 13): ``b^(1)`` free, ``b^(k) = b^(1) + sum_{l=2..k} max(0, beta^(l))``, so they
stay ordered whatever the parameter values; ``N (2^Bmax - 1)`` parameters (336 for N=48,
Bmax=3). The encoder's features are not squashed (the encoder ends with LayerNorm + linear:
output std about 0.5 at initialization); boundaries start evenly spaced over [-span, span],
span = 1 (the 1-bit boundary b^(4) at 0), and move with training.

Forward value: exactly the +-1/0 thermometer vector the BS rebuilds from the bit stream
(:func:`shared.thermometer.thermometer_from_levels`), so training sees what deployment
sees. Backward: the surrogate of eq. (11), ``tanh(z - b)`` at the used boundaries bracketing
``z`` (one or two), every other entry a constant. The decoder consumes ``z(s) = 1^T ell``
(eq. 15) divided by ``K = 2^Bmax - 1`` (a fixed scale: values in [-1, 1]).
"""

from __future__ import annotations

import torch
from torch import nn

from shared.thermometer import BMAX


def surrogate_thermometer(
    z: torch.Tensor, boundaries: torch.Tensor, bits: torch.Tensor, bmax: int = BMAX
) -> tuple[torch.Tensor, torch.Tensor]:
    """``z [B, N]``, ``boundaries [N, K]``, ``bits [N]`` (ints in 1..bmax) -> (thermometer
    ``[B, N, K]`` with the eq. (11) gradient, levels ``int64 [B, N]``)."""
    bits = torch.as_tensor(bits, device=z.device, dtype=torch.long)
    alpha = (2 ** (bmax - bits))[None, :, None]  # [1, N, 1]
    k = torch.arange(1, 2**bmax, device=z.device)[None, None, :]  # 1-based boundary index
    used = (k % alpha) == 0
    diff = z[:, :, None] - boundaries[None]
    # compare, not sign(diff): bit-identical to the numpy twin whatever the denormal mode
    lv = ((z[:, :, None] > boundaries[None]) & used).sum(-1, keepdim=True)  # [B, N, 1]
    hard = torch.where(k <= lv * alpha, 1.0, torch.where(k >= (lv + 1) * alpha, -1.0, 0.0))
    # the last exceeded and the first not-exceeded used boundary: where the sign flips
    critical = used & ((k == lv * alpha) | (k == (lv + 1) * alpha))
    t = torch.tanh(diff)
    thermo = hard.to(z.dtype) + critical * (t - t.detach())  # value: exactly `hard`
    return thermo, lv[..., 0]


class ThermometerQuantizer(nn.Module):
    """``forward(z [B, N], bits [N]) -> (zs [B, N], thermometer [B, N, K])``."""

    def __init__(self, n_features: int = 48, bmax: int = BMAX, span: float = 1.0) -> None:
        super().__init__()
        self.n_features, self.bmax = n_features, bmax
        k = 2**bmax - 1
        self.b1 = nn.Parameter(torch.full((n_features, 1), -span))
        self.beta = nn.Parameter(torch.full((n_features, k - 1), 2 * span / (k - 1)))

    def boundaries(self) -> torch.Tensor:
        """``[N, K]``, non-decreasing along K by construction."""
        return torch.cat([self.b1, self.b1 + torch.cumsum(torch.relu(self.beta), 1)], 1)

    def levels(self, z: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """``int64 [B, N]``: what the UE sends (no gradient)."""
        with torch.no_grad():
            return surrogate_thermometer(z, self.boundaries(), bits, self.bmax)[1]

    def forward(self, z: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        thermo, _ = surrogate_thermometer(z, self.boundaries(), bits, self.bmax)
        return thermo.sum(-1) / thermo.shape[-1], thermo
