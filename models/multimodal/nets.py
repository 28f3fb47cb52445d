"""Multi-modal variable-rate CSI codec (paper 000): Swin encoder/decoder, thermometer quantizer,
sensor feature extractors ``g_E`` and the fusion refiner ``R``.

Shapes: CSI is the real spatial-frequency layout ``x float32 [B, 2, Nt=32, Ns=576]`` (re/im,
48 RBs x 12 subcarriers), norm-normalized by the caller. Patch = 2 antennas x 12 subcarriers
(one RB), 48 reals -> a 16 x 48 token map; three 2 x 2 merges -> 2 x 6 = 12 tokens of
``Np = 4`` -> ``N = 48`` features (token-major: feature ``i`` = channel ``i % 4`` of token
``i // 4``, tokens row-major on the 2 x 6 map).

Fusion (stage 2, "transfer learning"): ``g_E`` maps the sensor data to tokens of width ``Ne``;
``R`` refines the 12 CSI tokens with them, either at the bottleneck (``Ne = Np = 4``, tokens
of ``z(s)``) or after the decoder's first projection (``Ne = 32``). Without sensor data the BS
decodes in wireless-only mode (``R`` skipped), as the paper's two-mode BS.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from models.common.swin import PatchExpand, PatchMerge, SwinStage
from models.multimodal.quantizer import ThermometerQuantizer
from shared.thermometer import BMAX, allocate_bits

NT, NRB, SC = 32, 48, 12  # antennas, resource blocks, subcarriers per RB
PH, PW = 2, 12  # CSI patch: antennas x subcarriers


def patchify(x: torch.Tensor, ph: int = PH, pw: int = PW) -> torch.Tensor:
    """``[B, C, H, W] -> [B, H / ph, W / pw, C ph pw]`` (channels-last token map)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // ph, ph, w // pw, pw).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, h // ph, w // pw, c * ph * pw)


