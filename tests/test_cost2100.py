"""COST2100 importer on small synthetic .mat files in CsiNet's layout (v5 and v7.3)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from datagen.cost2100 import ad_to_ht, ht_to_ad, import_cost2100, load_ht
from shared.dataset import open_dataset
from shared.errors import InvalidInput

scipy_io = pytest.importorskip("scipy.io")


def csinet_rows(n: int, seed: int = 0) -> np.ndarray:
    """Rows as CsiNet stores them: [2, 32 delay, 32 angle] in C order, in [0, 1] around 0.5."""
    rng = np.random.default_rng(seed)
    return (0.5 + 0.05 * rng.standard_normal((n, 2, 32, 32))).clip(0, 1).reshape(n, 2048)


def test_layout_hand_checked():
    row = np.full((1, 2, 32, 32), 0.5)
    row[0, 0, 2, 7] = 0.75  # real part, delay tap 2, angle 7
    row[0, 1, 0, 31] = 0.25  # imaginary part, delay 0, angle 31
    ad = ht_to_ad(row.reshape(1, 2048))
    assert ad.shape == (1, 32, 32) and ad.dtype == np.complex64
    assert ad[0, 7, 2] == 0.25 and ad[0, 31, 0] == -0.25j  # csilink layout is [angle, delay]
    assert np.count_nonzero(ad) == 2
    np.testing.assert_allclose(ad_to_ht(ad), row.reshape(1, 2048), atol=1e-7)


def test_import_v5_and_v73(tmp_path: Path):
    tr, te = csinet_rows(12, 1), csinet_rows(5, 2)
    scipy_io.savemat(tmp_path / "DATA_Htrainin.mat", {"HT": tr})
    with h5py.File(tmp_path / "DATA_Htestin.mat", "w") as f:  # v7.3 = HDF5, MATLAB column-major
        f["HT"] = te.T
    np.testing.assert_array_equal(load_ht(tmp_path / "DATA_Htestin.mat"), te)
    out = import_cost2100({"train": tmp_path / "DATA_Htrainin.mat", "test": tmp_path / "DATA_Htestin.mat"},
                          tmp_path / "cost.h5", name="cost2100-in")
    with open_dataset(out) as ds:
        assert ds.splits == ("train", "test") and ds.profile == "cost2100-in"
        assert ds.n_antennas == 32 and ds.n_taps == 32 and ds.n_subcarriers == 1024
        np.testing.assert_allclose(ds.split("train").read("x_ad"), ht_to_ad(tr), atol=1e-7)
        t = ds.split("test")
        assert list(t.sample_ids) == list(range(12, 17)) and t.fields == ["sample_id", "x_ad"]
        np.testing.assert_allclose(t.read("x_ad", 4), ht_to_ad(te)[4], atol=1e-7)
        ds.verify()


def test_bad_inputs(tmp_path: Path):
    scipy_io.savemat(tmp_path / "bad.mat", {"HT": np.zeros((3, 100))})
    with pytest.raises(InvalidInput, match="expected"):
        load_ht(tmp_path / "bad.mat")
    with pytest.raises(InvalidInput, match="no variable"):
        load_ht(tmp_path / "bad.mat", key="HF")
    with pytest.raises(InvalidInput, match="no such file"):
        load_ht(tmp_path / "nope.mat")


def test_cli(tmp_path: Path):
    from csilink.cli import main

    scipy_io.savemat(tmp_path / "v.mat", {"HT": csinet_rows(3)})
    argv = ["dataset", "import-cost2100", "--val", str(tmp_path / "v.mat"), "-o", str(tmp_path / "o.h5")]
    assert main(argv) == 0
    assert open_dataset(tmp_path / "o.h5").split("val").n == 3
