"""MIMO block-fading math of the semantic image link, numpy only (the UE and the emulator use it;
``models.lcfsc.mimo_torch`` mirrors it for training and a test keeps the two equal).

Conventions (fixed, documented in docs/image_link.md):

* ``H`` is ``[Nr, Nt]`` complex, entries of unit average power over the channel pool.
* The transmitter sends ``X [Nt, n]``: the latent of ``Nt * n`` complex symbols split into Nt
  streams, stream ``s`` carrying symbols ``s*n .. (s+1)*n - 1`` of the latent in order. Each
  stream has unit average power (``E|x|^2 = 1`` per symbol, as the reference code).
* ``y = H x + w``, ``w ~ CN(0, sigma^2 I)`` with ``sigma^2 = 10^(-SNR/10)``: SNR is the power of
  one stream over the noise power per receive antenna.
* Pilots: ``Nt`` channel uses of the identity (one antenna at a time at unit power), so the
  least-squares estimate is ``H_LS = Y_p``; its error is ``CN(0, sigma^2)`` per entry.
* Receiver: linear MMSE per channel use, ``W = (H^H H + sigma^2 I)^-1 H^H``; the post-equaliser
  SINR of stream ``k`` is ``1 / (sigma^2 [(H^H H + sigma^2 I)^-1]_kk) - 1``.
* Precoding (bundles with ``precoding: svd``): the transmitter sends ``W [I | S]``, ``W`` the
  right singular vectors of its CSI by descending singular value (each column's first entry
  real and >= 0): Nt precoded pilots (DMRS), then the streams, stream 0 on the strongest
  eigenmode. The receiver fits the streams' channel ``H W`` from its own estimate of H and the
  DMRS (:func:`procrustes`) and equalises with it; it never needs to know which CSI the
  transmitter used.
* Real <-> complex: real latent ``z [2L]`` pairs ``(z[2i], z[2i+1])`` into symbol ``i``.
* CSI feedback: each real and imaginary part quantized uniformly with ``bits`` bits over
  ``[-a, a]``, ``a`` = the largest magnitude, sent as a float16 (16 bits) ahead of the values;
  ``16 + 2 Nr Nt bits`` bits in all, MSB first, entries row-major with real before imaginary.
"""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput

SIZES = (2, 4, 8)  # square MIMO sizes the shipped models serve (Nt = Nr)
PRECODINGS = ("none", "svd")


def noise_var(snr_db: np.ndarray | float) -> np.ndarray:
    return np.power(10.0, -np.asarray(snr_db, np.float64) / 10.0)


def check_h(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h)
    if h.ndim == 2:
        h = h[None]
    if h.ndim != 3 or not np.iscomplexobj(h):
        raise InvalidInput(f"H must be complex [B, Nr, Nt], got {h.dtype} {list(h.shape)}")
    if not np.all(np.isfinite(h)):
        raise InvalidInput("H contains NaN or Inf")
    return h.astype(np.complex64, copy=False)


def to_symbols(z: np.ndarray) -> np.ndarray:
    """Real latent ``[B, 2L]`` -> complex ``[B, L]`` (adjacent pairs)."""
    z = np.asarray(z, np.float32)
    if z.shape[-1] % 2:
        raise InvalidInput(f"real latent length {z.shape[-1]} is odd")
    return z.reshape(*z.shape[:-1], -1, 2).view(np.complex64)[..., 0]


def to_real(s: np.ndarray) -> np.ndarray:
    """Complex ``[B, L]`` -> real ``[B, 2L]``."""
    s = np.ascontiguousarray(s, np.complex64)
    return s.view(np.float32).reshape(*s.shape[:-1], -1)


def to_streams(s: np.ndarray, nt: int) -> np.ndarray:
    """Complex ``[B, L]`` -> ``[B, Nt, L / Nt]`` (stream-major split)."""
    if s.shape[-1] % nt:
        raise InvalidInput(f"{s.shape[-1]} symbols do not split into {nt} streams")
    return s.reshape(s.shape[0], nt, -1)


def normalize_power(s: np.ndarray) -> np.ndarray:
    """Scale each latent to unit average symbol power."""
    p = np.mean(np.abs(s) ** 2, axis=-1, keepdims=True)
    return (s / np.sqrt(np.maximum(p, 1e-12))).astype(np.complex64)


def propagate(
    h: np.ndarray, x: np.ndarray, snr_db: np.ndarray | float, rng: np.random.Generator
) -> np.ndarray:
    """``y = H x + w``: ``h [B, Nr, Nt]``, ``x [B, Nt, n]`` -> ``y [B, Nr, n]``."""
    h, x = check_h(h), np.asarray(x, np.complex64)
    if x.ndim != 3 or x.shape[0] != h.shape[0] or x.shape[1] != h.shape[2]:
        raise InvalidInput(f"symbols {list(x.shape)} do not fit H {list(h.shape)} (need [B, Nt, n])")
    var = noise_var(np.broadcast_to(snr_db, (h.shape[0],)))[:, None, None]
    w = rng.standard_normal((*h.shape[:2], x.shape[2], 2)).view(np.complex128)[..., 0]
    y = h @ x + (np.sqrt(var / 2.0) * w).astype(np.complex64)
    return y.astype(np.complex64)


def pilots(nt: int) -> np.ndarray:
    return np.eye(nt, dtype=np.complex64)


