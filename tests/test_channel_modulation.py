"""Gray mapping of TS 38.211 5.1: table values, unit power, Gray neighbours, noiseless round trip."""

from __future__ import annotations

import numpy as np
import pytest

from channel_emulator.modulation import (
    BITS_PER_SYMBOL,
    bits_per_symbol,
    constellation,
    demodulate,
    modulate,
    n_symbols,
)
from shared.errors import InvalidInput


def test_table_values_of_ts_38_211():
    r2, r10 = np.sqrt(2), np.sqrt(10)
    np.testing.assert_allclose(modulate(np.array([0, 1], np.uint8), "bpsk"), [(1 + 1j) / r2, (-1 - 1j) / r2])
    np.testing.assert_allclose(modulate(np.array([1, 0], np.uint8), "qpsk"), [(-1 + 1j) / r2], rtol=1e-6)
    cases = {(0, 0, 0, 0): 1 + 1j, (0, 0, 1, 1): 3 + 3j, (1, 0, 0, 1): -1 + 3j, (1, 1, 1, 0): -3 - 1j}
    for bits, point in cases.items():
        np.testing.assert_allclose(modulate(np.array(bits, np.uint8), "16qam"), [point / r10], rtol=1e-6)


@pytest.mark.parametrize("mod", list(BITS_PER_SYMBOL))
def test_unit_average_power_and_dtype(mod):
    c = constellation(mod)
    assert c.dtype == np.complex64 and c.shape == (1 << bits_per_symbol(mod),)
    assert abs(np.mean(np.abs(c) ** 2) - 1.0) < 1e-6


@pytest.mark.parametrize("mod", ["qpsk", "16qam"])
def test_gray_nearest_neighbours_differ_in_one_bit(mod):
    c = constellation(mod)
    d = np.abs(c[:, None] - c[None, :])
    np.fill_diagonal(d, np.inf)
    dmin = d.min()
    for i in range(c.size):
        for j in np.flatnonzero(np.isclose(d[i], dmin)):
            assert bin(i ^ int(j)).count("1") == 1


@pytest.mark.parametrize("mod", list(BITS_PER_SYMBOL))
def test_noiseless_round_trip_with_padding(mod):
    rng = np.random.default_rng(0)
    for n in range(1, 13):
        bits = rng.integers(0, 2, n).astype(np.uint8)
        s = modulate(bits, mod)
        assert s.shape == (n_symbols(n, mod),)
        hard = demodulate(s, mod)
        assert hard.size == s.size * bits_per_symbol(mod)
        np.testing.assert_array_equal(hard[:n], bits)
        assert not hard[n:].any()  # padding is zeros


def test_decision_regions_of_16qam():
    # Points just inside each threshold decide to the nearest constellation point.
    c = constellation("16qam")
    rng = np.random.default_rng(1)
    pts = c[rng.integers(0, 16, 500)]
    noisy = pts + (rng.uniform(-0.99, 0.99, 500) + 1j * rng.uniform(-0.99, 0.99, 500)) / np.sqrt(10)
    idx = np.argmin(np.abs(noisy[:, None] - c[None, :]), axis=1)
    want = ((idx[:, None] >> np.arange(3, -1, -1)) & 1).astype(np.uint8).ravel()
    np.testing.assert_array_equal(demodulate(noisy, "16qam"), want)


def test_unknown_modulation():
    with pytest.raises(InvalidInput, match="unknown modulation '64qam'"):
        modulate(np.zeros(6, np.uint8), "64qam")
    with pytest.raises(InvalidInput, match="unknown modulation"):
        demodulate(np.zeros(2, np.complex64), "64qam")
