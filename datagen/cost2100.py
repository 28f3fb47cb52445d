"""Importer of the public COST2100 datasets of CsiNet (Wen et al., 2018) into csilink files.

CsiNet's files (``DATA_Htrainin.mat``, ``DATA_Hvalin.mat``, ``DATA_Htestin.mat``, and the
``...out`` outdoor ones) hold one variable ``HT``: float ``[N, 2048]``, each row a flattened
``[2, 32, 32]`` real tensor in C order (CsiNet's ``reshape(len, 2, 32, 32)``): channel 0 the
real part, channel 1 the imaginary part, each ``[delay, angle]`` (32 delay rows of the
truncated angular-delay matrix, 32 antenna/angle columns), scaled into [0, 1] with a 0.5
offset. The importer undoes the offset (``H = (re - 0.5) + j (im - 0.5)``; the dataset's
global scale factor is unknown and stays folded in), transposes to csilink's
``[Nt, n_taps]`` = ``[angle, delay]`` layout and writes ``x_ad`` only (COST2100 has no UL and
no future CSI). Both MATLAB v5 (scipy.io.loadmat) and v7.3 (HDF5, h5py; stored transposed)
files are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np

from shared.errors import InvalidInput

NT, TAPS, NC = 32, 32, 1024
SCHEMA = "csilink-dataset/1"


def load_ht(path: str | Path, key: str = "HT") -> np.ndarray:
    """The ``[N, 2048]`` float array of a CsiNet .mat file (v5 or v7.3)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{p}: no such file")
    if h5py.is_hdf5(p):  # MATLAB v7.3: HDF5, column-major, so the matrix comes transposed
        with h5py.File(p, "r") as f:
            if key not in f:
                raise InvalidInput(f"{p}: no variable {key!r} (has {', '.join(f)})")
            a = np.asarray(f[key][()])
        if a.ndim == 2 and a.shape[0] == 2 * NT * TAPS and a.shape[1] != 2 * NT * TAPS:
            a = a.T
    else:
        from scipy.io import loadmat

        try:
            m = loadmat(p, variable_names=[key])
        except Exception as exc:  # scipy raises several types for bad files
            raise InvalidInput(f"{p}: not a readable .mat file ({exc})") from exc
        if key not in m:
            raise InvalidInput(f"{p}: no variable {key!r}")
        a = np.asarray(m[key])
    if a.ndim != 2 or a.shape[1] != 2 * NT * TAPS:
        raise InvalidInput(f"{p}: {key} has shape {a.shape}, expected [N, {2 * NT * TAPS}]")
    return a


def ht_to_ad(ht: np.ndarray) -> np.ndarray:
    """CsiNet rows ``[N, 2048]`` in [0, 1] -> complex64 ``[N, Nt=32, taps=32]`` (angle, delay)."""
    x = np.asarray(ht, dtype=np.float32).reshape(-1, 2, TAPS, NT) - 0.5  # [N, re/im, delay, angle]
    return (x[:, 0] + 1j * x[:, 1]).transpose(0, 2, 1).astype(np.complex64)


def ad_to_ht(ad: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ht_to_ad` (used to write test fixtures): ``[N, 2048]`` float32."""
    a = np.asarray(ad).transpose(0, 2, 1)
    return (np.stack([a.real, a.imag], axis=1) + 0.5).reshape(len(a), -1).astype(np.float32)


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_cost2100(files: dict[str, str | Path], out: str | Path, name: str = "cost2100",
                    key: str = "HT") -> Path:
    """Write ``{split: .mat path}`` as a csilink dataset (x_ad, sample_id) at ``out`` (atomic)."""
    bad = set(files) - {"train", "val", "test"}
    if bad:
        raise InvalidInput(f"unknown split(s) {sorted(bad)}")
    out = Path(out)
    config = {
        "profile": name, "source": "CsiNet COST2100 .mat (HT)", "key": key, "n_antennas": NT,
        "n_subcarriers": NC, "n_taps": TAPS, "seed": 0,
        "files": {s: {"name": Path(p).name, "sha256": _sha256(Path(p))} for s, p in files.items()},
        "normalization": "HT in [0,1] with 0.5 offset removed; CsiNet's global scale kept",
    }
    cfg_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    first = 0
    with h5py.File(partial, "w") as f:
        f.attrs.update({
            "schema": SCHEMA, "profile": name, "config": cfg_json, "seed": 0, "n_antennas": NT,
            "n_subcarriers": NC, "n_taps": TAPS,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "generator": json.dumps({"importer": "datagen.cost2100", "numpy": np.__version__}),
            "dataset_id": hashlib.sha256(cfg_json.encode()).hexdigest()[:16], "complete": False,
        })
        for split in ("train", "val", "test"):
            if split not in files:
                continue
            ad = ht_to_ad(load_ht(files[split], key))
            n = len(ad)
            g = f.create_group(split)
            blk = max(1, min(256, n))
            g.create_dataset("sample_id", data=np.arange(first, first + n, dtype=np.int64), chunks=(blk,))
            g.create_dataset("x_ad", data=ad, chunks=(blk, NT, TAPS))
            g.attrs["n_written"] = n
            g.attrs["first_sample_id"] = first
            first += n
        f.attrs["complete"] = True
    os.replace(partial, out)
    return out
