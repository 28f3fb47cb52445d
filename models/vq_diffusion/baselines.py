"""The 003 paper's baselines and reference predictors, next to the codec they are compared with.

* :class:`SiAE` (family ``si-baseline``): CsiNet or CRNet with an FC latent of ``latent``
  reals squashed by tanh and quantized uniformly to ``bits`` bits each (6 in the paper), the
  decoder concatenating the BS's uplink CSI ``y`` after its FC layer (the paper's "side
  information concatenated in the decoder"). ``latent * bits`` bits per report.
* :class:`Predictor` (family ``si-reference``): no bitstream at all: a U-Net regressor (the
  codec's own U-Net, one pass) from the unquantized inputs (``x`` and/or ``y``) to the target.
  Trained at the same budget, it bounds what any codec can reach from those inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.cllwcsinet.nets import CRBlock, CsiNetRefine, _CRHead, _signed_power
from models.common.nets import conv_bn
from models.common.wire_torch import uniform_ste
from models.diffusion.unet import UNet


class SiEncoder(nn.Module):
    """``x [B, 2, Nt, T] -> tanh(FC(head(x))) [B, L]`` in [-1, 1] (the wire quantizes it)."""

    def __init__(self, arch: str, latent: int, nt: int, taps: int, compand: float) -> None:
        super().__init__()
        self.compand = float(compand)
        self.head: nn.Module = conv_bn(2, 2, 3) if arch == "csinet" else _CRHead()
        self.fc = nn.Linear(2 * nt * taps, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(_signed_power(x, self.compand))
        return torch.tanh(self.fc(h.reshape(h.shape[0], -1)))


class SiDecoder(nn.Module):
    """``decoder(q [B, L], side [B, 2, Nt, T] | None) -> [B, 2, Nt, T]``: FC back to the CSI
    layout, the uplink CSI concatenated and fused by two convolutions (residual), then the
    architecture's refinement blocks."""

    def __init__(self, arch: str, latent: int, nt: int, taps: int, side_info: bool, blocks: int = 2) -> None:
        super().__init__()
        self.nt, self.taps, self.side = nt, taps, bool(side_info)
        self.fc = nn.Linear(latent, 2 * nt * taps)
        self.fuse = (
            nn.Sequential(conv_bn(4, 16, 3), conv_bn(16, 2, 3, act=False)) if self.side else None
        )
        if arch == "csinet":
            self.refine = nn.Sequential(*[CsiNetRefine() for _ in range(blocks)])
        else:
            self.refine = nn.Sequential(conv_bn(2, 2, 5), *[CRBlock() for _ in range(blocks)])
        self.out = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, q: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(q).reshape(q.shape[0], 2, self.nt, self.taps)
        if self.fuse is not None:
            if side is None:
                raise ValueError("this decoder is conditioned on the uplink CSI and needs it")
            h = h + self.fuse(torch.cat([h, side], 1))
        h = self.refine(h)
        return self.out(h) + h


class SiAE(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        nt, taps, latent = int(cfg["nt"]), int(cfg["taps"]), int(cfg["latent"])
        self.encoder = SiEncoder(cfg["arch"], latent, nt, taps, float(cfg["compand"]))
        self.decoder = SiDecoder(cfg["arch"], latent, nt, taps, bool(cfg["side_info"]), int(cfg["blocks"]))
        self.bits = int(cfg["bits"])

    def reconstruct(self, x: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        # the wire's uniform quantizer over [-1, 1], straight-through in training
        return self.decoder(uniform_ste(self.encoder(x), self.bits), side)


class Predictor(nn.Module):
    """``forward(inputs [B, 2k, Nt, T]) -> [B, 2, Nt, T]``: one pass of a U-Net (time step 0)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        k = len(str(cfg["inputs"]))
        self.unet = UNet(in_ch=0, cond_ch=2 * k, base=int(cfg["base"]), mults=list(cfg["mults"]),
                         patch=int(cfg["patch"]))
        # the last layer starts at zero (a refiner's start); a predictor starts from its input
        self.skip = "x" in str(cfg["inputs"])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        b = inputs.shape[0]
        empty = inputs[:, :0]
        out = self.unet(empty, inputs, torch.zeros(b, dtype=torch.long, device=inputs.device))
        return out + inputs[:, :2] if self.skip else out
