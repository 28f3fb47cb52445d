"""Beamforming gain and the Type II reference on the RT layout (evaluation/beamforming.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from evaluation import beamforming as bf
from models.type2.config import PARAM_COMBINATIONS, Type2Config
from models.type2.synthetic import multipath_sf, steering
from shared import metrics
from shared.errors import InvalidInput

REPO = Path(__file__).resolve().parent.parent
RT_SAMPLE = REPO / "data" / "sample" / "rt-street-sample.h5"
NT, NSC, SCS = 32, 576, 120e3  # the RT world's layout: 48 RBs of 12 subcarriers


def _single_path(n: int, max_delay: float, seed: int = 0) -> np.ndarray:
    """``n`` one-path channels ``[n, 32, 576]``: off-grid angle, a delay, a random gain."""
    rng = np.random.default_rng(seed)
    f = np.arange(NSC) * SCS
    theta = rng.uniform(-1.0, 1.0, n)  # radians; off the DFT grid almost surely
    tau = rng.uniform(0.0, max_delay, n)
    g = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 1e-5  # RT-like small scale
    a = steering(NT, theta)  # [n, Nt]
    return (g[:, None, None] * a[:, :, None] * np.exp(-2j * np.pi * tau[:, None, None] * f)).astype(
        np.complex64)


@pytest.fixture(scope="module")
def multipath() -> np.ndarray:
    return multipath_sf(6, seed=3, n_subcarriers=NSC, scs=SCS, delay_spread=30e-9)


# ---------------------------------------------------------------------------- gains


def test_ideal_gain_is_one_and_scale_free(multipath):
    w = bf.ideal_precoders(multipath)
    np.testing.assert_allclose(bf.bf_gain(multipath, w), 1.0, atol=1e-9)
    np.testing.assert_allclose(bf.bf_gain_rel_db(multipath, w), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-12)
    # precoders are normalized inside: scaling w (even per column) changes nothing
    scale = np.random.default_rng(0).uniform(0.1, 10, (1, 1, NSC))
    np.testing.assert_allclose(bf.bf_gain(multipath, w * scale), 1.0, atol=1e-9)


def test_random_precoder_gains_much_less(multipath):
    rng = np.random.default_rng(1)
    w = rng.standard_normal(multipath.shape) + 1j * rng.standard_normal(multipath.shape)
    g = bf.bf_gain(multipath, w)
    assert np.all(g < 0.15)  # expectation 1/Nt = 0.031
    assert abs(float(g.mean()) - 1 / NT) < 0.02
    assert np.all(bf.bf_gain_rel_db(multipath, w) < -8.0)


def test_estimate_precoders_match_shared_metric(multipath):
    rng = np.random.default_rng(2)
    shape = multipath.shape
    noisy = multipath + 0.5 * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    g = bf.bf_gain(multipath, bf.precoders_from_estimate(noisy))
    np.testing.assert_allclose(g, metrics.bf_gain(multipath, noisy), rtol=1e-9)
    assert np.all(g < 0.99) and np.all(g > 0.3)


def test_subband_precoders_expand_like_per_subcarrier(multipath):
    sb = np.arange(NSC) // 48  # 12 subbands of 4 RBs
    w = bf.subband_ideal_precoders(multipath, sb)
    assert w.shape == (6, NT, 12)
    full = w[:, :, sb]
    np.testing.assert_allclose(bf.bf_gain(multipath, w, sb), bf.bf_gain(multipath, full))
    np.testing.assert_allclose(bf.bf_gain_rel_db(multipath, w, sb), bf.bf_gain_rel_db(multipath, full))
    # the eigenvector maximizes each subband's power: no per-subband precoder receives more
    mean_dir = np.stack([multipath[:, :, sb == t].mean(axis=2) for t in range(12)], axis=2)
    assert np.all(bf.bf_gain_rel_db(multipath, w, sb) >= bf.bf_gain_rel_db(multipath, mean_dir, sb) - 1e-9)
    assert np.all(bf.bf_gain(multipath, w, sb) <= 1.0 + 1e-12)


def test_nmse_normalized_db_is_scale_free(multipath):
    h = multipath.astype(np.complex128)
    assert bf.nmse_normalized_db(h, 1e-7 * h) < -250  # exact direction, any scale
    assert abs(bf.nmse_normalized_db(h, -h) - 10 * math.log10(4)) < 1e-9  # opposite: ||2u||^2 = 4
    rng = np.random.default_rng(4)
    e = h + 0.1 * np.sqrt(np.mean(np.abs(h) ** 2)) * (rng.standard_normal(h.shape)
                                                      + 1j * rng.standard_normal(h.shape))
    got = bf.nmse_normalized_db(h, 3.0 * e)
    assert -19 < got < -15  # complex noise of 2 * 0.1^2 of the power: about -17 dB


# ---------------------------------------------------------------------------- Type II


def _payload_formula(pc: int, sb: int, r: int) -> int:
    """TS 38.214 5.2.2.2.5 rank-1 bits for 48 RBs, one polarization, + the absolute reference
    (docs/type2.md section 5), written out independently of Type2Config."""
    def clog2(x: int) -> int:
        return math.ceil(math.log2(x)) if x > 1 else 0

    L, pv, beta = PARAM_COMBINATIONS[pc]  # noqa: N806
    n3 = (48 // sb) * r  # 48 RBs split evenly: no short last subband
    mv = math.ceil(pv * n3 / r)
    k0 = math.ceil(beta * L * mv)
    win = n3 > 19
    pmi = (clog2(k0) + 2 + clog2(math.comb(32, L)) + (clog2(2 * mv) if win else 0)
           + clog2(math.comb(2 * mv - 1 if win else n3 - 1, mv - 1)) + clog2(k0) + L * mv + 7 * (k0 - 1))
    return pmi + clog2(n3) + 7 + 5


def test_type2_payloads_for_48_rbs():
    every = bf.type2_configs_for_rt(None)
    assert len(every) == 8 * 2 * 2  # all of paramCombination 1..8 x subband {4, 8} x R {1, 2} are valid
    assert {c.subband_size for c in every} == {4, 8}
    for c in every:
        assert c.n_subcarriers == NSC and c.n_antennas == NT and c.n_rb == 48
        assert c.payload_bits == _payload_formula(c.param_combination, c.subband_size, c.r), c.name
    assert [c.payload_bits for c in every] == sorted(c.payload_bits for c in every)
    capped = bf.type2_configs_for_rt(160)
    assert all(c.payload_bits <= 160 for c in capped)
    assert len(capped) == sum(c.payload_bits <= 160 for c in every)
    # hand-worked: pc1, subband 4, R 1: N3 = 12, Mv = 3, K0 = 2 ->
    # 1 + 2 + 9 (C(32,2)=496) + 6 (C(11,2)=55) + 1 + 6 + 3 + 4 = 32 PMI bits, + 4 + 7 + 5 = 48
    c = Type2Config(param_combination=1, subband_size=4, r=1, n_subcarriers=NSC)
    assert (c.n3, c.mv, c.k0, c.pmi_bits, c.payload_bits) == (12, 3, 2, 32, 48)


def test_type2_near_prefers_not_above():
    every = bf.type2_configs_for_rt(None)
    assert bf.type2_near(48).payload_bits == 48
    at76 = bf.type2_near(76)
    assert at76.payload_bits == max(c.payload_bits for c in every if c.payload_bits <= 76)
    assert bf.type2_near(1).payload_bits == min(c.payload_bits for c in every)  # none below: smallest
    assert bf.type2_near(76, key="pmi_bits").pmi_bits <= 76
    with pytest.raises(InvalidInput, match="key"):
        bf.type2_near(76, key="bits")


def test_type2_single_path_is_near_ideal():
    # delays up to 400 ns turn the phase by up to 2.3 cycles across a 4-RB subband (5.76 MHz):
    # the subband-constant estimate cannot follow that, but the direction is the same on every
    # subcarrier, so the precoder still is near-ideal
    h = _single_path(4, max_delay=400e-9)
    cfg = bf.type2_near(48)
    pmis = bf.type2_pmis(h, cfg)
    w = bf.type2_precoders(h, cfg, pmis)
    assert w.shape == h.shape
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-9)
    g = bf.bf_gain(h, w)
    assert np.all(g > 0.95), g
    # the estimate has the precoder's direction on every subcarrier
    e = bf.type2_estimates(h, cfg, pmis)
    np.testing.assert_allclose(bf.bf_gain(h, bf.precoders_from_estimate(e)), g, atol=1e-6)
    # frequency-flat (delay 0): the estimate follows too (an off-grid delay would need more
    # FD coefficients than this K0 = 2 has, on top of the two beams of the off-grid angle)
    h = _single_path(4, max_delay=0.0, seed=1)
    e = bf.type2_estimates(h, cfg)
    assert bf.nmse_normalized_db(h, e) < -12
    assert np.all(bf.bf_gain(h, bf.precoders_from_estimate(e)) > 0.95)


def test_type2_on_multipath_is_between_random_and_ideal(multipath):
    cfg = bf.type2_near(100)
    g = bf.bf_gain(multipath, bf.type2_precoders(multipath, cfg))
    bound = bf.bf_gain(multipath, bf.subband_ideal_precoders(multipath, cfg.subcarrier_subband),
                       cfg.subcarrier_subband)
    assert np.all(g > 0.3) and np.all(g <= bound + 0.02)


@pytest.mark.skipif(not RT_SAMPLE.exists(), reason="needs data/sample/rt-street-sample.h5")
def test_type2_on_rt_sample():
    import h5py

    with h5py.File(RT_SAMPLE, "r") as f:
        h = f["test"]["x_sf"][:4]
    cfg = bf.type2_near(76)
    g = bf.bf_gain(h, bf.type2_precoders(h, cfg))
    assert np.all((g > 0.3) & (g <= 1.0 + 1e-9))
    assert np.all(bf.bf_gain_rel_db(h, bf.ideal_precoders(h)) > -1e-9)


# ---------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_invalid_input(multipath):
    h = multipath[:2]
    w = bf.ideal_precoders(h)
    with pytest.raises(InvalidInput, match=r"h_sf: expected \[n, Nt, Nsc\]"):
        bf.bf_gain(h[0], w[0])
    with pytest.raises(InvalidInput, match="does not match h_sf"):
        bf.bf_gain(h, w[:, :16])
    with pytest.raises(InvalidInput, match="subband_of"):
        bf.bf_gain(h, w[:, :, :12])  # per-subband without the map
    with pytest.raises(InvalidInput, match=r"subband_of: indices must be in 0\.\.11"):
        bf.bf_gain(h, w[:, :, :12], np.arange(NSC) // 4)
    bad = h.copy()
    bad[1, 3, 7] = np.nan
    with pytest.raises(InvalidInput, match=r"h_sf: NaN or Inf in sample\(s\) \[1\]"):
        bf.bf_gain(bad, w)
    with pytest.raises(InvalidInput, match=r"w: NaN or Inf"):
        bf.bf_gain(h, bad)
    with pytest.raises(InvalidInput, match="all-zero channel in sample"):
        bf.bf_gain(np.zeros_like(h), w)
    with pytest.raises(InvalidInput, match=r"expects \[n, 32, 576\]"):
        bf.type2_precoders(multipath_sf(1, n_subcarriers=600), bf.type2_near(76))
    with pytest.raises(InvalidInput, match="NaN"):
        bf.type2_estimates(bad, bf.type2_near(76))
    with pytest.raises(InvalidInput, match="shape mismatch"):
        bf.nmse_normalized_db(h, h[:, :, :10])
