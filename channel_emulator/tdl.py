"""3GPP TR 38.901 (v16.1) section 7.7.2 tapped-delay-line power delay profiles TDL-A/B/C.

Transcribed from Tables 7.7.2-1 (TDL-A), 7.7.2-2 (TDL-B) and 7.7.2-3 (TDL-C): normalized delays
(multiply by the desired RMS delay spread) and tap powers in dB. All three are NLOS profiles
whose taps are Rayleigh. ``tests/test_channel_fading.py`` checks these tables against the
copies shipped with Sionna when it is installed.
"""

from __future__ import annotations

import numpy as np

#: profile -> (normalized delays, powers in dB)
TDL_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "A": (
        (0.0000, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375, 1.8978, 2.2242,
         2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966, 5.0066, 5.3043, 9.6586),
        (-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7,
         -12.4, -15.2, -10.8, -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7),
    ),
    "B": (
        (0.0000, 0.1072, 0.2155, 0.2095, 0.2870, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697, 0.5700, 0.5283,
         1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187, 4.1067, 4.2790, 4.7834),
        (0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0,
         -4.8, -5.7, -7.5, -1.9, -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3),
    ),
    "C": (
        (0.0000, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935, 0.8213, 0.9336,
         1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065, 6.6374, 7.0427, 8.6523),
        (-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1,
         -5.1, -6.8, -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8),
    ),
}


def tdl_taps(profile: str, delay_spread_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Tap delays float64 ``[L]`` (seconds) and linear powers float64 ``[L]`` summing to 1.

    Normalizing the total power makes ``E|H(f)|^2 = 1`` on every subcarrier, so the TDL modes
    keep the SNR definition of ``LinkConfig``.
    """
    delays, powers_db = TDL_PROFILES[profile]
    p = 10.0 ** (np.asarray(powers_db) / 10.0)
    return np.asarray(delays) * delay_spread_s, p / p.sum()


def rms_delay_spread(delays: np.ndarray, powers: np.ndarray) -> float:
    """RMS delay spread of a power delay profile (same unit as ``delays``)."""
    p = np.asarray(powers) / np.sum(powers)
    mean = float(np.sum(p * delays))
    return float(np.sqrt(np.sum(p * (np.asarray(delays) - mean) ** 2)))
