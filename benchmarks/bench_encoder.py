"""UE encoder speed: int8 vs fp32 ONNX Runtime, latency at batch 1 and throughput at batch 256.

Measures the ONNX graph alone (``session.run``) and the whole UE step (normalization + graph +
wire codec, ``UeEncoder.encode``), one intra-op thread, on every shipped bundle with an ONNX
encoder. Writes docs/bench/encoder.json and prints a markdown table (pasted in docs/models.md).

    .venv/bin/python benchmarks/bench_encoder.py [--root bundles] [--reps 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.bundle import Bundle, find_bundles  # noqa: E402
from shared.provenance import provenance  # noqa: E402
from shared.ue_encoder import UeEncoder  # noqa: E402


def _time(fn, reps: int) -> np.ndarray:  # noqa: ANN001
    for _ in range(max(10, reps // 20)):  # warm-up
        fn()
    out = np.empty(reps)
    for i in range(reps):
        t = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t
    return out / 1e3  # microseconds


def bench(b: Bundle, fp32: bool, reps: int, threads: int) -> dict:
    enc = UeEncoder.from_bundle(b, threads=threads, fp32=fp32)
    rng = np.random.default_rng(0)
    shape = tuple(b.manifest.input_shape)
    scale = 1.0 / float(b.manifest.normalization["scale"])
    x1 = ((rng.normal(size=(1, *shape)) + 1j * rng.normal(size=(1, *shape))) * scale).astype(np.complex64)
    x256 = ((rng.normal(size=(256, *shape)) + 1j * rng.normal(size=(256, *shape))) * scale).astype(
        np.complex64
    )
    real1 = np.stack([x1.real, x1.imag], 1).astype(np.float32)
    real256 = np.stack([x256.real, x256.imag], 1).astype(np.float32)
    feed = enc.input_name
    g1 = _time(lambda: enc.session.run(None, {feed: real1}), reps)
    u1 = _time(lambda: enc.encode(x1), reps)
    g256 = _time(lambda: enc.session.run(None, {feed: real256}), max(20, reps // 20))
    u256 = _time(lambda: enc.encode(x256), max(20, reps // 20))
    size = (b.path / (b.manifest.ue.encoder_fp32 if fp32 else b.manifest.ue.encoder)).stat().st_size
    return {
        "model": b.model_id,
        "precision": "fp32" if fp32 else "int8",
        "file_bytes": size,
        "graph_b1_us_p50": float(np.median(g1)),
        "graph_b1_us_p90": float(np.percentile(g1, 90)),
        "ue_b1_us_p50": float(np.median(u1)),
        "ue_b1_us_p90": float(np.percentile(u1, 90)),
        "graph_b256_reports_per_s": 256e6 / float(np.median(g256)),
        "ue_b256_reports_per_s": 256e6 / float(np.median(u256)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="bundles")
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="docs/bench/encoder.json")
    args = ap.parse_args(argv)
    rows = []
    for p in find_bundles(args.root):
        b = Bundle.load(p)
        if not b.manifest.ue.encoder_fp32:
            continue
        for fp32 in (False, True):
            rows.append(bench(b, fp32, args.reps, args.threads))
    doc = {"provenance": provenance(threads=args.threads, reps=args.reps), "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(
        "| model | precision | ONNX size (kB) | graph b=1 p50 (us) | UE step b=1 p50 (us) | "
        "graph b=256 (reports/s) | UE step b=256 (reports/s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['model']}` | {r['precision']} | {r['file_bytes'] / 1e3:.0f} | "
            f"{r['graph_b1_us_p50']:.0f} | {r['ue_b1_us_p50']:.0f} | "
            f"{r['graph_b256_reports_per_s']:,.0f} | {r['ue_b256_reports_per_s']:,.0f} |"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
