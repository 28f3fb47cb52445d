"""Thin reader of csilink dataset files for training and evaluation (numpy out).

Reads the HDF5 schema ``csilink-dataset/1`` (docs/ARCHITECTURE.md, "Dataset files") with
h5py directly: a split's ``[N, Nt, T]`` complex field, the root attributes, and the global
normalization scale. Errors name the file, split and field.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import DatasetError, NotFound

SPLITS = ("train", "val", "test")


def _open(path: str | Path) -> Any:
    import h5py

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"dataset file {p} does not exist")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise DatasetError(f"{p}: not a readable HDF5 dataset ({exc})") from None


def info(path: str | Path) -> dict[str, Any]:
    """Root attributes (``dataset_id``, ``profile``, ``n_subcarriers``...) and split sizes."""
    with _open(path) as f:
        out: dict[str, Any] = {}
        for k, v in f.attrs.items():
            out[k] = v.item() if isinstance(v, np.generic) else (v.decode() if isinstance(v, bytes) else v)
        out["splits"] = {s: int(f[s]["x_ad"].shape[0]) for s in SPLITS if s in f and "x_ad" in f[s]}
        out["fields"] = {s: sorted(f[s].keys()) for s in SPLITS if s in f}
    if "dataset_id" not in out:
        out["dataset_id"] = file_id(path)
    return out


def file_id(path: str | Path) -> str:
    """Fallback dataset id for files without one: sha256 prefix of name + size + mtime-free header."""
    p = Path(path)
    h = hashlib.sha256(p.name.encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 16))
    h.update(str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


def load_field(
    path: str | Path, split: str, field: str = "x_ad", n: int | None = None, start: int = 0
) -> np.ndarray:
    """``[n, ...]`` of ``/<split>/<field>`` (complex64 for CSI fields), rows ``start..start+n``."""
    if split not in SPLITS:
        raise NotFound(f"unknown split {split!r}; use one of {SPLITS}")
    with _open(path) as f:
        if split not in f:
            raise NotFound(f"{path}: no split {split!r} (has {sorted(f.keys())})")
        g = f[split]
        if field not in g:
            raise NotFound(f"{path}: split {split!r} has no field {field!r} (has {sorted(g.keys())})")
        d = g[field]
        stop = d.shape[0] if n is None else min(d.shape[0], start + int(n))
        try:
            arr = d[start:stop]
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read /{split}/{field} ({exc})") from None
    if np.iscomplexobj(arr):
        arr = arr.astype(np.complex64, copy=False)
        if not np.all(np.isfinite(arr)):
            raise DatasetError(f"{path}: /{split}/{field} holds NaN or Inf")
    return arr


def normalization_scale(x_ad: np.ndarray) -> float:
    """Global scale so that ``E|scale * x|^2 = 1`` per entry (computed on the training split)."""
    p = float(np.mean(np.abs(x_ad.astype(np.complex128)) ** 2))
    if not p > 0:
        raise DatasetError("training split has zero energy; cannot normalize")
    return float(1.0 / np.sqrt(p))
