"""Analog path: continuous JSCC symbols through power normalization, fading, AWGN and MRC.

Each complex symbol rides on its own subcarrier; the UE has one antenna, the BS ``n_rx``.
The report is scaled to unit average power on the air (``Es = 1``, so ``snr_db`` is Es/N0 per
receive antenna, see ``config.py``), and the BS output is scaled back by the same factor: with
no noise the BS gets exactly what the UE sent.

The BS is told the SNR of every equalized symbol, ``per_symbol_snr_db = 10 log10(||h_i||^2 / N0)``
(its channel estimate is perfect), and one number for the report, the MSE-equivalent SNR
``effective_snr_db = 10 log10(1 / mean_i(N0 / ||h_i||^2))``: the SNR of the AWGN channel that
would give the same mean squared error on the symbols. For AWGN with ``n_rx`` antennas it is
``snr_db + 10 log10(n_rx)``.

>>> from channel_emulator.config import LinkConfig
>>> x = np.exp(1j * np.arange(32)).astype(np.complex64)
>>> res = transmit_analog(x, LinkConfig(mode="awgn", snr_db=0, n_rx=32), np.random.default_rng(1))
>>> res.symbols_hat.shape, res.symbols_hat.dtype, round(res.effective_snr_db, 2)
((32,), dtype('complex64'), 15.05)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from channel_emulator.config import LinkConfig
from channel_emulator.fading import draw_channel
from channel_emulator.rng import ReportRng, as_report_rng
from channel_emulator.simo import apply_simo, draw_noise
from shared.errors import InvalidInput, TooLarge

_EMPTY_SNR = np.zeros(0, np.float32)


@dataclass(frozen=True)
class AnalogResult:
    """One analog report after the channel.

    * ``symbols_hat``: complex64 ``[k]``, equalized symbols at the UE's scale; None if dropped.
    * ``effective_snr_db``: MSE-equivalent post-MRC SNR of the report (``inf`` when ideal,
      ``nan`` when dropped).
    * ``per_symbol_snr_db``: float32 ``[k]``, post-MRC SNR of each symbol (``inf`` when ideal;
      empty when dropped).
    * ``dropped`` / ``reason``: ``reason`` is ``"loss"`` for a randomly lost report, else ``""``.
    * ``signal_energy`` / ``noise_energy``: received signal and drawn noise energy summed over
      symbols and antennas (normalized units); ``measured_snr_db`` is their ratio.
    * ``delay_ms``: one-way delay to wait before delivering (filled by ``Link``; 0 here).
    """

    symbols_hat: np.ndarray | None
    effective_snr_db: float
    per_symbol_snr_db: np.ndarray
    dropped: bool = False
    reason: str = ""
    signal_energy: float = 0.0
    noise_energy: float = 0.0
    delay_ms: float = 0.0

    @property
    def measured_snr_db(self) -> float:
        """Per-antenna SNR measured on the noise actually drawn (nan without noise)."""
        if self.noise_energy <= 0.0:
            return math.nan
        return 10.0 * math.log10(self.signal_energy / self.noise_energy)


def validate_symbols(symbols: np.ndarray, max_symbols: int) -> np.ndarray:
    """Check a report's symbols and return them as complex64 ``[k]``.

    Raises ``InvalidInput`` for a non-1-D, non-numeric, empty, NaN/Inf or all-zero report and
    ``TooLarge`` above ``max_symbols``.
    """
    s = np.asarray(symbols)
    if s.dtype.kind not in "biufc":
        raise InvalidInput(f"symbols must be numeric (complex), got dtype {s.dtype}")
    if s.ndim != 1:
        raise InvalidInput(f"symbols must be a 1-D array [k], got shape {s.shape}")
    if s.size == 0:
        raise InvalidInput("empty analog report: no symbols")
    if s.size > max_symbols:
        raise TooLarge(f"analog report of {s.size} symbols exceeds the limit of {max_symbols}")
    if not np.all(np.isfinite(s)):
        raise InvalidInput("symbols contain NaN or Inf")
    s = s.astype(np.complex64, copy=False)
    if not np.any(s):
        raise InvalidInput("all symbols are zero: a zero-power report cannot be power-normalized")
    return s


def effective_snr_db(post_snr_db: np.ndarray) -> float:
    """MSE-equivalent SNR (dB) of symbols with post-MRC SNRs ``post_snr_db`` float ``[k]``."""
    inv = np.mean(10.0 ** (-np.asarray(post_snr_db, np.float64) / 10.0))
    return math.inf if inv == 0.0 else float(-10.0 * np.log10(inv))


def transmit_analog(
    symbols: np.ndarray, cfg: LinkConfig, rng: ReportRng | np.random.Generator | int
) -> AnalogResult:
    """Send one analog report through the link.

    :input symbols: complex64 ``[k]``, the UE's latent symbols (any nonzero power).
    :input cfg: the link.
    :input rng: the report's ``ReportRng`` (or a ``Generator`` / int seed: every stream from it).
    :output: ``AnalogResult``.
    """
    x = validate_symbols(symbols, cfg.max_symbols)
    k = x.size
    if cfg.ideal:
        inf = np.full(k, np.inf, np.float32)
        return AnalogResult(x.copy(), math.inf, inf)
    streams = as_report_rng(rng)
    if cfg.loss_prob > 0.0 and streams.loss.random() < cfg.loss_prob:
        return AnalogResult(None, math.nan, _EMPTY_SNR, dropped=True, reason="loss")

    scale = np.float32(np.sqrt(np.mean(x.real**2 + x.imag**2)))
    h = draw_channel(cfg, k, None if cfg.mode == "awgn" else streams.fading)
    noise = draw_noise(k, cfg.n_rx, cfg.n0, streams.noise)
    out = apply_simo(x / scale, h, noise, cfg.n0)
    return AnalogResult(
        symbols_hat=(out.x_hat * scale).astype(np.complex64),
        effective_snr_db=out.effective_snr_db,
        per_symbol_snr_db=out.post_snr_db,
        signal_energy=out.signal_energy,
        noise_energy=out.noise_energy,
    )
