"""Variable-rate thermometer quantization, numpy side: the UE twin and the bit stream (no torch).

Paper 000, Sec. III-A/B. Feature ``z_i`` has ``K = 2^Bmax - 1`` ordered boundaries
``b_i^(1) <= ... <= b_i^(K)`` (trained by :mod:`models.multimodal.quantizer`). At ``B_i`` bits it
uses every ``alpha_i = 2^(Bmax - B_i)``-th boundary (eq. 16); the report carries the level
``l_i`` = number of those boundaries that ``z_i`` exceeds, in ``B_i`` bits, MSB first (eq. 17).

The BS rebuilds the K-entry thermometer vector (eq. 18): entry ``k`` (1-based) is ``+1`` for
``k <= l alpha``, ``-1`` for ``k >= (l + 1) alpha``, ``0`` (unknown) in between (``alpha - 1``
entries). Its sum ``z(s)_i = 1^T ell_i`` (eq. 15), the decoder's input, takes disjoint value sets
at 1, 2 and 3 bits (eq. 21: {+-4}; {+-2, +-6}; odd values), so the decoder needs no side
information on the rate.

Ties: ``z == b`` counts as not exceeded (``sign(0) := -1``), here and on the torch path.
This module must stay torch-free (the UE side imports it).
"""

from __future__ import annotations

import numpy as np

BMAX = 3


def allocate_bits(b: int, n_features: int = 48, bmax: int = BMAX, per_token: int = 4) -> np.ndarray:
    """Bits per feature for a total of ``b`` bits, ``int64 [n_features]`` summing to ``b``.

    Every feature gets 1 bit; the ``b - n_features`` extra bits go in a FIXED order, one bit per
    feature per round: round 1 gives the 2nd bit, round 2 the 3rd, ... Within a round features
    are taken channel-major over the tokens (feature ``i`` is channel ``i % per_token`` of token
    ``i // per_token``): channel 0 of every token, then channel 1 of every token, ... so a
    partial round spreads its bits evenly over the channel's tokens (regions of the CSI) instead
    of favouring the first tokens. Monotone: ``allocate_bits(b + 1) >= allocate_bits(b)``.
    """
    lo, hi = n_features, n_features * bmax
    if not lo <= int(b) <= hi:
        raise ValueError(f"bit budget {b} outside [{lo}, {hi}] (n_features={n_features}, bmax={bmax})")
    if n_features % per_token:
        raise ValueError(f"n_features {n_features} is not a multiple of per_token {per_token}")
    order = np.arange(n_features).reshape(-1, per_token).T.reshape(-1)  # channel-major
    bits = np.ones(n_features, dtype=np.int64)
    extra = int(b) - n_features
    full, part = divmod(extra, n_features)
    bits += full
    bits[order[:part]] += 1
    return bits


def _check_bits(bits: np.ndarray, n: int, bmax: int) -> np.ndarray:
    bits = np.asarray(bits, dtype=np.int64)
    if bits.shape != (n,) or bits.min() < 1 or bits.max() > bmax:
        raise ValueError(f"bits must be [{n}] ints in [1, {bmax}], got shape {bits.shape}")
    return bits


def used_boundaries(bits: np.ndarray, bmax: int = BMAX) -> np.ndarray:
    """``bool [N, 2^bmax - 1]``: boundary ``k`` (0-based) is used at ``B_i`` bits iff
    ``(k + 1) % alpha_i == 0`` (eq. 16)."""
    alpha = 2 ** (bmax - np.asarray(bits, dtype=np.int64))
    k = np.arange(1, 2**bmax)
    return k[None, :] % alpha[:, None] == 0


def levels_from_features(z: np.ndarray, boundaries: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """UE quantization: ``z float32 [B, N]``, ``boundaries float32 [N, K]`` (ordered), ``bits [N]``
    -> ``int64 [B, N]`` levels, the number of used boundaries that ``z`` exceeds (``< 2^B_i``)."""
    z = np.asarray(z, dtype=np.float32)
    boundaries = np.asarray(boundaries, dtype=np.float32)
    n, k = boundaries.shape
    bmax = int(np.log2(k + 1))
    bits = _check_bits(bits, n, bmax)
    if z.ndim != 2 or z.shape[1] != n:
        raise ValueError(f"z must be [B, {n}], got {z.shape}")
    used = used_boundaries(bits, bmax)
    return ((z[:, :, None] > boundaries[None]) & used[None]).sum(-1).astype(np.int64)


def thermometer_from_levels(levels: np.ndarray, bits: np.ndarray, bmax: int = BMAX) -> np.ndarray:
    """BS side: levels ``[B, N]`` at ``bits [N]`` -> thermometer ``float32 [B, N, 2^bmax - 1]``
    (``+1`` exceeded, ``-1`` not, ``0`` unknown; the rule in the module doc)."""
    levels = np.asarray(levels, dtype=np.int64)
    bits = _check_bits(bits, levels.shape[-1], bmax)
    alpha = (2 ** (bmax - bits))[None, :, None]
    k = np.arange(1, 2**bmax)[None, None, :]
    lv = levels[:, :, None]
    return np.where(k <= lv * alpha, 1.0, np.where(k >= (lv + 1) * alpha, -1.0, 0.0)).astype(np.float32)


def _bit_mask(bits: np.ndarray, bmax: int) -> np.ndarray:
    """``bool [N, bmax]``: which of a level's ``bmax`` MSB-first bit positions are sent."""
    return np.arange(bmax)[None, :] >= (bmax - bits)[:, None]


def pack_levels(levels: np.ndarray, bits: np.ndarray, bmax: int = BMAX) -> tuple[bytes, int]:
    """Levels ``[B, N]`` (or one report ``[N]``) -> ``(bytes, nbits)``: each level in ``B_i``
    bits MSB-first, features in index order, reports back to back, zero-padded to a byte."""
    levels = np.atleast_2d(np.asarray(levels, dtype=np.int64))
    bits = _check_bits(bits, levels.shape[1], bmax)
    if levels.min(initial=0) < 0 or (levels >= (1 << bits)[None]).any():
        raise ValueError("a level does not fit its feature's bit count")
    shifts = np.arange(bmax - 1, -1, -1)
    all_bits = (levels[:, :, None] >> shifts) & 1  # [B, N, bmax] MSB first
    stream = all_bits[:, _bit_mask(bits, bmax)].astype(np.uint8)  # [B, sum(bits)]
    return np.packbits(stream.reshape(-1)).tobytes(), int(stream.size)


def unpack_levels(data: bytes, nbits: int, bits: np.ndarray, bmax: int = BMAX) -> np.ndarray:
    """Inverse of :func:`pack_levels`: ``int64 [nbits / sum(bits), N]`` levels."""
    bits = _check_bits(bits, len(bits), bmax)
    per = int(bits.sum())
    if nbits % per or len(data) != -(-nbits // 8):
        raise ValueError(f"{len(data)} bytes / {nbits} bits do not hold whole {per}-bit reports")
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=nbits).reshape(-1, per)
    all_bits = np.zeros((stream.shape[0], len(bits), bmax), dtype=np.int64)
    all_bits[:, _bit_mask(bits, bmax)] = stream
    return all_bits @ (1 << np.arange(bmax - 1, -1, -1))
