"""RD-JSCC sampler study on one training run: the autoencoder alone vs 1/2/5/20 DDIM steps, with
the initial noise drawn or zero (the deterministic residual trajectory), on validation samples.

    .venv/bin/python benchmarks/bench_rdjscc_sampler.py RUN DATASET [best|last]
    # e.g. runs/rd/rd-jscc-cdl data/generated/cdl-c-fdd.h5

Prints NMSE (dB) per (SNR, k); used for the design choices in docs/rd_jscc.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> int:
    from training import data as ds
    from training.export import load_run
    from training.loop import to_tensor

    torch.set_num_threads(1)
    run, data = argv[0], argv[1]
    _, summ, model = load_run(run, argv[2] if len(argv) > 2 else "best")
    x = to_tensor(ds.load_field(data, "val", "x_ad", n=500), summ["normalization"]["scale"])

    def nmse(a: torch.Tensor, b: torch.Tensor) -> float:
        e = ((a - b) ** 2).flatten(1).sum(1) / (a**2).flatten(1).sum(1)
        return float(10 * np.log10(float(e.mean())))

    print("SNR  k   AE     " + "  ".join(f"{s:>2}{m}" for s in (1, 2, 5, 20) for m in ("n", "z")))
    for snr_v, k_v in [(-5.0, 8), (0.0, 16), (10.0, 16), (20.0, 32)]:
        snr, k = torch.full((len(x),), snr_v), torch.full((len(x),), k_v)
        h = model.coarse(x, snr, k, torch.Generator().manual_seed(0))
        out = [nmse(x, h)]
        for steps in (1, 2, 5, 20):
            noise = torch.randn(h.shape, generator=torch.Generator().manual_seed(1))
            out.append(nmse(x, model.stage2.refine(h, snr, k, steps, noise)))  # drawn ("n")
            out.append(nmse(x, model.stage2.refine(h, snr, k, steps, torch.zeros_like(h))))  # zero ("z")
        print(f"{snr_v:4.0f} {k_v:3d} " + " ".join(f"{v:6.2f}" for v in out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
