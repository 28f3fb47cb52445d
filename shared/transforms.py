"""Spatial-frequency <-> angular-delay transforms and the real tensor layout fed to networks.

Conventions (every family uses these):

* SF domain: ``H[..., Nt, Nc]`` complex, antennas then subcarriers.
* AD domain: ``A = F_a H F_d^H`` with unitary DFTs: an FFT over antennas (angle) and an
  inverse FFT over subcarriers (delay), both ``norm="ortho"`` so energy is preserved.
  The first ``n_taps`` delay taps are kept (``A[..., Nt, n_taps]``); the rest, which hold
  little energy for delay spreads well below ``Nc`` samples, is dropped.
* Real layout: ``float32[..., 2, Nt, n_taps]`` with real part in channel 0, imaginary in 1.
"""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput

DEFAULT_TAPS = 32


def _check_complex(h: np.ndarray, name: str, min_ndim: int = 2) -> np.ndarray:
    h = np.asarray(h)
    if h.ndim < min_ndim:
        raise InvalidInput(f"{name}: expected at least {min_ndim} dims [..., Nt, N], got shape {h.shape}")
    if not np.iscomplexobj(h):
        raise InvalidInput(f"{name}: expected a complex array, got dtype {h.dtype}")
    return h


def sf_to_ad(h_sf: np.ndarray, n_taps: int = DEFAULT_TAPS) -> np.ndarray:
    """Spatial-frequency -> cropped angular-delay.

    :input h_sf: ``[..., Nt, Nc]`` complex
    :output: ``[..., Nt, n_taps]`` complex64

    >>> h = np.ones((4, 8), np.complex64)
    >>> sf_to_ad(h, n_taps=2).shape
    (4, 2)
    """
    h = _check_complex(h_sf, "h_sf")
    nc = h.shape[-1]
    if not 0 < n_taps <= nc:
        raise InvalidInput(f"n_taps must be in 1..{nc}, got {n_taps}")
    a = np.fft.fft(h, axis=-2, norm="ortho")
    d = np.fft.ifft(a, axis=-1, norm="ortho")
    return d[..., :n_taps].astype(np.complex64)


def ad_to_sf(h_ad: np.ndarray, n_subcarriers: int) -> np.ndarray:
    """Cropped angular-delay -> spatial-frequency, zero-padding the dropped delay taps.

    :input h_ad: ``[..., Nt, n_taps]`` complex
    :output: ``[..., Nt, n_subcarriers]`` complex64
    """
    h = _check_complex(h_ad, "h_ad")
    taps = h.shape[-1]
    if n_subcarriers < taps:
        raise InvalidInput(f"n_subcarriers ({n_subcarriers}) < number of delay taps ({taps})")
    pad = np.zeros(h.shape[:-1] + (n_subcarriers,), dtype=np.complex128)
    pad[..., :taps] = h
    d = np.fft.fft(pad, axis=-1, norm="ortho")
    return np.fft.ifft(d, axis=-2, norm="ortho").astype(np.complex64)


def truncation_energy(h_sf: np.ndarray, n_taps: int = DEFAULT_TAPS) -> np.ndarray:
    """Fraction of each sample's energy kept by cropping to ``n_taps`` delay taps: ``[...]``."""
    h = _check_complex(h_sf, "h_sf")
    kept = np.sum(np.abs(sf_to_ad(h, n_taps)) ** 2, axis=(-2, -1))
    total = np.sum(np.abs(h) ** 2, axis=(-2, -1))
    return kept / np.maximum(total, 1e-30)


def complex_to_real(h: np.ndarray) -> np.ndarray:
    """``[..., Nt, T]`` complex -> ``[..., 2, Nt, T]`` float32 (real, imag)."""
    h = _check_complex(h, "h")
    return np.stack([h.real, h.imag], axis=-3).astype(np.float32)


def real_to_complex(x: np.ndarray) -> np.ndarray:
    """``[..., 2, Nt, T]`` float -> ``[..., Nt, T]`` complex64."""
    x = np.asarray(x)
    if x.ndim < 3 or x.shape[-3] != 2:
        raise InvalidInput(f"expected [..., 2, Nt, T] real layout, got shape {x.shape}")
    return (x[..., 0, :, :] + 1j * x[..., 1, :, :]).astype(np.complex64)
