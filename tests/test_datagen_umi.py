"""UMi/UMa generator: per-UE geometry, FDD physics (UL shares the rays, not the phases),
fidelity to Sionna's own step-11 code, determinism, files with position/los. Tiny batches.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sionna")

from datagen.generate import generate  # noqa: E402
from datagen.ofdm import cluster_to_ad, cluster_to_sf  # noqa: E402
from datagen.profiles import CDL_C_FDD, UMI_NLOS, GenConfig  # noqa: E402
from datagen.system import FddSystem  # noqa: E402
from shared.errors import InvalidInput  # noqa: E402
from shared.metrics import nmse_db  # noqa: E402

torch.set_num_threads(1)

UMI = UMI_NLOS.replace(n_subcarriers=128)
_MODELS: dict[str, FddSystem] = {}


def model(cfg: GenConfig) -> FddSystem:
    key = cfg.to_json()
    if key not in _MODELS:
        _MODELS[key] = FddSystem(cfg)
    return _MODELS[key]


def test_ul_shares_rays_with_dl_and_geometry_varies_per_ue():
    m = model(UMI)
    d = m.sample(6, torch.Generator().manual_seed(3))
    dl, ul = d.rays_dl, d.rays_ul
    # the same rays seen from the other end (same delays, powers, coupled angles, XPR)
    for a, b in (("aoa", "aod"), ("aod", "aoa"), ("zoa", "zod"), ("zod", "zoa")):
        assert torch.equal(getattr(ul, a), getattr(dl, b))
    for k in ("delays", "powers", "xpr", "strongest_cluster_indices"):
        assert torch.equal(getattr(ul, k), getattr(dl, k))
    assert torch.equal(d.topo_ul.velocities, d.topo_dl.velocities)
    assert torch.equal(d.topo_ul.los_aod, d.topo_dl.los_aoa) and torch.equal(d.topo_ul.distance_3d,
                                                                            d.topo_dl.distance_3d)
    assert not torch.allclose(ul.phases, dl.phases)  # independent UL phases
    # geometry varies per UE: positions, delays, angles (cluster means and the coupling)
    r = d.rays
    assert len({tuple(p) for p in d.position.tolist()}) == 6
    for k in ("delays", "powers", "aod", "zod", "aoa"):
        assert not torch.allclose(r[k][0], r[k][1]), k
    assert not torch.equal(torch.sort(r["aod"][0], -1).values, torch.sort(r["aod"][1], -1).values)
    # the drop: 1.5 m UE, 10 m BS, sector and range of the config, NLoS forced, horizontal travel
    dist = torch.linalg.norm(d.position[:, :2], dim=-1)
    assert torch.all((dist >= 10) & (dist <= 100))
    assert torch.allclose(d.position[:, 2], torch.tensor(1.5 - 10.0))
    assert torch.all(torch.abs(torch.atan2(d.position[:, 1], d.position[:, 0])) <= np.pi / 3 + 1e-6)
    assert not bool(d.los.any()) and torch.all(d.velocity[:, 2] == 0)
    torch.testing.assert_close(torch.linalg.norm(d.velocity, dim=-1), torch.full((6,), 5.0))


def test_ul_is_no_copy_of_dl():
    m = model(UMI)
    r = m.draw(64, torch.Generator().manual_seed(1))
    c = UMI
    dl = cluster_to_ad(r.h_dl, r.tau, c.n_subcarriers, c.subcarrier_spacing, c.n_taps).numpy()
    ul = cluster_to_ad(r.h_ul, r.tau, c.n_subcarriers, c.subcarrier_spacing, c.n_taps).numpy()
    assert nmse_db(dl[:, 1], ul) > -10.0  # Y vs Z at the same instant
    assert nmse_db(dl[:, 1], dl[:, 0]) < 0.0  # 5 ms at 5 m/s: Z still resembles X
    # shared phases through a rescaled array (a second model at the UL carrier): a near copy
    m2 = model(UMI.replace(ul_phases="shared", ul_array="rescaled"))
    r2 = m2.draw(64, torch.Generator().manual_seed(1))
    torch.testing.assert_close(r2.h_dl, r.h_dl)  # the DL does not depend on the UL options
    ul2 = cluster_to_ad(r2.h_ul, r2.tau, c.n_subcarriers, c.subcarrier_spacing, c.n_taps).numpy()
    assert nmse_db(dl[:, 1], ul2) < -15.0


@pytest.mark.parametrize("name,los", [("UMi", "auto"), ("UMa", "los")])
def test_fast_path_matches_sionna_generator(name, los):
    """Our ray/subcluster sum == Sionna's ChannelCoefficientsGenerator (subclustering on)."""
    cfg = CDL_C_FDD.replace(profile="generic", model=name, los=los, n_subcarriers=64)
    m = model(cfg)
    d = m.sample(4, torch.Generator().manual_seed(5))
    r = m.channel(d)
    t = m.times()
    kw = dict(num_time_samples=2, sampling_frequency=1 / float(t[1]), k_factor=d.k_factor,
              c_ds=d.c_ds.reshape(-1, 1, 1))
    h, tau = m.gen_dl(rays=d.rays_dl, topology=d.topo_dl, **kw)
    ref = cluster_to_sf(h[:, 0, 0, :, 0].permute(0, 3, 1, 2), tau[:, 0, 0].double(), 64, 15e3)
    ours = cluster_to_sf(r.h_dl, r.tau, 64, 15e3)
    assert nmse_db(ref.numpy(), ours.numpy()) < -80
    h, tau = m.gen_ul(rays=d.rays_ul, topology=d.topo_ul, **kw)
    ref = cluster_to_sf(h[:, 0, 0, :, :, 0, 1], tau[:, 0, 0].double(), 64, 15e3)
    assert nmse_db(ref.numpy(), cluster_to_sf(r.h_ul, r.tau, 64, 15e3).numpy()) < -80
    assert r.h_dl.shape == (4, 2, m.n_clusters + 4, 32)  # 2 strongest clusters -> 3 subclusters
    if los == "los":
        assert bool(r.los.all())


