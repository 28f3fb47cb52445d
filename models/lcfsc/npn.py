"""Noise purified network (NPN): refines the UE's least-squares channel estimate.

A small U-Net over the padded H ``[real, imag, valid, SNR/20]`` on an 8 x 8 grid (every MIMO
size up to 8 x 8 in one model), whose skip connections pass through subspace attention (SSA,
after NBNet): the encoder and decoder features of one scale propose ``K`` basis vectors over
the spatial positions, and the encoder feature is projected onto their span
``Y = X1 V^T (V V^T)^-1 V`` before it is concatenated (Gram-Schmidt on V, same span), which
keeps the signal part and drops what lies outside the learned subspace (the noise). The output
is a residual on ``H_LS``.
"""

from __future__ import annotations

import torch
from torch import nn

from models.lcfsc import mimo_torch as mt


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ELU())


class SubspaceAttention(nn.Module):
    def __init__(self, ch: int, k: int) -> None:
        super().__init__()
        self.basis = nn.Sequential(_conv(2 * ch, ch), nn.Conv2d(ch, k, 1))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x1.shape
        v = self.basis(torch.cat([x1, x2], 1)).flatten(2)  # [B, K, N]
        # Orthonormalise the basis (Gram-Schmidt, unrolled over K): Q^T Q projects onto the same
        # span as V^T (V V^T)^-1 V, and exports to ONNX, which has no matrix inverse.
        qs: list[torch.Tensor] = []
        for i in range(v.shape[1]):
            u = v[:, i : i + 1]
            for q in qs:
                u = u - (u * q).sum(-1, keepdim=True) * q
            qs.append(u / u.norm(dim=-1, keepdim=True).clamp_min(1e-6))
        q = torch.cat(qs, 1)
        x = x1.flatten(2)  # [B, C, N]
        return (x @ q.transpose(1, 2) @ q).view(b, c, h, w)


class NPN(nn.Module):
    def __init__(self, ch: int = 32, k: int = 8) -> None:
        super().__init__()
        self.e1 = nn.Sequential(_conv(4, ch), _conv(ch, ch))
        self.e2 = nn.Sequential(_conv(ch, 2 * ch, 2), _conv(2 * ch, 2 * ch))
        self.e3 = nn.Sequential(_conv(2 * ch, 2 * ch, 2), _conv(2 * ch, 2 * ch))
        self.u2 = nn.ConvTranspose2d(2 * ch, 2 * ch, 2, stride=2)
        self.s2 = SubspaceAttention(2 * ch, k)
        self.d2 = _conv(4 * ch, 2 * ch)
        self.u1 = nn.ConvTranspose2d(2 * ch, ch, 2, stride=2)
        self.s1 = SubspaceAttention(ch, k)
        self.d1 = nn.Sequential(_conv(2 * ch, ch), nn.Conv2d(ch, 2, 3, padding=1))

    def forward_padded(self, hp: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """``hp [B, 3, 8, 8]`` (from :func:`mt.pad_h` of ``H_LS``) -> refined ``[B, 2, 8, 8]``
        (zero outside the valid block)."""
        x = torch.cat([hp, (snr_db / 20.0)[:, None, None, None].expand(-1, 1, 8, 8)], 1)
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        u = self.u2(c)
        d = self.d2(torch.cat([self.s2(b, u), u], 1))
        u = self.u1(d)
        out = self.d1(torch.cat([self.s1(a, u), u], 1))
        return (hp[:, :2] + out) * hp[:, 2:3]

    def forward(self, h_ls: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """Complex ``[B, Nr, Nt]`` -> complex ``[B, Nr, Nt]``."""
        nr, nt = h_ls.shape[1:]
        r = self.forward_padded(mt.pad_h(h_ls), snr_db)[:, :, :nr, :nt]
        return torch.complex(r[:, 0], r[:, 1])
