"""``csilink serve ue|channel|bs``: run one node of the split link in the foreground.

Same flags as ``python -m ue_service`` / ``python -m channel_emulator`` / ``python -m bs_service``
(``--host --port --config YAML --port-file``, plus each node's own); SIGTERM/SIGINT stop it
gracefully. Heavy imports (onnxruntime, torch) happen only when the node starts.
"""

from __future__ import annotations

import argparse
from typing import Any

_NODES = {
    "ue": ("ue_service.__main__", "UE node: ONNX encoders, measures and sends CSI reports"),
    "channel": ("channel_emulator.server", "channel emulator: noise, fading, bit errors, CRC, delay"),
    "bs": ("bs_service.__main__", "BS node: PyTorch decoders with dynamic batching"),
}


def register(subparsers: Any) -> None:
    import importlib

    p = subparsers.add_parser(
        "serve", help="run one node (ue, channel, bs) as a gRPC server", description=__doc__.splitlines()[0]
    )
    nodes = p.add_subparsers(dest="node", metavar="NODE", required=True)
    for name, (module, help_) in _NODES.items():
        sp = nodes.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).build_parser(sp)
        sp.set_defaults(func=_run, _module=module)


def _run(args: argparse.Namespace) -> int:
    import importlib

    return int(importlib.import_module(args._module).run(args) or 0)
