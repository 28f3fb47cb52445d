"""Random multipath ULA channels in numpy, CDL-C-shaped, for tests and quick benchmarks of the
codebook when no dataset file is at hand. Not a replacement for the Sionna generator
(``datagen/``): no antenna patterns, no polarization, angles drawn at random per sample.

Each sample: the 24 clusters of CDL-C (TR 38.901 Table 7.7.1-3 normalized delays and powers)
scaled to a delay spread, each with a random departure angle and ``rays`` rays spread by
``asd_deg`` around it, random phases. ``H[a, k] = sum sqrt(P/M) e^{j phi} e^{-j pi a sin(theta)}
e^{-j 2 pi f_k tau}`` with ``f_k = (k - Nc//2) * scs``, normalized to unit mean power per entry.
"""

from __future__ import annotations

import numpy as np

# TR 38.901 Table 7.7.1-3 (CDL-C): normalized delays and powers (dB).
CDL_C_DELAYS = np.array([0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935, 0.8213,
                         0.9336, 1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065,
                         6.6374, 7.0427, 8.6523])
CDL_C_POWERS_DB = np.array([-4.4, -1.2, -3.5, -5.2, -2.5, 0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1,
                            -6.8, -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16, -15.7, -21.6, -22.8])


def steering(n_antennas: int, theta: np.ndarray) -> np.ndarray:
    """Half-wavelength ULA response ``e^{-j pi a sin(theta)}``: ``[..., Nt]``."""
    a = np.arange(n_antennas)
    return np.exp(-1j * np.pi * np.sin(np.asarray(theta))[..., None] * a)


def multipath_sf(n: int, seed: int = 0, n_antennas: int = 32, n_subcarriers: int = 667,
                 scs: float = 15e3, delay_spread: float = 300e-9, rays: int = 20,
                 asd_deg: float = 2.0, sector_deg: float = 60.0) -> np.ndarray:
    """``n`` CDL-C-shaped channels, complex64 ``[n, Nt, Nc]`` (unit mean power per entry)."""
    rng = np.random.default_rng(seed)
    f = (np.arange(n_subcarriers) - n_subcarriers // 2) * scs
    tau = CDL_C_DELAYS * delay_spread
    p = 10 ** (CDL_C_POWERS_DB / 10)
    p = p / p.sum()
    out = np.empty((n, n_antennas, n_subcarriers), np.complex64)
    delay_term = np.exp(-2j * np.pi * tau[:, None] * f[None, :])  # [C, Nc]
    for s in range(n):
        aod = np.deg2rad(rng.uniform(-sector_deg, sector_deg, size=len(tau)))
        theta = aod[:, None] + np.deg2rad(asd_deg) * rng.standard_normal((len(tau), rays))
        g = np.sqrt(p[:, None] / rays) * np.exp(2j * np.pi * rng.random((len(tau), rays)))
        spatial = np.einsum("cr,cra->ca", g, steering(n_antennas, theta))  # [C, Nt]
        out[s] = (spatial.T @ delay_term).astype(np.complex64)
    return out


def single_beam_sf(m: int, o1: int = 4, n_antennas: int = 32, n_subcarriers: int = 667,
                   gain: complex = 1.0) -> np.ndarray:
    """A channel that is exactly one DFT beam of the O1-oversampled grid, flat in frequency,
    oriented so that its ideal precoder ``conj(h)/||h||`` is grid beam ``m``: ``[Nt, Nc]``."""
    a = np.arange(n_antennas)
    h = gain * np.exp(-2j * np.pi * a * m / (o1 * n_antennas))
    return np.repeat(h[:, None], n_subcarriers, axis=1).astype(np.complex64)
