"""CsiNet-class building blocks (torch): conv + FC encoder, FC + RefineNet decoder.

Shapes: networks take the real layout ``x: float32 [B, 2, Nt, T]`` (``shared.transforms``)
of NORMALIZED angular-delay CSI and give back the same layout. Sized for CPU training
(~1 ms per sample forward+backward on one core): the two FC layers hold most parameters
(``2 * Nt * T * latent`` each), the convolutions are narrow.
"""

from __future__ import annotations

import torch
from torch import nn


class ActQuant(nn.Module):
    """Fake int8 quantization of an activation for quantization-aware fine-tuning (QAT).

    Per-tensor affine int8 (as ONNX Runtime's static QDQ activations) with min/max tracked by an
    exponential moving average while training; straight-through gradient. Identity unless
    ``enabled``: export disables it, and ONNX Runtime then calibrates its own int8 ranges on the
    plain graph; the fine-tuned network has learned to tolerate that rounding.
    """

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        self.enabled = False
        self.momentum = momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if self.training:
            with torch.no_grad():
                lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
                if not bool(self.seen):
                    self.lo.copy_(lo), self.hi.copy_(hi), self.seen.fill_(True)
                else:
                    self.lo.lerp_(lo, self.momentum), self.hi.lerp_(hi, self.momentum)
        scale = float(torch.clamp((self.hi - self.lo) / 255.0, min=1e-8))
        zp = int(torch.clamp(torch.round(-128 - self.lo / scale), -128, 127))
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)


