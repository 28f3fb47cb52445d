"""VQ encoder + conditional diffusion decoder with side information (the 003 method).

* Encoder (UE, int8 ONNX): ``x [B, 2, 32, 32] -> e [B, 64 * D]``: two ResNet + downsample
  blocks to ``D x 8 x 8``, flattened as 64 vectors of dimension ``D`` (position-major, so
  ``shared.wire.VQCodec`` sees consecutive ``D``-vectors).
* Vector quantizer: a trainable codebook of ``Nv`` entries, nearest neighbour, straight-through
  gradient; ``B = 64 log2(Nv)`` bits per report. Against collapse: k-means initialization from
  encoder outputs (``warm_start``) and restart of dead codes from the batch during training.
* Decoder (BS, torch): codebook vectors -> two ResNet + upsample blocks -> ``F x 32 x 32``,
  concatenated with the BS's own uplink CSI ``y`` (side information) -> condition of an
  x0-predicting U-Net (``models.diffusion``), cosine schedule with ``T`` steps, deterministic
  DDIM from ``z_T = 0``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from models.diffusion.sampler import ddim_x0, forward_noise, loss_weight
from models.diffusion.schedule import Schedule
from models.diffusion.unet import UNet


def _signed_power(x: torch.Tensor, p: float, eps: float = 1e-3) -> torch.Tensor:
    if p == 1.0:
        return x
    return torch.sign(x) * ((torch.abs(x) + eps) ** p - eps**p)


class Res(nn.Module):
    """Two 3 x 3 convolutions with batch norm and a residual (encoder side: int8-friendly)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


