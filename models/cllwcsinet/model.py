"""The cllwcsinet training graph: encoder -> unit-power codeword -> AWGN -> SNR-agnostic decoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.cllwcsinet.nets import Decoder, Encoder
from models.common.wire_torch import analog_awgn, power_normalize

ENCODER_KEYS = ("arch", "latent", "cr", "nt", "taps", "chans", "head_width", "kernel", "compand")
DECODER_KEYS = (
    "arch",
    "latent",
    "cr",
    "nt",
    "taps",
    "chans",
    "kernel",
    "denoise_width",
    "refine_width",
    "refine_blocks",
)


def build_encoder(c: dict[str, Any]) -> Encoder:
    return Encoder(**{k: c[k] for k in ENCODER_KEYS})


def build_decoder(c: dict[str, Any]) -> Decoder:
    return Decoder(**{k: c[k] for k in DECODER_KEYS})


class CllwAE(nn.Module):
    """``encoder(x) -> z [B, L]`` (the UE's ONNX graph), ``decoder(y [B, L]) -> x_hat`` (the BS).

    ``forward(x, snr_db)``: ``y = normalize(z) + n`` with ``n`` complex AWGN at ``snr_db`` per
    sample (``[B]`` tensor, or None for a clean codeword), exactly as the analog wire and the
    emulator's AWGN path do it.
    """

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.encoder = build_encoder(c)
        self.decoder = build_decoder(c)
        self.noise = bool(c["noise"])
        self.snr_min, self.snr_max = float(c["snr_min"]), float(c["snr_max"])

    def forward(
        self,
        x: torch.Tensor,
        snr_db: torch.Tensor | float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        s = power_normalize(self.encoder(x))
        if snr_db is not None:
            s = analog_awgn(s, snr_db, None, generator)
        return self.decoder(s)
