"""``csilink eval``: bundles of any family on a dataset split, one process, table + CSV/JSON/PNG."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate bundles offline on a dataset split",
        description="UE half via ONNX Runtime int8 + the wire step, BS half via the family's "
        "decoder; analog bundles over AWGN at each --snr-db. Writes CSV, JSON (with provenance) "
        "and a rate-distortion PNG.",
    )
    p.add_argument("--bundles", nargs="+", required=True, help="model ids or bundle folders")
    p.add_argument("--dataset", required=True, help="HDF5 dataset file")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--n", type=int, help="evaluate the first N samples (default: all)")
    p.add_argument(
        "--snr-db",
        type=float,
        nargs="+",
        default=[0.0, 10.0, 20.0],
        help="AWGN SNRs for analog bundles (default: 0 10 20)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the analog noise")
    p.add_argument("--out", default="results/eval", help="output folder")
    p.add_argument("--name", default="eval", help="file name stem of the outputs")
    p.add_argument("--root", action="append", help="folders holding bundles (default: bundles/)")
    p.add_argument("--device", default="cpu", help="BS decoder device (cpu, cuda, auto)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from evaluation.harness import evaluate
    from evaluation.outputs import print_table, write_all

    torch.set_num_threads(max(1, args.threads))
    rows, ctx = evaluate(
        args.bundles,
        args.dataset,
        args.split,
        args.n,
        tuple(args.snr_db),
        args.seed,
        tuple(args.root or ["bundles"]),
        args.device,
        args.threads,
    )
    print_table(rows, f"{ctx['dataset_id']} {args.split} (n={ctx['n']}, SF truth on {ctx['n_sf']})")
    paths = write_all(rows, ctx, args.out, args.name)
    for k, p in paths.items():
        print(f"{k}: {p}")
    return 0
