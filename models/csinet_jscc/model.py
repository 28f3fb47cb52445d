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
    ) -> None:
        super().__init__()
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
        self.decoder = Decoder(2 * self.symbols, nt, taps, width, blocks, snr_adaptive=True)

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
