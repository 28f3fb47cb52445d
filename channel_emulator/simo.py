"""Applying a channel realization: SIMO reception with AWGN and maximum ratio combining.

For symbol ``i`` and BS antenna ``n``: ``y_{i,n} = h_{i,n} x_i + w_{i,n}``, ``w ~ CN(0, N0)``.
The BS knows ``h`` (perfect channel estimate) and combines
``x^_i = sum_n conj(h_{i,n}) y_{i,n} / g_i`` with ``g_i = sum_n |h_{i,n}|^2``, an unbiased estimate
``x^_i = x_i + v_i``, ``v_i = sum_n conj(h_{i,n}) w_{i,n} / g_i ~ CN(0, N0 / g_i)`` (computed in
this form, which needs no ``[k, n_rx]`` temporaries). With unit-power symbols the post-MRC SNR
of symbol ``i`` is ``g_i / N0``.

>>> x = np.ones(4, np.complex64)
>>> h = np.ones((4, 2), np.complex64)
>>> out = apply_simo(x, h, np.zeros((4, 2), np.complex64), n0=0.1)
>>> out.x_hat.tolist(), np.round(out.post_snr_db.astype(float), 2).tolist()
([(1+0j), (1+0j), (1+0j), (1+0j)], [13.01, 13.01, 13.01, 13.01])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channel_emulator.fading import complex_normal

# Below this combined gain a symbol is treated as lost in the fade (avoids 1/0).
_MIN_GAIN = np.float32(1e-30)


@dataclass(frozen=True)
class SimoOutput:
    """What MRC gives the BS for one report of ``k`` symbols.

    * ``x_hat``: complex64 ``[k]``, equalized symbols (estimate of the sent ``x``).
    * ``gain``: float32 ``[k]``, ``g_i = ||h_i||^2`` (MRC array gain, times fading).
    * ``post_snr_db``: float32 ``[k]``, ``10 log10(g_i Es / N0)`` (what the BS is told).
    * ``effective_snr_db``: MSE-equivalent SNR of the report, ``-10 log10(mean_i(N0 / (g_i Es)))``.
    * ``signal_energy`` / ``noise_energy``: sums over symbols and antennas of ``|h x|^2`` and of
      the noise actually drawn ``|w|^2`` (their ratio is the measured per-antenna SNR).
    """

    x_hat: np.ndarray
    gain: np.ndarray
    post_snr_db: np.ndarray
    effective_snr_db: float
    signal_energy: float
    noise_energy: float


def draw_noise(k: int, n_rx: int, n0: float, gen: np.random.Generator) -> np.ndarray:
    """Receiver noise complex64 ``[k, n_rx]``, i.i.d. ``CN(0, n0)``."""
    return complex_normal(gen, (k, n_rx), n0)


def apply_simo(x: np.ndarray, h: np.ndarray, noise: np.ndarray, n0: float, es: float = 1.0) -> SimoOutput:
    """Receive ``x`` through ``h`` with ``noise`` and combine by MRC (deterministic).

    :input x: complex64 ``[k]``, transmitted symbols (unit average power expected).
    :input h: complex64 ``[k, n_rx]``, channel realization (``fading.draw_channel``).
    :input noise: complex64 ``[k, n_rx]``, noise realization (``draw_noise``).
    :input n0: noise variance used to draw ``noise`` (for the SNR the BS is told).
    :input es: average symbol energy (1 after power normalization).
    :output: ``SimoOutput``.
    """
    k = x.shape[0]
    if h.strides[0] == 0:
        # Block fading (a broadcast view of one row, see fading.draw_channel): one gain, and the
        # combining is one matrix-vector product.
        h0 = h[0]
        gain = np.full(k, max(float(np.vdot(h0, h0).real), _MIN_GAIN), np.float32)
        combined_noise = noise @ np.conj(h0)  # [k]
    else:
        gain = np.maximum(np.einsum("kn,kn->k", h.real, h.real) + np.einsum("kn,kn->k", h.imag, h.imag),
                          _MIN_GAIN).astype(np.float32)
        combined_noise = np.einsum("kn,kn->k", noise, np.conj(h))
    x_hat = (x + combined_noise / gain).astype(np.complex64)
    snr_lin = gain * np.float32(es / n0)
    post_snr_db = (np.float32(10.0) * np.log10(snr_lin)).astype(np.float32)
    x_energy = x.real**2 + x.imag**2
    return SimoOutput(
        x_hat=x_hat,
        gain=gain,
        post_snr_db=post_snr_db,
        effective_snr_db=float(-10.0 * np.log10(np.mean(1.0 / snr_lin, dtype=np.float64))),
        signal_energy=float(np.dot(x_energy, gain)),  # sum_i |x_i|^2 ||h_i||^2 = sum |h x|^2
        noise_energy=float(np.vdot(noise, noise).real),
    )
