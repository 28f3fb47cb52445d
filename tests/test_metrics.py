"""shared/metrics.py against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.metrics import ber, bf_gain, nmse, nmse_db, rho, sgcs, summary


def test_nmse_hand_values():
    h = np.array([[[1, 0], [0, 1]]], complex)  # ||H||^2 = 2
    h_hat = np.array([[[1, 1], [0, 0]]], complex)  # error: (0,1)->1, (1,1)->1 : 2
    assert nmse(h, h_hat)[0] == pytest.approx(1.0)
    assert nmse_db(h, 0.5 * h) == pytest.approx(10 * np.log10(0.25))
    # the mean is taken before the log: samples with NMSE 1 and 0.01 -> 10log10(0.505)
    hh = np.stack([h[0], h[0]])
    est = np.stack([h_hat[0], 0.9 * h[0]])
    assert nmse_db(hh, est) == pytest.approx(10 * np.log10((1 + 0.01) / 2))
    assert nmse_db(h, h) < -200


def test_rho_sgcs_bf_gain_hand_values():
    # 2 antennas x 2 subcarriers; subcarrier 0 estimate is exact up to a phase, subcarrier 1
    # estimate is at 45 degrees: |<h, h^>| / (|h||h^|) = 1/sqrt(2)
    h = np.array([[[1, 1], [0, 0]]], complex)
    h_hat = np.array([[[1j, 1], [0, 1]]], complex)
    assert rho(h, h_hat)[0] == pytest.approx((1 + 1 / np.sqrt(2)) / 2)
    assert sgcs(h, h_hat)[0] == pytest.approx((1 + 0.5) / 2)
    # beamforming gain |h^H p|^2/|h|^2 with p = h^/|h^| computed by hand
    g0 = abs(np.vdot(h[0, :, 0], h_hat[0, :, 0] / np.linalg.norm(h_hat[0, :, 0]))) ** 2
    g1 = abs(np.vdot(h[0, :, 1], h_hat[0, :, 1] / np.linalg.norm(h_hat[0, :, 1]))) ** 2
    assert bf_gain(h, h_hat)[0] == pytest.approx((g0 + g1) / 2)
    s = summary(h, h_hat)
    assert set(s) == {"nmse_db", "rho", "sgcs"} and s["sgcs"] == pytest.approx(0.75)


def test_scale_invariance_of_cosines():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((3, 4, 5)) + 1j * rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(rho(h, (2 - 3j) * h), 1.0)
    np.testing.assert_allclose(sgcs(h, 7 * h), 1.0)


def test_ber_and_errors():
    assert ber([0, 1, 1, 0], [0, 0, 1, 1]) == 0.5
    assert ber([], []) == 0.0
    with pytest.raises(InvalidInput):
        ber([0, 1], [0])
    with pytest.raises(InvalidInput):
        nmse(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(InvalidInput):
        nmse(np.ones(3), np.ones(3))
    with pytest.raises(InvalidInput):
        nmse(np.array([[np.nan, 1]]), np.ones((1, 2)))
