"""Gray-mapped BPSK / QPSK / 16-QAM of 3GPP TS 38.211 5.1, with hard-decision demapping.

Mappings (``b(i)`` = the i-th bit of a symbol's group, first bit first); all unit average power:

* BPSK (5.1.2): ``d = ((1 - 2b0) + j (1 - 2b0)) / sqrt(2)``
* QPSK (5.1.3): ``d = ((1 - 2b0) + j (1 - 2b1)) / sqrt(2)``
* 16-QAM (5.1.4): ``d = ((1 - 2b0)(2 - (1 - 2b2)) + j (1 - 2b1)(2 - (1 - 2b3))) / sqrt(10)``:
  b0/b1 pick the sign of I/Q, b2/b3 the inner (amplitude 1) or outer (3) level; neighbours
  differ in one bit (Gray).

A bit count that does not fill the last symbol is padded with zeros by ``modulate``; the caller
keeps the true length and strips the padding after ``demodulate``.

>>> s = modulate(np.array([0, 1, 1, 0], np.uint8), "qpsk")
>>> np.round(s * np.sqrt(2), 3).tolist()
[(1-1j), (-1+1j)]
>>> demodulate(s, "qpsk").tolist()
[0, 1, 1, 0]
"""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput

BITS_PER_SYMBOL: dict[str, int] = {"bpsk": 1, "qpsk": 2, "16qam": 4}

_S2 = np.float32(1.0 / np.sqrt(2.0))
_S10 = np.float32(1.0 / np.sqrt(10.0))


def bits_per_symbol(modulation: str) -> int:
    try:
        return BITS_PER_SYMBOL[modulation]
    except KeyError:
        raise InvalidInput(f"unknown modulation {modulation!r}; known: {sorted(BITS_PER_SYMBOL)}") from None


def n_symbols(n_bits: int, modulation: str) -> int:
    """Symbols needed for ``n_bits`` (the last one padded)."""
    m = bits_per_symbol(modulation)
    return (n_bits + m - 1) // m


def modulate(bits: np.ndarray, modulation: str) -> np.ndarray:
    """Bits uint8 ``[n]`` -> symbols complex64 ``[ceil(n / m)]`` (zero-padded to whole symbols)."""
    m = bits_per_symbol(modulation)
    b = np.asarray(bits, dtype=np.uint8).ravel()
    pad = (-b.size) % m
    if pad:
        b = np.concatenate([b, np.zeros(pad, np.uint8)])
    g = (1.0 - 2.0 * b.astype(np.float32)).reshape(-1, m)  # bit 0 -> +1, bit 1 -> -1
    if modulation == "bpsk":
        re = im = g[:, 0] * _S2
    elif modulation == "qpsk":
        re, im = g[:, 0] * _S2, g[:, 1] * _S2
    else:  # 16qam
        re = g[:, 0] * (2.0 - g[:, 2]) * _S10
        im = g[:, 1] * (2.0 - g[:, 3]) * _S10
    out = np.empty(re.shape, np.complex64)
    out.real, out.imag = re, im
    return out


def demodulate(symbols: np.ndarray, modulation: str) -> np.ndarray:
    """Hard decisions: equalized symbols complex ``[k]`` -> bits uint8 ``[k * m]`` (padding kept).

    Minimum-distance decisions, which for these Gray maps are per-axis thresholds: BPSK on the
    projection onto ``1 + j``; QPSK on the signs of I and Q; 16-QAM on the signs and on
    ``|I|, |Q| > 2 / sqrt(10)``.
    """
    s = np.asarray(symbols).ravel()
    re, im = s.real, s.imag
    if modulation == "bpsk":
        return ((re + im) < 0).view(np.uint8)
    m = bits_per_symbol(modulation)  # raises for unknown names
    out = np.empty((s.size, m), np.bool_)
    np.less(re, 0, out=out[:, 0])
    np.less(im, 0, out=out[:, 1])
    if m == 4:
        thr = 2.0 * _S10
        np.greater(np.abs(re), thr, out=out[:, 2])
        np.greater(np.abs(im), thr, out=out[:, 3])
    return out.view(np.uint8).ravel()


def constellation(modulation: str) -> np.ndarray:
    """All ``2^m`` points complex64 ``[2^m]``, point ``i`` carrying the bits of ``i`` MSB first."""
    m = bits_per_symbol(modulation)
    idx = np.arange(1 << m)
    bits = ((idx[:, None] >> np.arange(m - 1, -1, -1)) & 1).astype(np.uint8)
    return modulate(bits.ravel(), modulation)
