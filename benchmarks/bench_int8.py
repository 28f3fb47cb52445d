"""int8 vs fp32 ONNX encoder: end-to-end NMSE on the test split for every shipped learned bundle.

Same wire step, same decoder, same analog noise (seeded per model/rate/SNR); only the UE's
encoder graph differs. Writes docs/bench/int8.json. The project's tolerance: |int8 - fp32|
< 0.3 dB NMSE (AD).

    .venv/bin/python benchmarks/bench_int8.py [--dataset data/generated/cdl-c-fdd.h5] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.harness import evaluate_bundle, load_truth  # noqa: E402
from shared.bundle import Bundle, find_bundles  # noqa: E402
from shared.provenance import provenance  # noqa: E402

TOLERANCE_DB = 0.3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="data/generated/cdl-c-fdd.h5")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--root", default="bundles")
    ap.add_argument("--snr-db", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    ap.add_argument("--out", default="docs/bench/int8.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    bundles = [b for b in (Bundle.load(p) for p in find_bundles(args.root)) if b.manifest.ue.encoder_fp32]
    needs = {k for b in bundles for k in b.manifest.bs.needs}
    truth = load_truth(args.dataset, args.split, args.n, needs)
    results = []
    worst = 0.0
    for b in bundles:
        r8 = evaluate_bundle(b, truth, tuple(args.snr_db))
        r32 = evaluate_bundle(b, truth, tuple(args.snr_db), fp32=True)
        for a, c in zip(r8, r32, strict=True):
            d = a.nmse_db_ad - c.nmse_db_ad
            worst = max(worst, abs(d))
            results.append(
                {
                    "model": a.model,
                    "rate": a.rate,
                    "snr_db": a.snr_db,
                    "nmse_db_int8": a.nmse_db_ad,
                    "nmse_db_fp32": c.nmse_db_ad,
                    "delta_db": d,
                    "sgcs_int8": a.sgcs,
                    "sgcs_fp32": c.sgcs,
                }
            )
            print(
                f"{a.model:18s} {a.rate:6s} snr={a.snr_db!s:5s} fp32 {c.nmse_db_ad:7.2f} dB  "
                f"int8 {a.nmse_db_ad:7.2f} dB  delta {d:+.3f} dB"
            )
    doc = {
        "provenance": provenance(
            dataset=args.dataset, split=args.split, n=len(truth.x_ad), dataset_id=truth.dataset_id
        ),
        "tolerance_db": TOLERANCE_DB,
        "worst_abs_delta_db": worst,
        "within_tolerance": worst < TOLERANCE_DB,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"worst |int8 - fp32| = {worst:.3f} dB (tolerance {TOLERANCE_DB} dB) -> {args.out}")
    return 0 if worst < TOLERANCE_DB else 1


if __name__ == "__main__":
    sys.exit(main())
