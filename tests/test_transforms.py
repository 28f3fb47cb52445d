"""shared/transforms.py against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.transforms import ad_to_sf, complex_to_real, real_to_complex, sf_to_ad, truncation_energy


def test_single_path_lands_on_one_angle_delay_bin():
    # H[a, f] = exp(+j2pi a p / Nt) exp(-j2pi f d / Nc): one angle p, one integer delay d.
    nt, nc, p, d = 8, 16, 3, 5
    a, f = np.arange(nt)[:, None], np.arange(nc)[None, :]
    h = np.exp(2j * np.pi * a * p / nt) * np.exp(-2j * np.pi * f * d / nc)
    ad = sf_to_ad(h, n_taps=nc)
    expect = np.zeros((nt, nc), complex)
    expect[p, d] = np.sqrt(nt * nc)  # unitary DFTs: energy nt*nc in one bin
    np.testing.assert_allclose(ad, expect, atol=1e-4)
    assert truncation_energy(h, n_taps=d + 1) == pytest.approx(1.0, abs=1e-6)
    assert truncation_energy(h, n_taps=d) == pytest.approx(0.0, abs=1e-6)


def test_round_trip_untruncated_is_exact_and_unitary():
    rng = np.random.default_rng(0)
    h = (rng.standard_normal((3, 8, 12)) + 1j * rng.standard_normal((3, 8, 12))).astype(np.complex64)
    ad = sf_to_ad(h, n_taps=12)
    np.testing.assert_allclose(ad_to_sf(ad, 12), h, atol=1e-5)
    np.testing.assert_allclose(np.sum(np.abs(ad) ** 2, (-2, -1)), np.sum(np.abs(h) ** 2, (-2, -1)), rtol=1e-5)
    assert ad.dtype == np.complex64 and ad.shape == (3, 8, 12)


def test_truncation_keeps_the_energy_of_the_kept_taps():
    rng = np.random.default_rng(1)
    ad = rng.standard_normal((2, 4, 10)) + 1j * rng.standard_normal((2, 4, 10))
    ad[:, :, 6:] *= 0.1
    h = ad_to_sf(ad, 10)
    kept = np.sum(np.abs(ad[:, :, :6]) ** 2, (-2, -1)) / np.sum(np.abs(ad) ** 2, (-2, -1))
    np.testing.assert_allclose(truncation_energy(h, 6), kept, rtol=1e-5)
    # cropping then zero-padding back is the orthogonal projection on the kept taps
    np.testing.assert_allclose(sf_to_ad(ad_to_sf(sf_to_ad(h, 6), 10), 6), sf_to_ad(h, 6), atol=1e-5)


def test_real_layout():
    h = np.array([[1 + 2j, 3 - 4j]], np.complex64)
    r = complex_to_real(h)
    assert r.shape == (2, 1, 2) and r.dtype == np.float32
    np.testing.assert_array_equal(r[0], [[1, 3]])
    np.testing.assert_array_equal(r[1], [[2, -4]])
    np.testing.assert_array_equal(real_to_complex(r), h)


def test_input_errors():
    with pytest.raises(InvalidInput):
        sf_to_ad(np.ones((4, 8)))  # real input
    with pytest.raises(InvalidInput):
        sf_to_ad(np.ones((4, 8), complex), n_taps=9)
    with pytest.raises(InvalidInput):
        ad_to_sf(np.ones((4, 8), complex), 4)
    with pytest.raises(InvalidInput):
        real_to_complex(np.ones((3, 4, 4)))
