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


# --------------------------------------------------------------------------- images (image link)

#: MS-SSIM scale weights: the first three of Wang, Simoncelli & Bovik (2003), renormalized to sum
#: to 1. Three scales, because a 64 x 64 image halved four times is smaller than the window.
MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001]) / (0.0448 + 0.2856 + 0.3001)


def _image_pair(img: np.ndarray, img_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[..., H, W, C]`` images (any real dtype) as float64, checked."""
    a, b = np.asarray(img), np.asarray(img_hat)
    if a.shape != b.shape:
        raise InvalidInput(f"shape mismatch: truth {a.shape} vs reconstruction {b.shape}")
    if a.ndim < 3:
        raise InvalidInput(f"expected images [..., H, W, C], got shape {a.shape}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InvalidInput("NaN or Inf in metric input")
    return a, b


def psnr(img: np.ndarray, img_hat: np.ndarray, peak: float = 255.0) -> np.ndarray:
    """Per-image ``10 log10(peak^2 / MSE)`` (dB) over all pixels and channels: ``[...]``.

    The MSE is floored at 1e-10, so identical images give a large finite value, not inf.

    >>> a = np.zeros((1, 4, 4, 3), np.uint8)
    >>> round(float(psnr(a, a + 1)[0]), 2)
    48.13
    """
    a, b = _image_pair(img, img_hat)
    mse = np.mean((a - b) ** 2, axis=(-3, -2, -1))
    return 10.0 * np.log10(peak**2 / np.maximum(mse, 1e-10))


def _gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _blur(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of ``[N, H, W]`` with the 1-D window ``g`` on both axes."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = sliding_window_view(x, g.size, axis=-1) @ g
    return sliding_window_view(x, g.size, axis=-2) @ g


def _ssim_cs(x: np.ndarray, y: np.ndarray, g: np.ndarray, peak: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean SSIM and mean contrast-structure term of ``[N, H, W]`` planes: ``([N], [N])``."""
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx**2
    syy = _blur(y * y, g) - my**2
    sxy = _blur(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return np.mean(lum * cs, axis=(-2, -1)), np.mean(cs, axis=(-2, -1))


def ms_ssim(
    img: np.ndarray,
    img_hat: np.ndarray,
    peak: float = 255.0,
    window: int = 7,
    sigma: float = 1.5,
    weights: np.ndarray = MS_SSIM_WEIGHTS,
) -> np.ndarray:
    """Per-image multi-scale SSIM of ``[..., H, W, C]`` images: ``[...]`` in [0, 1].

    Wang et al. (2003), sized for 64 x 64 images: 3 scales (``len(weights)``), a 7 x 7 Gaussian
    window of sigma 1.5 applied without padding, K1 = 0.01, K2 = 0.03, ``peak`` the data range.
    Between scales the image is halved by 2 x 2 averaging. The contrast-structure terms of the
    finer scales and the full SSIM of the coarsest are clipped at 0 (so the fractional powers
    are defined), raised to the weights and multiplied; computed per colour channel, then
    averaged over the channels. Each side must stay >= ``window`` at the coarsest scale
    (``window * 2^(scales-1)`` = 28 pixels here).

    >>> a = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    >>> [round(float(v), 6) for v in ms_ssim(a, a)]
    [1.0, 1.0]
    """
    a, b = _image_pair(img, img_hat)
    lead, (h, w, c) = a.shape[:-3], a.shape[-3:]
    scales = len(weights)
    need = window * 2 ** (scales - 1)
    if min(h, w) < need:
        raise InvalidInput(f"MS-SSIM with {scales} scales and a {window}x{window} window needs images of "
                           f"at least {need}x{need}, got {h}x{w}")
    # [..., H, W, C] -> [N, H, W] planes, one per image and channel.
    x = np.moveaxis(a.reshape(-1, h, w, c), -1, 1).reshape(-1, h, w)
    y = np.moveaxis(b.reshape(-1, h, w, c), -1, 1).reshape(-1, h, w)
    g = _gaussian(window, sigma)
    val = np.ones(x.shape[0])
    for s in range(scales):
        ssim, cs = _ssim_cs(x, y, g, peak)
        term = ssim if s == scales - 1 else cs
        val *= np.maximum(term, 0.0) ** weights[s]
        if s < scales - 1:
            hh, ww = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
            x = x[:, :hh, :ww].reshape(x.shape[0], hh // 2, 2, ww // 2, 2).mean(axis=(2, 4))
            y = y[:, :hh, :ww].reshape(y.shape[0], hh // 2, 2, ww // 2, 2).mean(axis=(2, 4))
    return val.reshape(*lead, c).mean(axis=-1)
