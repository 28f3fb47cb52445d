"""The COST 2100-style site (datagen/gscm.py): one site for every split, visibility regions,
spatial consistency, unit power, FDD phases, and a file that stores the UE position.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from datagen.generate import generate  # noqa: E402
from datagen.gscm import FddGscm, _vr_gain  # noqa: E402
from datagen.ofdm import cluster_to_ad  # noqa: E402
from datagen.profiles import GSCM_OUTDOOR  # noqa: E402
from shared.dataset import open_dataset  # noqa: E402
from shared.errors import InvalidInput  # noqa: E402


def _draw(cfg=GSCM_OUTDOOR, n: int = 64, seed: int = 1):
    return FddGscm(cfg).draw(n, torch.Generator().manual_seed(seed))


def test_site_is_fixed_by_seed_and_samples_by_generator():
    a, b = FddGscm(GSCM_OUTDOOR), FddGscm(GSCM_OUTDOOR)
    assert np.array_equal(a.phi, b.phi) and np.array_equal(a.q, b.q)
    other = FddGscm(GSCM_OUTDOOR.replace(seed=1))
    assert not np.allclose(a.phi, other.phi)
    r1, r2 = _draw(seed=3), _draw(seed=3)
    assert torch.equal(r1.h_dl, r2.h_dl) and torch.equal(r1.position, r2.position)
    assert not torch.equal(_draw(seed=4).h_dl, r1.h_dl)


def test_unit_power_and_delays_inside_the_window():
    r = _draw(n=128)
    power = (r.h_dl[:, 0, :, 0].abs() ** 2).sum(-1)  # paths, one antenna
    assert torch.allclose(power, torch.ones_like(power), atol=1e-4)
    assert float(r.tau.min()) >= -1e-12  # relative to the direct path
    ad = cluster_to_ad(r.h_dl[:, :1], r.tau, 1024, GSCM_OUTDOOR.subcarrier_spacing, 32)[:, 0].numpy()
    kept = (np.abs(ad) ** 2).sum((1, 2)) / (32 * 1024)  # the crop of a unit-power SF matrix
    assert np.median(kept) > 0.9


def test_visibility_regions_gate_the_far_clusters():
    g = _vr_gain(torch.tensor([0.0, 69.9, 80.0, 90.0, 200.0], dtype=torch.float64), 90.0, 20.0)
    assert g[0] == 1 and g[1] == 1 and 0 < g[2] < 1 and g[3] == 0 and g[4] == 0
    m = FddGscm(GSCM_OUTDOOR)
    r = m.draw(256, torch.Generator().manual_seed(0))
    ue = r.position[:, :2].double().numpy()
    d = np.linalg.norm(ue[:, None] - m.vr_center[None], axis=-1)
    vis = r.rays["vr_gain"].numpy()
    assert np.all(vis[d > 90.0] == 0) and np.all(vis[d < 70.0] == 1)
    assert 1.0 < vis.sum(1).mean() < 12.0  # a few clusters of the 24 per UE


def test_spatially_consistent():
    """A UE 10 cm away sees the same paths (AD power nearly equal); 100 m away, another set."""
    m = FddGscm(GSCM_OUTDOOR)
    r = m.draw(8, torch.Generator().manual_seed(5))
    # the 5 ms target instant moves the UE 2.5 cm: a nearly unchanged channel at 300 MHz
    x, z = r.h_dl[:, 0], r.h_dl[:, 1]
    err = ((z - x).abs() ** 2).sum((1, 2)) / (x.abs() ** 2).sum((1, 2))
    assert float(err.max()) < 0.05 and float(err.min()) > 0
    assert r.speed.min() >= GSCM_OUTDOOR.min_speed


def test_ul_shares_geometry_not_phases():
    r = _draw(n=32)
    ul, dl = r.h_ul, r.h_dl[:, 1]
    assert torch.allclose(ul.abs()[..., 0], dl.abs()[..., 0], atol=1e-5)  # same path magnitudes
    corr = (ul[..., 0] * dl[..., 0].conj()).sum(-1).abs() / ((ul[..., 0].abs() ** 2).sum(-1))
    assert float(corr.mean()) < 0.9
    shared = _draw(GSCM_OUTDOOR.replace(ul_phases="shared"), n=32)
    # shared interaction phases: only the carrier's path-length phase differs between DL and UL
    d = shared.h_ul[..., 0] * shared.h_dl[:, 1, :, 0].conj()
    assert float(d.angle().abs().mean()) > 0  # still not a copy (other carrier)
    assert math.isfinite(float(d.abs().sum()))


def test_unknown_parameter_is_named():
    with pytest.raises(InvalidInput, match="n_farr"):
        FddGscm(GSCM_OUTDOOR.replace(extra={"n_farr": 3}))
    m = FddGscm(GSCM_OUTDOOR.replace(extra={"n_far": 4}))
    assert m.phi.shape == (4,)


def test_file_stores_position_and_los(tmp_path):
    cfg = GSCM_OUTDOOR.replace(n_train=40, n_val=8, n_test=8, block_size=16, sf_cap=4)
    out = tmp_path / "g.h5"
    generate(cfg, out, progress=False, workers=0)
    with open_dataset(out) as ds:
        te = ds.split("test")
        pos = te.read("position")
        assert pos.shape == (8, 3) and np.all((pos[:, 0] >= 40) & (pos[:, 0] <= 440))
        assert te.read("x_ad").shape == (8, 32, 32) and te.read("x_sf").shape == (4, 32, 1024)
        assert ds.info()["profile"] == "gscm-outdoor"
