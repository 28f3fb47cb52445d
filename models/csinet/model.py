"""CsiNet-class autoencoder with the digital wire's torch twin inside (training graph)."""

from __future__ import annotations

import torch
from torch import nn

from models.common.nets import Decoder, Encoder
from models.common.wire_torch import ste_for_codec
from shared.wire import from_spec


class CsiNetAE(nn.Module):
    """``x [B, 2, Nt, T] -> x_hat [B, 2, Nt, T]`` through a quantized ``latent * bits``-bit report.

    ``encoder(x) -> z [B, latent]`` in [-1, 1] (tanh) is what the UE's ONNX graph computes;
    ``decoder(z_q, snr_db=None)`` is the BS half (``snr_db`` ignored).
    """

    def __init__(
        self,
        latent: int = 32,
        bits: int = 4,
        quantizer: str = "uniform",
        mu: float = 50.0,
        width: int = 16,
        blocks: int = 2,
        nt: int = 32,
        taps: int = 32,
        compand: float = 1.0,
        compand_scope: str = "all",
        qat: bool = False,
        enc_width: int | None = None,
        refine_kernels: tuple[int, int, int] | list[int] = (7, 5, 3),
    ) -> None:
        super().__init__()
        if quantizer not in ("uniform", "mulaw"):
            raise ValueError(f"quantizer must be 'uniform' or 'mulaw', got {quantizer!r}")
        spec = {"kind": quantizer, "bits": bits, **({"mu": mu} if quantizer == "mulaw" else {})}
        self.quantize = ste_for_codec(from_spec(spec))
        self.encoder = Encoder(
            latent, nt, taps, enc_width or width, out_act="tanh", compand=compand,
            compand_scope=compand_scope, qat=qat,
        )
        self.decoder = Decoder(
            latent, nt, taps, width, blocks, snr_adaptive=False, kernels=tuple(refine_kernels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantize(self.encoder(x)))
