"""A small conditional U-Net for 2 x Nt x T CSI (real/imaginary channels).

``UNet(z_t [B, 2, H, W], cond [B, C, H, W], t [B], extra [B, E] | None) -> [B, 2, H, W]``:
the condition (e.g. the autoencoder's estimate) is concatenated to the input; the time step
and optional extra scalars (uplink SNR, symbol count) drive every residual block through a
learned embedding. Levels halve the resolution; channels ``base * mults[l]``. Parameters sit
mostly in the deep, low-resolution levels and the CPU time in the first one, so a
1M-parameter net stays cheap per sample; ``patch=2`` runs the first level at half resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.n1, self.c1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, c_out)
        self.n2, self.c2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(self.act(self.n1(x))) + self.emb(e)[:, :, None, None]
        h = self.c2(self.act(self.n2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    def __init__(
        self,
        in_ch: int = 2,
        cond_ch: int = 2,
        out_ch: int = 2,
        base: int = 16,
        mults: tuple[int, ...] | list[int] = (1, 2, 4, 8),
        extra: int = 0,
        emb: int = 64,
        patch: int = 1,
    ) -> None:
        super().__init__()
        if patch not in (1, 2):
            raise ValueError(f"patch must be 1 or 2, got {patch}")
        self.emb_dim, self.extra = emb, int(extra)
        self.embed = nn.Sequential(nn.Linear(emb + self.extra, emb * 2), nn.SiLU(), nn.Linear(emb * 2, emb))
        chans = [base * m for m in mults]
        # patch 2: the first level works at half resolution (2x2 patches in, transposed conv
        # out), which quarters the cost of the level that dominates it
        self.inp = (
            nn.Conv2d(in_ch + cond_ch, chans[0], 3, padding=1)
            if patch == 1
            else nn.Conv2d(in_ch + cond_ch, chans[0], 2, stride=2)
        )
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = chans[0]
        for i, ch in enumerate(chans):
            self.down.append(ResBlock(c, ch, emb))
            c = ch
            last = i == len(chans) - 1
            self.pool.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, emb)
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            self.up.append(ResBlock(c + ch, ch, emb))
            c = ch
            self.unpool.append(
                nn.Identity()
                if i == 0
                else nn.Sequential(nn.Upsample(scale_factor=2.0), nn.Conv2d(ch, chans[i - 1], 3, padding=1))
            )
            if i > 0:
                c = chans[i - 1]
        last = (
            nn.Conv2d(c, out_ch, 3, padding=1) if patch == 1 else nn.ConvTranspose2d(c, out_ch, 2, stride=2)
        )
        self.out = nn.Sequential(_norm(c), nn.SiLU(), last)
        nn.init.zeros_(last.weight)  # the net starts as "no correction" (a refiner: x0 = h + 0)
        nn.init.zeros_(last.bias)
        self.levels = len(chans)

    def forward(
        self, z: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        e = timestep_embedding(t, self.emb_dim)
        if self.extra:
            if extra is None or extra.shape != (z.shape[0], self.extra):
                raise ValueError(f"this U-Net takes {self.extra} extra conditioning scalars per sample")
            e = torch.cat([e, extra.to(e.dtype)], 1)
        e = self.embed(e)
        h = self.inp(torch.cat([z, cond], 1))
        skips = []
        for blk, pool in zip(self.down, self.pool, strict=True):
            h = blk(h, e)
            skips.append(h)
            h = pool(h)
        h = self.mid(h, e)
        for blk, unpool in zip(self.up, self.unpool, strict=True):
            h = blk(torch.cat([h, skips.pop()], 1), e)
            h = unpool(h)
        return self.out(h)
