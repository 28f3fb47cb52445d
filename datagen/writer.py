"""Incremental, atomic writer of ``csilink-dataset/1`` HDF5 files.

The file is written as ``<out>.partial``, block by block (one block = ``block_size`` samples,
one HDF5 chunk), and renamed to ``<out>`` only when complete, so a reader never sees a
half-written dataset under the final name. A ``.partial`` left by an interrupted run is
resumed if it was made by the same config (same ``dataset_id``): every block is a pure
function of (config, split, block index), so the resumed file is identical.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from datagen.profiles import POSITION_MODELS, SCHEMA, SPLITS, GenConfig


def generator_versions() -> dict[str, str]:
    """Package versions that produced the file (stored as the ``generator`` attribute)."""
    from importlib import metadata

    out = {}
    for pkg in ("csilink", "sionna", "torch", "numpy", "h5py"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def n_sf(cfg: GenConfig, split: str) -> int:
    """How many leading samples of ``split`` also carry the full SF matrices."""
    return min(cfg.split_sizes()[split], cfg.sf_cap) if split in cfg.sf_splits else 0


class DatasetWriter:
    """Create/resume ``<out>.partial``; :meth:`write_block`; :meth:`finish` renames it."""

    def __init__(self, out: str | Path, cfg: GenConfig, compression: str | None = None) -> None:
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.cfg = cfg
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.f = self._open_or_create(compression)

    # ------------------------------------------------------------------ setup
    def _open_or_create(self, compression: str | None) -> h5py.File:
        if self.partial.exists():
            try:
                f = h5py.File(self.partial, "r+")
                if f.attrs.get("dataset_id") == self.cfg.dataset_id:
                    return f
                f.close()
            except OSError:
                pass  # unreadable leftover: start over
            self.partial.unlink()
        f = h5py.File(self.partial, "w")
        c = self.cfg
        f.attrs["schema"] = SCHEMA
        f.attrs["profile"] = c.profile
        f.attrs["config"] = c.to_json()
        f.attrs["seed"] = int(c.seed)
        f.attrs["n_antennas"] = int(c.n_antennas)
        f.attrs["n_subcarriers"] = int(c.n_subcarriers)
        f.attrs["n_taps"] = int(c.n_taps)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.attrs["generator"] = json.dumps(generator_versions(), sort_keys=True)
        f.attrs["dataset_id"] = c.dataset_id
        f.attrs["complete"] = False
        first_id = 0
        for split in SPLITS:
            n = c.split_sizes()[split]
            g = f.create_group(split)
            g.attrs["n_written"] = 0  # samples written so far (a multiple of block_size)
            g.attrs["first_sample_id"] = first_id
            first_id += n
            blk = max(1, min(c.block_size, n))
            # An empty split is kept (fixed layout) but cannot be chunked or compressed.
            kw: dict[str, Any] = {"compression": compression, "shuffle": bool(compression)} if n else {}

            def chunks(*rest: int, n: int = n, blk: int = blk) -> tuple[int, ...] | None:
                return (blk, *rest) if n else None

            g.create_dataset("sample_id", shape=(n,), dtype=np.int64, chunks=chunks())
            g.create_dataset("speed", shape=(n,), dtype=np.float32, chunks=chunks())
            g.create_dataset("los", shape=(n,), dtype=bool, chunks=chunks())
            if c.model in POSITION_MODELS:  # UE position relative to the BS (m)
                g.create_dataset("position", shape=(n, 3), dtype=np.float32, chunks=chunks(3))
            for key in ("x_ad", "y_ad", "z_ad"):
                g.create_dataset(key, shape=(n, c.n_antennas, c.n_taps), dtype=np.complex64,
                                 chunks=chunks(c.n_antennas, c.n_taps), **kw)
            m = n_sf(c, split)
            if m:
                # One sample per chunk: SF matrices are read one at a time (runner, UE).
                for key in ("x_sf", "y_sf", "z_sf"):
                    g.create_dataset(key, shape=(m, c.n_antennas, c.n_subcarriers), dtype=np.complex64,
                                     chunks=(1, c.n_antennas, c.n_subcarriers), **kw)
        f.flush()
        return f

    # ------------------------------------------------------------------ writing
    def n_written(self, split: str) -> int:
        return int(self.f[split].attrs["n_written"])

    def first_id(self, split: str) -> int:
        return int(self.f[split].attrs["first_sample_id"])

    def write_block(self, split: str, start: int, fields: dict[str, np.ndarray]) -> None:
        """Write rows ``start:start+len`` of every field given (SF fields may be shorter)."""
        g = self.f[split]
        stop = start
        for key, arr in fields.items():
            if len(arr) == 0:
                continue
            g[key][start : start + len(arr)] = arr
            if not key.endswith("_sf"):
                stop = start + len(arr)
        g.attrs["n_written"] = stop
        self.f.flush()  # the n_written mark is only trusted once the data is on disk

    def finish(self) -> Path:
        for split in SPLITS:
            if self.n_written(split) != self.cfg.split_sizes()[split]:
                raise RuntimeError(f"split {split} incomplete: {self.n_written(split)} samples")
        self.f.attrs["complete"] = True
        self.f.close()
        os.replace(self.partial, self.out)
        return self.out

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()