class VqEncoder(nn.Module):
    def __init__(self, widths: list[int], dim: int, compand: float = 0.5) -> None:
        super().__init__()
        c1, c2 = widths
        self.compand = float(compand)
        self.net = nn.Sequential(
            nn.Conv2d(2, c1, 4, stride=2, padding=1),  # 32 -> 16
            nn.LeakyReLU(0.2),
            Res(c1),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),  # 16 -> 8
            nn.LeakyReLU(0.2),
            Res(c2),
            nn.Conv2d(c2, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.net(_signed_power(x, self.compand))  # [B, D, 8, 8]
        return e.permute(0, 2, 3, 1).reshape(e.shape[0], -1)  # 64 vectors of D, position-major


class Codebook(nn.Module):
    """``Nv x D`` codewords; ``forward(e [B, 64 D]) -> (q [B, 64 D] straight-through, idx, vq_loss)``."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.embed = nn.Parameter(torch.randn(size, dim) * 0.1)
        self.register_buffer("usage", torch.ones(size))  # EMA of assignments (dead-code restart)

    def indices(self, v: torch.Tensor) -> torch.Tensor:
        d = (v**2).sum(1, keepdim=True) - 2 * v @ self.embed.T + (self.embed**2).sum(1)
        return d.argmin(1)

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = e.shape[0]
        v = e.reshape(-1, self.dim)
        idx = self.indices(v)
        c = self.embed[idx]
        # ||sg[c] - e||^2 (commitment) + ||c - sg[e]||^2 (codebook), as the paper writes it
        vq = F.mse_loss(v, c.detach()) + F.mse_loss(c, v.detach())
        q = v + (c - v).detach()
        if self.training:
            with torch.no_grad():
                counts = torch.bincount(idx, minlength=len(self.embed)).float()
                self.usage.mul_(0.99).add_(0.01 * counts / max(len(idx), 1) * len(self.embed))
                dead = self.usage < 0.03  # used < 3% of its fair share lately: restart it
                if bool(dead.any()):
                    pick = torch.randint(len(v), (int(dead.sum()),))
                    self.embed.data[dead] = v[pick].detach()
                    self.usage[dead] = 1.0
        return q.reshape(b, -1), idx.reshape(b, -1), vq


class Up(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2.0),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(min(8, c_out), c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.GroupNorm(min(8, c_out), c_out),
            nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VqDecoder(nn.Module):
    """``decoder(q [B, 64 D], side [B, 2, 32, 32] | None) -> x0 [B, 2, 32, 32]`` by DDIM."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.dim = int(cfg["dim"])
        self.side = bool(cfg["side_info"])
        c2, c1 = list(cfg["widths"])[::-1]
        feat = int(cfg["features"])
        self.lift = nn.Sequential(
            nn.Conv2d(self.dim, c2, 1), Up(c2, c1), Up(c1, c1), nn.Conv2d(c1, feat, 3, padding=1)
        )
        self.unet = UNet(
            in_ch=2,
            cond_ch=feat + (2 if self.side else 0),
            base=int(cfg["base"]),
            mults=list(cfg["mults"]),
            patch=int(cfg["patch"]),
        )
        self.sched = Schedule.cosine(int(cfg["T"]))
        self.steps = int(cfg["steps"])

    def condition(self, q: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        b = q.shape[0]
        c = self.lift(q.reshape(b, 8, 8, self.dim).permute(0, 3, 1, 2))
        if self.side:
            if side is None:
                raise ValueError("this decoder is conditioned on the uplink CSI and needs it")
            c = torch.cat([c, side], 1)
        return c

    def sample(self, cond: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        z = torch.zeros(cond.shape[0], 2, cond.shape[2], cond.shape[3], dtype=cond.dtype, device=cond.device)
        times = self.sched.steps(int(steps or self.steps))
        return ddim_x0(lambda zt, t: self.unet(zt, cond, t), z, self.sched, times)

    def forward(self, q: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        return self.sample(self.condition(q, side))


class VqDiffusion(nn.Module):
    """The training graph: encoder -> codebook (straight-through) -> conditional diffusion."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = VqEncoder(list(cfg["widths"]), int(cfg["dim"]), float(cfg["compand"]))
        self.codebook = Codebook(int(cfg["codebook_size"]), int(cfg["dim"]))
        self.decoder = VqDecoder(cfg)

    def loss(
        self,
        x: torch.Tensor,
        side: torch.Tensor | None,
        target: torch.Tensor,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``w_t ||target - D(z_t, c, t)||^2 / ||target||^2 + eta L_vq`` at a random ``t``."""
        q, _, vq = self.codebook(self.encoder(x))
        cond = self.decoder.condition(q, side)
        sched = self.decoder.sched
        b = x.shape[0]
        if self.cfg["train_inputs"] == "sampler":
            t, z_t = self._sampler_inputs(cond, b, generator)
        else:  # the paper's: z_t = sqrt(abar_t) target + sqrt(1 - abar_t) eps
            t = torch.randint(1, sched.T + 1, (b,), generator=generator)
            eps = torch.randn(target.shape, generator=generator)
            z_t = forward_noise(sched, target, t, eps)
        x0 = self.decoder.unet(z_t, cond, t)
        w = loss_weight(sched, t, float(self.cfg["loss_w_min"]), float(self.cfg["loss_w_max"]))
        err = ((x0 - target) ** 2).flatten(1).sum(1) / (target**2).flatten(1).sum(1).clamp_min(1e-12)
        return (w * err).mean() + float(self.cfg["eta"]) * vq, x0

    @torch.no_grad()
    def _sampler_inputs(
        self, cond: torch.Tensor, b: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample at one of the BS's DDIM steps (from zeros), with the state the sampler
        itself would be in there (the current network's own trajectory, no gradient): what
        the decoder sees at inference, where a deterministic start carries no noise."""
        dec = self.decoder
        times = dec.sched.steps(dec.steps)
        c = cond.detach()
        z = torch.zeros(b, 2, c.shape[2], c.shape[3], dtype=c.dtype, device=c.device)
        states = []
        for i, t in enumerate(times):
            states.append(z)
            if i + 1 == len(times):
                break
            x0 = dec.unet(z, c, torch.full((b,), t, dtype=torch.long, device=c.device))
            at, as_ = float(dec.sched.abar[t]), float(dec.sched.abar[times[i + 1]])
            e = (z - at**0.5 * x0) / max(1 - at, 1e-12) ** 0.5
            z = as_**0.5 * x0 + (1 - as_) ** 0.5 * e
        k = torch.randint(0, len(times), (b,), generator=generator)
        z_t = torch.stack(states)[k, torch.arange(b)]
        return torch.tensor(times, dtype=torch.long)[k].to(c.device), z_t

    def reconstruct(self, x: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        q, _, _ = self.codebook(self.encoder(x))
        return self.decoder(q, side)
