"""``csilink report``: regenerate docs/RESULTS.md from every shipped bundle."""

from __future__ import annotations

import argparse
import shlex
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="regenerate docs/RESULTS.md from all bundles in bundles/",
        description="Evaluates every bundle under --root on one dataset split and writes the "
        "results page (tables per task, headline table, training budgets) plus "
        "docs/bench/results.{json,csv} and a rate-distortion PNG.",
    )
    p.add_argument(
        "--dataset",
        action="append",
        help="dataset file (repeatable: the first is the primary one, each further one gets its "
        "own section with the bundles trained on it; default: data/generated/cdl-c-fdd.h5 plus "
        "data/generated/umi-nlos.h5 when present, else the committed sample "
        "data/sample/cdl-c-fdd-sample.h5)",
    )
    p.add_argument("--readme", default="README.md", help="also copy the headline table here ('' = no)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--n", type=int, help="first N samples (default: all)")
    p.add_argument(
        "--snr-db",
        type=float,
        nargs="+",
        default=[-5.0, 0.0, 5.0, 10.0, 20.0],
        help="AWGN SNRs for analog bundles",
    )
    p.add_argument("--root", default="bundles", help="folder of the shipped bundles")
    p.add_argument("--out", default="docs/RESULTS.md")
    p.add_argument("--data-dir", default="docs/bench", help="where results.json/csv and the PNG go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only-dataset", metavar="FILE",
                   help="re-evaluate just this further dataset's section of --out, in place (the other "
                   "sections stay as they are): for a family that adds a dataset")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from evaluation.report import make_report

    torch.set_num_threads(1)
    cmd = "csilink " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "csilink report"
    from evaluation.report import default_datasets

    if args.only_dataset:
        from evaluation.report import update_dataset_section

        out = update_dataset_section(args.only_dataset, args.split, args.n, tuple(args.snr_db), args.root,
                                     args.out, args.data_dir, args.seed, cmd)
        print(f"updated {out}")
        return 0
    out = make_report(
        args.dataset or default_datasets(),
        args.split,
        args.n,
        tuple(args.snr_db),
        args.root,
        args.out,
        args.data_dir,
        args.seed,
        cmd,
        readme=args.readme or None,
    )
    print(f"wrote {out}")
    return 0