def sound(h: np.ndarray, snr_db: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
    """Received pilots ``Y_p = H P + W`` ``[B, Nr, Nt]``."""
    h = check_h(h)
    p = np.broadcast_to(pilots(h.shape[2]), (h.shape[0], h.shape[2], h.shape[2]))
    return propagate(h, p, snr_db, rng)


def ls_estimate(y_p: np.ndarray) -> np.ndarray:
    """Least squares from identity pilots: ``H_LS = Y_p P^-1 = Y_p``."""
    return check_h(y_p)


def mmse(h_e: np.ndarray, y: np.ndarray, snr_db: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Linear MMSE equalisation: ``(x_hat [B, Nt, n], sinr_db [B, Nt])`` from the receiver's
    own estimate ``h_e``."""
    h_e, y = check_h(h_e), np.asarray(y, np.complex64)
    if y.ndim != 3 or y.shape[:2] != h_e.shape[:2]:
        raise InvalidInput(
            f"received symbols {list(y.shape)} do not fit H {list(h_e.shape)} (need [B, Nr, n])"
        )
    b, _, nt = h_e.shape
    var = noise_var(np.broadcast_to(snr_db, (b,)))[:, None, None]
    hh = h_e.conj().transpose(0, 2, 1).astype(np.complex128)
    inv = np.linalg.inv(hh @ h_e + var * np.eye(nt))
    x_hat = inv @ hh @ y
    diag = np.real(np.diagonal(inv, axis1=1, axis2=2))
    sinr = np.maximum(1.0 / np.maximum(var[:, :, 0] * diag, 1e-12) - 1.0, 1e-6)
    return x_hat.astype(np.complex64), (10 * np.log10(sinr)).astype(np.float32)


def svd_precoder(h: np.ndarray) -> np.ndarray:
    """Unitary precoder ``[B, Nt, Nt]`` for transmit CSI ``h [B, Nr, Nt]`` (module doc)."""
    _, _, vh = np.linalg.svd(check_h(h).astype(np.complex128))
    w = vh.conj().transpose(0, 2, 1)
    a = np.abs(w[:, :1, :])
    ph = np.where(a > 1e-12, w[:, :1, :] / np.maximum(a, 1e-12), 1.0)
    return (w * ph.conj()).astype(np.complex64)


def with_dmrs(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``W [I | S]``: ``[B, Nt, Nt + n]`` from precoder ``[B, Nt, Nt]`` and streams ``[B, Nt, n]``."""
    eye = np.broadcast_to(np.eye(w.shape[2], dtype=np.complex64), (s.shape[0], w.shape[2], w.shape[2]))
    return (w @ np.concatenate([eye, s], axis=2)).astype(np.complex64)


def procrustes(h_e: np.ndarray, g_ls: np.ndarray) -> np.ndarray:
    """The streams' channel ``H W`` from the receiver's estimate ``h_e`` of H and the DMRS's LS
    estimate ``g_ls``: the nearest unitary to ``h_e^H g_ls`` (orthogonal Procrustes) applied to
    ``h_e``. Closer to ``H W`` than ``g_ls`` alone (docs/image_link.md)."""
    h_e, g_ls = check_h(h_e).astype(np.complex128), check_h(g_ls).astype(np.complex128)
    u, _, vh = np.linalg.svd(h_e.conj().transpose(0, 2, 1) @ g_ls)
    return (h_e @ (u @ vh)).astype(np.complex64)


def csi_bits(nr: int, nt: int, bits: int) -> int:
    return 16 + 2 * nr * nt * bits


def quantize_h(h: np.ndarray, bits: int) -> tuple[bytes, int]:
    """One ``[Nr, Nt]`` matrix -> (payload bytes, exact bit length); layout in the module doc."""
    h = check_h(h)[0]
    if not 1 <= bits <= 12:
        raise InvalidInput(f"CSI quantizer takes 1..12 bits per real, got {bits}")
    r = to_real(h.reshape(1, -1))[0].astype(np.float64)
    a = float(np.float16(max(np.max(np.abs(r)), 1e-6)))
    levels = 2**bits - 1
    q = np.clip(np.round((r / a + 1.0) / 2.0 * levels), 0, levels).astype(np.int64)
    head = np.unpackbits(np.frombuffer(np.float16(a).tobytes()[::-1], np.uint8))
    body = ((q[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8).ravel()
    allbits = np.concatenate([head, body])
    return np.packbits(allbits).tobytes(), int(allbits.size)


def dequantize_h(payload: bytes, n_bits: int, nr: int, nt: int, bits: int) -> np.ndarray:
    """Inverse of :func:`quantize_h`: ``[Nr, Nt]`` complex64 (mid-rise reconstruction)."""
    want = csi_bits(nr, nt, bits)
    if n_bits != want:
        raise InvalidInput(f"CSI report has {n_bits} bits, {nr}x{nt} at {bits} bits/real needs {want}")
    if len(payload) != (want + 7) // 8:
        raise InvalidInput(f"CSI report has {len(payload)} bytes, {want} bits need {(want + 7) // 8}")
    b = np.unpackbits(np.frombuffer(payload, np.uint8))[:want]
    a = float(np.frombuffer(np.packbits(b[:16]).tobytes()[::-1], np.float16)[0])
    if not np.isfinite(a) or a <= 0:
        raise InvalidInput(f"CSI report scale {a} is not a positive number")
    q = (b[16:].reshape(-1, bits).astype(np.int64) << np.arange(bits - 1, -1, -1)).sum(1)
    r = (q / (2**bits - 1) * 2.0 - 1.0) * a
    return to_symbols(r[None].astype(np.float32))[0].reshape(nr, nt)
