"""Channel realizations: shapes, power normalization, block fading, Rician K, the TDL profiles."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from channel_emulator.config import LinkConfig
from channel_emulator.fading import draw_channel, subcarrier_offsets
from channel_emulator.simo import apply_simo, draw_noise
from channel_emulator.tdl import TDL_PROFILES, rms_delay_spread, tdl_taps

MODES = ["awgn", "rayleigh", "rician", "tdl-a", "tdl-b", "tdl-c"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("block", [True, False])
def test_shape_dtype_and_unit_power(mode, block):
    cfg = LinkConfig(mode=mode, n_rx=4, block_fading=block, rician_k_db=3)
    gen = np.random.default_rng(0)
    hs = np.stack([draw_channel(cfg, 24, gen) for _ in range(400)])
    assert hs.shape == (400, 24, 4) and hs.dtype == np.complex64
    assert abs(np.mean(np.abs(hs) ** 2) - 1.0) < 0.06
    if block and mode in ("rayleigh", "rician"):
        assert np.all(hs == hs[:, :1])  # one draw per report
    if not block and mode != "awgn":
        assert not np.allclose(hs[0, 0], hs[0, 1])


def test_rician_large_k_is_unit_modulus_and_small_k_is_rayleigh_like():
    gen = np.random.default_rng(1)
    h = draw_channel(LinkConfig(mode="rician", rician_k_db=50, n_rx=16), 8, gen)
    np.testing.assert_allclose(np.abs(h), 1.0, atol=0.01)
    weak = LinkConfig(mode="rician", rician_k_db=-40, n_rx=16)
    h = np.stack([draw_channel(weak, 1, gen) for _ in range(2000)])
    # Rayleigh: |h|^2 is exponential, so E|h|^4 = 2 (E|h|^2)^2; a unit-modulus LOS would give 1.
    assert abs(np.mean(np.abs(h) ** 4) - 2.0) < 0.15


def test_tdl_tables_have_unit_rms_delay_spread():
    # TR 38.901 normalizes the TDL delays to an RMS delay spread of 1: a transcription check.
    for profile in "ABC":
        delays, powers = tdl_taps(profile, 1.0)
        assert abs(rms_delay_spread(delays, powers) - 1.0) < 1e-3
        assert abs(powers.sum() - 1.0) < 1e-12
    assert [len(TDL_PROFILES[p][0]) for p in "ABC"] == [23, 23, 24]


def test_tdl_tables_match_the_copies_shipped_with_sionna():
    spec = importlib.util.find_spec("sionna")  # locates files only; sionna (and torch) not imported
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sionna not installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "phy/channel/tr38901/models/v16_1"
    for profile, (delays, powers) in TDL_PROFILES.items():
        ref = json.loads((root / f"TDL-{profile}.json").read_text())
        assert ref["los"] == 0
        np.testing.assert_allclose(delays, ref["delays"], atol=1e-9)
        np.testing.assert_allclose(powers, ref["powers"], atol=1e-9)


def test_tdl_frequency_correlation_follows_the_power_delay_profile():
    # E[H(f) H*(f + df)] = sum_l p_l exp(j 2 pi df tau_l) for the frequency response on subcarriers.
    cfg = LinkConfig(mode="tdl-c", n_rx=8, delay_spread_ns=300, subcarrier_spacing_khz=30)
    gen = np.random.default_rng(2)
    h = np.concatenate([draw_channel(cfg, 32, gen) for _ in range(600)], axis=1)  # [32, 600 * 8]
    tau, p = tdl_taps("C", 300e-9)
    f = subcarrier_offsets(32, 30e3)
    for lag in (1, 4, 16, 31):
        emp = np.mean(h[0] * np.conj(h[lag]))
        theory = np.sum(p * np.exp(2j * np.pi * (f[lag] - f[0]) * tau))
        assert abs(emp - theory) < 0.06, (lag, emp, theory)
    # Frequency selective: 930 kHz apart, a 300 ns TDL-C channel has lost a quarter of its correlation.
    assert abs(np.mean(h[0] * np.conj(h[31]))) < 0.85


def test_apply_simo_is_exact_without_noise_and_combines_with_mrc():
    gen = np.random.default_rng(3)
    cfg = LinkConfig(mode="rayleigh", n_rx=6, block_fading=False)
    x = np.exp(2j * np.pi * gen.random(10)).astype(np.complex64)
    h = draw_channel(cfg, 10, gen)
    out = apply_simo(x, h, np.zeros((10, 6), np.complex64), n0=0.5)
    np.testing.assert_allclose(out.x_hat, x, rtol=1e-5, atol=1e-5)
    g = np.sum(np.abs(h) ** 2, axis=1)
    np.testing.assert_allclose(out.gain, g, rtol=1e-5)
    np.testing.assert_allclose(out.post_snr_db, 10 * np.log10(g / 0.5), rtol=1e-5)
    assert out.noise_energy == 0.0
    noise = draw_noise(10, 6, 0.5, gen)
    assert noise.shape == (10, 6) and noise.dtype == np.complex64
