"""The `csilink` command. Each subcommand lives in ``csilink/commands/<name>.py`` and exposes
``register(subparsers)``; heavy imports (torch, sionna) happen inside the command's handler,
so ``csilink --help`` is fast and works on a node without the optional extras.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from shared.errors import CsilinkError

# Order is the order shown in --help.
COMMANDS = ["dataset", "train", "export", "eval", "bundle", "report", "up", "run", "bench", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csilink",
        description="Split simulation of AI-native CSI feedback in FDD massive MIMO: "
        "datasets, model bundles, evaluation, and the UE / channel-emulator / BS link over gRPC.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"csilink.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("csilink.commands"):
                continue  # command not part of this installation
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CsilinkError as exc:
        print(f"csilink {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
