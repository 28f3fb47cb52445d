"""BS half of the type2 family: bits -> indices -> precoder -> channel estimate. numpy only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.type2.codebook import channel_estimate_ad
from models.type2.wire import Type2Codec, Type2Wire, codec_from_bundle
from shared.errors import InvalidInput
from shared.wire import Bits

if TYPE_CHECKING:  # pragma: no cover
    from shared.bundle import Bundle


class Type2BsDecoder:
    """The registry's ``BsDecoder`` for type2 bundles.

    ``decode_batch(latents [B, latent_size] float32, side, snr_db) -> [B, Nt, taps] complex64``:
    the latents are the report's index values (``unpack`` / ``wire.decode`` turn bits into
    them). Side information and SNR are not used (``needs`` is empty). A damaged report (bit
    errors) is decoded leniently; ``last_notes`` lists the repairs of the last batch.
    """

    def __init__(self, bundle: Bundle, codec: Type2Codec) -> None:
        self.bundle = bundle
        self.codec = codec
        self.cfg = codec.cfg
        self.latent_size = codec.latent_size
        self.needs: list[str] = []
        self.wire = Type2Wire(codec.cfg)
        self.last_notes: list[list[str]] = []

    def unpack(self, bits: Bits) -> np.ndarray:
        """One report's bits -> latent ``[latent_size]`` float32 (InvalidInput on a wrong bit count)."""
        return self.codec.unpack(bits)

    def decode_batch(self, latents: np.ndarray, side: dict[str, np.ndarray] | None = None,
                     snr_db: np.ndarray | None = None) -> np.ndarray:
        pmis = self.codec.parse(latents)
        self.last_notes = [p.notes for p in pmis]
        return np.stack([channel_estimate_ad(p, self.cfg) for p in pmis])

    def decode_reports(self, reports: list[Bits]) -> np.ndarray:
        """Bits of B reports -> ``[B, Nt, taps]`` complex64."""
        if not reports:
            raise InvalidInput("type2: empty batch of reports")
        return self.decode_batch(np.stack([self.unpack(b) for b in reports]), {}, None)


def load_bs_decoder(bundle: Bundle) -> Type2BsDecoder:
    return Type2BsDecoder(bundle, codec_from_bundle(bundle))