def conv_bn(
    c_in: int, c_out: int, k: int | tuple[int, int], act: bool = True, qat: bool = False
) -> nn.Sequential:
    """Conv (no bias, "same" padding; ``k`` an odd size or an odd ``(kh, kw)`` pair) + batch
    norm (+ LeakyReLU). With ``qat`` an :class:`ActQuant` follows the
    batch norm and the activation, the tensors ONNX Runtime quantizes; parameter names do not
    change (conv stays ``.0``, batch norm ``.1``), so plain checkpoints load into QAT models."""
    kh, kw = (k, k) if isinstance(k, int) else k
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, (kh, kw), padding=(kh // 2, kw // 2), bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if qat:
        layers.append(ActQuant())
    if act:
        layers.append(nn.LeakyReLU(0.3))
        if qat:
            layers.append(ActQuant())
    return nn.Sequential(*layers)


def set_qat(module: nn.Module, enabled: bool) -> int:
    """Enable/disable every :class:`ActQuant` under ``module``; returns how many there are."""
    n = 0
    for m in module.modules():
        if isinstance(m, ActQuant):
            m.enabled = enabled
            n += 1
    return n


class Encoder(nn.Module):
    """``x [B, 2, Nt, T] -> z [B, latent]``: a few convolutions, then one FC layer.

    ``out_act``: ``"tanh"`` (digital families: latent in [-1, 1] for the uniform quantizer)
    or ``"none"`` (analog: the wire normalizes power).

    ``compand``: exponent ``p`` of a fixed signed power law applied to the input first,
    ``sign(x) ((|x| + eps)^p - eps^p)``. Angular-delay CSI is very sparse (a few entries hold
    almost all the energy: max/median ~2000 here), more dynamic range than an int8 activation
    holds; ``p = 0.5`` halves it in dB, so the int8 encoder keeps the weak entries. It runs in
    fp32 at the top of the ONNX graph (before the first QuantizeLinear). ``p = 1``: identity.

    ``compand_scope``: ``"all"`` feeds the companded input to both the convolutions and the
    residual path into the FC layer; ``"conv"`` compands only the convolution branch and keeps
    the residual path linear (the FC then sees the raw CSI, as without companding; export keeps
    that Add and the FC in fp32, so only the convolutions, ~98% of the multiply-adds, run int8).

    ``qat``: add :class:`ActQuant` fake quantizers on the convolution branch (input and every
    conv/activation output) for quantization-aware fine-tuning; off (identity) unless enabled.
    """

    EPS = 1e-3

    def __init__(
        self,
        latent: int,
        nt: int = 32,
        taps: int = 32,
        width: int = 16,
        out_act: str = "tanh",
        compand: float = 1.0,
        compand_scope: str = "all",
        qat: bool = False,
    ) -> None:
        super().__init__()
        if not 0 < compand <= 1:
            raise ValueError(f"compand exponent must be in (0, 1], got {compand}")
        if compand_scope not in ("all", "conv"):
            raise ValueError(f"compand_scope must be 'all' or 'conv', got {compand_scope!r}")
        self.compand = float(compand)
        self.compand_scope = compand_scope
        self.in_quant = ActQuant() if qat else nn.Identity()
        self.features = nn.Sequential(
            conv_bn(2, width, 5, qat=qat),
            conv_bn(width, width, 3, qat=qat),
            conv_bn(width, 2, 3, qat=qat),
        )
        self.fc = nn.Linear(2 * nt * taps, latent)
        if out_act not in ("tanh", "none"):
            raise ValueError(f"out_act must be 'tanh' or 'none', got {out_act!r}")
        self.out_act = nn.Tanh() if out_act == "tanh" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = x
        if self.compand != 1.0:
            p, eps = self.compand, self.EPS
            xc = torch.sign(x) * ((torch.abs(x) + eps) ** p - eps**p)
        # residual: keeps the (raw or companded) CSI visible to the FC layer
        h = self.features(self.in_quant(xc)) + (x if self.compand_scope == "conv" else xc)
        return self.out_act(self.fc(torch.flatten(h, 1)))


class SnrScale(nn.Module):
    """ADJSCC-style channel attention: pooled features + SNR -> per-channel gains in (0, 2)."""

    def __init__(self, channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels + 1, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, h: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        pooled = h.mean(dim=(2, 3))
        g = 2.0 * torch.sigmoid(self.mlp(torch.cat([pooled, snr[:, None]], 1)))
        return h * g[:, :, None, None]


class RefineBlock(nn.Module):
    """RefineNet: three convolutions (2 -> width/2 -> width -> 2) with a residual connection;
    kernels 7x7 -> 5x5 -> 3x3 as in CsiNet+ (default), 3x3 throughout as in the original CsiNet."""

    def __init__(
        self,
        width: int = 16,
        snr_adaptive: bool = False,
        out_act: bool = True,
        kernels: tuple[int, int, int] = (7, 5, 3),
    ) -> None:
        super().__init__()
        k1, k2, k3 = (int(k) for k in kernels)
        self.c1 = conv_bn(2, width // 2, k1)
        self.c2 = conv_bn(width // 2, width, k2)
        self.c3 = conv_bn(width, 2, k3, act=False)
        self.scale = SnrScale(width) if snr_adaptive else None
        # out_act False: identity after the residual add (pre-activation style), so a block
        # whose last batch norm starts at zero is the identity (see models/common/warmstart.py)
        self.act = nn.LeakyReLU(0.3) if out_act else nn.Identity()

    def forward(self, x: torch.Tensor, snr: torch.Tensor | None = None) -> torch.Tensor:
        h = self.c2(self.c1(x))
        if self.scale is not None:
            h = self.scale(h, snr)
        return self.act(self.c3(h) + x)


class Decoder(nn.Module):
    """``latent [B, latent] (+ snr_db [B]) -> x_hat [B, 2, Nt, T]``.

    With ``snr_adaptive`` (analog JSCC) the normalized SNR ``snr_db / 20`` is appended to the
    FC input and drives an :class:`SnrScale` in every refine block; without it ``snr_db`` is
    ignored.
    """

    def __init__(
        self,
        latent: int,
        nt: int = 32,
        taps: int = 32,
        width: int = 16,
        blocks: int = 2,
        snr_adaptive: bool = False,
        refine_out_act: bool = True,
        kernels: tuple[int, int, int] = (7, 5, 3),
    ) -> None:
        super().__init__()
        if len(kernels) != 3 or any(int(k) < 1 or int(k) % 2 == 0 for k in kernels):
            raise ValueError(f"refine kernels must be three odd sizes, got {list(kernels)}")
        self.nt, self.taps, self.snr_adaptive = nt, taps, snr_adaptive
        self.fc = nn.Linear(latent + (1 if snr_adaptive else 0), 2 * nt * taps)
        self.blocks = nn.ModuleList(
            RefineBlock(width, snr_adaptive, refine_out_act, tuple(kernels)) for _ in range(blocks)
        )
        self.out = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        snr = None
        if self.snr_adaptive:
            if snr_db is None:
                raise ValueError("this decoder is SNR-adaptive and needs snr_db")
            snr = snr_db.to(z.dtype).reshape(-1) / 20.0
            z = torch.cat([z, snr[:, None]], 1)
        h = self.fc(z).reshape(-1, 2, self.nt, self.taps)
        for blk in self.blocks:
            h = blk(h, snr)
        return self.out(h) + h


def nmse_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||x - x_hat||^2 / ||x||^2`` (linear NMSE), the metric trained for."""
    err = ((x - x_hat) ** 2).flatten(1).sum(1)
    return (err / torch.clamp((x**2).flatten(1).sum(1), min=1e-12)).mean()