def test_determinism_by_seed():
    m = model(UMI.replace(los="auto"))
    a = m.draw(5, torch.Generator().manual_seed(7))
    b = m.draw(5, torch.Generator().manual_seed(7))
    m.draw(3, torch.Generator().manual_seed(8))  # other batch sizes in between change nothing
    c = m.draw(5, torch.Generator().manual_seed(7))
    for x in (b, c):
        torch.testing.assert_close(a.h_dl, x.h_dl, rtol=0, atol=0)
        torch.testing.assert_close(a.h_ul, x.h_ul, rtol=0, atol=0)
        assert torch.equal(a.position, x.position) and torch.equal(a.los, x.los)
    d = m.draw(5, torch.Generator().manual_seed(9))
    assert not torch.allclose(a.h_dl, d.h_dl)


def test_generated_file_has_position_and_los(tmp_path):
    from shared.dataset import open_dataset

    c = UMI.replace(los="auto", n_train=10, n_val=0, n_test=4, block_size=8, sf_cap=2, n_subcarriers=96)
    generate(c, tmp_path / "u.h5", progress=False, workers=0)
    with open_dataset(tmp_path / "u.h5") as ds:
        ds.verify()
        t = ds.split("train")
        pos, los = t.read("position"), t.read("los")
        assert pos.shape == (10, 3) and pos.dtype == np.float32 and los.dtype == bool
        assert np.allclose(pos[:, 2], -8.5) and len(np.unique(pos[:, 0])) == 10
        assert t.read("x_ad").shape == (10, 32, 32)
        assert "position" in ds.bs_view().split("test").fields
    generate(c, tmp_path / "v.h5", progress=False, workers=0)
    with open_dataset(tmp_path / "u.h5") as a, open_dataset(tmp_path / "v.h5") as b:
        np.testing.assert_array_equal(a.split("test").read("y_ad"), b.split("test").read("y_ad"))


def test_config_fields():
    with pytest.raises(InvalidInput, match="los"):
        UMI.replace(los="maybe")
    with pytest.raises(InvalidInput, match="max_distance"):
        UMI.replace(min_distance=50.0, max_distance=20.0)
    # system-only fields stay out of CDL/TDL identities (existing dataset ids unchanged)
    assert "los" not in CDL_C_FDD.to_dict() and "delay_spread" not in UMI.to_dict()
    assert CDL_C_FDD.dataset_id == "82acfcdcb2426ea7"
    assert UMI.dataset_id != UMI.replace(los="los").dataset_id
    assert GenConfig.from_dict(UMI.to_dict()) == UMI
