"""Batch API of the codebook and its wire codec (kind ``"type2"``). numpy only.

:class:`Type2Codec` is what the UE encoder, the BS decoder, the tests and the benchmark share:

* ``pmis(x_ad)`` / ``latents(x_ad)`` / ``encode(x_ad)``: UE side, from the angular-delay CSI the
  UE measured (``[B, Nt, taps]``); the UE rebuilds its spatial-frequency view with
  ``shared.transforms.ad_to_sf`` (the dropped delay taps are zero), because that is all it has.
* ``unpack(bits)``: one report's bits -> its latent (index values as float32).
* ``decode_sf(latents)`` / ``decode_ad(latents)``: BS side, the channel estimate.

:class:`Type2Wire` wraps the same frame as a ``shared.wire.WireCodec`` so code written for
the generic wire step (latent -> bits -> latent) handles type2 reports too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.type2 import codebook, frame
from models.type2.config import Type2Config
from shared.errors import InvalidInput
from shared.transforms import ad_to_sf
from shared.wire import Bits, WireCodec


def _check_batch(x: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or tuple(x.shape[1:]) != shape:
        raise InvalidInput(f"type2: {what} must be [B, {shape[0]}, {shape[1]}], got shape {x.shape}")
    if not np.iscomplexobj(x):
        raise InvalidInput(f"type2: {what} must be complex, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise InvalidInput(f"type2: {what} contains NaN or Inf")
    return x


class Type2Codec:
    """The codebook at one configuration, batched."""

    def __init__(self, cfg: Type2Config, strict: bool = False) -> None:
        self.cfg = cfg
        self.strict = strict
        self.latent_size = cfg.latent_size
        self.payload_bits = cfg.payload_bits

    @classmethod
    def from_spec(cls, spec: dict[str, Any], strict: bool = False) -> Type2Codec:
        return cls(Type2Config.from_spec(spec), strict)

    # ------------------------------------------------------------------ UE
    def measure_sf(self, x_ad: np.ndarray) -> np.ndarray:
        """The UE's SF view of its AD measurement: ``[B, Nt, taps]`` -> complex64 ``[B, Nt, Nc]``."""
        x = _check_batch(x_ad, (self.cfg.n_antennas, self.cfg.n_taps), "x_ad")
        return ad_to_sf(x, self.cfg.n_subcarriers)

    def pmis_sf(self, h_sf: np.ndarray) -> list[codebook.Pmi]:
        """Reports chosen from SF channels ``[B, Nt, Nc]``."""
        h = _check_batch(h_sf, (self.cfg.n_antennas, self.cfg.n_subcarriers), "h_sf")
        return [codebook.choose_pmi(x, self.cfg) for x in h]

    def pmis(self, x_ad: np.ndarray) -> list[codebook.Pmi]:
        """Reports chosen from the UE's AD measurement ``[B, Nt, taps]``: the same as
        ``pmis_sf(measure_sf(x_ad))``, computed without building the SF matrices."""
        x = _check_batch(x_ad, (self.cfg.n_antennas, self.cfg.n_taps), "x_ad")
        cfg = self.cfg
        return [codebook.choose_pmi_subband(codebook.subband_target_from_ad(v, cfg), cfg) for v in x]

    def latents_from_pmis(self, pmis: list[codebook.Pmi]) -> np.ndarray:
        return np.stack([frame.values_to_latent(frame.pmi_to_values(p, self.cfg), self.cfg) for p in pmis])

    def latents(self, x_ad: np.ndarray) -> np.ndarray:
        """``[B, Nt, taps]`` complex -> index values ``[B, latent_size]`` float32."""
        return self.latents_from_pmis(self.pmis(x_ad))

    def pack(self, latent: np.ndarray) -> Bits:
        """One report's latent ``[latent_size]`` -> exactly ``payload_bits`` bits."""
        return frame.values_to_bits(frame.latent_to_values(latent, self.cfg), self.cfg)

    def encode(self, x_ad: np.ndarray) -> list[Bits]:
        return [self.pack(z) for z in self.latents(x_ad)]

    # ------------------------------------------------------------------ BS
    def unpack(self, bits: Bits) -> np.ndarray:
        """One report's bits -> latent ``[latent_size]`` float32 (:class:`InvalidInput` on a wrong length)."""
        return frame.values_to_latent(frame.bits_to_values(bits, self.cfg), self.cfg)

    def parse(self, latents: np.ndarray) -> list[codebook.Pmi]:
        z = np.asarray(latents)
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise InvalidInput(f"type2 latents must be [B, {self.latent_size}], got shape {z.shape}")
        if np.iscomplexobj(z):
            raise InvalidInput("type2 latents must be real (index values)")
        return [frame.values_to_pmi(frame.latent_to_values(v, self.cfg), self.cfg, self.strict) for v in z]

    def decode_sf(self, latents: np.ndarray) -> np.ndarray:
        """``[B, latent_size]`` -> SF channel estimate, complex64 ``[B, Nt, Nc]``."""
        out = [codebook.channel_estimate(p, self.cfg) for p in self.parse(latents)]
        shape = (0, self.cfg.n_antennas, self.cfg.n_subcarriers)
        return np.stack(out) if out else np.zeros(shape, np.complex64)

    def decode_ad(self, latents: np.ndarray) -> np.ndarray:
        """``[B, latent_size]`` -> AD channel estimate, complex64 ``[B, Nt, taps]``: the same as
        ``sf_to_ad(decode_sf(latents))``, computed without building the SF matrices."""
        out = [codebook.channel_estimate_ad(p, self.cfg) for p in self.parse(latents)]
        return np.stack(out) if out else np.zeros((0, self.cfg.n_antennas, self.cfg.n_taps), np.complex64)

    def precoders(self, latents: np.ndarray) -> np.ndarray:
        """The standard's precoders, unit norm per PMI subband: complex64 ``[B, Nt, N3]``."""
        return np.stack([codebook.precoder(p, self.cfg) for p in self.parse(latents)]).astype(np.complex64)


