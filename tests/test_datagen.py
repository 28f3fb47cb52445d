"""The generator: FDD physics (UL shares the rays, not the phases), fidelity to Sionna's own
step-11 code, SF/AD consistency, determinism and resume. Tiny sizes; Sionna import ~5 s once.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sionna")

from datagen.generate import Generator, block_generator, generate  # noqa: E402
from datagen.ofdm import cluster_to_ad, cluster_to_sf, subcarrier_freqs  # noqa: E402
from datagen.profiles import CDL_C_FDD, COST2100_LIKE, GenConfig  # noqa: E402
from datagen.realization import FddCdl  # noqa: E402
from shared.metrics import nmse_db  # noqa: E402
from shared.transforms import sf_to_ad, truncation_energy  # noqa: E402

torch.set_num_threads(1)

_MODELS: dict[str, FddCdl] = {}


def model(cfg: GenConfig) -> FddCdl:
    key = cfg.to_json()
    if key not in _MODELS:
        _MODELS[key] = FddCdl(cfg)
    return _MODELS[key]


def xyz(cfg: GenConfig, n: int = 128, seed: int = 1):
    m = model(cfg)
    r = m.draw(n, torch.Generator().manual_seed(seed))
    dl = cluster_to_ad(r.h_dl, r.tau, cfg.n_subcarriers, cfg.subcarrier_spacing, cfg.n_taps).numpy()
    ul = cluster_to_ad(r.h_ul, r.tau, cfg.n_subcarriers, cfg.subcarrier_spacing, cfg.n_taps).numpy()
    return dl[:, 0], ul, dl[:, 1], r


# ---------------------------------------------------------------- FDD physics
def test_ul_shares_rays_and_velocity_not_phases():
    m = model(CDL_C_FDD)
    d = m.sample(16, torch.Generator().manual_seed(3))
    dl, ul = d.rays_dl, d.rays_ul
    # same rays seen from the other end: BS-side angles of the UL = departure angles of the DL
    for a, b in (("aoa", "aod"), ("aod", "aoa"), ("zoa", "zod"), ("zod", "zoa")):
        assert torch.equal(getattr(ul, a), getattr(dl, b))
    assert torch.equal(ul.delays, dl.delays) and torch.equal(ul.powers, dl.powers)
    assert torch.equal(d.topo_ul.velocities, d.topo_dl.velocities)
    assert d.topo_dl.moving_end == "rx" and d.topo_ul.moving_end == "tx"
    # the coupling is random per sample (not one fixed permutation for the batch)
    assert not torch.equal(dl.aod[0], dl.aod[1])
    # ... and the phases are independent
    assert not torch.allclose(ul.phases, dl.phases)
    # the UL sees the same physical array at the UL wavelength: 0.5 * f_ul / f_dl wavelengths
    pos = m.bs_array.ant_pos[:, 1]
    lam_ul = 299792458.0 / CDL_C_FDD.f_ul
    assert float(pos[1] - pos[0]) / lam_ul == pytest.approx(0.5 * 1.91 / 2.11, rel=1e-5)


def test_ul_is_no_copy_of_dl_but_shared_phases_is():
    x, y, z, _ = xyz(CDL_C_FDD)
    assert nmse_db(z, y) > -10.0  # Y vs Z at the same instant: independent phases
    assert nmse_db(x, y) > -10.0
    _, y2, z2, _ = xyz(CDL_C_FDD.replace(ul_phases="shared", ul_array="rescaled"))
    assert nmse_db(z2, y2) < -15.0  # the naive setup: a near copy (only the Doppler scales)
    np.testing.assert_array_equal(z, z2)  # the DL does not depend on the UL options
    _, y3, z3, _ = xyz(CDL_C_FDD.replace(ul_phases="shared"))
    # shared phases through the physical array: in between (the array alone decorrelates)
    assert nmse_db(z2, y2) < nmse_db(z3, y3) < nmse_db(z, y)


def test_reference_figures_small():
    x, y, z, _ = xyz(CDL_C_FDD, n=256)
    assert -7.0 < nmse_db(z, x) < -3.0  # outdated CSI, paper setup (~ -4.9 dB)
    assert 0.0 < nmse_db(y, x) < 6.0  # ~ +3 dB: same structure, unrelated phases


def test_fast_path_matches_sionna_generator():
    """Our ray sum (shared field, tabulated steering) == Sionna's ChannelCoefficientsGenerator."""
    for cfg in (CDL_C_FDD, COST2100_LIKE.replace(n_subcarriers=64)):
        m = model(cfg)
        d = m.sample(4, torch.Generator().manual_seed(5))
        r = m.channel(d)
        t = m.times()
        h, tau = m.gen_dl(num_time_samples=2, sampling_frequency=1 / float(t[1]), k_factor=d.k_factor,
                          rays=d.rays_dl, topology=d.topo_dl)
        ref_dl = h[:, 0, 0, :, 0, :, :].permute(0, 3, 1, 2).numpy()  # [B, T, N, Nt]
        h, _ = m.gen_ul(num_time_samples=2, sampling_frequency=1 / float(t[1]), k_factor=d.k_factor,
                        rays=d.rays_ul, topology=d.topo_ul)
        ref_ul = h[:, 0, 0, :, :, 0, 1].numpy()
        assert nmse_db(ref_dl.reshape(4, -1, 32), r.h_dl.numpy().reshape(4, -1, 32)) < -80
        assert nmse_db(ref_ul, r.h_ul.numpy()) < -80
        np.testing.assert_allclose(tau[:, 0, 0].numpy(), r.tau.numpy(), rtol=1e-6)


