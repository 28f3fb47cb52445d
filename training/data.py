"""Thin reader of csilink dataset files for training and evaluation (numpy out).

Reads the HDF5 schema ``csilink-dataset/1`` (docs/ARCHITECTURE.md, "Dataset files") through
``shared.dataset``: a split's ``[N, Nt, T]`` complex field in one read, the root attributes, and
the global normalization scale. Errors name the file, split and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import DatasetError


def info(path: str | Path) -> dict[str, Any]:
    """Root attributes (``dataset_id``, ``profile``, ``n_subcarriers``...), split sizes and fields."""
    from shared.dataset import open_dataset

    with open_dataset(path) as d:
        out: dict[str, Any] = {
            k: getattr(d, k)
            for k in ("dataset_id", "profile", "seed", "n_antennas", "n_subcarriers", "n_taps", "config")
        }
        out["splits"] = {s: len(d.split(s)) for s in d.splits}
        out["fields"] = {s: d.split(s).fields for s in d.splits}
    return out


def load_field(
    path: str | Path, split: str, field: str = "x_ad", n: int | None = None, start: int = 0
) -> np.ndarray:
    """``[n, ...]`` of ``/<split>/<field>`` (complex64 for CSI fields), rows ``start..start+n``.

    Reads through ``shared.dataset.open_dataset`` (schema validation, clear errors).
    """
    from shared.dataset import open_dataset

    with open_dataset(path) as d:
        sp = d.split(split)
        rows = sp.shape(field)[0]
        stop = rows if n is None else min(rows, start + int(n))
        arr = sp.read(field, slice(start, stop))
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
