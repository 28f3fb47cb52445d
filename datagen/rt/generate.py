"""Generate a ray-traced multi-modal dataset: blocks of (drops -> DL solve, UL solve, image).

Each split holds its ``image`` samples first (one UE car per solve, the camera's picture of
it), then its ``wireless`` samples (``ues_per_solve`` cars per solve, anywhere on the streets,
no picture). Every block has its own random stream seeded by (seed, split, kind, block), so
contents do not depend on run order or resuming. The file is written as ``OUT.partial`` and
renamed when complete; the same command resumes an interrupted run.

HDF5 layout: ``csilink-dataset/1`` in the spatial-frequency domain (``n_taps`` = 0, no AD
fields), so the UE, BS and runner read it like any other world. Per split group:

* ``sample_id`` int64 [n]; ``has_image`` bool [n]; ``los`` bool [n] (a DL path without
  interactions); ``n_paths`` int32 [n]; ``position`` float32 [n, 3] (antenna, scene frame);
  ``yaw`` float32 [n]; ``lighting`` float32 [n] (0 without image)
* ``x_sf`` (DL, what the UE measures), ``y_sf`` (UL, what the BS sounds): complex64
  [n, Nt, 12 N_RB], BS antennas x subcarriers, path-gain scale (not normalized), delays
  normalized to the first path
* ``image``: uint8 [n, H, W, 3] (zeros where ``has_image`` is false)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from datagen.rt.config import KINDS, SCHEMA, SPLITS, RtConfig
from shared.errors import InvalidInput

log = logging.getLogger("csilink.datagen.rt")


@dataclass
class RtBlock:
    h_dl: np.ndarray
    h_ul: np.ndarray
    image: np.ndarray | None
    los: np.ndarray
    n_paths: np.ndarray
    position: np.ndarray
    yaw: np.ndarray
    lighting: np.ndarray


def block_rng(cfg: RtConfig, split: str, kind: str, block: int) -> np.random.Generator:
    key = [int(cfg.seed), SPLITS.index(split), KINDS.index(kind), int(block)]
    return np.random.default_rng(np.random.SeedSequence(key))


class RtGenerator:
    """Holds a :class:`StreetWorld`; :meth:`block` makes one block of samples."""

    def __init__(self, cfg: RtConfig) -> None:
        from datagen.rt.world import StreetWorld

        self.cfg = cfg
        # Only as many car meshes as one solve places: idle cars still cost tracing time.
        wireless = any(cfg.sizes(s)["wireless"] for s in SPLITS)
        self.world = StreetWorld(cfg, cfg.ues_per_solve if wireless else 1)

    def block(self, split: str, kind: str, block: int, size: int) -> RtBlock:
        from datagen.rt.world import ANTENNA_HEIGHT

        c, w = self.cfg, self.world
        rng = block_rng(c, split, kind, block)
        per = 1 if kind == "image" else c.ues_per_solve
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("h_dl", "h_ul", "image", "los", "n_paths",
                                                            "xy", "yaw", "lighting")}
        done = 0
        while done < size:
            drop = w.draw(rng, kind)
            k = min(per, size - done)
            drop.xy, drop.yaw = drop.xy[:k], drop.yaw[:k]
            w.place(drop)
            w.set_seed(int(rng.integers(1, 2**31 - 1)))
            h_dl, los, npaths = w.solve(uplink=False)
            h_ul, _, _ = w.solve(uplink=True)
            out["h_dl"].append(h_dl[:k])
            out["h_ul"].append(h_ul[:k])
            out["los"].append(los[:k])
            out["n_paths"].append(npaths[:k])
            out["xy"].append(drop.xy)
            out["yaw"].append(drop.yaw)
            if kind == "image":
                light = float(rng.uniform(*c.lighting))
                out["image"].append(w.render(light)[None])
                out["lighting"].append(np.full(k, light))
            else:
                out["lighting"].append(np.zeros(k))
            done += k
        xy = np.concatenate(out["xy"])
        pos = np.concatenate([xy, np.full((len(xy), 1), ANTENNA_HEIGHT)], axis=1).astype(np.float32)
        return RtBlock(h_dl=np.concatenate(out["h_dl"]), h_ul=np.concatenate(out["h_ul"]),
                       image=np.concatenate(out["image"]) if out["image"] else None,
                       los=np.concatenate(out["los"]).astype(bool), n_paths=np.concatenate(out["n_paths"]),
                       position=pos, yaw=np.concatenate(out["yaw"]).astype(np.float32),
                       lighting=np.concatenate(out["lighting"]).astype(np.float32))


def generator_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("csilink", "sionna-rt", "mitsuba", "drjit", "numpy", "h5py"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


class RtWriter:
    """Create / resume ``OUT.partial``; :meth:`write` a block; :meth:`finish` renames it."""

    def __init__(self, out: str | Path, cfg: RtConfig, splits: tuple[str, ...] = SPLITS) -> None:
        bad = [s for s in splits if s not in SPLITS]
        if bad or not splits:
            raise InvalidInput(f"splits must be a non-empty subset of {SPLITS}, got {splits}")
        self.splits = tuple(s for s in SPLITS if s in splits)
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.cfg = cfg
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.f = self._open_or_create()

    def _open_or_create(self) -> h5py.File:
        if self.partial.exists():
            try:
                f = h5py.File(self.partial, "r+")
                if f.attrs.get("dataset_id") == self.cfg.dataset_id and tuple(f.keys()) == self.splits:
                    return f
                f.close()
            except OSError:
                pass
            self.partial.unlink()
        c = self.cfg
        f = h5py.File(self.partial, "w")
        attrs = {"schema": SCHEMA, "profile": c.profile, "config": c.to_json(), "dataset_id": c.dataset_id,
                 "seed": int(c.seed), "n_antennas": int(c.n_antennas), "n_subcarriers": c.n_subcarriers,
                 "n_taps": 0, "n_rb": int(c.n_rb), "f_dl": float(c.f_dl), "f_ul": float(c.f_ul),
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "generator": json.dumps(generator_versions(), sort_keys=True), "complete": False}
        for k, v in attrs.items():
            f.attrs[k] = v
        first = 0
        nt, nsc, (ih, iw) = c.n_antennas, c.n_subcarriers, c.image_size
        for split in SPLITS:
            n = sum(c.sizes(split).values())
            if split not in self.splits:  # a subset file keeps the full file's sample ids
                first += n
                continue
            g = f.create_group(split)
            g.attrs["n_written"] = 0
            g.attrs["first_sample_id"] = first
            g.attrs["n_image"] = c.sizes(split)["image"]
            first += n

            def ds(name: str, shape: tuple[int, ...], dtype, g=g, n=n, **kw) -> None:
                g.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(1, *shape) if n else None,
                                 **(kw if n else {}))

            ds("sample_id", (), np.int64)
            for name, dt in (("has_image", bool), ("los", bool), ("n_paths", np.int32), ("yaw", np.float32),
                             ("lighting", np.float32)):
                ds(name, (), dt)
            ds("position", (3,), np.float32)
            ds("x_sf", (nt, nsc), np.complex64)
            ds("y_sf", (nt, nsc), np.complex64)
            ds("image", (ih, iw, 3), np.uint8, compression="gzip", compression_opts=4)
        f.flush()
        return f

    def n_written(self, split: str) -> int:
        return int(self.f[split].attrs["n_written"])

    def write(self, split: str, start: int, kind: str, b: RtBlock) -> None:
        g = self.f[split]
        n = len(b.h_dl)
        sl = slice(start, start + n)
        first = int(g.attrs["first_sample_id"])
        g["sample_id"][sl] = np.arange(first + start, first + start + n)
        g["has_image"][sl] = kind == "image"
        for name in ("los", "n_paths", "yaw", "lighting", "position"):
            g[name][sl] = getattr(b, name)
        g["x_sf"][sl], g["y_sf"][sl] = b.h_dl, b.h_ul
        if b.image is not None:
            g["image"][sl] = b.image
        g.attrs["n_written"] = start + n
        self.f.flush()

    def finish(self) -> Path:
        for split in self.splits:
            if self.n_written(split) != sum(self.cfg.sizes(split).values()):
                raise RuntimeError(f"split {split} incomplete")
        self.f.attrs["complete"] = True
        self.f.close()
        os.replace(self.partial, self.out)
        return self.out

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()


def jobs(cfg: RtConfig, w: RtWriter) -> Iterator[tuple[str, str, int, int, int]]:
    """(split, kind, block, start, size) of every block still to write, in file order."""
    bs = cfg.block_size
    for split in w.splits:
        sizes = cfg.sizes(split)
        offset = 0
        for kind in KINDS:
            n = sizes[kind]
            for blk in range(-(-n // bs)):
                start = offset + blk * bs
                if start + min(bs, n - blk * bs) > w.n_written(split):
                    yield split, kind, blk, start, min(bs, n - blk * bs)
            offset += n


_WORKER: RtGenerator | None = None


def set_threads(threads: int) -> None:
    """Dr.Jit's thread pool size. One per process on purpose: by default every process takes
    all cores, and several tracing processes on a 2-core machine then spin on each other."""
    import drjit as dr

    dr.set_thread_count(max(1, int(threads)))


def _init(cfg_json: str, threads: int) -> None:
    global _WORKER
    set_threads(threads)
    _WORKER = RtGenerator(RtConfig.from_dict(json.loads(cfg_json)))


def _work(split: str, kind: str, blk: int, size: int) -> RtBlock:
    assert _WORKER is not None
    return _WORKER.block(split, kind, blk, size)


def generate_rt(cfg: RtConfig, out: str | Path, workers: int = 1, threads: int = 1,
                splits: tuple[str, ...] = SPLITS) -> dict[str, float]:
    """Write the dataset of ``cfg`` to ``out``; ``workers`` processes trace blocks in parallel
    (each holds its own scene and ``threads`` Dr.Jit threads). ``splits`` limits the file to
    some splits (same dataset id and sample ids as the full file, e.g. a test split made here
    for a training set traced elsewhere). Returns samples, seconds, samples/s."""
    from datagen.rt.world import ensure_llvm

    ensure_llvm()
    w = RtWriter(out, cfg, splits)
    todo = list(jobs(cfg, w))
    total = sum(j[4] for j in todo)
    t0 = time.time()
    done = 0
    pool = None
    try:
        if workers > 1 and len(todo) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init,
                                       initargs=(cfg.to_json(), threads))
            window = 2 * workers
            futs = [pool.submit(_work, j[0], j[1], j[2], j[4]) for j in todo[:window]]

            def results() -> Iterator[RtBlock]:
                for i in range(len(todo)):
                    b = futs[i].result()
                    futs[i] = None
                    if i + window < len(todo):
                        j = todo[i + window]
                        futs.append(pool.submit(_work, j[0], j[1], j[2], j[4]))
                    yield b
        else:
            set_threads(threads)
            gen = RtGenerator(cfg)

            def results() -> Iterator[RtBlock]:
                for split, kind, blk, _start, size in todo:
                    yield gen.block(split, kind, blk, size)

        for (split, kind, _blk, start, size), b in zip(todo, results(), strict=True):
            w.write(split, start, kind, b)
            done += size
            dt = time.time() - t0
            log.info("%s/%s: %d/%d samples, %.2f samples/s, eta %.0f s", split, kind, done, total, done / dt,
                     (total - done) / max(done / dt, 1e-9))
        path = w.finish()
    finally:
        w.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    dt = time.time() - t0
    log.info("wrote %s (%d samples in %.0f s)", path, total, dt)
    return {"samples": total, "seconds": dt, "samples_per_s": total / max(dt, 1e-9)}
