"""Closed-form bit error rates, the reference the simulated link is tested and plotted against.

``esn0_db`` is the post-combining symbol SNR Es/N0 (for AWGN with ``n_rx`` antennas,
``snr_db + 10 log10(n_rx)``). Gray mapping of TS 38.211:

* BPSK (on the diagonal, complex noise): ``Pb = Q(sqrt(2 Es/N0))``
* QPSK: ``Pb = Q(sqrt(Es/N0))``
* 16-QAM: ``Pb = (3 Q(a) + 2 Q(3a) - Q(5a)) / 4`` with ``a = sqrt(Es/N0 / 5)`` (exact, per-bit
  average of the sign and amplitude bits of each axis).

>>> f"{float(ber_awgn('bpsk', 9.6)):.2e}"  # the textbook 1e-5 point (Eb/N0 = 9.6 dB)
'9.74e-06'
"""

from __future__ import annotations

import math

import numpy as np

from shared.errors import InvalidInput


def qfunc(x: np.ndarray | float) -> np.ndarray:
    """Gaussian tail ``Q(x) = P(N(0,1) > x)``, float64 of ``x``'s shape."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(x / math.sqrt(2.0))


def ber_awgn(modulation: str, esn0_db: np.ndarray | float) -> np.ndarray:
    """Theoretical BER over AWGN at post-combining ``Es/N0`` (dB), float64 of its shape."""
    g = 10.0 ** (np.asarray(esn0_db, dtype=np.float64) / 10.0)
    if modulation == "bpsk":
        return qfunc(np.sqrt(2.0 * g))
    if modulation == "qpsk":
        return qfunc(np.sqrt(g))
    if modulation == "16qam":
        a = np.sqrt(g / 5.0)
        return (3.0 * qfunc(a) + 2.0 * qfunc(3.0 * a) - qfunc(5.0 * a)) / 4.0
    raise InvalidInput(f"unknown modulation {modulation!r}")


def ber_bpsk_rayleigh_mrc(snr_db: np.ndarray | float, n_rx: int) -> np.ndarray:
    """BPSK over i.i.d. Rayleigh fading with ``n_rx``-branch MRC, per-branch mean SNR ``snr_db``.

    ``Pb = ((1-mu)/2)^L sum_{l<L} C(L-1+l, l) ((1+mu)/2)^l``, ``mu = sqrt(g / (1 + g))``
    (Proakis, Digital Communications, 14.4), with ``g`` the per-branch Eb/N0 (= Es/N0 for BPSK).
    """
    g = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)
    mu = np.sqrt(g / (1.0 + g))
    total = sum(math.comb(n_rx - 1 + k, k) * ((1.0 + mu) / 2.0) ** k for k in range(n_rx))
    return ((1.0 - mu) / 2.0) ** n_rx * total
