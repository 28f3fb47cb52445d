"""Discrete noise schedules: ``abar[t]`` for ``t = 0..T`` (``abar[0] = 1``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Schedule:
    """``abar[t] = prod_{i<=t} (1 - beta_i)``, float64 ``[T + 1]``."""

    abar: torch.Tensor

    @property
    def T(self) -> int:  # noqa: N802 - the usual name
        return len(self.abar) - 1

    @classmethod
    def cosine(
        cls,
        T: int = 20,
        s: float = 0.008,
        max_beta: float = 0.999,
        span: float = 1.0,  # noqa: N803
    ) -> Schedule:
        """Nichol & Dhariwal's cosine schedule, betas clipped at ``max_beta``, over the first
        ``span`` of its range: ``span < 1`` ends at a noise level below pure noise (``span
        0.4``: ``abar_T = 0.65``), for refinement that starts from an estimate."""
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        if not 0 < span <= 1:
            raise ValueError(f"span must be in (0, 1], got {span}")

        def f(t: float) -> float:
            return math.cos((span * t / T + s) / (1 + s) * math.pi / 2) ** 2

        abar = [1.0]
        for t in range(1, T + 1):
            beta = min(1 - f(t) / f(t - 1), max_beta)
            abar.append(abar[-1] * (1 - beta))
        return cls(torch.tensor(abar, dtype=torch.float64))

    def at(self, t: torch.Tensor | int) -> torch.Tensor:
        """``abar[t]`` as float32 (``t`` int tensor of any shape)."""
        return self.abar.to(torch.float32)[torch.as_tensor(t, dtype=torch.long)]

    def snr(self, t: torch.Tensor | int) -> torch.Tensor:
        a = self.at(t)
        return a / (1 - a).clamp_min(1e-12)

    def steps(self, n: int, start: int | None = None) -> list[int]:
        """``n`` sampling times from ``start`` (default ``T``) down, evenly spaced, all > 0:
        ``steps(2) = [20, 10]`` and ``steps(20) = [20, 19, ..., 1]`` for ``T = 20``."""
        start = self.T if start is None else int(start)
        if not 1 <= n <= start <= self.T:
            raise ValueError(f"need 1 <= steps ({n}) <= start ({start}) <= T ({self.T})")
        return [round(start - i * start / n) for i in range(n)]
