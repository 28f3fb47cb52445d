"""The Swin JSCC transmitter (with CSI fusion masking) and the mirrored receiver decoder.

Shapes for the shipped 64 x 64 configuration: patch 2 -> 32 x 32 x 32 -> 16 x 16 x 64 ->
8 x 8 x 128 (bottleneck, one window covering the map, NI-CFMA in every second block) ->
channel modulation (SNR-adaptive, WITT's ModNet) -> 24 reals per token -> 768 complex symbols
per image: bandwidth ratio 768 / (64 * 64 * 3) = 1/16.

Token ``t`` (row-major over the 8 x 8 bottleneck) carries symbols ``12 t .. 12 t + 11``, so with
the stream-major split of :mod:`shared.mimo` it rides entirely on stream ``t // (64 / Nt)``: the
transmitter knows which stream each token will use and what that stream's SINR will be.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.common.swin import PatchExpand, PatchMerge, SwinBlock, SwinStage
from models.lcfsc import mimo_torch as mt
from models.lcfsc.mask import CfmaAttention

PRECODINGS = ("none", "svd")


@dataclass
class LcfscConfig:
    image_size: int = 64
    dims: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (2, 2, 4)
    heads: tuple[int, ...] = (2, 4, 4)
    window: int = 8
    c_out: int = 24  # reals per bottleneck token
    csi_masking: bool = True  # False: the no-masking baseline (WITT-like), CSI unused at the transmitter
    learnable_ratio: bool = True  # False with masking: the stable ratio (CFSC)
    # True: each bottleneck token also gets an embedding of the SINR of the stream it will ride
    # (from the fed-back H), so the transmitter's attention can shape content per stream; the
    # decoder has always had that input. Not in the paper: csilink's variant (docs/image_link.md).
    csi_tokens: bool = False
    # "svd": the transmitter precodes with the right singular vectors of its CSI (stream 0 on the
    # strongest eigenmode) and sends precoded pilots (DMRS) ahead of the data; the networks see the
    # streams' channel H W. "none": the paper's link, the streams go straight to the antennas.
    precoding: str = "none"
    sizes: tuple[int, ...] = (2, 4, 8)

    def __post_init__(self) -> None:
        if self.precoding not in PRECODINGS:
            raise ValueError(f"precoding must be one of {', '.join(PRECODINGS)}, got {self.precoding!r}")

    @property
    def net_csi(self) -> bool:
        """Whether the encoder network itself takes the CSI (masking or SINR tokens)."""
        return self.csi_masking or self.csi_tokens

    @property
    def uses_csi(self) -> bool:
        """Whether the transmitter needs the fed-back H (its network, or its precoder)."""
        return self.net_csi or self.precoding != "none"

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** len(self.dims)

    @property
    def n_tokens(self) -> int:
        return self.grid**2

    @property
    def n_symbols(self) -> int:
        return self.n_tokens * self.c_out // 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LcfscConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def token_streams(cfg: LcfscConfig, nt: int) -> torch.Tensor:
    """Stream index of every bottleneck token ``[D]``."""
    return torch.arange(cfg.n_tokens) // (cfg.n_tokens // nt)


class ModNet(nn.Module):
    """SNR-adaptive channel modulation (WITT): each layer scales its features by a gate computed
    from the mean feature and the SNR."""

    def __init__(self, dim: int, layers: int = 3) -> None:
        super().__init__()
        self.fc = nn.ModuleList([nn.Linear(dim, dim) for _ in range(layers)])
        self.gate = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(dim + 1, dim // 2), nn.ReLU(), nn.Linear(dim // 2, dim))
                for _ in range(layers)
            ]
        )

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """``x [B, D, C]``, ``snr_db [B]``."""
        h = x
        for fc, gate in zip(self.fc, self.gate, strict=True):
            g = torch.sigmoid(gate(torch.cat([h.mean(1), snr_db[:, None] / 20.0], -1)))
            h = fc(h) * g[:, None]
        return x + h


class CfmaBlock(nn.Module):
    """Pre-LN NI-CFMA + MLP block (the second of each pair in the bottleneck stage)."""

    def __init__(self, dim: int, heads: int, side: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CfmaAttention(dim, heads, side, side)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, ctx: dict) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), ctx)
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """Image ``[B, 3, S, S]`` in [0, 1] (+ H, SNR, mask ratio) -> real latent ``[B, 2L]``."""

    def __init__(self, cfg: LcfscConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, s = cfg.dims, cfg.image_size // 2
        self.embed = nn.Conv2d(3, d[0], 2, stride=2)
        self.embed_norm = nn.LayerNorm(d[0])
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i in range(len(d) - 1):
            self.stages.append(SwinStage(d[i], cfg.depths[i], cfg.heads[i], s, s, cfg.window))
            self.merges.append(PatchMerge(d[i], d[i + 1]))
            s //= 2
        g, top = cfg.grid, d[-1]
        self.bottleneck = nn.ModuleList(
            CfmaBlock(top, cfg.heads[-1], g)
            if (cfg.csi_masking and i % 2 == 1)
            else SwinBlock(top, cfg.heads[-1], g, g, cfg.window, shifted=False)
            for i in range(cfg.depths[-1])
        )
        self.modnet = ModNet(top)
        self.head = nn.Linear(top, cfg.c_out)
        self.csi_embed = (
            nn.Sequential(nn.Linear(1, top // 4), nn.GELU(), nn.Linear(top // 4, top))
            if cfg.csi_tokens
            else None
        )

    def forward(
        self,
        img: torch.Tensor,
        snr_db: torch.Tensor,
        h: torch.Tensor | None,
        ratio: torch.Tensor | None,
        ctx: dict | None = None,
    ) -> torch.Tensor:
        x = self.embed_norm(self.embed(img).permute(0, 2, 3, 1))
        for stage, merge in zip(self.stages, self.merges, strict=True):
            x = merge(stage(x))
        b, g = x.shape[0], self.cfg.grid
        x = x.reshape(b, g * g, -1)
        ctx = {} if ctx is None else ctx
        if self.cfg.net_csi:
            if h is None:
                raise ValueError("this transmitter uses CSI: it needs H")
            sinr = mt.stream_sinr_db(h, snr_db)  # [B, Nt]
            token_sinr = sinr[:, token_streams(self.cfg, h.shape[2])]
            ctx.update(hp=mt.pad_h(h), token_sinr=token_sinr, ratio=ratio)
            if self.csi_embed is not None:
                x = x + self.csi_embed(token_sinr[..., None] / 10.0)
        for blk in self.bottleneck:
            x = blk(x, ctx) if isinstance(blk, CfmaBlock) else blk(x.view(b, g, g, -1)).view(b, g * g, -1)
        return self.head(self.modnet(x, snr_db)).reshape(b, -1)


class Decoder(nn.Module):
    """Equalised real latent ``[B, 2L]`` + per-token SINR ``[B, D]`` (dB) + SNR -> image."""

    def __init__(self, cfg: LcfscConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dims
        self.inp = nn.Linear(cfg.c_out + 1, d[-1])
        self.modnet = ModNet(d[-1])
        g = cfg.grid
        self.bottleneck = SwinStage(d[-1], cfg.depths[-1], cfg.heads[-1], g, g, cfg.window)
        self.expands = nn.ModuleList()
        self.stages = nn.ModuleList()
        s = g
        for i in range(len(d) - 1, 0, -1):
            self.expands.append(PatchExpand(d[i], d[i - 1]))
            s *= 2
            self.stages.append(SwinStage(d[i - 1], cfg.depths[i - 1], cfg.heads[i - 1], s, s, cfg.window))
        self.out = nn.ConvTranspose2d(d[0], 3, 2, stride=2)

    def forward(self, z: torch.Tensor, token_sinr: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        b, g = z.shape[0], self.cfg.grid
        x = torch.cat([z.view(b, g * g, -1), token_sinr[..., None] / 10.0], -1)
        x = self.modnet(self.inp(x), snr_db).view(b, g, g, -1)
        x = self.bottleneck(x)
        for expand, stage in zip(self.expands, self.stages, strict=True):
            x = stage(expand(x))
        return torch.sigmoid(self.out(x.permute(0, 3, 1, 2)))
