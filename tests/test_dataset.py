"""shared/dataset.py: schema round trip, views, lookups, and clear errors on bad files.
Files are written here with h5py (no torch / sionna), so these tests are fast.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from shared.dataset import SCHEMA, open_dataset, parse_world_key, world_key
from shared.errors import DatasetError, NotFound

NT, TAPS, NC = 4, 3, 8
SIZES = {"train": 10, "val": 4, "test": 5}


def write_file(path: Path, sizes: dict[str, int] = SIZES, n_sf: int = 2, **attrs) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        base = dict(schema=SCHEMA, profile="unit", config=json.dumps({"seed": 0}), seed=0, n_antennas=NT,
                    n_subcarriers=NC, n_taps=TAPS, created="now", generator=json.dumps({"x": "1"}),
                    dataset_id="abc123", complete=True)
        base.update(attrs)
        for k, v in base.items():
            if v is not None:
                f.attrs[k] = v
        first = 100
        for s, n in sizes.items():
            g = f.create_group(s)
            g.create_dataset("sample_id", data=np.arange(first, first + n, dtype=np.int64), chunks=(2,))
            first += n
            for k in ("x_ad", "y_ad", "z_ad"):
                a = rng.standard_normal((n, NT, TAPS)) + 1j * rng.standard_normal((n, NT, TAPS))
                g.create_dataset(k, data=a.astype(np.complex64), chunks=(2, NT, TAPS))
            g.create_dataset("speed", data=np.full(n, 5.0, np.float32))
            if s == "test":
                for k in ("x_sf", "y_sf", "z_sf"):
                    g.create_dataset(k, data=np.ones((n_sf, NT, NC), np.complex64))
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_file(tmp_path / "good.h5")


def test_round_trip_and_lookups(good: Path):
    with open_dataset(good) as ds:
        assert ds.splits == ("train", "val", "test") and ds.dataset_id == "abc123"
        assert (ds.n_antennas, ds.n_subcarriers, ds.n_taps) == (NT, NC, TAPS)
        tr = ds.split("train")
        assert len(tr) == 10 and tr.shape("x_ad") == (10, NT, TAPS)
        with h5py.File(good, "r") as f:
            ref = f["train/x_ad"][()]
        np.testing.assert_array_equal(tr.read("x_ad", 3), ref[3])
        np.testing.assert_array_equal(tr.read("x_ad", [5, 1, 5]), ref[[5, 1, 5]])
        np.testing.assert_array_equal(tr.read("x_ad", slice(2, 4)), ref[2:4])
        np.testing.assert_array_equal(tr.by_id(103)["x_ad"], ref[3])
        assert tr.index_of(109) == 9
        with pytest.raises(NotFound):
            tr.index_of(110)  # that id is in val
        with pytest.raises(NotFound):
            tr.read("x_ad", 10)
        assert ds.split("val").index_of(110) == 0
        te = ds.split("test")
        assert set(te.get(0)) >= {"x_sf", "x_ad"} and "x_sf" not in te.get(4)  # SF only for 2 rows
        key = ds.world_key("test", 114)
        assert key == world_key("abc123", "test", 114) and parse_world_key(key) == ("abc123", "test", 114)
        with pytest.raises(NotFound):
            ds.split("holdout")
        info = ds.info()
        ad = [4, NT, TAPS]
        assert info["splits"]["val"] == {"n": 4, "first_id": 110, "last_id": 113, "fields": {
            "sample_id": [4], "speed": [4], "x_ad": ad, "y_ad": ad, "z_ad": ad}}
        ds.verify()


def test_views_restrict_fields(good: Path):
    ds = open_dataset(good)
    ue, bs, truth = ds.ue_view().split("test"), ds.bs_view().split("test"), ds.truth_view().split("test")
    assert set(ue.fields) == {"sample_id", "x_ad", "x_sf"}
    assert set(bs.fields) == {"sample_id", "y_ad", "y_sf", "speed"}
    assert set(truth.fields) == {"sample_id", "x_ad", "x_sf", "z_ad", "z_sf"}
    for view, field in ((bs, "x_ad"), (bs, "z_sf"), (ue, "y_ad"), (ue, "z_ad"), (truth, "y_ad")):
        with pytest.raises(DatasetError, match="not visible"):
            view.read(field, 0)
    assert set(bs.by_id(114)) == {"sample_id", "y_ad", "y_sf", "speed"}
    ds.close()


def test_open_reads_no_sample_data(good: Path, monkeypatch):
    """Opening validates attributes and shapes only: no CSI array is read (nodes open often)."""
    import h5py

    reads = []
    orig = h5py.Dataset.__getitem__

    def spy(self, key):
        reads.append(self.name)
        return orig(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    open_dataset(good).close()
    assert not [r for r in reads if r.endswith(("_ad", "_sf"))]


@pytest.mark.parametrize("case, match", [
    ("missing", "no such dataset file"),
    ("text", "not an HDF5 file"),
    ("truncated", "truncated or corrupt"),
    ("no_schema", "not a csilink dataset"),
    ("schema2", "unsupported schema"),
    ("no_attr", "missing root attribute.*n_taps"),
    ("incomplete", "incomplete"),
    ("no_split", "no split group"),
    ("no_x", "missing the 'x_ad'"),
    ("shape", r"x_ad has shape \(10, 4, 5\), expected \(10, 4, 3\)"),
    ("rows", r"y_ad has shape \(9, 4, 3\)"),
    ("dtype", "dtype complex128, expected complex64"),
    ("sf_rows", "more than the split"),
])
def test_bad_files_raise_clear_errors(tmp_path: Path, good: Path, case: str, match: str):
    p = tmp_path / f"{case}.h5"
    if case == "text":
        p.write_text("hello")
    elif case == "truncated":
        data = good.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif case == "no_schema":
        write_file(p, schema=None)
    elif case == "schema2":
        write_file(p, schema="csilink-dataset/2")
    elif case == "no_attr":
        write_file(p, n_taps=None)
    elif case == "incomplete":
        write_file(p, complete=False)
    elif case == "no_split":
        write_file(p, sizes={})
    elif case in ("no_x", "shape", "rows", "dtype", "sf_rows"):
        shutil.copy(good, p)
        with h5py.File(p, "r+") as f:
            if case == "no_x":
                del f["val/x_ad"]
            elif case == "shape":
                del f["train/x_ad"]
                f["train/x_ad"] = np.zeros((10, NT, 5), np.complex64)
            elif case == "rows":
                del f["train/y_ad"]
                f["train/y_ad"] = np.zeros((9, NT, TAPS), np.complex64)
            elif case == "dtype":
                del f["train/z_ad"]
                f["train/z_ad"] = np.zeros((10, NT, TAPS), np.complex128)
            else:
                del f["test/x_sf"]
                f["test/x_sf"] = np.zeros((6, NT, NC), np.complex64)
    with pytest.raises(DatasetError, match=match):
        open_dataset(p)


def test_corrupt_chunk_raises_on_read(tmp_path: Path):
    p = write_file(tmp_path / "c.h5", sizes={"train": 64})
    with h5py.File(p, "r") as f:
        off = f["train/x_ad"].id.get_chunk_info(3).byte_offset
    with open(p, "r+b") as fh:  # a garbage chunk would read as garbage; make it unreadable instead
        fh.truncate(off + 8)
    with pytest.raises(DatasetError):
        ds = open_dataset(p)
        ds.split("train").read("x_ad", slice(0, 64))


def test_cli_info(good: Path):
    out = subprocess.run([sys.executable, "-m", "csilink.cli", "dataset", "info", str(good), "--json"],
                         capture_output=True, text=True, check=True).stdout
    info = json.loads(out)
    assert info["dataset_id"] == "abc123" and info["splits"]["test"]["n"] == 5
    bad = subprocess.run([sys.executable, "-m", "csilink.cli", "dataset", "info", str(good) + "x"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no such dataset file" in bad.stderr


def test_preloaded_fields_read_like_the_file(good: Path):
    """A field held in memory answers every kind of index as the file does, and still refuses
    rows out of range; too big a field stays on disk; the view still applies."""
    from csilink.server_common import DatasetViews

    with open_dataset(good) as ds:
        tr = ds.split("train")
        ref = {i: tr.read("x_ad", i) for i in (0, 3, -1)}
        ref_many = tr.read("x_ad", [5, 1, 5])
        assert not tr.preload("x_ad", max_bytes=10)  # 10 x 4 x 3 complex64 = 960 bytes
        assert tr.preload("x_ad", max_bytes=1 << 20)
        for i, v in ref.items():
            np.testing.assert_array_equal(tr.read("x_ad", i), v)
        np.testing.assert_array_equal(tr.read("x_ad", [5, 1, 5]), ref_many)
        np.testing.assert_array_equal(tr.read("x_ad", slice(2, 4)), tr.read("x_ad")[2:4])
        tr.read("x_ad", 3)[:] = 0  # a copy: the held field is not changed by callers
        np.testing.assert_array_equal(tr.read("x_ad", 3), ref[3])
        with pytest.raises(NotFound):
            tr.read("x_ad", 10)
        with pytest.raises(NotFound):
            tr.read("x_ad", [0, 10])
    views = DatasetViews([str(good)], "ue", preload_bytes=1 << 20)
    try:
        np.testing.assert_array_equal(views.read("", "train", "x_ad", [101, 105])[1], ref_many[0])
        np.testing.assert_array_equal(views.read("", "train", "x_ad", [105]), ref_many[:1])
        with pytest.raises(DatasetError, match="not visible"):
            views.read("", "train", "y_ad", [101])
    finally:
        views.close()
