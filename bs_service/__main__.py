"""``python -m bs_service``: run the BS node (same as ``csilink serve bs``)."""

from __future__ import annotations

import argparse
import sys

from shared.errors import CsilinkError


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from csilink.server_common import add_common_args

    p = parser or argparse.ArgumentParser(prog="python -m bs_service", description="csilink BS node (gRPC)")
    add_common_args(p, default_port=50053)
    p.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        default=None,
        help="dataset file for side information (repeatable; the first is the default)",
    )
    p.add_argument(
        "--bundle",
        dest="bundles",
        action="append",
        default=None,
        help="bundle folder or model id to load at start (repeatable)",
    )
    p.add_argument(
        "--bundle-root",
        dest="bundle_roots",
        action="append",
        default=None,
        help="folder searched for model ids (repeatable; default bundles/)",
    )
    p.add_argument("--device", default=None, help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument(
        "--decoder-quant",
        choices=["none", "dynamic"],
        default=None,
        help="dynamic: int8 Linear layers in the torch decoders (CPU)",
    )
    p.add_argument(
        "--decoder-graph",
        choices=["frozen", "eager"],
        default=None,
        help="frozen (default): CPU decoders as frozen TorchScript graphs, checked at load; "
        "eager: plain modules",
    )
    p.add_argument(
        "--srs-snr-db",
        type=float,
        default=None,
        help="side information y_* as an SRS estimate at this SNR (dB); default: the true uplink CSI",
    )
    p.add_argument(
        "--channel", dest="channel_addr", default=None, help="channel emulator HOST:PORT (image link)"
    )
    p.add_argument(
        "--image-dataset",
        dest="image_datasets",
        action="append",
        default=None,
        help="image file the image link sends from (repeatable; the first is the default)",
    )
    p.add_argument("--max-batch", type=int, default=None, help="dynamic batching: largest decoder batch")
    p.add_argument(
        "--max-wait-ms", type=float, default=None, help="dynamic batching: longest wait for a batch"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health

    from bs_service.config import BsSettings
    from bs_service.node import BsNode
    from bs_service.servicer import BsServicer
    from csilink.rpc import SERVICE_NAMES, bs_grpc
    from csilink.server_common import MethodStats, create_server, load_settings, serve_forever, setup_logging

    setup_logging(getattr(args, "verbose", False))
    keys = ["host", "port", "datasets", "bundles", "bundle_roots", "device", "decoder_quant", "decoder_graph"]
    keys += ["max_batch", "max_wait_ms", "srs_snr_db", "channel_addr", "image_datasets"]
    settings = load_settings(BsSettings, args.config, "bs", {k: getattr(args, k) for k in keys})
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)  # process-wide: the node owns this process
    stats = MethodStats()
    servicer = BsServicer(BsNode(settings), stats)
    hs = health.HealthServicer(experimental_non_blocking=True)
    server, port = create_server(
        lambda s: bs_grpc.add_BsServiceServicer_to_server(servicer, s),
        [SERVICE_NAMES["bs"]],
        node="bs",
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
        print(f"bs_service: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
