"""Reference figures of the cdl-c-fdd world and the generator's throughput.

Generates a cdl-c-fdd set (default 2,048 train + 512 test samples, SF on the test split),
then measures on it, in the cropped AD domain (32 x 32):

* NMSE of Z predicted by X (outdated CSI, 5 ms old), of Z by Y (UL as the DL estimate),
  and between Y and X at the same instant ... of the physical FDD world;
* the same Y-vs-Z NMSE for the diagnostic UL options (shared phases; shared phases with the
  array rescaled to the UL wavelength, i.e. a second CDL object at the UL carrier);
* the energy kept by cropping to 32 delay taps (SF test split);
* throughput: end to end (``generate()``: imports, model set-up, HDF5 writing included) and
  steady state (blocks of 256, AD only: the training-set path), samples/s with X, Y and Z.

Prints a table and writes ``docs/bench/datagen.json``.

    .venv/bin/python benchmarks/bench_datagen.py            # ~1 min on 2 cores
    .venv/bin/python benchmarks/bench_datagen.py --n 10000 --out /tmp/datagen.json
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
    ap.add_argument("--n", type=int, default=2048, help="training samples to generate (>= 2000)")
    ap.add_argument("--n-test", type=int, default=512, help="test samples (with SF)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench" / "datagen.json"))
    a = ap.parse_args(argv)

    import torch

    from datagen.generate import Generator, generate
    from datagen.profiles import CDL_C_FDD
    from datagen.writer import generator_versions
    from shared.dataset import open_dataset
    from shared.metrics import nmse_db
    from shared.transforms import truncation_energy

    cfg = CDL_C_FDD.replace(n_train=a.n, n_val=0, n_test=a.n_test, seed=a.seed, sf_cap=a.n_test)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        t0 = time.perf_counter()
        stats = generate(cfg, path, progress=False, workers=0, threads=1)
        e2e = time.perf_counter() - t0
        with open_dataset(path) as ds:
            x, y, z = (np.concatenate([ds.split(s).read(k) for s in ("train", "test")])
                       for k in ("x_ad", "y_ad", "z_ad"))
            xs = ds.split("test").read("x_sf")
            ys = ds.split("test").read("y_sf")
    n_all = len(x)

    # steady state: model built, blocks of 256 (AD only), one torch thread per process
    torch.set_num_threads(1)
    gen = Generator(cfg)
    gen.block("train", 0, 256)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    n_ss = 0
    for blk in range(1, 9):
        n_ss += len(gen.block("train", blk, 256).x_ad)
    steady = n_ss / (time.perf_counter() - t0)
    # per CPU-second of this (single-threaded) process: what a free core gives, whatever the
    # other load on the machine (wall-clock figures above are shared-machine figures)
    per_cpu_s = n_ss / max(time.process_time() - c0, 1e-9)

    diag = {}
    for name, over in (("shared_phases", {"ul_phases": "shared"}),
                       ("shared_phases_rescaled_array", {"ul_phases": "shared", "ul_array": "rescaled"})):
        g = Generator(cfg.replace(**over))
        bl = [g.block("train", blk, 256) for blk in range(4)]
        yy, zz = np.concatenate([b.y_ad for b in bl]), np.concatenate([b.z_ad for b in bl])
        xx = np.concatenate([b.x_ad for b in bl])
        diag[name] = {"nmse_db_z_by_y": nmse_db(zz, yy), "nmse_db_y_vs_x": nmse_db(yy, xx), "n": len(yy)}

    res = {
        "profile": cfg.profile,
        "n_samples": n_all,
        "n_sf_samples": len(xs),
        "nmse_db_z_by_x": nmse_db(z, x),
        "nmse_db_z_by_y": nmse_db(z, y),
        "nmse_db_y_vs_x": nmse_db(y, x),
        "energy_kept_32_taps_dl": float(np.mean(truncation_energy(xs))),
        "energy_kept_32_taps_ul": float(np.mean(truncation_energy(ys))),
        "throughput_end_to_end_samples_per_s": n_all / e2e,
        "throughput_generate_loop_samples_per_s": stats["samples_per_s"],
        "generate_setup_seconds": stats["setup_seconds"],
        "throughput_steady_state_samples_per_s": steady,
        "throughput_steady_state_samples_per_cpu_s": per_cpu_s,
        "diagnostic_ul_options": diag,
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
                    "python": platform.python_version(), "platform": platform.platform()},
        "versions": generator_versions(),
        "seed": a.seed,
        "command": " ".join(["python benchmarks/bench_datagen.py",
                             *(argv if argv is not None else sys.argv[1:])]),
    }
    rows = [
        ("NMSE Z by X (outdated CSI)", f"{res['nmse_db_z_by_x']:.2f} dB"),
        ("NMSE Z by Y (UL as DL estimate)", f"{res['nmse_db_z_by_y']:.2f} dB"),
        ("NMSE Y vs X (same realization)", f"{res['nmse_db_y_vs_x']:.2f} dB"),
        ("  Y vs Z, shared phases", f"{diag['shared_phases']['nmse_db_z_by_y']:.2f} dB"),
        ("  Y vs Z, shared phases + rescaled array",
         f"{diag['shared_phases_rescaled_array']['nmse_db_z_by_y']:.2f} dB"),
        ("energy kept by 32 taps (DL / UL)",
         f"{res['energy_kept_32_taps_dl']:.4f} / {res['energy_kept_32_taps_ul']:.4f}"),
        ("throughput, steady state", f"{steady:.0f} samples/s ({per_cpu_s:.0f} per CPU-second)"),
        ("throughput, generate loop (+ HDF5)", f"{stats['samples_per_s']:.0f} samples/s "
         f"(+ {stats['setup_seconds']:.1f} s set-up)"),
        ("throughput, end to end (+ start-up)",
         f"{res['throughput_end_to_end_samples_per_s']:.0f} samples/s"),
    ]
    print(f"cdl-c-fdd, {n_all} samples ({len(xs)} with SF), load avg {res['machine']['load_avg_1min']:.1f}")
    for k, v in rows:
        print(f"  {k:42s} {v}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
