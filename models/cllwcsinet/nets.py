"""CLLWCsiNet and its two baselines (CsiNet, CRNet), each with a convolutional or an FC latent.

Shapes: ``x [B, 2, Nt, T]`` normalized angular-delay CSI (real layout) in, the same out; the
encoder ends at the codeword ``z [B, L]`` (``L = 2 Nt T / cr``) and the decoder starts from it,
so the wire (analog symbols or quantized bits) sits between them.

The convolutional latent (all three architectures, as in the paper): the 2 x Nt x T tensor is
reshaped to ``2 Nt`` channels of 1 x T (one channel per (re/im, angle) pair, the delay axis
as width) and (1, 7) convolutions along the delay axis change the channel count; the codeword
is ``C x 1 x T`` with ``C = 2 Nt / cr`` (CR 4 / 8 / 16: 16 / 8 / 4 channels of 32 for Nt =
T = 32). The FC latent is one linear layer each way (``2 Nt T x L``), the original designs.

Where the paper is silent (docs/cllwcsinet.md): LeakyReLU(0.3) and batch norm after every
convolution but the codeword's and the output's; the output is linear (the CsiNet/CRNet
sigmoid assumed data scaled into [0, 1]; csilink's normalized CSI is zero-mean).
"""

from __future__ import annotations

import torch
from torch import nn

from models.common.nets import conv_bn


def _signed_power(x: torch.Tensor, p: float, eps: float = 1e-3) -> torch.Tensor:
    """``sign(x) ((|x| + eps)^p - eps^p)``: the input companding of ``models.common.nets.Encoder``
    (keeps the sparse CSI's weak entries inside one int8 scale; identity for ``p = 1``)."""
    if p == 1.0:
        return x
    return torch.sign(x) * ((torch.abs(x) + eps) ** p - eps**p)


class MultiRes(nn.Module):
    """Parallel factorized branches ``(1, k) -> (k, 1)`` for each ``k`` in ``kernels``, concatenated,
    fused by a 1 x 1 convolution back to ``c`` channels, plus the input (residual), LeakyReLU.
    The CLLWCsiNet encoder head and its RefineNet blocks (the paper's "multi-resolution")."""

    def __init__(self, c: int = 2, width: int = 8, kernels: tuple[int, ...] = (7, 5, 3)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(conv_bn(c, width, (1, k)), conv_bn(width, width, (k, 1))) for k in kernels
        )
        self.fuse = conv_bn(width * len(kernels), c, 1, act=False)
        self.act = nn.LeakyReLU(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fuse(torch.cat([b(x) for b in self.branches], 1)) + x)


class CRBlock(nn.Module):
    """CRNet's decoder block: a 3x3 -> 1x9 -> 9x1 path and a 1x5 -> 5x1 path (7 channels each),
    concatenated, 1x1 to 2 channels, residual, LeakyReLU."""

    def __init__(self, width: int = 7) -> None:
        super().__init__()
        self.path1 = nn.Sequential(
            conv_bn(2, width, 3), conv_bn(width, width, (1, 9)), conv_bn(width, width, (9, 1), act=False)
        )
        self.path2 = nn.Sequential(conv_bn(2, width, (1, 5)), conv_bn(width, width, (5, 1), act=False))
        self.fuse = nn.Sequential(nn.LeakyReLU(0.3), conv_bn(2 * width, 2, 1, act=False))
        self.act = nn.LeakyReLU(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fuse(torch.cat([self.path1(x), self.path2(x)], 1)) + x)


