"""``csilink bench``: the end-to-end link benchmark (``benchmarks/bench_link.py``).

    csilink bench            # writes docs/bench/link.json and the Link section of docs/performance.md
    csilink bench --quick    # shorter, writes nothing

The benchmark lives in the source checkout's ``benchmarks/`` (it is not part of an installed
wheel); this command loads it from there and takes the same options.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_link.py"


def _module() -> ModuleType | None:
    if not _SCRIPT.is_file():
        return None
    name = "csilink_bench_link"
    spec = importlib.util.spec_from_file_location(name, _SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def register(subparsers: Any) -> None:
    # The options are the benchmark's own (``csilink bench --help`` prints them): the script is
    # loaded only when the command runs, so the rest of the CLI never depends on it.
    p = subparsers.add_parser(
        "bench",
        add_help=False,
        prefix_chars="+",  # every "-..." argument is the benchmark's, passed through untouched
        help="end-to-end link benchmark: reports/s and latency through UE, emulator and BS",
        description="Throughput and latency of the split link (three processes on loopback, started "
        "from docker-compose.yml) for the digital and analog paths, batched, streamed and one report "
        "at a time, next to the in-process codec measured in the same run.",
    )
    p.add_argument("args", nargs="*", help="options of benchmarks/bench_link.py (see csilink bench --help)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from shared.errors import InvalidInput

    mod = _module()
    if mod is None:
        raise InvalidInput(f"csilink bench needs the source checkout ({_SCRIPT} is missing)")
    return int(mod.main(args.args, prog="csilink bench") or 0)