def test_sf_matches_sionna_ofdm_and_ad_matches_transform():
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    c = CDL_C_FDD
    x, _, _, r = xyz(c, n=8)
    sf = cluster_to_sf(r.h_dl, r.tau, c.n_subcarriers, c.subcarrier_spacing).numpy()  # [B, 2, Nt, Nc]
    a = r.h_dl.permute(0, 3, 2, 1)[:, None, None, None]  # [B, 1, 1, 1, Nt, N, T]
    ref = cir_to_ofdm_channel(subcarrier_frequencies(c.n_subcarriers, c.subcarrier_spacing), a,
                              r.tau.float()[:, None, None, :], normalize=False)
    assert nmse_db(ref[:, 0, 0, 0].permute(0, 2, 1, 3).numpy(), sf) < -80
    np.testing.assert_allclose(subcarrier_freqs(8, 1.0).numpy(), subcarrier_frequencies(8, 1.0).numpy())
    assert nmse_db(sf_to_ad(sf[:, 0]), x) < -100
    e = truncation_energy(sf[:, 0])
    assert 0.93 < float(e.mean()) < 0.995  # the paper's ~97%


def test_los_profile_cost2100_like():
    c = COST2100_LIKE
    x, y, z, r = xyz(c, n=32)
    assert x.shape == (32, 32, 32) and np.all(np.isfinite(x)) and bool(r.los.all())
    # LoS (K = 13.3 dB): the specular part is common to DL and UL, so the UL is closer to
    # the DL than in NLoS CDL-C, yet not a copy
    assert -25 < nmse_db(z, y) < 0


# ---------------------------------------------------------------- determinism, files
def tiny(**kw) -> GenConfig:
    base = dict(n_train=20, n_val=6, n_test=5, block_size=8, sf_cap=3, n_subcarriers=96)
    base.update(kw)
    return CDL_C_FDD.replace(**base)