def unpatchify(t: torch.Tensor, c: int = 2, ph: int = PH, pw: int = PW) -> torch.Tensor:
    """Inverse of :func:`patchify`."""
    b, hh, ww, _ = t.shape
    t = t.reshape(b, hh, ww, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return t.reshape(b, c, hh * ph, ww * pw)


class SwinTrunk(nn.Module):
    """Stages of Swin blocks with a 2 x 2 patch merge between consecutive stages:
    ``[B, h, w, dims[0]] -> [B, h / 2^(S-1), w / 2^(S-1), dims[-1]]``."""

    def __init__(self, dims: tuple[int, ...], depths: tuple[int, ...], heads: tuple[int, ...],
                 h: int, w: int, window: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (d, n, nh) in enumerate(zip(dims, depths, heads, strict=True)):
            if i:
                layers.append(PatchMerge(dims[i - 1], d))
                h, w = h // 2, w // 2
            layers.append(SwinStage(d, n, nh, h, w, window))
        self.layers = nn.Sequential(*layers)
        self.out_hw = (h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SwinEncoder(nn.Module):
    """``E``: ``x [B, 2, 32, 576] -> z [B, 48]`` (patch embed, 4 stages, LN, linear to Np)."""

    def __init__(self, dims: tuple[int, ...] = (24, 32, 32, 32), depths: tuple[int, ...] = (2, 2, 2, 2),
                 heads: tuple[int, ...] = (3, 4, 4, 4), np_: int = 4, window: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(2 * PH * PW, dims[0])
        self.embed_norm = nn.LayerNorm(dims[0])
        self.trunk = SwinTrunk(dims, depths, heads, NT // PH, NRB, window)
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], np_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk(self.embed_norm(self.embed(patchify(x))))
        return self.head(self.norm(t)).flatten(1)


class SwinDecoder(nn.Module):
    """``C``: ``zs [B, 48] -> x_hat [B, 2, 32, 576]``, the encoder mirrored (patch expands).
    Split in :meth:`project` (the "first projection" Np -> dims[0], where Ne = 32 fusion
    happens) and :meth:`body`."""

    def __init__(self, dims: tuple[int, ...] = (32, 32, 32, 24), depths: tuple[int, ...] = (2, 2, 2, 2),
                 heads: tuple[int, ...] = (4, 4, 4, 3), np_: int = 4, window: int = 4) -> None:
        super().__init__()
        self.np_ = np_
        self.hw = (NT // PH // 2 ** (len(dims) - 1), NRB // 2 ** (len(dims) - 1))
        self.proj = nn.Linear(np_, dims[0])
        layers: list[nn.Module] = []
        h, w = self.hw
        for i, (d, n, nh) in enumerate(zip(dims, depths, heads, strict=True)):
            if i:
                layers.append(PatchExpand(dims[i - 1], d))
                h, w = 2 * h, 2 * w
            layers.append(SwinStage(d, n, nh, h, w, window))
        self.layers = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dims[-1])
        self.out = nn.Linear(dims[-1], 2 * PH * PW)

    @property
    def n_tokens(self) -> int:
        return self.hw[0] * self.hw[1]

    def tokens(self, zs: torch.Tensor) -> torch.Tensor:
        """``[B, N] -> [B, 12, Np]`` (token-major feature order)."""
        return zs.reshape(zs.shape[0], self.n_tokens, self.np_)

    def project(self, tok: torch.Tensor) -> torch.Tensor:
        """``[B, 12, Np] -> [B, 12, dims[0]]``."""
        return self.proj(tok)

    def body(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, 12, dims[0]] -> [B, 2, 32, 576]``."""
        t = self.layers(h.reshape(h.shape[0], *self.hw, h.shape[-1]))
        return unpatchify(self.out(self.norm(t)))

    def forward(self, zs: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(self.tokens(zs)))


class UplinkExtractor(nn.Module):
    """``g_E`` for uplink CSI ``[B, 2, 32, 576] -> [B, 72, Ne]``.

    [choice] The paper gives only M = 72 Ne and ~0.5M parameters. Here: patch 8 antennas x
    8 subcarriers (128 reals) -> 4 x 72 map, a Swin stage, one 2 x 2 merge -> 2 x 36 = 72
    tokens, a Swin stage, LN, linear to Ne (~0.1M parameters, CPU-sized)."""

    n_tokens = 72

    def __init__(self, ne: int, dims: tuple[int, ...] = (32, 48), depths: tuple[int, ...] = (2, 2),
                 heads: tuple[int, ...] = (4, 6), window: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(2 * 8 * 8, dims[0])
        self.embed_norm = nn.LayerNorm(dims[0])
        self.trunk = SwinTrunk(dims, depths, heads, NT // 8, NRB * SC // 8, window)
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], ne)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        t = self.trunk(self.embed_norm(self.embed(patchify(y, 8, 8))))
        return self.head(self.norm(t)).flatten(1, 2)


class ImageExtractor(nn.Module):
    """``g_E`` for RGB images ``uint8 [B, 3, 192, 256] -> [B, 64, Ne]``.

    [deviation, CPU cost] The paper embeds 3 x 4 patches (64 x 64 map, three merges, widths
    72..128). Here the patch is 6 x 8 (a 3 x 4 patch of the 2x-downsampled image, but with a
    learned linear over all 144 pixels values instead of a fixed average) -> 32 x 32 map, two
    merges -> 8 x 8 = 64 tokens, widths (24, 32, 48)."""

    n_tokens = 64

    def __init__(self, ne: int, dims: tuple[int, ...] = (24, 32, 48), depths: tuple[int, ...] = (2, 2, 2),
                 heads: tuple[int, ...] = (3, 4, 6), window: int = 4) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dims[0], (6, 8), stride=(6, 8))
        self.embed_norm = nn.LayerNorm(dims[0])
        self.trunk = SwinTrunk(dims, depths, heads, 32, 32, window)
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], ne)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img.to(torch.float32) / 127.5 - 1.0  # uint8 -> [-1, 1]
        t = self.trunk(self.embed_norm(self.embed(x).permute(0, 2, 3, 1)))
        return self.head(self.norm(t)).flatten(1, 2)


class BoxExtractor(nn.Module):
    """``g_E`` for the camera read by a detector: the UE car's box (``shared.camera``, 8 numbers:
    visible, centroid, bounding box, size) ``float32 [B, 8] -> [B, 8, Ne]``.

    [csilink, not in the paper] The learned image extractor has to find the car in 192 x 256
    pixels from the reconstruction loss alone; at this project's budget it does not
    (docs/multimodal.md). A detector's output is what a deployed BS camera would give, and the
    image holds little else about the channel in a static scene (the UE's position: the
    ``position`` oracle of benchmarks/mm_fusion_ceiling.py gains no more). The features are
    standardized with the training rows' statistics, kept as buffers."""

    n_tokens = 8

    def __init__(self, ne: int, width: int = 128) -> None:
        super().__init__()
        from shared.camera import N_BOX_FEATURES

        self.ne = ne
        self.register_buffer("mean", torch.zeros(N_BOX_FEATURES))
        self.register_buffer("std", torch.ones(N_BOX_FEATURES))
        self.net = nn.Sequential(
            nn.Linear(N_BOX_FEATURES, width), nn.GELU(), nn.Linear(width, width), nn.GELU(),
            nn.Linear(width, self.n_tokens * ne),
        )

    def set_standardization(self, feats: torch.Tensor) -> None:
        """Per-feature mean and std of the training rows' box features."""
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp_min(1e-6))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        z = (feats.to(self.mean.dtype) - self.mean) / self.std
        return self.net(z).view(len(feats), self.n_tokens, self.ne)


class FusionRefiner(nn.Module):
    """``R`` (eqs. 22-26): ``Z = [Z_s, Z_D] + B_pos``, two post-LN transformer layers (MLP ratio
    4), ``Z_r = Z_s + Z2 W_r`` where ``W_r`` maps the ``12 + M / Ne`` tokens to the 12 CSI
    tokens. Parameters: 1,844 (Ne=4) / 29,116 (Ne=32) with 72 uplink tokens (Table IV).

    ``W_r`` starts at zero, so stage 2 starts exactly at the stage-1 codec."""

    def __init__(self, ne: int, n_sensor: int, n_csi: int = 12, heads: int | None = None,
                 layers: int = 2) -> None:
        super().__init__()
        heads = heads or max(1, ne // 8)  # [choice] head width 8 (Ne=32: 4 heads), 1 head at Ne=4
        n = n_csi + n_sensor
        self.pos = nn.Parameter(torch.zeros(1, n, ne))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(ne, heads, 4 * ne, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=False)
            for _ in range(layers)
        )
        self.w_r = nn.Linear(n, n_csi)
        nn.init.zeros_(self.w_r.weight)
        nn.init.zeros_(self.w_r.bias)

    def forward(self, zs: torch.Tensor, zd: torch.Tensor) -> torch.Tensor:
        """``zs [B, 12, Ne]``, ``zd [B, M / Ne, Ne]`` -> ``[B, 12, Ne]``."""
        z = torch.cat([zs, zd], 1) + self.pos
        for layer in self.layers:
            z = layer(z)
        return zs + self.w_r(z.transpose(1, 2)).transpose(1, 2)


def as_bits(bits: int | np.ndarray | torch.Tensor, n_features: int = 48, bmax: int = BMAX) -> torch.Tensor:
    """A total budget (int) or per-feature bits -> ``int64 [N]`` tensor."""
    if isinstance(bits, int | np.integer):
        bits = allocate_bits(int(bits), n_features, bmax)
    return torch.as_tensor(np.asarray(bits), dtype=torch.long)


class MultiModalCodec(nn.Module):
    """Encoder + quantizer + decoder, with an optional sensor extractor and refiner.

    ``fusion``: None, ``"image"``, ``"uplink"`` or ``"box"`` (the camera's car box); ``ne``: 4
    (fusion on ``z(s)``) or 32 (after the decoder's first projection)."""

    def __init__(self, fusion: str | None = None, ne: int = 4, bmax: int = BMAX) -> None:
        super().__init__()
        if fusion not in (None, "image", "uplink", "box"):
            raise ValueError(f"fusion must be None, 'image', 'uplink' or 'box', got {fusion!r}")
        if ne not in (4, 32):
            raise ValueError(f"ne must be 4 or 32, got {ne}")
        self.fusion, self.ne = fusion, ne
        self.encoder = SwinEncoder()
        self.quantizer = ThermometerQuantizer(48, bmax)
        self.decoder = SwinDecoder()
        self.extractor: nn.Module | None = None
        self.refiner: FusionRefiner | None = None
        if fusion is not None:
            extractors = {"image": ImageExtractor, "uplink": UplinkExtractor, "box": BoxExtractor}
            self.extractor = extractors[fusion](ne)
            self.refiner = FusionRefiner(ne, self.extractor.n_tokens, self.decoder.n_tokens)

    @property
    def n_features(self) -> int:
        return self.quantizer.n_features

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2, 32, 576] -> z [B, 48]`` (continuous features)."""
        return self.encoder(x)

    def quantize(self, z: torch.Tensor, bits: int | np.ndarray | torch.Tensor) -> torch.Tensor:
        """``z [B, 48]`` at a budget (int) or per-feature bits -> ``zs [B, 48]`` (eq. 15 / K)."""
        return self.quantizer(z, as_bits(bits, self.n_features, self.quantizer.bmax))[0]

    def extract(self, sensor: torch.Tensor) -> torch.Tensor:
        """Sensor data -> ``[B, M / Ne, Ne]`` tokens (``g_E``)."""
        if self.extractor is None:
            raise ValueError("this codec has no fusion branch")
        return self.extractor(sensor)

    def decode(self, zq: torch.Tensor, sensor: torch.Tensor | None = None,
               sensor_feats: torch.Tensor | None = None) -> torch.Tensor:
        """``zs [B, 48]`` or a thermometer ``[B, 48, K]`` -> ``x_hat [B, 2, 32, 576]``.

        No bit allocation is needed: ``z(s)`` tells each feature's resolution (eq. 21). With
        ``sensor`` (or its precomputed ``sensor_feats``) the refiner runs; without, the codec
        decodes in wireless-only mode."""
        if zq.dim() == 3:
            zq = zq.sum(-1) / zq.shape[-1]
        if sensor_feats is None and sensor is not None:
            sensor_feats = self.extract(sensor)
        fuse = self.refiner is not None and sensor_feats is not None
        tok = self.decoder.tokens(zq)
        if fuse and self.ne == self.decoder.np_:  # at the bottleneck, on z(s)
            tok = self.refiner(tok, sensor_feats)
        h = self.decoder.project(tok)
        if fuse and self.ne != self.decoder.np_:  # after the first projection
            h = self.refiner(h, sensor_feats)
        return self.decoder.body(h)

    def forward(self, x: torch.Tensor, bits: int | np.ndarray | torch.Tensor,
                sensor: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.quantize(self.encode(x), bits), sensor)


def freeze_codec(model: MultiModalCodec) -> list[str]:
    """Stage 2: freeze encoder, quantizer and decoder; only ``g_E`` and ``R`` train. Returns
    the names of the parameters left trainable. (No batch norm or dropout anywhere, so
    train/eval mode does not matter for the frozen part.)"""
    if model.extractor is None or model.refiner is None:
        raise ValueError("freeze_codec needs a codec with a fusion branch")
    for part in (model.encoder, model.quantizer, model.decoder):
        part.requires_grad_(False)
    return [n for n, p in model.named_parameters() if p.requires_grad]


def nmse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Eq. (6) per sample: ``|| x / ||x|| - x_hat / ||x_hat|| ||^2`` -> ``[B]``."""
    def unit(t: torch.Tensor) -> torch.Tensor:
        t = t.flatten(1)
        return t / torch.clamp(t.norm(dim=1, keepdim=True), min=1e-12)

    return ((unit(x) - unit(x_hat)) ** 2).sum(1)


def multi_rate_loss(
    model: MultiModalCodec, x: torch.Tensor, sensor: torch.Tensor | None = None,
    rates: tuple[int, ...] = (48, 72, 96, 120, 144), gamma: float = 2 ** (1 / 96),
    norm_rates: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor, dict[int, float]]:
    """Eq. (20): ``sum_i gamma^B_i L_i / sum_i gamma^B_i`` (normalized weights) over ``rates``,
    ``L_i`` the batch mean of eq. (6) at ``B_i`` bits. The encoder and ``g_E`` run once.
    Returns (loss, NMSE in dB per rate)."""
    z = model.encode(x)
    feats = model.extract(sensor) if sensor is not None else None
    # ``norm_rates``: the full rate set when ``rates`` is a random subset of it; the weights are
    # normalized over the full set and scaled by |full| / |subset|, so the expectation over
    # uniformly drawn subsets is the full loss
    full = tuple(norm_rates) if norm_rates is not None else tuple(rates)
    top = max(full)
    weights = [gamma ** (b - top) for b in rates]  # scaled by a constant: same ratios
    norm = sum(gamma ** (b - top) for b in full) * len(rates) / len(full)
    total = x.new_zeros(())
    per_rate: dict[int, float] = {}
    for b, w in zip(rates, weights, strict=True):
        loss_b = nmse(x, model.decode(model.quantize(z, b), sensor_feats=feats)).mean()
        total = total + w * loss_b
        per_rate[b] = 10 * math.log10(max(float(loss_b.detach()), 1e-30))
    return total / norm, per_rate
