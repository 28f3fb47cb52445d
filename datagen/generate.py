"""Generate a dataset: split -> blocks -> (draw realizations, transform, write).

Every block of ``block_size`` samples has its own random stream, seeded from
``(seed, split index, block index)``; so contents do not depend on run order, on resuming,
or on how many blocks a run did before being interrupted.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datagen.profiles import SPLITS, GenConfig
from datagen.writer import DatasetWriter, n_sf

log = logging.getLogger("csilink.datagen")


def block_generator(cfg: GenConfig, split: str, block: int):
    """The torch generator of one block (the block's only source of randomness)."""
    import torch

    ss = np.random.SeedSequence([int(cfg.seed), SPLITS.index(split), int(block)])
    return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))


@dataclass
class Block:
    """One block of samples, numpy, ready to write. AD ``[B, Nt, n_taps]``, SF ``[b, Nt, Nc]``."""

    x_ad: np.ndarray
    y_ad: np.ndarray
    z_ad: np.ndarray
    speed: np.ndarray
    los: np.ndarray
    position: np.ndarray | None = None  # float32 [B, 3], UMi/UMa only
    x_sf: np.ndarray | None = None
    y_sf: np.ndarray | None = None
    z_sf: np.ndarray | None = None


class Generator:
    """Holds the channel model for a config; :meth:`block` makes one block of samples."""

    def __init__(self, cfg: GenConfig) -> None:
        from datagen.models import make_model

        self.cfg = cfg
        self.model = make_model(cfg)

    def block(self, split: str, block: int, size: int, n_sf_rows: int = 0) -> Block:
        """Samples ``block*block_size ..`` of ``split``; the first ``n_sf_rows`` also get SF."""
        import torch

        from datagen.ofdm import cluster_to_ad, cluster_to_sf

        c = self.cfg
        r = self.model.draw(size, block_generator(c, split, block))
        dl = cluster_to_ad(r.h_dl, r.tau, c.n_subcarriers, c.subcarrier_spacing, c.n_taps)
        ul = cluster_to_ad(r.h_ul, r.tau, c.n_subcarriers, c.subcarrier_spacing, c.n_taps)
        out = Block(x_ad=dl[:, 0].numpy(), z_ad=dl[:, 1].numpy(), y_ad=ul.numpy(),
                    speed=r.speed.numpy().astype(np.float32), los=r.los.numpy().astype(bool))
        if r.position is not None:
            out.position = r.position.numpy().astype(np.float32)
        if n_sf_rows > 0:
            k = n_sf_rows
            with torch.no_grad():
                sdl = cluster_to_sf(r.h_dl[:k], r.tau[:k], c.n_subcarriers, c.subcarrier_spacing)
                sul = cluster_to_sf(r.h_ul[:k], r.tau[:k], c.n_subcarriers, c.subcarrier_spacing)
            out.x_sf, out.z_sf, out.y_sf = sdl[:, 0].numpy(), sdl[:, 1].numpy(), sul.numpy()
        return out


class _Progress:
    """A rich progress bar on a terminal; periodic log lines otherwise (nohup, CI)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.t0, self.last = total, 0, time.time(), 0.0
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
            self.bar.start()
            self.task = self.bar.add_task("generating", total=total, rate="")
        self.enabled = enabled

    def advance(self, n: int, split: str) -> None:
        self.done += n
        dt = max(time.time() - self.t0, 1e-9)
        rate = self.done / dt
        if self.bar is not None:
            self.bar.update(self.task, advance=n, description=split, rate=f"{rate:.0f}/s")
        elif self.enabled and (time.time() - self.last > 10 or self.done == self.total):
            self.last = time.time()
            eta = (self.total - self.done) / max(rate, 1e-9)
            log.info("%s: %d/%d samples, %.0f samples/s, eta %.0f s", split, self.done, self.total, rate, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


_WORKER: Generator | None = None


def _init_worker(cfg_json: str, threads: int) -> None:
    import json

    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = Generator(GenConfig.from_dict(json.loads(cfg_json)))


def _work(split: str, blk: int, size: int, n_sf_rows: int) -> Block:
    assert _WORKER is not None
    return _WORKER.block(split, blk, size, n_sf_rows)


def _jobs(cfg: GenConfig, w: DatasetWriter):
    """(split, block index, start, size, n_sf_rows) of every block still to write, in order."""
    bs = cfg.block_size
    for split in SPLITS:
        n, msf = cfg.split_sizes()[split], n_sf(cfg, split)
        for blk in range(w.n_written(split) // bs, -(-n // bs)):
            start = blk * bs
            size = min(bs, n - start)
            yield split, blk, start, size, max(0, min(size, msf - start))


def generate(cfg: GenConfig, out: str | Path, progress: bool = True, compression: str | None = None,
             workers: int = 2, threads: int = 1) -> dict[str, float]:
    """Write the dataset of ``cfg`` to ``out`` (atomically, resuming a matching ``.partial``).

    ``workers`` processes (each with ``threads`` torch threads) make blocks while this process
    writes them in order; ``workers=0`` generates in-process. One thread per process on
    purpose: on a shared 2-core machine, multi-threaded torch ops spin on their barriers
    when another process holds a core and run several times slower.

    Returns ``{"samples": n generated in this run, "seconds": ..., "samples_per_s": ...}``.
    """
    import torch

    w = DatasetWriter(out, cfg, compression=compression)
    sizes = cfg.split_sizes()
    todo = sum(sizes[s] - w.n_written(s) for s in SPLITS)
    if todo < sum(sizes.values()):
        log.info("resuming %s: %d samples left", w.partial, todo)
    bar = _Progress(todo, progress)
    t_start = t0 = time.time()
    pool = None
    try:
        jobs = list(_jobs(cfg, w))
        if workers > 0 and len(jobs) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                       initializer=_init_worker, initargs=(cfg.to_json(), threads))
            window = 2 * workers  # blocks in flight: bounded memory, workers never idle
            futs = [pool.submit(_work, *j[:2], *j[3:]) for j in jobs[:window]]

            def results():
                for i, _ in enumerate(jobs):
                    b = futs[i].result()
                    futs[i] = None  # free the block once written
                    if i + window < len(jobs):
                        futs.append(pool.submit(_work, *jobs[i + window][:2], *jobs[i + window][3:]))
                    yield b
        else:
            torch.set_num_threads(threads)
            gen = Generator(cfg)
            t0 = time.time()  # the rate below is the loop's; set-up (imports, tables) apart

            def results():
                for split, blk, _start, size, nsf in jobs:
                    yield gen.block(split, blk, size, nsf)

        for (split, _blk, start, size, _nsf), b in zip(jobs, results(), strict=True):
            first = w.first_id(split)
            fields = {
                "sample_id": np.arange(first + start, first + start + size, dtype=np.int64),
                "x_ad": b.x_ad, "y_ad": b.y_ad, "z_ad": b.z_ad, "speed": b.speed, "los": b.los,
            }
            if b.position is not None:
                fields["position"] = b.position
            if b.x_sf is not None:
                fields.update(x_sf=b.x_sf, y_sf=b.y_sf, z_sf=b.z_sf)
            w.write_block(split, start, fields)
            bar.advance(size, split)
        path = w.finish()
    finally:
        bar.close()
        w.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    dt = time.time() - t0
    log.info("wrote %s (%d samples in %.1f s + %.1f s set-up)", path, todo, dt, t0 - t_start)
    return {"samples": todo, "seconds": dt, "setup_seconds": t0 - t_start,
            "samples_per_s": todo / max(dt, 1e-9)}
