"""Image datasets of the semantic image link (HDF5 ``csilink-images/1``, ``datagen.images``).

Layout read here: root attribute ``dataset_id``; one group per split (``train``, ``test``),
each with ``image`` uint8 ``[n, S, S, 3]``. The BS reads the images it sends by
``(dataset_id, split, index)``; the runner reads the same ones as the truth.

:class:`ImageDatasets` opens every file at construction (a wrong path or layout fails there,
naming the file) and reads rows on demand; an index outside the split is ``NotFound``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import DatasetError, NotFound

SCHEMA = "csilink-images/1"
log = logging.getLogger("csilink.images")


def _attr_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ImageFile:
    """One open image file: ``dataset_id``, ``splits`` and :meth:`read`."""

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such image dataset file")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DatasetError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        self._lock = threading.Lock()
        self.dataset_id = _attr_str(self._f.attrs.get("dataset_id", self.path.stem))
        self.splits: dict[str, tuple[int, ...]] = {}
        for name, g in self._f.items():
            if isinstance(g, h5py.Group) and "image" in g:
                d = g["image"]
                if d.dtype != np.uint8 or d.ndim != 4 or d.shape[3] != 3 or d.shape[1] != d.shape[2]:
                    self._f.close()
                    raise DatasetError(
                        f"{self.path}: {name}/image must be uint8 [n, S, S, 3], got {d.dtype} {list(d.shape)}"
                    )
                self.splits[name] = tuple(int(s) for s in d.shape)
        if not self.splits:
            self._f.close()
            raise DatasetError(f"{self.path}: no split with an `image` dataset (layout {SCHEMA})")

    def size(self, split: str) -> int:
        return self._shape(split)[1]

    def count(self, split: str) -> int:
        return self._shape(split)[0]

    def _shape(self, split: str) -> tuple[int, ...]:
        if split not in self.splits:
            raise NotFound(f"image dataset {self.dataset_id} ({self.path}) has no split {split!r}; "
                           f"it has {sorted(self.splits)}")
        return self.splits[split]

    def read(self, split: str, indices: Any) -> np.ndarray:
        """Images ``[len(indices), S, S, 3]`` uint8 in the order given."""
        n = self.count(split)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise NotFound(f"image dataset {self.dataset_id} split {split!r} has {n} images "
                           f"(index 0..{n - 1}); no image {int(bad[0])}")
        uniq, inv = np.unique(idx, return_inverse=True)  # h5py wants increasing indices
        with self._lock:
            rows = self._f[split]["image"][uniq]
        return np.asarray(rows, np.uint8)[inv]

    def close(self) -> None:
        with self._lock:
            self._f.close()


class ImageDatasets:
    """Image files by ``dataset_id``; an empty id reads the first file.

    ``missing_ok``: skip (with a warning) files that do not exist instead of failing; a node
    starts with it so its other link keeps working without the image data.
    """

    def __init__(self, paths: list[str], missing_ok: bool = False) -> None:
        self.paths = list(paths)
        self._files: dict[str, ImageFile] = {}
        self._default: str | None = None
        for p in self.paths:
            if missing_ok and not Path(p).exists():
                log.warning("image dataset %s does not exist: skipped", p)
                continue
            f = ImageFile(p)
            self._files.setdefault(f.dataset_id, f)
            self._default = self._default or f.dataset_id

    def file(self, dataset_id: str = "") -> ImageFile:
        if not self._files:
            raise NotFound("no image dataset configured (settings.image_datasets)")
        did = dataset_id or self._default
        f = self._files.get(did or "")
        if f is None:
            raise NotFound(f"no image dataset {dataset_id!r}; have {sorted(self._files)}")
        return f

    def read(self, dataset_id: str, split: str, indices: Any) -> np.ndarray:
        return self.file(dataset_id).read(split, indices)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
