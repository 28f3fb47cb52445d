"""Small synthetic CDL-like datasets in the csilink schema, for tests and quick development.

NOT a channel model: a handful of clusters (random angle, delay, power, per-ray phase) on a
32-antenna ULA over ``n_subcarriers`` subcarriers, transformed to the cropped angular-delay
domain with ``shared.transforms``. It gives sparse, structured 32x32 AD matrices like the
Sionna CDL data, fast and with no Sionna dependency. Real results use ``datagen/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from shared.transforms import sf_to_ad

SCHEMA = "csilink-dataset/1"


def _channels(
    rng: np.random.Generator, n: int, nt: int, nc: int, clusters: int = 4, rays: int = 6
) -> np.ndarray:
    """SF channels ``[n, nt, nc]`` complex64: sum of rays with ULA steering and delay phase ramps."""
    ant = np.arange(nt)[None, :, None]
    sc = np.arange(nc)[None, None, :]
    h = np.zeros((n, nt, nc), np.complex128)
    for _ in range(clusters):
        theta = rng.uniform(-np.pi / 2, np.pi / 2, (n, 1, 1))
        tau = rng.exponential(0.01, (n, 1, 1))  # fraction of the symbol: a few delay taps
        p = rng.exponential(1.0, (n, 1, 1))
        for _ in range(rays):
            th = theta + rng.normal(0, 0.05, (n, 1, 1))
            tr = np.clip(tau + rng.normal(0, 0.001, (n, 1, 1)), 0, None)
            phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
            h += np.sqrt(p / rays) * np.exp(1j * (phase + np.pi * ant * np.sin(th) - 2 * np.pi * sc * tr))
    h /= np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2), keepdims=True))
    return h.astype(np.complex64)


def make_dataset(
    path: str | Path,
    n_train: int = 512,
    n_val: int = 128,
    n_test: int = 128,
    seed: int = 0,
    nt: int = 32,
    nc: int = 128,
    taps: int = 32,
    sf_cap: int = 64,
) -> Path:
    """Write a synthetic dataset file with ``x_ad``/``y_ad``/``z_ad`` (+ ``x_sf`` on test)."""
    import h5py

    path = Path(path)
    rng = np.random.default_rng(seed)
    cfg = {
        "profile": "synthetic",
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "nt": nt,
        "nc": nc,
    }
    cfg_json = json.dumps(cfg, sort_keys=True)
    offset = 0
    with h5py.File(path, "w") as f:
        f.attrs.update(
            {
                "schema": SCHEMA,
                "profile": "synthetic",
                "config": cfg_json,
                "seed": seed,
                "n_antennas": nt,
                "n_subcarriers": nc,
                "n_taps": taps,
                "dataset_id": hashlib.sha256(cfg_json.encode()).hexdigest()[:16],
            }
        )
        for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            g = f.create_group(split)
            x_sf = _channels(rng, n, nt, nc)
            z_sf = (0.9 * x_sf + 0.1 * _channels(rng, n, nt, nc)).astype(np.complex64)
            y_sf = (0.5 * x_sf + 0.5 * _channels(rng, n, nt, nc)).astype(np.complex64)
            g["sample_id"] = np.arange(offset, offset + n, dtype=np.int64)
            offset += n
            for name, h in (("x", x_sf), ("y", y_sf), ("z", z_sf)):
                g[f"{name}_ad"] = sf_to_ad(h, taps)
            if split == "test":
                g["x_sf"] = x_sf[:sf_cap]
    return path
