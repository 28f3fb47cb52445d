"""Analog-JSCC CsiNet: encoder -> unit-power symbols -> AWGN -> SNR-adaptive decoder."""

from __future__ import annotations

import torch
from torch import nn

from models.common.nets import Decoder, Encoder
from models.common.wire_torch import analog_awgn, power_normalize


class JsccAE(nn.Module):
    """``x [B, 2, Nt, T] -> x_hat`` through ``symbols`` complex channel uses over AWGN.

    ``encoder(x) -> z [B, 2*symbols]`` (linear; the wire normalizes power) is the UE's ONNX
    graph; ``decoder(y [B, 2*symbols], snr_db [B])`` is the BS half, where ``y`` holds the
    received symbols as (re, im) pairs, zero beyond the sent prefix.
    """

    def __init__(
        self,
        symbols: int = 32,
        prefixes: list[int] | None = None,
        snr_min: float = -10.0,
        snr_max: float = 20.0,
        width: int = 16,
        blocks: int = 2,
        nt: int = 32,
        taps: int = 32,
        compand: float = 1.0,
        compand_scope: str = "all",
        qat: bool = False,
        train_cnr_db: float | None = None,
        refine_out_act: bool = True,
        pca_init: bool = False,
    ) -> None:
        super().__init__()
        self.train_cnr_db = None if train_cnr_db is None else float(train_cnr_db)
        self.symbols = int(symbols)
        self.prefixes = sorted({int(k) for k in (prefixes or [symbols])})
        if not all(1 <= k <= self.symbols for k in self.prefixes):
            raise ValueError(f"prefixes must lie in 1..{self.symbols}, got {self.prefixes}")
        self.snr_min, self.snr_max = float(snr_min), float(snr_max)
        self.encoder = Encoder(
            2 * self.symbols,
            nt,
            taps,
            width,
            out_act="none",
            compand=compand,
            compand_scope=compand_scope,
            qat=qat,
        )
        self.decoder = Decoder(2 * self.symbols, nt, taps, width, blocks, snr_adaptive=True,
                               refine_out_act=refine_out_act)
        self.pca_init = bool(pca_init)

    def forward(
        self,
        x: torch.Tensor,
        snr_db: torch.Tensor,
        k: torch.Tensor | int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        s = power_normalize(self.encoder(x), k)
        y = analog_awgn(s, snr_db, k, generator)
        return self.decoder(y, torch.as_tensor(snr_db, dtype=x.dtype).expand(x.shape[0]))


def estimation_noise(
    x: torch.Tensor, cnr_db: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``x + e``: channel-estimation error at a channel-to-noise ratio, ``e ~ CN(0, P / cnr)``
    with ``P`` the mean power of each sample (as the UE's CSI-RS estimate,
    ``ue_service.node.estimation_noise``). ``x`` real layout ``[B, 2, Nt, T]``."""
    p = (x**2).flatten(1).sum(1) / (x[0].numel() // 2)  # mean |h|^2 per complex entry
    std = (p * 10.0 ** (-cnr_db / 10.0) / 2.0).sqrt().view(-1, 1, 1, 1)
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype)
