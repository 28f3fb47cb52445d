"""Training targets and deterministic DDIM sampling with an x0-predicting network.

Residual diffusion (RDDM / RD-JSCC): with a coarse estimate ``h`` of ``x0`` and ``r = h - x0``,

    z_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) (lam r + eps),   lam = sqrt(abar_N / (1 - abar_N)),

so ``z_N = sqrt(abar_N) h + sqrt(1 - abar_N) eps``: sampling starts from the estimate, not from
noise. Gaussian diffusion is the special case ``lam = 0`` (start: noise at ``t = N``).
DDIM with ``sigma = 0`` from an x0 prediction: ``e = (z_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)``,
``z_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) e``; the last step returns the x0 prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from models.diffusion.schedule import Schedule

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z_t, t [B]) -> x0


def residual_lambda(sched: Schedule, start: int) -> float:
    a = float(sched.abar[start])
    return (a / max(1 - a, 1e-12)) ** 0.5


def forward_noise(
    sched: Schedule,
    x0: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    h: torch.Tensor | None = None,
    start: int | None = None,
) -> torch.Tensor:
    """``z_t`` for per-sample ``t`` [B]; residual when ``h`` (the coarse estimate) is given."""
    a = sched.at(t).to(x0.device).view(-1, *([1] * (x0.dim() - 1)))
    noise = eps
    if h is not None:
        lam = residual_lambda(sched, sched.T if start is None else start)
        noise = lam * (h - x0) + eps
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def initial_state(sched: Schedule, start: int, eps: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
    """``z_N``: ``sqrt(abar_N) h + sqrt(1 - abar_N) eps`` (residual) or ``eps`` scaled likewise
    around zero (Gaussian)."""
    a = float(sched.abar[start])
    base = torch.zeros_like(eps) if h is None else h
    return a**0.5 * base + (1 - a) ** 0.5 * eps


@torch.no_grad()
def ddim_x0(denoise: Denoise, z: torch.Tensor, sched: Schedule, times: list[int]) -> torch.Tensor:
    """Deterministic DDIM from ``z`` at ``times[0]`` through ``times`` (descending, > 0) to 0."""
    b = z.shape[0]
    x0 = z
    for i, t in enumerate(times):
        x0 = denoise(z, torch.full((b,), t, dtype=torch.long, device=z.device))
        s = times[i + 1] if i + 1 < len(times) else 0
        if s == 0:
            break
        at, as_ = float(sched.abar[t]), float(sched.abar[s])
        e = (z - at**0.5 * x0) / max(1 - at, 1e-12) ** 0.5
        z = as_**0.5 * x0 + (1 - as_) ** 0.5 * e
    return x0


def loss_weight(sched: Schedule, t: torch.Tensor, w_min: float, w_max: float) -> torch.Tensor:
    """``clip(abar_t / (1 - abar_t), w_min, w_max)`` per sample."""
    return sched.snr(t).clamp(min=w_min, max=w_max)