class CsiNetRefine(nn.Module):
    """CsiNet's RefineNet block: 3x3 convolutions 2 -> 8 -> 16 -> 2, residual, LeakyReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(2, 8, 3), conv_bn(8, 16, 3), conv_bn(16, 2, 3, act=False))
        self.act = nn.LeakyReLU(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


def _chain(chans: list[int], k: int, last_plain: bool) -> nn.Sequential:
    """(1, k) convolutions through ``chans``; the last one without batch norm and activation
    (a plain conv with bias) when ``last_plain``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(chans, chans[1:], strict=False)):
        last = i == len(chans) - 2
        if last and last_plain:
            layers.append(nn.Conv2d(a, b, (1, k), padding=(0, k // 2)))
        else:
            layers.append(conv_bn(a, b, (1, k)))
    return nn.Sequential(*layers)


class Denoiser(nn.Module):
    """The subtraction denoiser on the received codeword: ``s - g(s)``, ``g`` a few (1, 7)
    convolutions that estimate the noise (DNNNet's noise-extraction idea, convolutional)."""

    def __init__(self, c: int, width: int, layers: int = 3, k: int = 7) -> None:
        super().__init__()
        self.g = _chain([c] + [width] * (layers - 1) + [c], k, last_plain=True)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s - self.g(s)


class Encoder(nn.Module):
    """``x [B, 2, Nt, T] -> z [B, L]`` for ``arch`` in cllw / csinet / crnet and ``latent`` conv / fc."""

    def __init__(
        self,
        arch: str,
        latent: str,
        cr: int,
        nt: int = 32,
        taps: int = 32,
        chans: list[int] | None = None,
        head_width: int = 8,
        kernel: int = 7,
        compand: float = 1.0,
    ) -> None:
        super().__init__()
        self.nt, self.taps, self.compand = nt, taps, float(compand)
        self.latent_kind = latent
        n = 2 * nt * taps
        if arch == "cllw":
            self.head: nn.Module = MultiRes(2, head_width)
        elif arch == "csinet":
            self.head = conv_bn(2, 2, 3)
        elif arch == "crnet":
            self.head = _CRHead()
        else:
            raise ValueError(f"arch must be cllw, csinet or crnet, got {arch!r}")
        c_cw = 2 * nt // cr
        if latent == "conv":
            path = list(chans) if chans else [2 * nt, c_cw]
            if path[0] != 2 * nt or path[-1] != c_cw:
                raise ValueError(f"latent channels must run from {2 * nt} to {c_cw} at CR {cr}, got {path}")
            self.latent: nn.Module = _chain(path, kernel, last_plain=True)
        elif latent == "fc":
            self.latent = nn.Linear(n, n // cr)
        else:
            raise ValueError(f"latent must be conv or fc, got {latent!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(_signed_power(x, self.compand))
        b = h.shape[0]
        if self.latent_kind == "fc":
            return self.latent(h.reshape(b, -1))
        return self.latent(h.reshape(b, 2 * self.nt, 1, self.taps)).reshape(b, -1)


class _CRHead(nn.Module):
    """CRNet's encoder front: (3x3 -> 1x9 -> 9x1) and 3x3, concatenated, 1x1 to 2 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.path1 = nn.Sequential(conv_bn(2, 2, 3), conv_bn(2, 2, (1, 9)), conv_bn(2, 2, (9, 1), act=False))
        self.path2 = conv_bn(2, 2, 3, act=False)
        self.fuse = nn.Sequential(nn.LeakyReLU(0.3), conv_bn(4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.path1(x), self.path2(x)], 1))


class Decoder(nn.Module):
    """``z [B, L] (+ snr_db, ignored: these decoders are SNR-agnostic) -> x_hat [B, 2, Nt, T]``."""

    def __init__(
        self,
        arch: str,
        latent: str,
        cr: int,
        nt: int = 32,
        taps: int = 32,
        chans: list[int] | None = None,
        kernel: int = 7,
        denoise_width: int = 0,
        refine_width: int = 8,
        refine_blocks: int = 2,
    ) -> None:
        super().__init__()
        self.nt, self.taps, self.latent_kind = nt, taps, latent
        n = 2 * nt * taps
        self.c_cw = 2 * nt // cr
        # the denoiser works on the codeword's conv layout (C x 1 x T); for an FC latent too
        self.denoise: nn.Module = (
            Denoiser(self.c_cw, denoise_width, k=kernel) if denoise_width > 0 else nn.Identity()
        )
        if latent == "conv":
            path = list(reversed(chans)) if chans else [self.c_cw, 2 * nt]
            # expansion mirrors the encoder; its last conv is linear (the CSI is signed)
            self.expand: nn.Module = _chain(path, kernel, last_plain=True)
        else:
            self.expand = nn.Linear(n // cr, n)
        if arch == "cllw":
            blocks: list[nn.Module] = [MultiRes(2, refine_width) for _ in range(refine_blocks)]
        elif arch == "csinet":
            blocks = [CsiNetRefine() for _ in range(refine_blocks)]
        elif arch == "crnet":
            blocks = [conv_bn(2, 2, 5), *[CRBlock() for _ in range(refine_blocks)]]
        else:
            raise ValueError(f"arch must be cllw, csinet or crnet, got {arch!r}")
        self.refine = nn.Sequential(*blocks)
        self.out = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        b = z.shape[0]
        s = self.denoise(z.reshape(b, self.c_cw, 1, self.taps))
        h = self.expand(s.reshape(b, -1) if self.latent_kind == "fc" else s)
        h = self.refine(h.reshape(b, 2, self.nt, self.taps))
        return self.out(h) + h
