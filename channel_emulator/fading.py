"""Drawing channel realizations (the "generate" half; ``simo.py`` applies them).

Every model gives one complex coefficient per (symbol, BS antenna): ``h`` complex64
``[k, n_rx]`` with ``E|h|^2 = 1`` per entry, symbol ``i`` riding on subcarrier ``i``.

* ``awgn``: ``h = 1``.
* ``rayleigh``: ``h ~ CN(0, 1)``, i.i.d. over antennas (rich scattering, antennas far apart).
* ``rician``: ``h = sqrt(K/(K+1)) a(theta) e^{j phi} + sqrt(1/(K+1)) w``, ``w ~ CN(0, 1)``;
  ``a`` is the half-wavelength ULA steering vector ``a_n = exp(j pi n sin theta)`` with
  ``theta ~ U(-60, 60) deg`` and ``phi ~ U(0, 2 pi)`` drawn per report (the LOS does not change
  within a report even without block fading).
* ``tdl-a|b|c``: TR 38.901 TDL taps ``a_{n,l} ~ CN(0, p_l)`` (independent per antenna), frequency
  response ``H_n(f_i) = sum_l a_{n,l} exp(-j 2 pi f_i tau_l)`` at subcarrier offsets
  ``f_i = (i - (k-1)/2) * subcarrier_spacing``.

``block_fading=True`` draws one realization per report (same antenna gains for every symbol; for
TDL one impulse response, so the symbols still see its frequency selectivity); False draws the
scattered part independently for every symbol (for TDL a fresh impulse response per symbol).

>>> from channel_emulator.config import LinkConfig
>>> h = draw_channel(LinkConfig(mode="rayleigh", n_rx=4), 16, np.random.default_rng(0))
>>> h.shape, h.dtype, bool(np.all(h == h[0]))
((16, 4), dtype('complex64'), True)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from channel_emulator.config import LinkConfig
from channel_emulator.tdl import tdl_taps
from shared.errors import InvalidInput

_LOS_MAX_ANGLE = np.deg2rad(60.0)


def complex_normal(gen: np.random.Generator, shape: tuple[int, ...], var: float = 1.0) -> np.ndarray:
    """i.i.d. ``CN(0, var)`` samples, complex64 of ``shape``."""
    z = gen.standard_normal((*shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
    z *= np.float32(np.sqrt(var / 2.0))
    return z


def ula_steering(n_rx: int, theta: float) -> np.ndarray:
    """Half-wavelength ULA response complex64 ``[n_rx]`` for arrival angle ``theta`` (rad)."""
    return np.exp(1j * np.pi * np.arange(n_rx) * np.sin(theta)).astype(np.complex64)


def draw_channel(cfg: LinkConfig, k: int, gen: np.random.Generator | None) -> np.ndarray:
    """One channel realization for a report of ``k`` symbols.

    :input cfg: the link (``mode``, ``n_rx``, ``block_fading``, Rician/TDL parameters).
    :input k: number of symbols (subcarriers), >= 1.
    :input gen: the report's fading generator (may be None for ``awgn``, which draws nothing).
    :output h: complex64 ``[k, n_rx]``; for block fading of flat models a read-only broadcast
        view of one row.
    """
    if k < 1:
        raise InvalidInput(f"a report needs at least one symbol, got {k}")
    n, rows = cfg.n_rx, (1 if cfg.block_fading else k)
    if cfg.mode == "awgn":
        return np.broadcast_to(np.ones((1, n), np.complex64), (k, n))
    if gen is None:
        raise InvalidInput(f"channel mode {cfg.mode!r} needs a fading generator")
    if cfg.mode == "rayleigh":
        return np.broadcast_to(complex_normal(gen, (rows, n)), (k, n))
    if cfg.mode == "rician":
        kf = cfg.rician_k
        theta, phi = gen.uniform(-_LOS_MAX_ANGLE, _LOS_MAX_ANGLE), gen.uniform(0.0, 2.0 * np.pi)
        los = ula_steering(n, theta) * np.complex64(np.exp(1j * phi))
        scatter = complex_normal(gen, (rows, n))
        h = np.float32(np.sqrt(kf / (kf + 1.0))) * los + np.float32(np.sqrt(1.0 / (kf + 1.0))) * scatter
        return np.broadcast_to(h.astype(np.complex64), (k, n))
    if cfg.mode.startswith("tdl-"):
        return _draw_tdl(cfg, k, gen)
    raise InvalidInput(f"unknown channel mode {cfg.mode!r}")


def subcarrier_offsets(k: int, spacing_hz: float) -> np.ndarray:
    """Subcarrier frequencies float64 ``[k]`` (Hz) relative to the band centre."""
    return (np.arange(k) - (k - 1) / 2.0) * spacing_hz


@lru_cache(maxsize=64)
def _tdl_geometry(
    profile: str, delay_spread_ns: float, spacing_khz: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(phase ramps complex64 ``[k, L]``, tap amplitudes float32 ``[L]``), read-only, cached:
    the same for every report of a given size under one config."""
    tau, p = tdl_taps(profile, delay_spread_ns * 1e-9)
    f = subcarrier_offsets(k, spacing_khz * 1e3)
    steer = np.exp(-2j * np.pi * np.outer(f, tau)).astype(np.complex64)
    amp = np.sqrt(p).astype(np.float32)
    steer.flags.writeable = amp.flags.writeable = False
    return steer, amp


def _draw_tdl(cfg: LinkConfig, k: int, gen: np.random.Generator) -> np.ndarray:
    steer, amp = _tdl_geometry(cfg.mode[-1].upper(), cfg.delay_spread_ns, cfg.subcarrier_spacing_khz, k)
    n_taps = amp.size
    if cfg.block_fading:
        taps = complex_normal(gen, (cfg.n_rx, n_taps)) * amp  # [n_rx, L]
        return steer @ taps.T  # [k, n_rx]
    taps = complex_normal(gen, (k, cfg.n_rx, n_taps)) * amp  # [k, n_rx, L]
    return np.einsum("kl,knl->kn", steer, taps).astype(np.complex64)
