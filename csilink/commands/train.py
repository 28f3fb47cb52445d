"""``csilink train``: time-budgeted, resumable training of a learned family."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a learned family on a dataset file (resumable, time-budgeted)",
        description="Train within a wall-clock budget. Re-running the same command on the same "
        "--out resumes from its last checkpoint (optimizer and samples seen included).",
    )
    p.add_argument("--family", help="family name (or 'family:' in the config)")
    p.add_argument("--config", help="run config YAML: family, seed, model: {...}, train: {...}")
    p.add_argument("--dataset", required=True, help="HDF5 dataset file (csilink-dataset/1)")
    p.add_argument(
        "--minutes", type=float, required=True, help="training budget in wall minutes (total over resumes)"
    )
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl, run.json)")
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="what --minutes counts: elapsed time (wall) or this process's CPU time (cpu)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.loop import load_config, train

    cfg = load_config(args.config, args.family)
    if args.seed is not None:
        cfg["seed"] = args.seed
    summary = train(
        cfg,
        args.dataset,
        args.out,
        args.minutes,
        threads=args.threads,
        progress=not args.no_progress,
        clock=args.clock,
    )
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "family",
                    "wall_minutes",
                    "samples_seen",
                    "epochs",
                    "best_val_nmse_db",
                    "final_val_nmse_db",
                )
            },
            indent=2,
        )
    )
    return 0
