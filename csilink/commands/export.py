"""``csilink export``: a training run -> a bundle (int8 + fp32 ONNX encoder, safetensors decoder)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a training run to a model bundle",
        description="ONNX encoder (fp32, then int8 QDQ calibrated on training data), "
        "decoder weights in safetensors, manifest with hashes.",
    )
    p.add_argument("run", help="run folder written by `csilink train`")
    p.add_argument("--out", required=True, help="bundle folder, e.g. bundles/csinet-b128")
    p.add_argument("--model-id", help="model id (default: the config's model_id, else the folder name)")
    p.add_argument("--version", default="1")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--calib-n", type=int, default=1000, help="training samples for int8 calibration")
    p.add_argument("--dataset", help="dataset for calibration (default: the run's)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.export import export_run

    b = export_run(
        args.run,
        args.out,
        model_id=args.model_id,
        version=args.version,
        checkpoint=args.checkpoint,
        calib_n=args.calib_n,
        dataset=args.dataset,
        force=args.force,
    )
    print(f"bundle {b.model_id} v{b.version} ({b.family}) written to {b.path}")
    for r in b.manifest.rates:
        print(f"  rate {r.name}: " + (f"{r.bits} bits" if r.bits is not None else f"{r.symbols} symbols"))
    return 0
