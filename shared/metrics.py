"""The one implementation of the project's metrics (definitions in docs/metrics.md).

Arrays are complex ``[..., Nt, N]``: antennas then subcarriers (SF) or delay taps (AD).
Per-sample values come back as ``[...]``; the ``*_db``/``mean_*`` helpers average over
samples *before* taking the log, as the NMSE definition E[.] requires.
"""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput

_EPS = 1e-30


def _pair(h: np.ndarray, h_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(h)
    h_hat = np.asarray(h_hat)
    if h.shape != h_hat.shape:
        raise InvalidInput(f"shape mismatch: truth {h.shape} vs estimate {h_hat.shape}")
    if h.ndim < 2:
        raise InvalidInput(f"expected [..., Nt, N], got shape {h.shape}")
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(h_hat))):
        raise InvalidInput("NaN or Inf in metric input")
    return h.astype(np.complex128), h_hat.astype(np.complex128)


def nmse(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """Per-sample ``||H - H^||_F^2 / ||H||_F^2`` (linear): ``[...]``."""
    h, h_hat = _pair(h, h_hat)
    err = np.sum(np.abs(h - h_hat) ** 2, axis=(-2, -1))
    return err / np.maximum(np.sum(np.abs(h) ** 2, axis=(-2, -1)), _EPS)


def nmse_normalized(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """Per-sample ``|| H / ||H|| - H^ / ||H^|| ||_F^2`` (linear, in [0, 4]): the NMSE of a
    scale-free codec that reconstructs only the channel's direction (the multi-modal family's
    eq. 6). Equals :func:`nmse` when ``H^`` has the norm of ``H`` and the right phase."""
    h, h_hat = _pair(h, h_hat)

    def unit(x: np.ndarray) -> np.ndarray:
        n = np.sqrt(np.sum(np.abs(x) ** 2, axis=(-2, -1), keepdims=True))
        return x / np.maximum(n, _EPS)

    return np.sum(np.abs(unit(h) - unit(h_hat)) ** 2, axis=(-2, -1))


def nmse_db(h: np.ndarray, h_hat: np.ndarray) -> float:
    """``10 log10 E[||H - H^||^2 / ||H||^2]`` over all leading dims.

    >>> h = np.ones((1, 2, 2), complex)
    >>> round(nmse_db(h, 0.9 * h), 1)
    -20.0
    """
    return float(10.0 * np.log10(max(float(np.mean(nmse(h, h_hat))), _EPS)))


def _per_subcarrier_cos(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """``|h^_n^H h_n| / (||h^_n|| ||h_n||)`` per subcarrier: ``[..., N]``."""
    h, h_hat = _pair(h, h_hat)
    inner = np.abs(np.sum(np.conj(h_hat) * h, axis=-2))
    norms = np.linalg.norm(h, axis=-2) * np.linalg.norm(h_hat, axis=-2)
    return inner / np.maximum(norms, _EPS)


def rho(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """Cosine similarity averaged over subcarriers, per sample: ``[...]`` in [0, 1]."""
    return np.mean(_per_subcarrier_cos(h, h_hat), axis=-1)


def sgcs(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """Squared generalized cosine similarity (rank 1), averaged over subcarriers: ``[...]``."""
    return np.mean(_per_subcarrier_cos(h, h_hat) ** 2, axis=-1)


def bf_gain(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """Normalized beamforming gain ``|h_n^H p_n|^2 / ||h_n||^2``, ``p_n = h^_n/||h^_n||``.

    Averaged over subcarriers per sample; 1 is ideal (matched filter on the true channel).
    For one receive antenna this equals SGCS; both are kept because the fusion family
    reports gain relative to the ideal and SGCS is the 3GPP name.
    """
    return sgcs(h, h_hat)


def ber(bits_tx: np.ndarray, bits_rx: np.ndarray) -> float:
    """Bit error rate between two equal-length 0/1 arrays."""
    a = np.asarray(bits_tx).astype(np.uint8).ravel()
    b = np.asarray(bits_rx).astype(np.uint8).ravel()
    if a.shape != b.shape:
        raise InvalidInput(f"bit arrays differ in length: {a.size} vs {b.size}")
    return float(np.mean(a != b)) if a.size else 0.0


def summary(h: np.ndarray, h_hat: np.ndarray) -> dict[str, float]:
    """Mean NMSE (dB), rho, SGCS over a batch in one dict (domain is the caller's)."""
    return {
        "nmse_db": nmse_db(h, h_hat),
        "rho": float(np.mean(rho(h, h_hat))),
        "sgcs": float(np.mean(sgcs(h, h_hat))),
    }
