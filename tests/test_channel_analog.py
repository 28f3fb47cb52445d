"""Analog path: SNR definition, MRC gain, Rician -> AWGN, power normalization, ideal mode, checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from channel_emulator.analog import effective_snr_db, transmit_analog
from channel_emulator.config import LinkConfig
from channel_emulator.rng import ReportRng
from shared.errors import InvalidInput, TooLarge


def unit_symbols(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(k) + 1j * rng.standard_normal(k)) / np.sqrt(2)).astype(np.complex64)


def measured_snr_db(cfg: LinkConfig, k: int = 32, reports: int = 400, seed: int = 0) -> tuple[float, float]:
    """(post-MRC SNR measured from the symbol errors, mean reported effective SNR) over reports."""
    sig = err = 0.0
    eff = []
    for s in range(reports):
        x = unit_symbols(k, s)
        x /= np.sqrt(np.mean(np.abs(x) ** 2))  # unit power, so errors are in SNR units
        r = transmit_analog(x, cfg, ReportRng(seed, 0, s))
        sig += float(np.sum(np.abs(x) ** 2))
        err += float(np.sum(np.abs(r.symbols_hat - x) ** 2))
        eff.append(r.effective_snr_db)
    return 10 * math.log10(sig / err), float(np.mean(eff))


def test_snr_definition_one_antenna_awgn():
    cfg = LinkConfig(mode="awgn", snr_db=7.0, n_rx=1)
    x = unit_symbols(50_000)
    x /= np.sqrt(np.mean(np.abs(x) ** 2))
    r = transmit_analog(x, cfg, ReportRng(1, 0, 0))
    snr = 10 * math.log10(np.mean(np.abs(x) ** 2) / np.mean(np.abs(r.symbols_hat - x) ** 2))
    assert abs(snr - 7.0) < 0.05
    assert r.effective_snr_db == pytest.approx(7.0, abs=1e-4)
    assert abs(r.measured_snr_db - 7.0) < 0.05
    np.testing.assert_allclose(r.per_symbol_snr_db, 7.0, atol=1e-4)


@pytest.mark.parametrize("n_rx", [1, 8, 32])
def test_mrc_gain_on_awgn(n_rx):
    cfg = LinkConfig(mode="awgn", snr_db=-5.0, n_rx=n_rx)
    meas, eff = measured_snr_db(cfg, reports=200)
    gain = 10 * math.log10(n_rx)
    assert eff == pytest.approx(-5.0 + gain, abs=1e-4)
    assert abs(meas - (-5.0 + gain)) < 0.15


def test_mrc_gain_on_rayleigh_block_fading_with_many_antennas():
    # ||h||^2 / n_rx concentrates near 1 for 64 i.i.d. antennas: close to the AWGN array gain.
    cfg = LinkConfig(mode="rayleigh", snr_db=0.0, n_rx=64)
    meas, eff = measured_snr_db(cfg, reports=300)
    gain = 10 * math.log10(64)
    assert abs(eff - gain) < 0.3 and abs(meas - gain) < 0.5


@pytest.mark.parametrize("block", [True, False])
def test_rician_with_large_k_approaches_awgn(block):
    awgn_meas, awgn_eff = measured_snr_db(LinkConfig(mode="awgn", snr_db=2.0, n_rx=8), reports=200)
    cfg = LinkConfig(mode="rician", rician_k_db=40.0, snr_db=2.0, n_rx=8, block_fading=block)
    meas, eff = measured_snr_db(cfg, reports=200)
    assert abs(eff - awgn_eff) < 0.05 and abs(meas - awgn_meas) < 0.2
    # ...while a weak LOS (K = -20 dB, Rayleigh-like) with one antenna loses several dB.
    weak = LinkConfig(mode="rician", rician_k_db=-20.0, snr_db=2.0, n_rx=1)
    _, ray_eff = measured_snr_db(weak, reports=200)
    assert ray_eff < 0.0  # 2 dB of SNR, more than 2 dB lost in fades


def test_per_symbol_snr_and_effective_snr_are_consistent():
    cfg = LinkConfig(mode="tdl-a", snr_db=3.0, n_rx=2, delay_spread_ns=1000)
    r = transmit_analog(unit_symbols(32), cfg, ReportRng(2, 0, 0))
    assert r.per_symbol_snr_db.shape == (32,) and r.per_symbol_snr_db.dtype == np.float32
    assert np.ptp(r.per_symbol_snr_db) > 1.0  # frequency selective
    assert r.effective_snr_db == pytest.approx(effective_snr_db(r.per_symbol_snr_db))
    assert r.effective_snr_db <= float(np.mean(r.per_symbol_snr_db)) + 1e-6  # harmonic <= arithmetic


def test_output_keeps_the_input_scale():
    cfg = LinkConfig(mode="awgn", snr_db=60.0, n_rx=4)
    x = unit_symbols(16) * 5.0
    r = transmit_analog(x, cfg, ReportRng(3, 0, 0))
    np.testing.assert_allclose(r.symbols_hat, x, atol=0.01)
    # The noise follows the normalized power: same SNR for a scaled report.
    a = transmit_analog(x, cfg.updated(snr_db=0), ReportRng(3, 0, 1))
    b = transmit_analog(x / 5.0, cfg.updated(snr_db=0), ReportRng(3, 0, 1))
    np.testing.assert_allclose(a.symbols_hat / 5.0, b.symbols_hat, rtol=1e-4, atol=1e-5)


def test_ideal_is_exact_passthrough():
    cfg = LinkConfig(ideal=True, snr_db=-40, mode="rayleigh", loss_prob=1.0)
    x = unit_symbols(24) * 3
    r = transmit_analog(x, cfg, ReportRng(4, 0, 0))
    np.testing.assert_array_equal(r.symbols_hat, x)
    assert r.effective_snr_db == math.inf and not r.dropped
    assert np.all(np.isinf(r.per_symbol_snr_db))


def test_loss():
    r = transmit_analog(unit_symbols(8), LinkConfig(loss_prob=1.0), ReportRng(5, 0, 0))
    assert r.dropped and r.reason == "loss" and r.symbols_hat is None and r.per_symbol_snr_db.size == 0


@pytest.mark.parametrize(
    ("symbols", "error", "match"),
    [
        (np.array([1 + 1j, np.nan], np.complex64), InvalidInput, "NaN or Inf"),
        (np.array([1 + 1j, np.inf], np.complex64), InvalidInput, "NaN or Inf"),
        (np.zeros(0, np.complex64), InvalidInput, "empty analog report"),
        (np.zeros(4, np.complex64), InvalidInput, "zero-power"),
        (np.ones((2, 2), np.complex64), InvalidInput, "1-D"),
        (np.array(["a", "b"]), InvalidInput, "numeric"),
        (np.ones(65, np.complex64), TooLarge, "65 symbols exceeds the limit of 64"),
    ],
)
def test_input_checks(symbols, error, match):
    with pytest.raises(error, match=match):
        transmit_analog(symbols, LinkConfig(max_symbols=64), ReportRng(0, 0, 0))


def test_real_input_is_accepted_as_complex():
    r = transmit_analog(np.array([1.0, -1.0, 1.0]), LinkConfig(snr_db=90), ReportRng(0, 0, 0))
    assert r.symbols_hat.dtype == np.complex64
    np.testing.assert_allclose(r.symbols_hat, [1, -1, 1], atol=1e-3)
