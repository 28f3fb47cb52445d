"""Render an image corpus from Sionna RT's bundled city scenes (no image dataset is reachable
offline, so the semantic image link gets its pictures from the same renderer as the world).

Each image is one random camera in one scene: position (street level or above the roofs),
viewing direction, field of view and lighting are drawn per image; views that show almost
nothing (inside a building, only sky, only ground) are rejected and redrawn. The training
scenes and the test scene are disjoint, so the test set measures generalisation to an
unseen city.

Every image has its own random stream keyed by (seed, split, scene, index): the contents do
not depend on run order, sharding or resuming. Shards render in parallel processes (Dr.Jit
runs one thread per process here) and ``--merge`` joins them.

HDF5 layout (``csilink-images/1``): per split group ``image`` uint8 [n, S, S, 3] (sRGB),
``scene`` int8 [n] (index into the ``scenes`` attribute), ``camera`` float32 [n, 8]
(x, y, z, yaw, pitch, fov, lighting, redraws). Root attributes: ``config`` (JSON),
``provenance`` (JSON), ``dataset_id``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

SCHEMA = "csilink-images/1"
SPLITS = ("train", "test")
log = logging.getLogger("csilink.datagen.images")


@dataclass
class ImageConfig:
    size: int = 64
    seed: int = 7
    spp: int = 16  # samples per pixel: enough at 64x64, more only costs time
    train_scenes: tuple[str, ...] = ("munich", "florence", "san_francisco", "simple_street_canyon_with_cars")
    test_scenes: tuple[str, ...] = ("etoile",)
    n_train: int = 6000
    n_test: int = 600
    street_fraction: float = 0.45  # cameras at 1.5-4 m; the rest 15-90 m above ground
    fov: tuple[float, float] = (35.0, 90.0)
    lighting: tuple[float, float] = (0.6, 1.6)
    extra: dict = field(default_factory=dict)

    def scenes(self, split: str) -> tuple[str, ...]:
        return self.train_scenes if split == "train" else self.test_scenes

    def count(self, split: str) -> int:
        return self.n_train if split == "train" else self.n_test

    def dataset_id(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def image_rng(cfg: ImageConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, SPLITS.index(split), index]))


def informative(img: np.ndarray) -> bool:
    """Reject views that show (almost) one thing: a wall from inside, the sky, bare ground."""
    g = img.astype(np.float32).mean(axis=2)
    if g.mean() < 12 or g.std() < 14:
        return False
    # Not one flat colour over most of the frame (sky or a facade filling the view).
    q = (img // 32).reshape(-1, 3)
    _, counts = np.unique(q, axis=0, return_counts=True)
    return counts.max() < 0.75 * q.shape[0]


class Renderer:
    """The scenes of one split, loaded once; :meth:`draw` renders image ``index``."""

    def __init__(self, cfg: ImageConfig, split: str) -> None:
        from datagen.rt.world import ensure_llvm

        ensure_llvm()
        import mitsuba as mi
        import sionna.rt as rt

        self.cfg, self.split, self.mi, self.rt = cfg, split, mi, rt
        self.names = cfg.scenes(split)
        self.scenes = [rt.load_scene(getattr(rt.scene, n)) for n in self.names]
        self.boxes = []
        for s in self.scenes:
            b = s.mi_scene.bbox()
            self.boxes.append(
                ((float(b.min[0]), float(b.min[1])), (float(b.max[0]), float(b.max[1])), float(b.max[2]))
            )

    def _pose(self, rng: np.random.Generator, k: int) -> tuple[float, ...]:
        c = self.cfg
        (x0, y0), (x1, y1), top = self.boxes[k]
        # The inner 70 % of the scene: its edges are mostly empty ground.
        cx, cy, wx, wy = (x0 + x1) / 2, (y0 + y1) / 2, 0.35 * (x1 - x0), 0.35 * (y1 - y0)
        x, y = cx + rng.uniform(-wx, wx), cy + rng.uniform(-wy, wy)
        if rng.random() < c.street_fraction:
            z, pitch = rng.uniform(1.5, 4.0), rng.uniform(-25.0, 10.0)
        else:
            z, pitch = rng.uniform(15.0, max(20.0, min(90.0, top + 30.0))), rng.uniform(-75.0, -15.0)
        yaw = rng.uniform(-180.0, 180.0)
        fov = rng.uniform(*c.fov)
        light = rng.uniform(*c.lighting)
        return x, y, z, yaw, pitch, fov, light

    def draw(self, index: int) -> tuple[np.ndarray, int, np.ndarray]:
        rng = image_rng(self.cfg, self.split, index)
        k = index % len(self.scenes)
        mi = self.mi
        for tries in range(40):
            x, y, z, yaw, pitch, fov, light = self._pose(rng, k)
            d = (
                math.cos(math.radians(pitch)) * math.cos(math.radians(yaw)),
                math.cos(math.radians(pitch)) * math.sin(math.radians(yaw)),
                math.sin(math.radians(pitch)),
            )
            cam = self.rt.Camera(
                position=mi.Point3f(x, y, z), look_at=mi.Point3f(x + 30 * d[0], y + 30 * d[1], z + 30 * d[2])
            )
            bmp = self.scenes[k].render(
                camera=cam,
                resolution=(self.cfg.size, self.cfg.size),
                num_samples=self.cfg.spp,
                fov=fov,
                lighting_scale=light,
                return_bitmap=True,
                show_devices=False,
            )
            bmp = bmp.convert(mi.Bitmap.PixelFormat.RGB, mi.Struct.Type.UInt8, srgb_gamma=True)
            img = np.array(bmp, copy=True)
            if informative(img):
                return img, k, np.array([x, y, z, yaw, pitch, fov, light, tries], np.float32)
        raise RuntimeError(f"{self.names[k]}: no informative view in 40 draws (index {index})")


def _shard_path(out: Path, shard: int, n_shards: int) -> Path:
    return out.with_name(f"{out.stem}.shard{shard}of{n_shards}.h5")


def render_shard(cfg: ImageConfig, out: Path, shard: int, n_shards: int) -> Path:
    """Render indices ``shard::n_shards`` of each split into a shard file (resumable)."""
    path = _shard_path(out, shard, n_shards)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "a") as f:
        f.attrs["config"] = json.dumps(asdict(cfg))
        for split in ("test", "train"):  # test first: a corpus still rendering can already be scored
            idx = np.arange(shard, cfg.count(split), n_shards)
            g = f.require_group(split)
            s = cfg.size
            if "image" not in g:
                g.create_dataset(
                    "image", (len(idx), s, s, 3), np.uint8, chunks=(max(1, min(64, len(idx))), s, s, 3)
                )
                g.create_dataset("index", data=idx)
                g.create_dataset("scene", (len(idx),), np.int8)
                g.create_dataset("camera", (len(idx), 8), np.float32)
                g.attrs["done"] = 0
            done = int(g.attrs["done"])
            if done >= len(idx):
                continue
            r = Renderer(cfg, split)
            t0 = time.time()
            for j in range(done, len(idx)):
                img, k, cam = r.draw(int(idx[j]))
                g["image"][j], g["scene"][j], g["camera"][j] = img, k, cam
                if (j + 1) % 50 == 0 or j + 1 == len(idx):
                    g.attrs["done"] = j + 1
                    f.flush()
                    rate = (j + 1 - done) / (time.time() - t0)
                    log.info(
                        "shard %d/%d %s: %d/%d (%.2f img/s)", shard, n_shards, split, j + 1, len(idx), rate
                    )
    return path


def merge(cfg: ImageConfig, out: Path, n_shards: int, partial: bool = False) -> Path:
    """Join complete shards into ``out`` in index order. ``partial``: a training split still
    rendering contributes the images it has (the test split must be complete); the file records
    how many it holds (attribute ``rendered``)."""
    from shared.provenance import provenance

    shards = [h5py.File(_shard_path(out, k, n_shards), "r") for k in range(n_shards)]
    try:
        tmp = out.with_suffix(".h5.partial")
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = SCHEMA
            f.attrs["config"] = json.dumps(asdict(cfg))
            f.attrs["dataset_id"] = cfg.dataset_id()
            f.attrs["provenance"] = json.dumps(provenance(command="python -m datagen.images"))
            for split in SPLITS:
                parts = []
                for sh in shards:
                    g = sh[split]
                    done = int(g.attrs["done"])
                    if done < len(g["index"]) and not (partial and split == "train"):
                        raise RuntimeError(f"shard {sh.filename} {split} incomplete: render it first")
                    parts.append(tuple(g[k][:done] for k in ("index", "image", "scene", "camera")))
                idx = np.concatenate([p[0] for p in parts])
                order = np.argsort(idx)
                g = f.create_group(split)
                g.create_dataset(
                    "image",
                    data=np.concatenate([p[1] for p in parts])[order],
                    chunks=(max(1, min(64, len(order))), cfg.size, cfg.size, 3),
                    compression="gzip",
                    compression_opts=4,
                )
                g.create_dataset("scene", data=np.concatenate([p[2] for p in parts])[order])
                g.create_dataset("camera", data=np.concatenate([p[3] for p in parts])[order])
                g.attrs["scenes"] = json.dumps(list(cfg.scenes(split)))
                g.attrs["rendered"] = len(order)
        os.replace(tmp, out)
    finally:
        for sh in shards:
            sh.close()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/generated/rt-images-64.h5"))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--test", type=int, default=600)
    ap.add_argument("--spp", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shard", default="0/1", help="K/N: render indices K::N into a shard file")
    ap.add_argument("--merge", action="store_true", help="join the N complete shards into --out")
    ap.add_argument(
        "--partial", action="store_true", help="with --merge: take the training images rendered so far"
    )
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ImageConfig(size=a.size, seed=a.seed, spp=a.spp, n_train=a.train, n_test=a.test)
    k, n = (int(v) for v in a.shard.split("/"))
    if a.merge:
        print(merge(cfg, a.out, n, partial=a.partial))
    else:
        render_shard(cfg, a.out, k, n)
        if n == 1:
            print(merge(cfg, a.out, 1))


if __name__ == "__main__":
    main()