class Type2Wire(WireCodec):
    """``shared.wire`` view of the frame: the latent is already the index values."""

    kind = "type2"
    digital = True

    def __init__(self, cfg: Type2Config) -> None:
        self.cfg = cfg
        self._codec = Type2Codec(cfg)

    def spec(self) -> dict[str, Any]:
        return self.cfg.to_spec()

    def payload_size(self, latent_size: int) -> int:
        if latent_size != self.cfg.latent_size:
            raise InvalidInput(f"type2 configuration {self.cfg.name} has latent_size {self.cfg.latent_size}, "
                               f"not {latent_size}")
        return self.cfg.payload_bits

    def encode(self, latent: np.ndarray) -> Bits:
        return self._codec.pack(latent)

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        if not isinstance(payload, Bits):
            raise InvalidInput("type2 codec expects a bitstream payload, got symbols")
        self.payload_size(latent_size)
        return self._codec.unpack(payload)


def codec_from_bundle(bundle: Any, strict: bool = False) -> Type2Codec:
    """The codec of a type2 bundle (``shared.bundle.Bundle``), checked against its manifest.

    Raises :class:`shared.errors.BundleError` naming what does not match (family, wire kind,
    latent size, rate bits, input shape).
    """
    from shared.errors import BundleError

    m = bundle.manifest
    if m.family != "type2":
        raise BundleError(f"bundle {m.model_id}: family {m.family!r} is not type2")
    try:
        cfg = Type2Config.from_spec(m.ue.wire)
    except (InvalidInput, TypeError) as exc:
        raise BundleError(f"bundle {m.model_id}: bad type2 wire spec: {exc}") from None
    if m.latent_size != cfg.latent_size:
        raise BundleError(f"bundle {m.model_id}: latent_size {m.latent_size} but the configuration has "
                          f"{cfg.latent_size} latent entries")
    if list(m.input_shape) != [cfg.n_antennas, cfg.n_taps]:
        raise BundleError(f"bundle {m.model_id}: input_shape {m.input_shape} does not match "
                          f"[{cfg.n_antennas}, {cfg.n_taps}]")
    for r in m.rates:
        if r.wire is not None:
            raise BundleError(f"bundle {m.model_id}: type2 rate {r.name!r} overrides the wire spec; "
                              "one configuration per bundle")
        if r.bits != cfg.payload_bits:
            raise BundleError(f"bundle {m.model_id}: rate {r.name!r} says {r.bits} bits, the configuration "
                              f"sends {cfg.payload_bits}")
    return Type2Codec(cfg, strict=strict)
