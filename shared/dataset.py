"""Reader of ``csilink-dataset/1`` HDF5 files (numpy + h5py only: the UE and BS use it).

Schema: docs/ARCHITECTURE.md "Dataset files"; user docs: docs/dataset.md.

>>> ds = open_dataset("data/sample/cdl-c-fdd-sample.h5")      # doctest: +SKIP
>>> test = ds.split("test")                                   # doctest: +SKIP
>>> test.read("x_ad", 0).shape, test.by_id(int(test.sample_ids[0]))["x_ad"].shape  # doctest: +SKIP
((32, 32), (32, 32))
>>> ds.bs_view().split("test").read("x_ad", 0)                # doctest: +SKIP
DatasetError: field 'x_ad' is not visible in the bs view ...

Opening validates attributes, groups, dtypes and shapes only (no sample data is read), so it
costs a few milliseconds and services may open a file per request. Data is read lazily per
index; reading a corrupt chunk raises :class:`DatasetError`. :meth:`Dataset.verify` reads
everything (ids unique across splits, every chunk readable).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from shared.errors import DatasetError, NotFound

SCHEMA = "csilink-dataset/1"
SPLITS = ("train", "val", "test")
REQUIRED_ATTRS = ("schema", "profile", "config", "seed", "n_antennas", "n_subcarriers", "n_taps",
                  "dataset_id")
AD_FIELDS = ("x_ad", "y_ad", "z_ad")
SF_FIELDS = ("x_sf", "y_sf", "z_sf")

# Which node may read which field (docs/ARCHITECTURE.md): the UE its DL measurement, the BS
# the UL CSI and sensor fields (never x / z), the runner the truth.
VIEWS = {
    "ue": lambda k: k.startswith("x_"),
    "bs": lambda k: not (k.startswith("x_") or k.startswith("z_")),
    "truth": lambda k: k.startswith("x_") or k.startswith("z_"),
    "all": lambda k: True,
}


def world_key(dataset_id: str, split: str, sample_id: int) -> str:
    """The key of one sample of the world: ``"<dataset_id>/<split>/<sample_id>"``."""
    return f"{dataset_id}/{split}/{int(sample_id)}"


def parse_world_key(key: str) -> tuple[str, str, int]:
    """Inverse of :func:`world_key`."""
    try:
        did, split, sid = key.split("/")
        return did, split, int(sid)
    except ValueError:
        raise DatasetError(f"bad world key {key!r}; expected '<dataset_id>/<split>/<sample_id>'") from None


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


class Split:
    """One split of a dataset: lazy, read-only access by row index or by sample id.

    Fields are HDF5 datasets with the sample axis first, e.g. ``x_ad`` complex64
    ``[N, Nt, n_taps]``. SF fields may hold fewer rows than the split (the first ones).
    """

    def __init__(self, ds: Dataset, name: str, view: str = "all") -> None:
        self._ds, self.name, self.view = ds, name, view
        self._g = ds._h5[name]
        self.n = int(self._g["sample_id"].shape[0])
        self._ids: np.ndarray | None = None
        self._first: int | None = None  # ids contiguous from here, if they are
        # h5py handle look-ups cost more than a small read; services read row by row.
        self._handles: dict[str, h5py.Dataset] = {}
        self._mem: dict[str, np.ndarray] = {}  # fields held in memory (see ``preload``)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Split({self.name!r}, n={self.n}, view={self.view!r}, fields={self.fields})"

    @property
    def fields(self) -> list[str]:
        """Names of the fields visible in this view (``sample_id`` always)."""
        return [k for k in self._g if k == "sample_id" or VIEWS[self.view](k)]

    def shape(self, field: str) -> tuple[int, ...]:
        return tuple(self._dataset(field).shape)

    def _dataset(self, field: str) -> h5py.Dataset:
        d = self._handles.get(field)
        if d is not None:
            return d
        if field != "sample_id" and not VIEWS[self.view](field):
            raise DatasetError(f"field {field!r} is not visible in the {self.view} view of {self._ds.path}")
        if field not in self._g:
            raise NotFound(f"split {self.name!r} of {self._ds.path} has no field {field!r} "
                           f"(has {', '.join(self.fields)})")
        d = self._handles[field] = self._g[field]
        return d

    def preload(self, field: str, max_bytes: int) -> bool:
        """Hold ``field`` in memory if it takes at most ``max_bytes``; later reads of it never
        touch the file. Returns whether it is (now) held."""
        if field in self._mem:
            return True
        d = self._dataset(field)
        if d.size * d.dtype.itemsize > max_bytes:
            return False
        self._mem[field] = self.read(field)
        return True

    def read(self, field: str, index: int | slice | Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """Rows of one field: ``index`` int, slice, or increasing index array; None = all rows."""
        mem = self._mem.get(field)
        if mem is not None:
            return self._read_mem(field, mem, index)
        d = self._dataset(field)
        try:
            if index is None:
                return d[()]
            if isinstance(index, int | np.integer):
                i = int(index)
                if not -d.shape[0] <= i < d.shape[0]:
                    raise NotFound(f"row {i} out of range for {self.name}/{field} ({d.shape[0]} rows)")
                return d[i]
            if isinstance(index, slice):
                return d[index]
            idx = np.asarray(list(index) if not isinstance(index, np.ndarray) else index, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= d.shape[0]):
                raise NotFound(f"rows out of range for {self.name}/{field} ({d.shape[0]} rows)")
            order = np.argsort(idx, kind="stable")  # h5py wants increasing, unique indices
            uniq, inv = np.unique(idx[order], return_inverse=True)
            out = d[uniq]
            res = np.empty_like(out, shape=(len(idx),) + out.shape[1:])
            res[order] = out[inv]
            return res
        except (OSError, RuntimeError) as exc:  # a truncated/corrupt chunk
            raise DatasetError(f"cannot read {self.name}/{field} of {self._ds.path}: {exc}") from exc

    def _read_mem(self, field: str, mem: np.ndarray, index: Any) -> np.ndarray:
        if index is None:
            return mem.copy()
        if isinstance(index, int | np.integer):
            i = int(index)
            if not -mem.shape[0] <= i < mem.shape[0]:
                raise NotFound(f"row {i} out of range for {self.name}/{field} ({mem.shape[0]} rows)")
            return mem[i].copy()
        if isinstance(index, slice):
            return mem[index].copy()
        idx = np.asarray(list(index) if not isinstance(index, np.ndarray) else index, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= mem.shape[0]):
            raise NotFound(f"rows out of range for {self.name}/{field} ({mem.shape[0]} rows)")
        return mem[idx]

    @property
    def sample_ids(self) -> np.ndarray:
        """int64 ``[N]`` (read once, cached)."""
        if self._ids is None:
            self._ids = self.read("sample_id")
            ids = self._ids
            if ids.size and ids[-1] - ids[0] == ids.size - 1 and np.all(np.diff(ids) == 1):
                self._first = int(ids[0])
        return self._ids

    def index_of(self, sample_id: int) -> int:
        """Row of ``sample_id`` in this split; :class:`NotFound` if absent."""
        ids = self.sample_ids
        sid = int(sample_id)
        if self._first is not None:
            i = sid - self._first
            if 0 <= i < self.n:
                return i
        else:
            hit = np.flatnonzero(ids == sid)
            if hit.size:
                return int(hit[0])
        raise NotFound(f"sample id {sid} is not in split {self.name!r} of {self._ds.path}")

    def get(self, index: int, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """One sample as ``{field: array}`` (visible fields; SF only where stored for it)."""
        names = list(fields) if fields is not None else self.fields
        out = {}
        for k in names:
            d = self._dataset(k)
            if d.shape[0] <= index and k in SF_FIELDS and fields is None:
                continue  # SF is stored for the first rows only
            out[k] = self.read(k, int(index))
        return out

    def by_id(self, sample_id: int, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        return self.get(self.index_of(sample_id), fields)

    def world_key(self, sample_id: int) -> str:
        return world_key(self._ds.dataset_id, self.name, sample_id)


class Dataset:
    """An open, validated dataset file. Use :func:`open_dataset`. Closes with ``close()``/``with``."""

    def __init__(self, path: Path, h5: h5py.File, view: str = "all", attrs: dict[str, Any] | None = None,
                 splits: tuple[str, ...] | None = None) -> None:
        self.path, self._h5, self.view = path, h5, view
        a = attrs if attrs is not None else {k: _attr(v) for k, v in h5.attrs.items()}
        self.attrs = a
        self.schema: str = a["schema"]
        self.profile: str = a["profile"]
        self.dataset_id: str = a["dataset_id"]
        self.seed = int(a["seed"])
        self.n_antennas = int(a["n_antennas"])
        self.n_subcarriers = int(a["n_subcarriers"])
        self.n_taps = int(a["n_taps"])
        self.created: str = a.get("created", "")
        try:
            self.config: dict[str, Any] = json.loads(a["config"])
            self.generator: dict[str, Any] = json.loads(a["generator"]) if "generator" in a else {}
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: config/generator attribute is not JSON: {exc}") from exc
        self.splits = splits if splits is not None else tuple(s for s in SPLITS if s in h5)

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._h5.id.valid:
            self._h5.close()

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}, profile={self.profile!r}, id={self.dataset_id}, "
                f"view={self.view!r})")

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise NotFound(f"{self.path} has no split {name!r} (has {', '.join(self.splits)})")
        return Split(self, name, self.view)

    def _as_view(self, view: str) -> Dataset:
        d = Dataset.__new__(Dataset)
        d.__dict__.update(self.__dict__)
        d.view = view
        return d

    def ue_view(self) -> Dataset:
        """Only the UE's fields (``x_*``: its DL measurement) and ``sample_id``."""
        return self._as_view("ue")

    def bs_view(self) -> Dataset:
        """Only the BS's fields: ``y_*`` and sensor fields (speed, position, los, ...), never x/z."""
        return self._as_view("bs")

    def truth_view(self) -> Dataset:
        """The runner's truth: ``x_*`` and ``z_*``."""
        return self._as_view("truth")

    def world_key(self, split: str, sample_id: int) -> str:
        return world_key(self.dataset_id, split, sample_id)

    def info(self) -> dict[str, Any]:
        """Attributes, config and per-split sizes/shapes (what ``csilink dataset info`` prints)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "schema", "profile", "dataset_id", "seed", "n_antennas", "n_subcarriers", "n_taps", "created",
            "config", "generator")}
        out["splits"] = {}
        for s in self.splits:
            sp = self.split(s)
            ids = sp.sample_ids
            out["splits"][s] = {
                "n": sp.n,
                "first_id": int(ids[0]) if ids.size else None,
                "last_id": int(ids[-1]) if ids.size else None,
                "fields": {k: list(sp.shape(k)) for k in sp.fields},
            }
        return out

    def verify(self) -> None:
        """Deep check: every chunk readable, sample ids unique across splits."""
        seen: list[np.ndarray] = []
        for s in self.splits:
            sp = Split(self, s, "all")
            for k in sp.fields:
                d = sp._dataset(k)
                step = max(1, (d.chunks or (d.shape[0],))[0])
                for i in range(0, d.shape[0], step):
                    sp.read(k, slice(i, i + step))
            seen.append(sp.sample_ids)
        ids = np.concatenate(seen) if seen else np.zeros(0, np.int64)
        if np.unique(ids).size != ids.size:
            raise DatasetError(f"{self.path}: sample ids are not unique across splits")


def _validate(path: Path, f: h5py.File) -> dict[str, Any]:
    """Check the file against the schema; returns its root attributes (read once)."""
    attrs = {k: _attr(v) for k, v in f.attrs.items()}
    missing = [k for k in REQUIRED_ATTRS if k not in attrs]
    if "schema" in missing:
        raise DatasetError(f"{path}: not a csilink dataset (no 'schema' attribute)")
    schema = attrs["schema"]
    if schema != SCHEMA:
        raise DatasetError(f"{path}: unsupported schema {schema!r}; this reader reads {SCHEMA!r}")
    if missing:
        raise DatasetError(f"{path}: missing root attribute(s) {', '.join(missing)}")
    if "complete" in attrs and not bool(attrs["complete"]):
        raise DatasetError(f"{path}: incomplete dataset (generation was interrupted)")
    nt, nc, taps = (int(attrs[k]) for k in ("n_antennas", "n_subcarriers", "n_taps"))
    top = dict(f.items())
    splits = [s for s in SPLITS if s in top]
    if not splits:
        raise DatasetError(f"{path}: no split group (expected one of /train, /val, /test)")
    for s in splits:
        g = top[s]
        if not isinstance(g, h5py.Group):
            raise DatasetError(f"{path}: /{s} is not a group")
        items = {k: d for k, d in g.items() if isinstance(d, h5py.Dataset)}  # one traversal
        if "sample_id" not in items:
            raise DatasetError(f"{path}: /{s} is missing the 'sample_id' dataset")
        # Angular-delay worlds carry x_ad; spatial-frequency-only worlds (ray traced, n_taps 0) x_sf.
        if "x_ad" not in items and not (taps == 0 and "x_sf" in items):
            raise DatasetError(f"{path}: /{s} is missing the 'x_ad' dataset"
                               + (" (or 'x_sf' with n_taps 0)" if taps == 0 else ""))
        sid = items["sample_id"]
        n = sid.shape[0] if len(sid.shape) == 1 else -1
        if n < 0 or sid.dtype.kind not in "iu":
            raise DatasetError(f"{path}: /{s}/sample_id must be an integer [N] array, "
                               f"got {sid.dtype} {sid.shape}")
        for k, d in items.items():
            want: tuple[int, ...] | None = None
            if k in AD_FIELDS:
                want = (n, nt, taps)
            elif k in SF_FIELDS:
                want = (d.shape[0], nt, nc)
                if d.shape[0] > n:
                    raise DatasetError(f"{path}: /{s}/{k} has {d.shape[0]} rows, more than the split's {n}")
            elif k in ("speed", "los"):
                want = (n,)
            elif k == "position":
                want = (n, 3)
            elif d.shape and d.shape[0] != n:
                raise DatasetError(f"{path}: /{s}/{k} has {d.shape[0]} rows, expected {n}")
            if want is not None and tuple(d.shape) != want:
                raise DatasetError(f"{path}: /{s}/{k} has shape {tuple(d.shape)}, expected {want}")
            if (k in AD_FIELDS or k in SF_FIELDS) and d.dtype != np.complex64:
                raise DatasetError(f"{path}: /{s}/{k} has dtype {d.dtype}, expected complex64")


def open_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Open and validate a ``csilink-dataset/1`` file; :class:`DatasetError` says what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: no such dataset file")
    if not h5py.is_hdf5(p):
        raise DatasetError(f"{p}: not an HDF5 file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise DatasetError(f"{p}: truncated or corrupt HDF5 file ({exc})") from exc
    try:
        attrs = _validate(p, f)
        return Dataset(p, f, attrs=attrs)
    except DatasetError:
        f.close()
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        f.close()
        raise DatasetError(f"{p}: corrupt dataset file ({exc})") from exc
