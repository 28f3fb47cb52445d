"""``python -m ue_service``: run the UE node (same as ``csilink serve ue``)."""

from __future__ import annotations

import argparse
import sys

from shared.errors import CsilinkError


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from csilink.server_common import add_common_args

    p = parser or argparse.ArgumentParser(prog="python -m ue_service", description="csilink UE node (gRPC)")
    add_common_args(p, default_port=50051)
    p.add_argument("--channel", dest="channel_addr", default=None, help="channel emulator HOST:PORT")
    p.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        default=None,
        help="dataset file (repeatable; the first is the default)",
    )
    p.add_argument(
        "--bundle",
        dest="bundles",
        action="append",
        default=None,
        help="bundle folder or model id to load at start (repeatable; the first is the default)",
    )
    p.add_argument(
        "--bundle-root",
        dest="bundle_roots",
        action="append",
        default=None,
        help="folder searched for model ids (repeatable; default bundles/)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the channel-estimation noise")
    p.add_argument(
        "--csi-rs-snr-db", type=float, default=None, help="default CSI-RS SNR (dB); unset = perfect CSI"
    )
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads per encoder")
    return p


def run(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health

    from csilink.rpc import SERVICE_NAMES, ue_grpc
    from csilink.server_common import (
        MethodStats,
        create_server,
        load_settings,
        serve_forever,
        setup_logging,
    )
    from ue_service.config import UeSettings
    from ue_service.node import UeNode
    from ue_service.servicer import UeServicer

    setup_logging(getattr(args, "verbose", False))
    keys = [
        "host",
        "port",
        "channel_addr",
        "datasets",
        "bundles",
        "bundle_roots",
        "seed",
        "csi_rs_snr_db",
        "threads",
    ]
    settings = load_settings(UeSettings, args.config, "ue", {k: getattr(args, k) for k in keys})
    stats = MethodStats()
    servicer = UeServicer(UeNode(settings), stats)
    hs = health.HealthServicer(experimental_non_blocking=True)
    server, port = create_server(
        lambda s: ue_grpc.add_UeServiceServicer_to_server(servicer, s),
        [SERVICE_NAMES["ue"]],
        node="ue",
        host=settings.host,
        port=settings.port,
        max_message_bytes=settings.max_message_mb << 20,
        max_workers=settings.max_workers,
        health_servicer=hs,
        stats=stats,
    )
    serve_forever(
        server, hs, grace_s=settings.grace_s, on_stop=servicer.close, port_file=args.port_file, port=port
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CsilinkError as exc:
        print(f"ue_service: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
