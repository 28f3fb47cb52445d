"""The ray-traced multi-modal world: config checks, a tiny real Sionna RT generation, the sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen.rt.config import RT_PROFILES, RtConfig
from shared.dataset import open_dataset
from shared.errors import InvalidInput

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "rt-street-sample.h5"


def _llvm() -> bool:
    from datagen.rt.world import llvm_available

    return llvm_available()


needs_llvm = pytest.mark.skipif(not _llvm(), reason="LLVM 19 missing (scripts/install_llvm.sh)")


def test_config_rejects_bad_fields() -> None:
    with pytest.raises(InvalidInput, match="multiple of ues_per_solve"):
        RtConfig(block_size=10, ues_per_solve=4)
    with pytest.raises(InvalidInput, match="view_weights"):
        RtConfig(view_weights=(0.5, 0.2))
    with pytest.raises(InvalidInput, match="unknown config field"):
        RtConfig().replace(n_rbs=4)
    with pytest.raises(InvalidInput, match="n_train_image"):
        RtConfig(n_train_image=-1)


def test_config_identity() -> None:
    a = RT_PROFILES["rt-street-image"]
    assert a.n_subcarriers == 576 and a.n_antennas == 32
    assert a.dataset_id == RtConfig.from_dict(a.to_dict()).dataset_id
    assert a.replace(seed=1).dataset_id != a.dataset_id
    # YAML lists come back as the tuples the dataclass holds
    b = a.replace(view_regions=[[0, 0, 10, 10]], view_weights=[1.0])
    assert b.view_regions == ((0, 0, 10, 10),)


@needs_llvm
def test_tiny_generation_is_real_and_deterministic(tmp_path: Path) -> None:
    from datagen.rt.generate import generate_rt

    cfg = RtConfig(profile="tiny", n_train_image=1, n_train_wireless=2, n_val_image=0, n_val_wireless=0,
                   n_test_image=0, n_test_wireless=0, ues_per_solve=2, block_size=2,
                   samples_per_src=20_000, render_spp=2, image_size=(24, 32), max_depth=2)
    out = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for p in out:
        stats = generate_rt(cfg, p, workers=1)
        assert stats["samples"] == 3
    ds = open_dataset(out[0])
    tr = ds.split("train")
    assert ds.n_taps == 0 and tr.shape("x_sf") == (3, 32, 576) and tr.shape("image") == (3, 24, 32, 3)
    x, y = tr.read("x_sf"), tr.read("y_sf")
    assert np.all(np.isfinite(x)) and np.all(np.abs(x).sum(axis=(1, 2)) > 0)
    # the UL is traced at its own carrier: related to the DL, not a copy of it
    assert not np.allclose(np.abs(x), np.abs(y))
    assert list(tr.read("has_image")) == [True, False, False]
    img = tr.read("image")
    assert img[0].max() > 0 and img[1:].max() == 0
    # the nodes' views: the UE sees its DL measurement, the BS its UL CSI and camera
    assert "x_sf" in ds.ue_view().split("train").fields and "image" not in ds.ue_view().split("train").fields
    assert {"y_sf", "image"} <= set(ds.bs_view().split("train").fields)
    again = open_dataset(out[1]).split("train").read("x_sf")
    np.testing.assert_array_equal(x, again)  # same config + seed -> same channels


@pytest.mark.skipif(not SAMPLE.is_file(), reason="sample not generated")
def test_committed_sample_shows_the_ue() -> None:
    ds = open_dataset(SAMPLE)
    te = ds.split("test")
    has = te.read("has_image")
    los = te.read("los")
    img = te.read("image")
    assert has.sum() == 16 and (~has).sum() == 16
    # the UE car is red: most in-view LOS pictures show red pixels, wireless rows have none
    red = (img[..., 0] > 120) & (img[..., 1] < 60) & (img[..., 2] < 60)
    seen = red.reshape(len(img), -1).sum(axis=1) > 0
    assert seen[has & los].mean() >= 0.5
    assert not seen[~has].any()
    # LOS channels are stronger than NLOS ones on average (path gain, not normalized)
    p = 10 * np.log10((np.abs(te.read("x_sf")) ** 2).mean(axis=(1, 2)))
    if los.any() and (~los).any():
        assert p[los].mean() > p[~los].mean()
