"""Digital path: CRC, Gray-mapped modulation, fading + AWGN + MRC, hard decisions, CRC check.

Steps for a payload of ``A`` bits (``shared.wire.Bits``):

1. CRC (``cfg.crc``, TS 38.212 5.1) appended: ``A + L`` bits; these all go on the air.
2. Zero padding to whole symbols, Gray mapping (TS 38.211 5.1): ``n_symbols = ceil((A+L)/m)``,
   ``n_bits_on_air = n_symbols * m``; one symbol per subcarrier.
3. The same channel as the analog path (``fading`` + ``simo``): SIMO with ``n_rx`` antennas,
   AWGN at ``snr_db`` per antenna, MRC with the true channel (coherent detection).
4. Hard decisions -> real bit errors; padding stripped; CRC checked: a failed CRC drops the
   report (``reason="crc"``), as the BS drops a UCI report that fails its CRC. Without a CRC the
   report is delivered with its errors.
5. Random loss (``loss_prob``) drops the report before it is received (``reason="loss"``).

The payload comes back at its exact original length.

>>> from channel_emulator.config import LinkConfig
>>> from shared.wire import Bits
>>> bits = Bits.from_array(np.arange(100) % 3 == 0)
>>> r = transmit_bits(bits, LinkConfig(snr_db=20, n_rx=4, crc="crc16"), np.random.default_rng(0))
>>> r.bits_hat == bits, r.dropped, r.n_bits_on_air
(True, False, 116)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from channel_emulator import crc as crc_mod
from channel_emulator.config import LinkConfig
from channel_emulator.fading import draw_channel
from channel_emulator.modulation import bits_per_symbol, demodulate, modulate
from channel_emulator.rng import ReportRng, as_report_rng
from channel_emulator.simo import apply_simo, draw_noise
from shared.errors import InvalidInput, TooLarge
from shared.wire import Bits


@dataclass(frozen=True)
class DigitalResult:
    """One digital report after the channel.

    * ``bits_hat``: the delivered payload (exactly ``A`` bits, possibly with errors when there
      is no CRC); None when dropped.
    * ``dropped`` / ``reason``: ``"crc"`` (CRC failed), ``"loss"`` (lost), or ``""``.
    * ``bit_errors``: hard-decision errors over all ``n_bits_on_air`` bits (payload, CRC and
      padding): the raw channel BER is ``bit_errors / n_bits_on_air``. 0 for a lost report.
    * ``n_bits_on_air``: ``n_symbols * bits_per_symbol`` (payload + CRC + padding).
    * ``payload_bit_errors``: errors among the ``A`` payload bits (before the CRC decision).
    * ``n_symbols``: modulated symbols (= subcarriers used).
    * ``crc_ok``: the CRC verdict (None without CRC, or when lost).
    * ``effective_snr_db``: MSE-equivalent post-MRC SNR (see ``analog.py``).
    * ``signal_energy`` / ``noise_energy``: as in ``AnalogResult``.
    * ``delay_ms``: one-way delay (filled by ``Link``).
    """

    bits_hat: Bits | None
    dropped: bool
    reason: str
    bit_errors: int
    n_bits_on_air: int
    payload_bit_errors: int = 0
    n_symbols: int = 0
    crc_ok: bool | None = None
    effective_snr_db: float = math.nan
    signal_energy: float = 0.0
    noise_energy: float = 0.0
    delay_ms: float = 0.0

    @property
    def undetected_error(self) -> bool:
        """Delivered with wrong payload bits (no CRC, or errors the CRC missed)."""
        return self.bits_hat is not None and self.payload_bit_errors > 0


def validate_bits(bits: Bits, max_bits: int) -> None:
    """``InvalidInput`` unless ``bits`` is a non-empty ``Bits``; ``TooLarge`` above ``max_bits``."""
    if not isinstance(bits, Bits):
        raise InvalidInput(f"digital payload must be shared.wire.Bits, got {type(bits).__name__}")
    if bits.n_bits == 0:
        raise InvalidInput("empty digital report: 0 payload bits")
    if bits.n_bits > max_bits:
        raise TooLarge(f"digital report of {bits.n_bits} bits exceeds the limit of {max_bits}")


def on_air_size(n_bits: int, cfg: LinkConfig) -> tuple[int, int]:
    """(n_symbols, n_bits_on_air) for an ``n_bits`` payload under ``cfg``."""
    m = bits_per_symbol(cfg.modulation)
    n_sym = (n_bits + crc_mod.crc_length(cfg.crc) + m - 1) // m
    return n_sym, n_sym * m


def transmit_bits(bits: Bits, cfg: LinkConfig, rng: ReportRng | np.random.Generator | int) -> DigitalResult:
    """Send one digital report through the link.

    :input bits: ``shared.wire.Bits`` of ``A >= 1`` payload bits.
    :input cfg: the link.
    :input rng: the report's ``ReportRng`` (or a ``Generator`` / int seed: every stream from it).
    :output: ``DigitalResult``.
    """
    validate_bits(bits, cfg.max_bits)
    n_sym, n_air = on_air_size(bits.n_bits, cfg)
    if cfg.ideal:
        crc_ok = None if cfg.crc is None else True
        return DigitalResult(bits, False, "", 0, n_air, n_symbols=n_sym, crc_ok=crc_ok,
                             effective_snr_db=math.inf)
    streams = as_report_rng(rng)
    if cfg.loss_prob > 0.0 and streams.loss.random() < cfg.loss_prob:
        return DigitalResult(None, True, "loss", 0, n_air, n_symbols=n_sym)

    payload = bits.to_array()
    codeword = crc_mod.attach(payload, cfg.crc)  # [A + L]
    x = modulate(codeword, cfg.modulation)  # [n_sym], zero-padded
    h = draw_channel(cfg, n_sym, None if cfg.mode == "awgn" else streams.fading)
    noise = draw_noise(n_sym, cfg.n_rx, cfg.n0, streams.noise)
    out = apply_simo(x, h, noise, cfg.n0)
    hard = demodulate(out.x_hat, cfg.modulation)  # [n_air]

    sent = np.zeros(n_air, np.uint8)
    sent[: codeword.size] = codeword
    bit_errors = int(np.count_nonzero(hard != sent))
    payload_hat = hard[: bits.n_bits]
    payload_errors = int(np.count_nonzero(payload_hat != payload))
    crc_ok = None if cfg.crc is None else crc_mod.check(hard[: codeword.size], cfg.crc)
    common = dict(
        bit_errors=bit_errors, n_bits_on_air=n_air, payload_bit_errors=payload_errors, n_symbols=n_sym,
        crc_ok=crc_ok, effective_snr_db=out.effective_snr_db,
        signal_energy=out.signal_energy, noise_energy=out.noise_energy,
    )
    if crc_ok is False:
        return DigitalResult(None, True, "crc", **common)
    delivered = bits if payload_errors == 0 else Bits.from_array(payload_hat)
    return DigitalResult(delivered, False, "", **common)
