"""Reference figures of the umi-nlos world (TR 38.901 UMi, per-UE geometry) and its throughput.

Generates a umi-nlos set (default 1,024 samples: 768 train + 256 test with SF) through
``generate()`` and measures, in the cropped AD domain (32 x 32):

* NMSE of Z predicted by X (outdated CSI, 5 ms), of Z by Y, and between Y and X;
* the energy kept by the first 32 delay taps (SF test split), for the profile's 15 kHz and,
  from the same realizations, for 30 kHz;
* throughput, samples/s with X, Y and Z: ``generate()`` end to end with ``--workers`` processes
  (wall clock on this shared machine) and the steady state of one process with one torch
  thread (wall clock and per CPU-second).

Prints a table and writes ``docs/bench/datagen_umi.json``.

    .venv/bin/python benchmarks/bench_datagen_umi.py                 # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/bench_datagen_umi.py --n 4096 --out /tmp/umi.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="samples in all (a quarter, at most 512, is test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="generator processes for the end-to-end run")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench" / "datagen_umi.json"))
    a = ap.parse_args(argv)

    import torch

    from datagen.generate import Generator, block_generator, generate
    from datagen.ofdm import cluster_to_sf
    from datagen.profiles import UMI_NLOS
    from datagen.writer import generator_versions
    from shared.dataset import open_dataset
    from shared.metrics import nmse_db
    from shared.transforms import truncation_energy

    n_test = min(512, a.n // 4)
    cfg = UMI_NLOS.replace(n_train=a.n - n_test, n_val=0, n_test=n_test, seed=a.seed, sf_cap=n_test)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        t0 = time.perf_counter()
        stats = generate(cfg, path, progress=False, workers=a.workers, threads=1)
        e2e = time.perf_counter() - t0
        with open_dataset(path) as ds:
            x, y, z, los, pos = (np.concatenate([ds.split(s).read(k) for s in ("train", "test")])
                                 for k in ("x_ad", "y_ad", "z_ad", "los", "position"))
            xs, ys = ds.split("test").read("x_sf"), ds.split("test").read("y_sf")

    # the same test realizations at 30 kHz (same rays and delays, another OFDM grid)
    torch.set_num_threads(1)
    gen = Generator(cfg)
    e30 = []
    for blk in range(-(-n_test // cfg.block_size)):
        size = min(cfg.block_size, n_test - blk * cfg.block_size)
        r = gen.model.draw(size, block_generator(cfg, "test", blk))
        sf = cluster_to_sf(r.h_dl[:, 0], r.tau, cfg.n_subcarriers, 30e3).numpy()
        e30.append(truncation_energy(sf))
    e30 = np.concatenate(e30)

    # steady state: one process, one torch thread, blocks of 256, AD only
    gen.block("train", 0, 256)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    n_ss = 0
    for blk in range(1, 5):
        n_ss += len(gen.block("train", blk, 256).x_ad)
    steady = n_ss / (time.perf_counter() - t0)
    per_cpu_s = n_ss / max(time.process_time() - c0, 1e-9)

    ex, ey = truncation_energy(xs), truncation_energy(ys)
    res = {
        "profile": cfg.profile, "dataset_id": cfg.dataset_id, "n_samples": int(len(x)), "n_sf": int(len(xs)),
        "nmse_db": {"z_by_x": nmse_db(x, z), "z_by_y": nmse_db(y, z), "y_vs_x": nmse_db(x, y)},
        "energy_32_taps": {
            "dl_15khz_mean": float(ex.mean()), "ul_15khz_mean": float(ey.mean()),
            "dl_15khz_p10": float(np.percentile(ex, 10)), "dl_15khz_p1": float(np.percentile(ex, 1)),
            "dl_30khz_mean": float(e30.mean()), "dl_30khz_p10": float(np.percentile(e30, 10)),
            "dl_30khz_p1": float(np.percentile(e30, 1)),
        },
        "los_fraction": float(los.mean()),
        "distance_2d_m": {"min": float(np.linalg.norm(pos[:, :2], axis=1).min()),
                          "max": float(np.linalg.norm(pos[:, :2], axis=1).max())},
        "throughput_samples_per_s": {
            f"generate_e2e_{a.workers}_workers_wall": len(x) / e2e,
            "generate_loop_wall": stats["samples_per_s"],
            "steady_1_process_wall": steady, "steady_1_process_per_cpu_s": per_cpu_s,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load0, "loadavg_after": os.getloadavg(),
                    "platform": platform.platform()},
        "generator": generator_versions(),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    for k, v in res["nmse_db"].items():
        print(f"NMSE {k:8s} {v:+.2f} dB")
    for k, v in res["energy_32_taps"].items():
        print(f"energy {k:14s} {v:.3f}")
    for k, v in res["throughput_samples_per_s"].items():
        print(f"{k:34s} {v:.0f} samples/s")
    print(f"load average {load0} -> {res['machine']['loadavg_after']}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