def _contents(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: f.attrs[k] for k in f.attrs if k != "created"}
        f.visititems(lambda name, o: out.__setitem__(name, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def test_same_seed_same_contents_and_ids(tmp_path):
    c = tiny()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    generate(c, a, progress=False, workers=0)
    generate(c, b, progress=False, workers=0)
    ca, cb = _contents(a), _contents(b)
    assert ca.keys() == cb.keys()
    for k in ca:
        if k == "attrs":
            assert {k2: str(v) for k2, v in ca[k].items()} == {k2: str(v) for k2, v in cb[k].items()}
        else:
            np.testing.assert_array_equal(ca[k], cb[k])
    ids = np.concatenate([ca[f"{s}/sample_id"] for s in ("train", "val", "test")])
    assert len(np.unique(ids)) == len(ids) == 31
    assert ca["train/x_ad"].shape == (20, 32, 32) and ca["test/x_sf"].shape == (3, 32, 96)
    assert "val/x_sf" not in ca
    assert json.loads(str(ca["attrs"]["config"]))["seed"] == 0
    # another seed, other contents; the same block seed for the same (seed, split, block)
    generate(c.replace(seed=1), tmp_path / "c.h5", progress=False, workers=0)
    assert not np.array_equal(_contents(tmp_path / "c.h5")["train/x_ad"], ca["train/x_ad"])
    g1, g2 = block_generator(c, "val", 1), block_generator(c, "val", 1)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_resume_after_interruption_gives_same_file(tmp_path, monkeypatch):
    c = tiny()
    generate(c, tmp_path / "ref.h5", progress=False, workers=0)
    calls = {"n": 0}
    orig = Generator.block

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return orig(self, *a, **k)

    monkeypatch.setattr(Generator, "block", flaky)
    out = tmp_path / "res.h5"
    with pytest.raises(KeyboardInterrupt):
        generate(c, out, progress=False, workers=0)
    assert not out.exists() and (tmp_path / "res.h5.partial").exists()
    with h5py.File(tmp_path / "res.h5.partial", "r") as f:
        assert f["train"].attrs["n_written"] == 16
    monkeypatch.setattr(Generator, "block", orig)
    stats = generate(c, out, progress=False, workers=0)
    assert stats["samples"] == 31 - 16
    ref, res = _contents(tmp_path / "ref.h5"), _contents(out)
    for k in ref:
        if k != "attrs":
            np.testing.assert_array_equal(ref[k], res[k])


def test_generated_file_opens_with_reader(tmp_path):
    from shared.dataset import open_dataset

    generate(tiny(n_val=0), tmp_path / "e.h5", progress=False, workers=0)  # an empty split is fine
    with open_dataset(tmp_path / "e.h5") as ds:
        assert ds.split("val").n == 0 and ds.info()["splits"]["val"]["first_id"] is None
    generate(tiny(), tmp_path / "d.h5", progress=False, workers=0)
    with open_dataset(tmp_path / "d.h5") as ds:
        ds.verify()
        t = ds.split("test")
        assert ds.n_subcarriers == 96 and t.n == 5
        assert nmse_db(sf_to_ad(t.read("x_sf", slice(0, 3))), t.read("x_ad", slice(0, 3))) < -60


def test_config_validation():
    from shared.errors import InvalidInput

    with pytest.raises(InvalidInput, match="model"):
        CDL_C_FDD.replace(model="CDL-Z")
    with pytest.raises(InvalidInput, match="ul_phases"):
        CDL_C_FDD.replace(ul_phases="copy")
    with pytest.raises(InvalidInput, match="unknown config"):
        CDL_C_FDD.replace(nope=1)
    assert CDL_C_FDD.dataset_id == GenConfig(profile="cdl-c-fdd").dataset_id
    assert CDL_C_FDD.dataset_id != CDL_C_FDD.replace(seed=1).dataset_id


def test_tdl_fdd():
    from datagen.models import make_model

    c = CDL_C_FDD.replace(profile="generic", model="TDL-D", n_subcarriers=96)
    m = make_model(c)
    r = m.draw(64, torch.Generator().manual_seed(2))
    assert r.h_dl.shape == (64, 2, m.n_clusters, 32) and r.h_ul.shape == (64, m.n_clusters, 32)
    assert bool(r.los.all()) and not torch.allclose(r.rays["phases_ul"], r.rays["phases_dl"])
    ad = cluster_to_ad(r.h_dl, r.tau, 96, c.subcarrier_spacing, 32).numpy()
    ul = cluster_to_ad(r.h_ul, r.tau, 96, c.subcarrier_spacing, 32).numpy()
    assert nmse_db(ad[:, 1], ul) > -10  # independent phases: no copy
    assert -4.0 < nmse_db(ad[:, 1], ad[:, 0]) < -1.0  # Jakes: 2 (1 - J0(1.1)) ~ -2.5 dB
    m2 = make_model(c.replace(ul_phases="shared"))
    r2 = m2.draw(64, torch.Generator().manual_seed(2))
    torch.testing.assert_close(r2.h_dl, r.h_dl)  # same draws for the DL
    ul2 = cluster_to_ad(r2.h_ul, r2.tau, 96, c.subcarrier_spacing, 32).numpy()
    assert nmse_db(ad[:, 1], ul2) < -15  # shared phases: only the Doppler scale differs


def test_cli_config_layers(tmp_path):
    from csilink.cli import build_parser
    from csilink.commands.dataset import build_config

    (tmp_path / "c.yaml").write_text("model: CDL-A\ndelay_spread: 1.0e-7\nn_val: 7\n")
    args = build_parser().parse_args([
        "dataset", "generate", "--profile", "generic", "--config", str(tmp_path / "c.yaml"),
        "--set", "max_speed=30", "--set", "n-val=9", "--n-train", "11", "--sf-splits", "none",
        "--ul-phases", "shared", "-o", "x.h5"])
    c = build_config(args)
    assert (c.model, c.delay_spread, c.max_speed, c.n_val, c.n_train) == ("CDL-A", 1e-7, 30, 9, 11)
    assert c.sf_splits == () and c.ul_phases == "shared" and c.profile == "generic"
