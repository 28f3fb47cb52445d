"""MS-SSIM for 64 x 64 images (torch, differentiable; the training loss).

The standard 5-scale MS-SSIM with an 11 x 11 window needs images of at least 161 pixels a side
(the libraries assert it), so small images use 3 scales with a 7 x 7 Gaussian window
(sigma 1.5) and the first three standard scale weights renormalised; the numpy metric in
:mod:`shared.metrics` uses the same definition.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

WEIGHTS = (0.0448, 0.2856, 0.3001)
C1, C2 = 0.01**2, 0.03**2


def _window(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = x.shape[1]
    w = win.expand(c, 1, -1, -1)
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    cs = (2 * sxy + C2) / (sxx + syy + C2)
    ssim = (2 * mu_x * mu_y + C1) / (mu_x**2 + mu_y**2 + C1) * cs
    return ssim.flatten(1).mean(1), cs.flatten(1).mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM ``[B]`` of images in [0, 1], ``[B, 3, H, W]``."""
    win = _window().to(x.device)
    w = torch.tensor(WEIGHTS, device=x.device)
    w = w / w.sum()
    vals = []
    for i in range(len(WEIGHTS)):
        ssim, cs = _ssim_cs(x, y, win)
        vals.append(ssim if i == len(WEIGHTS) - 1 else cs)
        if i < len(WEIGHTS) - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    v = torch.stack(vals, 1).clamp_min(1e-6)  # negative cs would break the power
    return torch.prod(v**w, 1)
