"""The type2 family: Rel-16 enhanced Type II codebook (models/type2/)."""

from __future__ import annotations

import importlib.util
import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.type2 import frame
from models.type2.combinatorial import subset_from_index, subset_index
from models.type2.config import AMPLITUDES, Type2Config
from models.type2.presets import PRESETS, bundle_name
from models.type2.synthetic import multipath_sf, single_beam_sf
from models.type2.wire import Type2Codec, Type2Wire
from shared import metrics
from shared.bundle import Bundle
from shared.errors import BundleError, InvalidInput, NotFound
from shared.transforms import sf_to_ad
from shared.wire import Bits

REPO = Path(__file__).resolve().parent.parent


def _load_script():
    path = REPO / "scripts" / "make_type2_bundles.py"
    spec = importlib.util.spec_from_file_location("make_type2_bundles", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def channels() -> tuple[np.ndarray, np.ndarray]:
    """12 CDL-C-shaped channels: (SF truth [12, 32, 667], AD [12, 32, 32])."""
    h = multipath_sf(12, seed=7)
    return h, sf_to_ad(h)


# ---------------------------------------------------------------------------- payload


def test_payload_hand_worked_pc1_sb4_r1():
    c = Type2Config(param_combination=1, subband_size=4, r=1)
    # 55 RBs in CQI subbands of 4 -> 14 (last one 3 RBs); N3 = 14; Mv = ceil(14/4) = 4
    assert (c.n_rb, c.n3, c.mv, c.L, c.k0) == (55, 14, 4, 2, 2)  # K0 = ceil(1/4 * 2 * 4)
    want = {
        "k_nz": 1,  # ceil(log2 K0)
        "i11": 2,  # ceil(log2 O1)
        "i12": 9,  # ceil(log2 C(32, 2) = 496)
        "i15": 0,  # N3 <= 19: no window
        "i16": 9,  # ceil(log2 C(13, 3) = 286)
        "i18": 1,  # ceil(log2 K0)
        "i17": 8,  # bitmap L * Mv
        "i23": 0,  # one polarization
        "i24": 3,  # 3 (K0 - 1)
        "i25": 4,  # 4 (K0 - 1)
        "fd_offset": 4, "ref_power": 7, "ref_phase": 5,  # ceil(log2 14), 7, 5
    }
    assert c.breakdown() == want
    assert c.pmi_bits == 37 and c.payload_bits == 53


def test_payload_hand_worked_window_case():
    c = Type2Config(param_combination=6, subband_size=4, r=2)
    # R = 2: 13 CQI subbands x 2 + the last (3 RBs > 2) also split -> N3 = 28 > 19 (window)
    assert c.n3 == 28 and c.pmi_subbands[-2:] == ((52, 2), (54, 1))
    assert c.mv == 7 and c.k0 == 14  # ceil(1/2 * 28 / 2); ceil(1/2 * 4 * 7)
    b = c.breakdown()
    assert b["i12"] == 16  # C(32, 4) = 35960
    assert b["i15"] == 4  # ceil(log2 2Mv = 14)
    assert b["i16"] == 11  # C(2Mv - 1, Mv - 1) = C(13, 6) = 1716
    assert b["i17"] == 28 and b["i24"] == 39 and b["i25"] == 52 and b["k_nz"] == 4 and b["i18"] == 4
    assert c.pmi_bits == 2 + 16 + 4 + 11 + 4 + 28 + 39 + 52 + 4 == 160
    assert c.payload_bits == 160 + 5 + 7 + 5


def test_wide_fields_take_several_latent_entries():
    c = Type2Config(param_combination=0, custom=(12, 0.25, 0.5))
    assert c.breakdown()["i12"] == 28  # C(32, 12) = 225792840
    assert c.latent_chunks[2] == (12, 16) and c.latent_size == c.n_values + 1
    v = np.zeros(c.n_values, np.int64)
    v[2] = math.comb(32, 12) - 1  # a value float32 cannot hold exactly
    z = frame.values_to_latent(v, c)
    assert z.dtype == np.float32 and np.array_equal(frame.latent_to_values(z, c), v)


def test_payload_k0_one_has_no_coefficient_fields():
    c = Type2Config(param_combination=1, subband_size=8, r=1)  # N3 = 7, Mv = 2, K0 = 1
    assert (c.n3, c.mv, c.k0) == (7, 2, 1)
    assert c.pmi_bits == 2 + 9 + 3 + 4  # i11, i12, i16 = ceil(log2 C(6, 1)), bitmap
    assert {f.name for f in c.fields} == {"i11", "i12", "i16", "i17", "fd_offset", "ref_power", "ref_phase"}


def test_subband_layouts():
    c = Type2Config(subband_size=8, r=2)
    assert c.pmi_subbands[-2:] == ((48, 4), (52, 3)) and c.n3 == 14
    # a last CQI subband of <= N_SB/2 RBs holds one PMI subband: 53 RBs, subband 4 -> last has 1 RB
    c = Type2Config(subband_size=4, r=2, n_subcarriers=53 * 12)
    assert c.n3 == 27 and c.pmi_subbands[-1] == (52, 1)
    # the 7 left-over subcarriers of 667 belong to the last PMI subband
    c = Type2Config()
    sb = c.subcarrier_subband
    assert len(sb) == 667 and sb[-7:] == (13,) * 7 and sb.count(13) == 3 * 12 + 7


@pytest.mark.parametrize("bad", [
    {"subband_size": 16}, {"r": 3}, {"param_combination": 9}, {"param_combination": 0},
    {"param_combination": 0, "custom": (40, 0.5, 0.5)}, {"n_subcarriers": 20 * 12}, {"expand": "cubic"},
    {"custom": (4, 0.5, 0.5)},
])
def test_bad_configs_are_refused(bad):
    with pytest.raises(InvalidInput):
        Type2Config(**bad)


def test_spec_round_trip_and_unknown_field():
    c = PRESETS[-1]
    assert Type2Config.from_spec(c.to_spec()) == c
    with pytest.raises(InvalidInput, match="unknown"):
        Type2Config.from_spec({**c.to_spec(), "beams": 3})
    with pytest.raises(InvalidInput):
        Type2Config.from_spec({**c.to_spec(), "kind": "uniform"})


# ---------------------------------------------------------------------------- combinatorial


@pytest.mark.parametrize("n,k", [(6, 2), (7, 3), (9, 4), (5, 0), (5, 5)])
def test_combinatorial_index_is_a_bijection(n, k):
    seen = set()
    for sub in itertools.combinations(range(n), k):
        i = subset_index(sub, n)
        assert 0 <= i < math.comb(n, k)
        assert subset_from_index(i, n, k) == list(sub)
        seen.add(i)
    assert len(seen) == math.comb(n, k)


def test_combinatorial_matches_the_standard_formula():
    # i_{1,2} = sum_i C(N1 - 1 - n(i), L - i): beams {1, 5, 20, 31} of 32
    n = [1, 5, 20, 31]
    assert subset_index(n, 32) == math.comb(30, 4) + math.comb(26, 3) + math.comb(11, 2) + math.comb(0, 1)
    with pytest.raises(InvalidInput):
        subset_from_index(math.comb(32, 4), 32, 4)


# ---------------------------------------------------------------------------- codebook behaviour


@pytest.mark.parametrize("cfg", PRESETS, ids=lambda c: c.name)
def test_single_dft_beam_is_recovered(cfg):
    codec = Type2Codec(cfg, strict=True)
    for m in (0, 37, 126):
        h = single_beam_sf(m, gain=0.7 * np.exp(0.4j))
        x_ad = sf_to_ad(h)[None]
        (pmi,) = codec.pmis(x_ad)
        assert pmi.k_nz == 1 and pmi.q1 == m % cfg.o1 and (m // cfg.o1) in pmi.beams
        est = codec.decode_sf(codec.latents(x_ad))
        assert float(metrics.sgcs(h[None], est)[0]) > 0.9999
        assert metrics.nmse_db(h[None], est) < -20  # absolute reference: power + phase quantization only


def test_sgcs_rises_with_payload(channels):
    h, x_ad = channels
    results = []
    for cfg in sorted(PRESETS, key=lambda c: c.payload_bits):
        codec = Type2Codec(cfg)
        est = codec.decode_sf(codec.latents(x_ad))
        results.append((cfg.payload_bits, float(np.mean(metrics.sgcs(h, est))), metrics.nmse_db(h, est)))
    sg = [s for _, s, _ in results]
    assert all(b >= a - 0.01 for a, b in itertools.pairwise(sg)), results
    assert sg[-1] > sg[0] + 0.15, results
    assert results[-1][2] < results[0][2] - 1.5, results  # NMSE (dB) falls too


def test_more_beams_capture_more_than_fewer(channels):
    h, x_ad = channels
    sg = {}
    for L in (2, 6, 12):
        codec = Type2Codec(Type2Config(param_combination=0, custom=(L, 0.5, 1.0)))
        sg[L] = float(np.mean(metrics.sgcs(h, codec.decode_sf(codec.latents(x_ad)))))
    assert sg[2] < sg[6] < sg[12], sg


def test_precoder_is_unit_norm_per_subband(channels):
    _, x_ad = channels
    codec = Type2Codec(PRESETS[2])
    w = codec.precoders(codec.latents(x_ad[:3]))
    assert w.shape == (3, 32, codec.cfg.n3)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, rtol=1e-5)


def test_amplitudes_and_phases_are_quantized_on_the_table(channels):
    _, x_ad = channels
    cfg = PRESETS[4]
    for p in Type2Codec(cfg).pmis(x_ad[:4]):
        c = p.coefficients()
        nz = p.amp >= 0
        assert 1 <= nz.sum() <= cfg.k0 and c[p.strongest, 0] == 1
        assert np.all(np.isin(np.round(np.abs(c[nz]), 12), np.round(AMPLITUDES, 12)))
        assert np.max(np.abs(c)) == pytest.approx(1.0)  # the strongest is the reference


@pytest.mark.parametrize("expand", ["subband", "interp"])
def test_fast_paths_equal_the_explicit_transforms(channels, expand):
    _, x_ad = channels
    codec = Type2Codec(Type2Config(param_combination=5, r=2, expand=expand))
    lat = codec.latents(x_ad[:3])
    # the UE's AD -> subband shortcut gives the report the explicit ad_to_sf path gives
    np.testing.assert_array_equal(lat, codec.latents_from_pmis(codec.pmis_sf(codec.measure_sf(x_ad[:3]))))
    ad = codec.decode_ad(lat)
    ref = sf_to_ad(codec.decode_sf(lat))
    np.testing.assert_allclose(ad, ref, atol=1e-5 * np.abs(ref).max())


def test_interp_expansion_matches_subband_at_centres(channels):
    _, x_ad = channels
    sub = Type2Codec(Type2Config(param_combination=4))
    itp = Type2Codec(Type2Config(param_combination=4, expand="interp"))
    lat = sub.latents(x_ad[:2])
    np.testing.assert_array_equal(lat, itp.latents(x_ad[:2]))  # same report
    e1, e2 = sub.decode_sf(lat), itp.decode_sf(lat)
    centre = 4 * 12 + 24  # a subband centre (subband 1 spans subcarriers 48..95)
    np.testing.assert_allclose(e2[:, :, centre], e1[:, :, centre], atol=0.05 * np.abs(e1).max())


# ---------------------------------------------------------------------------- frame and wire


ROUND_TRIP = [*PRESETS, Type2Config(param_combination=6, r=2),
              Type2Config(param_combination=1, subband_size=8),
              Type2Config(param_combination=0, custom=(12, 0.25, 0.5))]


@pytest.mark.parametrize("cfg", ROUND_TRIP, ids=lambda c: c.name)
def test_encode_bits_decode_round_trip(cfg, channels):
    _, x_ad = channels
    codec = Type2Codec(cfg, strict=True)
    lat = codec.latents(x_ad[:4])
    assert lat.shape == (4, cfg.latent_size) and lat.dtype == np.float32
    reports = codec.encode(x_ad[:4])
    for z, b in zip(lat, reports, strict=True):
        assert isinstance(b, Bits) and b.n_bits == cfg.payload_bits
        assert len(b.data) == (cfg.payload_bits + 7) // 8
        np.testing.assert_array_equal(codec.unpack(b), z)
    back = np.stack([codec.unpack(b) for b in reports])
    np.testing.assert_array_equal(codec.decode_ad(back), codec.decode_ad(lat))
    # the values survive a parse -> re-serialize
    for z in lat:
        p = frame.values_to_pmi(frame.latent_to_values(z, cfg), cfg, strict=True)
        np.testing.assert_array_equal(frame.values_to_latent(frame.pmi_to_values(p, cfg), cfg), z)
    wire = Type2Wire(cfg)
    assert wire.payload_size(cfg.latent_size) == cfg.payload_bits
    np.testing.assert_array_equal(wire.decode(wire.encode(lat[0]), cfg.latent_size), lat[0])


def test_zero_channel_gives_a_valid_minimal_report():
    cfg = PRESETS[2]
    codec = Type2Codec(cfg, strict=True)
    z = np.zeros((1, 32, 32), np.complex64)
    (p,) = codec.pmis(z)
    assert p.k_nz == 1 and p.ref_power == 0
    est = codec.decode_ad(codec.latents(z))
    # the lowest reported power: -100 dB per SF entry (the AD crop keeps all of a flat channel)
    assert np.all(np.isfinite(est))
    assert np.sum(np.abs(est) ** 2) / (32 * 667) == pytest.approx(1e-10, rel=0.01)


def test_sparse_report_is_zero_padded_to_the_frame():
    cfg = PRESETS[4]
    codec = Type2Codec(cfg, strict=True)
    (b,) = codec.encode(sf_to_ad(single_beam_sf(9))[None])
    assert b.n_bits == cfg.payload_bits
    v = frame.bits_to_values(b, cfg)
    parts = frame._split(v, cfg)
    assert int(parts["k_nz"][0]) == 0 and int(parts["i17"].sum()) == 1
    assert not parts["i24"].any() and not parts["i25"].any()


def test_malformed_bit_length_is_refused(channels):
    _, x_ad = channels
    cfg = PRESETS[1]
    codec = Type2Codec(cfg)
    (b,) = codec.encode(x_ad[:1])
    arr = b.to_array()
    for bad in (Bits.from_array(arr[:-1]), Bits.from_array(np.concatenate([arr, [0]])), Bits(b"", 0)):
        with pytest.raises(InvalidInput, match="bits"):
            codec.unpack(bad)
    with pytest.raises(InvalidInput):
        Type2Wire(cfg).decode(np.zeros(4, np.complex64), cfg.latent_size)


def test_bad_latents_are_refused():
    cfg = PRESETS[1]
    codec = Type2Codec(cfg)
    good = np.zeros((1, cfg.latent_size), np.float32)
    good[0, 0] = 0
    for bad in (good[:, :-1], good + 0.5, np.full_like(good, np.nan), good + 1e6):
        with pytest.raises(InvalidInput):
            codec.decode_ad(bad)
    assert codec.decode_ad(good[:0]).shape == (0, 32, 32)  # an empty batch is not an error
    with pytest.raises(InvalidInput):
        codec.latents(np.zeros((1, 32, 16), np.complex64))
    with pytest.raises(InvalidInput):
        codec.latents(np.zeros((1, 32, 32), np.float32))


def test_damaged_reports_decode_leniently_and_strict_refuses(channels):
    _, x_ad = channels
    cfg = PRESETS[3]
    (b,) = Type2Codec(cfg).encode(x_ad[:1])
    rng = np.random.default_rng(3)
    strict, lenient = Type2Codec(cfg, strict=True), Type2Codec(cfg)
    refused = 0
    for _ in range(60):
        arr = b.to_array().copy()
        flip = rng.choice(arr.size, size=rng.integers(1, 6), replace=False)
        arr[flip] ^= 1
        z = lenient.unpack(Bits.from_array(arr))[None]
        est = lenient.decode_ad(z)
        assert est.shape == (1, 32, 32) and np.all(np.isfinite(est))
        try:
            strict.decode_ad(z)
        except InvalidInput:
            refused += 1
    assert refused > 0  # some flips break the bitmap / K_NZ / SCI consistency


def test_deterministic(channels):
    _, x_ad = channels
    cfg = PRESETS[5]
    a = [r.data for r in Type2Codec(cfg).encode(x_ad[:3])]
    b = [r.data for r in Type2Codec(Type2Config.from_spec(cfg.to_spec())).encode(x_ad[:3])]
    assert a == b


# ---------------------------------------------------------------------------- bundles, UE, BS


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles")
    mod = _load_script()
    assert mod.main(["--out", str(out)]) == 0
    return out


def test_bundles_load_and_run_end_to_end(bundle_dir, channels):
    from models.registry import load_bs_decoder
    from shared.ue_encoder import UeEncoder

    h, x_ad = channels
    for cfg in PRESETS:
        bundle = Bundle.load(bundle_dir / bundle_name(cfg))
        m = bundle.manifest
        assert m.family == "type2" and m.ue.encoder is None and m.bs.weights == []
        assert m.rates[0].bits == cfg.payload_bits and m.latent_size == cfg.latent_size
        assert m.ue.wire["kind"] == "type2" and m.normalization == {"kind": "none"}
        ue = UeEncoder.from_bundle(bundle)
        bs = load_bs_decoder(bundle)
        assert bs.needs == [] and bs.latent_size == cfg.latent_size
        reports = ue.encode(x_ad[:3], m.rates[0].name)
        assert all(r.n_bits == cfg.payload_bits for r in reports)
        est = bs.decode_batch(np.stack([bs.unpack(r) for r in reports]), {}, None)
        assert est.shape == (3, 32, 32) and est.dtype == np.complex64
        np.testing.assert_array_equal(est, bs.decode_reports(reports))
        np.testing.assert_array_equal(est, Type2Codec(cfg).decode_ad(ue.latents(x_ad[:3])))
        with pytest.raises(NotFound):
            ue.encode(x_ad[:1], "b1")


def test_bundle_with_wrong_bits_is_refused(bundle_dir, tmp_path):
    from shared.bundle import write_bundle

    mod = _load_script()
    man = mod.manifest(PRESETS[0])
    man["rates"][0]["bits"] += 1
    bad = tmp_path / "bad"
    bad.mkdir()
    from models.type2.ue import ue_encoder_from_bundle

    with pytest.raises(BundleError, match="bits"):
        ue_encoder_from_bundle(write_bundle(bad, man))


def test_shipped_bundles_match_the_presets():
    for cfg in PRESETS:
        path = REPO / "bundles" / bundle_name(cfg)
        if not (path / "manifest.json").is_file():
            pytest.skip("bundles not written yet (scripts/make_type2_bundles.py)")
        m = Bundle.load(path).manifest
        assert Type2Config.from_spec(m.ue.wire) == cfg and m.rates[0].bits == cfg.payload_bits


def test_family_is_torch_free():
    code = ("import sys; import models.type2, models.type2.ue, models.type2.bs, models.type2.wire; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
