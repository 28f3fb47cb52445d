"""CRCs of 3GPP TS 38.212 section 5.1 (CRC6, CRC11, CRC16, CRC24A), on bit arrays.

TS 38.212 5.1: the parity bits ``p_0..p_{L-1}`` are chosen so that the codeword polynomial
``a_0 D^{A+L-1} + ... + a_{A-1} D^L + p_0 D^{L-1} + ... + p_{L-1}`` has remainder 0 modulo
the generator, i.e. the register starts at 0, bits enter MSB (first bit) first, there is no
reflection and no final XOR. Generators (hex = coefficients below ``D^L``):

=======  ===============================================================  ==========
name     g(D)                                                             hex
=======  ===============================================================  ==========
crc6     D^6 + D^5 + 1                                                    0x21
crc11    D^11 + D^10 + D^9 + D^5 + 1                                      0x621
crc16    D^16 + D^12 + D^5 + 1                                            0x1021
crc24a   D^24 + D^23 + D^18 + D^17 + D^14 + D^11 + D^10 + D^7 + D^6      0x864CFB
         + D^5 + D^4 + D^3 + D + 1
=======  ===============================================================  ==========

With a zero initial register, leading zero bits do not change the remainder, so an
``A``-bit payload is left-padded to whole bytes and run through a 256-entry table.

>>> hex(crc_of_bytes(b"123456789", "crc24a"))  # CRC-24/LTE-A catalogue check value
'0xcde703'
>>> cw = attach(np.array([1, 0, 1, 1], np.uint8), "crc16")
>>> cw.shape, bool(check(cw, "crc16"))
((20,), True)
"""

from __future__ import annotations

from functools import cache

import numpy as np

from shared.errors import InvalidInput

#: name -> (length L, generator without the D^L term)
CRC_POLYS: dict[str, tuple[int, int]] = {
    "crc6": (6, 0x21),
    "crc11": (11, 0x621),
    "crc16": (16, 0x1021),
    "crc24a": (24, 0x864CFB),
}


def crc_length(name: str | None) -> int:
    """Number of parity bits ``L`` (0 for ``None``)."""
    if name is None:
        return 0
    return _spec(name)[0]


def _spec(name: str) -> tuple[int, int]:
    try:
        return CRC_POLYS[name]
    except KeyError:
        raise InvalidInput(f"unknown CRC {name!r}; known: {sorted(CRC_POLYS)}") from None


@cache
def _table(name: str) -> tuple[int, int, tuple[int, ...]]:
    """(register width W >= 8, shift, table) for the byte-wise MSB-first division."""
    length, poly = _spec(name)
    # Widths below 8 (CRC6) run in an 8-bit register with the generator shifted up; the
    # remainder is shifted back down at the end.
    shift = max(0, 8 - length)
    width, poly = length + shift, poly << shift
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        reg = byte << (width - 8)
        for _ in range(8):
            reg = ((reg << 1) ^ poly) if reg & top else (reg << 1)
        table.append(reg & mask)
    return width, shift, tuple(table)


def _remainder_of_bytes(data: bytes, name: str) -> int:
    width, shift, table = _table(name)
    mask, hi = (1 << width) - 1, width - 8
    reg = 0
    for byte in data:
        reg = ((reg << 8) & mask) ^ table[((reg >> hi) ^ byte) & 0xFF]
    return reg >> shift


def crc_of_bytes(data: bytes, name: str) -> int:
    """CRC register after ``data`` (bytes, MSB of each byte first), as an int."""
    return _remainder_of_bytes(bytes(data), name)


def _as_bits(bits: np.ndarray) -> np.ndarray:
    b = np.asarray(bits)
    if b.ndim != 1:
        raise InvalidInput(f"CRC input must be a 1-D bit array, got shape {b.shape}")
    if b.dtype == np.bool_:
        return b.view(np.uint8)
    if b.dtype != np.uint8 and b.size and b.min() < 0:
        raise InvalidInput("CRC input must hold only 0 and 1")
    b = b.astype(np.uint8, copy=False)
    if b.size and np.any(b > 1):
        raise InvalidInput("CRC input must hold only 0 and 1")
    return b


def remainder(bits: np.ndarray, name: str) -> int:
    """Remainder of ``bits(D) * D^L`` modulo the generator (the parity of a payload).

    :input bits: uint8 ``[n]`` of 0/1, first bit = highest power.
    :output: int in ``[0, 2^L)``.
    """
    return _remainder(_as_bits(bits), name)


def _remainder(b: np.ndarray, name: str) -> int:
    pad = (-b.size) % 8  # leading zeros leave the remainder unchanged (zero initial register)
    if pad:
        b = np.concatenate([np.zeros(pad, np.uint8), b])
    return _remainder_of_bytes(np.packbits(b).tobytes(), name)


def parity(bits: np.ndarray, name: str) -> np.ndarray:
    """The ``L`` parity bits of a payload: uint8 ``[L]``, ``p_0`` (highest power) first."""
    return _parity(_as_bits(bits), name)


def _parity(b: np.ndarray, name: str) -> np.ndarray:
    length = _spec(name)[0]
    r = _remainder(b, name)
    return ((r >> np.arange(length - 1, -1, -1)) & 1).astype(np.uint8)


def attach(bits: np.ndarray, name: str | None) -> np.ndarray:
    """Payload uint8 ``[A]`` -> codeword uint8 ``[A + L]`` (parity appended; unchanged for None)."""
    b = _as_bits(bits)
    if name is None:
        return b.copy()
    return np.concatenate([b, _parity(b, name)])


def check(codeword: np.ndarray, name: str) -> bool:
    """True when a codeword uint8 ``[A + L]`` has a zero syndrome (no error detected).

    The codeword polynomial is divisible by g(D) exactly when the parity recomputed over the
    first ``A`` bits equals the last ``L`` bits.
    """
    c = _as_bits(codeword)
    length = _spec(name)[0]
    if c.size < length:
        raise InvalidInput(f"codeword of {c.size} bits is shorter than the {length}-bit {name}")
    return bool(np.array_equal(_parity(c[: c.size - length], name), c[c.size - length :]))
