"""``csilink bundle list | inspect ID | verify ID | complexity ID``: look at and check model bundles."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="list, inspect and verify model bundles")
    p.add_argument("--root", action="append", help="folder(s) holding bundles (default: bundles/)")
    bsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = bsub.add_parser("list", help="bundles found under the roots, with family, rates and status")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)
    ins = bsub.add_parser("inspect", help="print a bundle's manifest summary (verifies it first)")
    ins.add_argument("id", help="model id or bundle folder")
    ins.add_argument("--json", action="store_true", help="print the whole manifest")
    ins.set_defaults(func=_inspect)
    ver = bsub.add_parser("verify", help="check every file's sha256; non-zero exit when tampered/incomplete")
    ver.add_argument("id", nargs="+", help="model id(s) or bundle folder(s)")
    ver.set_defaults(func=_verify)
    cx = bsub.add_parser(
        "complexity",
        help="parameters and multiply-accumulates of encoder and decoder (torch FlopCounterMode), file sizes",
    )
    cx.add_argument("id", nargs="+", help="model id(s) or bundle folder(s)")
    cx.add_argument("--json", action="store_true", help="machine-readable output")
    cx.set_defaults(func=_complexity)


def _roots(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(args.root or ["bundles"])


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from shared.bundle import Bundle, find_bundles
    from shared.errors import BundleError

    rows = []
    for root in _roots(args):
        for path in find_bundles(root):
            try:
                b = Bundle.load(path)
                s = b.summary()
                s["status"] = "ok"
                s["rates"] = [
                    (r.name, r.bits if r.bits is not None else f"{r.symbols} sym") for r in b.manifest.rates
                ]
            except BundleError as exc:
                s = {"model_id": path.name, "path": str(path), "status": f"BROKEN: {exc}"}
            rows.append(s)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table(title=f"bundles under {', '.join(_roots(args))}")
    for col in ("model", "version", "family", "rates", "target", "status"):
        t.add_column(col)
    for s in rows:
        rates = ", ".join(f"{n}={v}" for n, v in s.get("rates", []))
        t.add_row(
            s["model_id"],
            s.get("version", "?"),
            s.get("family", "?"),
            rates,
            s.get("target", "?"),
            s["status"],
        )
    Console().print(t)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def _inspect(args: argparse.Namespace) -> int:
    from shared.bundle import Bundle, resolve

    b = Bundle.load(resolve(args.id, _roots(args)))
    m = b.manifest
    if args.json:
        print(json.dumps(m.model_dump(mode="json"), indent=2))
        return 0
    info = {
        **b.summary(),
        "description": m.description,
        "latent_size": m.latent_size,
        "rates": [r.model_dump(exclude_none=True) for r in m.rates],
        "wire": m.ue.wire,
        "ue_encoder": m.ue.encoder,
        "bs_weights": m.bs.weights,
        "normalization": m.normalization,
        "training": {
            k: m.training.get(k)
            for k in (
                "dataset",
                "dataset_id",
                "budget_minutes",
                "wall_minutes",
                "samples_seen",
                "seed",
                "best_val_nmse_db",
            )
            if k in m.training
        },
        "files": {k: f"{v[:12]}... ({(b.path / k).stat().st_size} B)" for k, v in m.files.items()},
        "verified": True,
    }
    print(json.dumps(info, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from shared.bundle import Bundle, resolve
    from shared.errors import BundleError, NotFound

    bad = 0
    for ref in args.id:
        try:
            b = Bundle.load(resolve(ref, _roots(args)))
            print(f"OK      {b.model_id} v{b.version} ({len(b.manifest.files)} files verified) at {b.path}")
        except (BundleError, NotFound) as exc:
            print(f"FAILED  {ref}: {exc}")
            bad += 1
    return 1 if bad else 0


def _complexity(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from evaluation.complexity import bundle_complexity
    from shared.bundle import Bundle, resolve

    rows = [bundle_complexity(Bundle.load(resolve(ref, _roots(args)))) for ref in args.id]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table(title="complexity (MACs: convolutions and matrix products, one sample)")
    for col in ("model", "enc params", "dec params", "enc MACs", "dec MACs", "int8 encoder", "decoder"):
        t.add_column(col, justify="right" if col != "model" else "left")
    for r in rows:
        t.add_row(
            r["model_id"],
            f"{r['encoder_params']:,}",
            f"{r['decoder_params']:,}",
            f"{r['encoder_macs'] / 1e6:.2f}M",
            f"{r['decoder_macs'] / 1e6:.2f}M",
            f"{r.get('encoder_int8_bytes', 0) / 1e3:.0f} kB",
            f"{r['decoder_bytes'] / 1e3:.0f} kB",
        )
    Console().print(t)
    return 0
