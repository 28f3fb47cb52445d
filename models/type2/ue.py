"""UE half of the type2 family: the codebook search in numpy (no torch, no ONNX).

``shared.ue_encoder`` and ``ue_service`` call :func:`ue_encoder_from_bundle` for bundles whose
``ue.encoder`` is null and whose family is ``type2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.type2.wire import Type2Codec, codec_from_bundle
from shared.wire import Bits

if TYPE_CHECKING:  # pragma: no cover
    from shared.bundle import Bundle


class Type2UeEncoder:
    """``latents(x_ad)`` / ``encode(x_ad, rate)`` for one type2 bundle.

    ``x_ad`` is the UE's measured DL CSI, complex ``[B, Nt, taps]`` (a single ``[Nt, taps]``
    matrix is taken as B = 1), unnormalized.
    """

    def __init__(self, bundle: Bundle, codec: Type2Codec) -> None:
        self.bundle = bundle
        self.codec = codec
        self.latent_size = codec.latent_size
        self.payload_bits = codec.payload_bits

    def latents(self, x_ad: np.ndarray) -> np.ndarray:
        """Index values of each report: float32 ``[B, latent_size]``."""
        return self.codec.latents(x_ad)

    def encode(self, x_ad: np.ndarray, rate: str | None = None) -> list[Bits]:
        """One report of exactly ``payload_bits`` bits per sample; ``rate`` must name the
        bundle's rate (or be None/empty)."""
        self.bundle.manifest.rate(rate)  # NotFound naming the rates when it is not one
        return self.codec.encode(x_ad)


def ue_encoder_from_bundle(bundle: Bundle) -> Type2UeEncoder:
    """The numpy UE encoder of a type2 bundle (checks the manifest, see ``codec_from_bundle``)."""
    return Type2UeEncoder(bundle, codec_from_bundle(bundle))
