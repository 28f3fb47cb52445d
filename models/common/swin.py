"""A small Swin transformer in plain torch: window attention with relative position bias,
shifted windows, patch merging (2 x 2 -> 1) and patch expanding (1 -> 2 x 2).

Token maps are channels-last ``[B, H, W, C]`` throughout. Every block is built for one fixed
resolution (the codec's shapes are fixed), so the shifted-window mask is a buffer computed once.

Window rule: a dimension larger than the window and divisible by it is split into windows and
shifted by ``window // 2`` in every second block; a dimension not larger than the window, or not
divisible by it, is covered whole and never shifted (Swin's own rule for small maps, extended so
the 2 x 6 bottleneck attends globally instead of padding).
"""

from __future__ import annotations

import torch
from torch import nn


def window_shape(h: int, w: int, window: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((wh, ww), (max shift h, max shift w))`` for an ``h x w`` map (rule in the module doc)."""

    def one(n: int) -> tuple[int, int]:
        if n > window and n % window == 0:
            return window, window // 2
        return n, 0

    (wh, sh), (ww, sw) = one(h), one(w)
    return (wh, ww), (sh, sw)


def _partition(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """``[B, H, W, C] -> [B, nW, wh * ww, C]`` (windows row-major)."""
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // wh) * (w // ww), wh * ww, c)


def _unpartition(x: torch.Tensor, h: int, w: int, wh: int, ww: int) -> torch.Tensor:
    b, c = x.shape[0], x.shape[-1]
    x = x.view(b, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def _relative_index(wh: int, ww: int) -> torch.Tensor:
    """``[L, L]`` index into the ``(2 wh - 1)(2 ww - 1)`` relative-position table."""
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # [2, L, L]
    return (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)


def _shift_mask(h: int, w: int, wh: int, ww: int, sh: int, sw: int) -> torch.Tensor:
    """``[nW, L, L]`` additive mask (0 / -inf-ish) keeping attention inside the regions that a
    cyclic shift glued together."""
    region = torch.zeros(h, w)
    cnt = 0
    for hs in ((0, h - wh), (h - wh, h - sh), (h - sh, h)) if sh else ((0, h),):
        for ws in ((0, w - ww), (w - ww, w - sw), (w - sw, w)) if sw else ((0, w),):
            region[hs[0] : hs[1], ws[0] : ws[1]] = cnt
            cnt += 1
    r = _partition(region[None, :, :, None], wh, ww)[0, :, :, 0]  # [nW, L]
    same = r[:, :, None] == r[:, None, :]
    return torch.where(same, 0.0, -1e4)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``wh x ww`` windows with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, wh: int, ww: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("rel_index", _relative_index(wh, ww), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x [B, nW, L, C]``; ``mask [nW, L, L]`` additive or None."""
        b, nw, n, c = x.shape
        q, k, v = self.qkv(x).view(b, nw, n, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5)
        bias = self.bias_table[self.rel_index].permute(2, 0, 1)  # [heads, L, L]
        if mask is not None:
            bias = bias + mask[:, None]  # [nW, heads, L, L]
        # explicit softmax attention: on CPU, scaled_dot_product_attention's math path spends
        # more time validating the float mask than attending over 16 tokens
        att = torch.softmax((q * self.scale) @ k.transpose(-2, -1) + bias, -1)
        return self.proj((att @ v).transpose(2, 3).reshape(b, nw, n, c))


class SwinBlock(nn.Module):
    """Pre-LN (W-MSA or SW-MSA) + MLP block for an ``h x w`` map."""

    def __init__(self, dim: int, heads: int, h: int, w: int, window: int, shifted: bool,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        (self.wh, self.ww), (sh, sw) = window_shape(h, w, window)
        self.h, self.w = h, w
        self.shift = (sh, sw) if shifted else (0, 0)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, self.wh, self.ww)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        mask = _shift_mask(h, w, self.wh, self.ww, *self.shift) if any(self.shift) else None
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.shift
        y = self.norm1(x)
        if sh or sw:
            y = torch.roll(y, (-sh, -sw), (1, 2))
        y = self.attn(_partition(y, self.wh, self.ww), self.mask)
        y = _unpartition(y, self.h, self.w, self.wh, self.ww)
        if sh or sw:
            y = torch.roll(y, (sh, sw), (1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class SwinStage(nn.Sequential):
    """``depth`` blocks alternating plain and shifted windows (the shift is dropped where the
    window covers the map)."""

    def __init__(self, dim: int, depth: int, heads: int, h: int, w: int, window: int) -> None:
        super().__init__(*[SwinBlock(dim, heads, h, w, window, shifted=i % 2 == 1) for i in range(depth)])


class PatchMerge(nn.Module):
    """``[B, H, W, C] -> [B, H/2, W/2, C_out]``: concatenate 2 x 2 neighbours, LN, linear."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)
        return self.reduce(self.norm(x))


class PatchExpand(nn.Module):
    """``[B, H, W, C] -> [B, 2H, 2W, C_out]``: linear to ``4 C_out``, spread on 2 x 2, LN (the
    mirror of :class:`PatchMerge`, as Swin-Unet)."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 4 * dim_out, bias=False)
        self.norm = nn.LayerNorm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        x = self.expand(x)
        c = x.shape[-1] // 4
        x = x.view(b, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)
        return self.norm(x)
