"""The channel emulator node: settings, server construction and the command line.

``python -m channel_emulator`` / ``csilink serve channel`` run :func:`main`. The physics lives
in ``channel_emulator.link`` (and its modules); the RPC surface in ``channel_emulator.servicer``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import CsilinkError, InvalidInput


class ChannelSettings(BaseModel):
    """Channel emulator node settings. ``link``: the default LinkConfig (fields of
    ``channel_emulator.config.LinkConfig``); ``links``: per-UE overrides on top of it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(50052, ge=0, le=65535)
    bs_addr: str = "127.0.0.1:50053"
    #: The UE node: the image link's TransmitMimo forwards the received symbols to it.
    ue_addr: str = "127.0.0.1:50051"
    #: Image link: channel pool file (``datagen.mimo``) the MIMO H are drawn from, and its split;
    #: None = i.i.d. Rayleigh CN(0, 1). A missing file fails only the MIMO requests.
    mimo_pool: str | None = None
    mimo_split: str = "test"
    #: Image link: most complex symbols in one TransmitMimo (all images together).
    max_mimo_symbols: int = Field(1 << 22, ge=1, le=1 << 26)
    link: dict[str, Any] = Field(default_factory=dict)
    links: dict[int, dict[str, Any]] = Field(default_factory=dict)
    #: Wait out the simulated air delay (delay_ms + jitter) before forwarding; False only reports it.
    realize_delay: bool = True
    #: Forwarding deadline to the BS (s); the caller's own deadline caps it.
    forward_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    max_batch_reports: int = Field(4096, ge=1, le=1 << 20)
    #: Recent outcomes kept for idempotent retries (by ue_id, seq).
    cache_size: int = Field(8192, ge=0, le=1 << 22)
    max_message_mb: int = Field(64, ge=1, le=2047)
    max_workers: int = Field(16, ge=1, le=256)
    grace_s: float = Field(5.0, ge=0.0, le=600.0)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from csilink.server_common import add_common_args

    p = parser or argparse.ArgumentParser(
        prog="python -m channel_emulator", description="csilink channel emulator node (gRPC)"
    )
    add_common_args(p, default_port=50052)
    p.add_argument("--bs", dest="bs_addr", default=None, help="BS node HOST:PORT")
    p.add_argument(
        "--ue", dest="ue_addr", default=None, help="UE node HOST:PORT (image link: received symbols)"
    )
    p.add_argument(
        "--mimo-pool",
        dest="mimo_pool",
        default=None,
        help="image link: channel pool file of MIMO matrices (default: i.i.d. Rayleigh)",
    )
    p.add_argument(
        "--mimo-split", dest="mimo_split", default=None, help="split of the channel pool (default test)"
    )
    p.add_argument(
        "--link", default=None, help='default link config as JSON, e.g. \'{"mode": "awgn", "snr_db": 10}\''
    )
    p.add_argument("--snr-db", type=float, default=None, help="default link SNR (dB)")
    p.add_argument("--mode", default=None, help="default link mode (awgn, rayleigh, rician, tdl-a|b|c)")
    p.add_argument(
        "--ideal", action="store_true", default=None, help="default link is a noiseless passthrough"
    )
    p.add_argument("--seed", type=int, default=None, help="default link seed")
    return p


def run(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health

    from channel_emulator.config import LinkConfig
    from channel_emulator.servicer import ChannelServicer
    from csilink.rpc import SERVICE_NAMES, ch_grpc
    from csilink.server_common import MethodStats, create_server, load_settings, serve_forever, setup_logging

    setup_logging(getattr(args, "verbose", False))
    settings = load_settings(
        ChannelSettings,
        args.config,
        "channel",
        {
            "host": args.host,
            "port": args.port,
            "bs_addr": args.bs_addr,
            "ue_addr": args.ue_addr,
            "mimo_pool": args.mimo_pool,
            "mimo_split": args.mimo_split,
        },
    )
    link = dict(settings.link)
    if args.link:
        try:
            extra = json.loads(args.link)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--link is not valid JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise InvalidInput("--link must be a JSON object")
        link.update(extra)
    for key in ("snr_db", "mode", "ideal", "seed"):
        if getattr(args, key) is not None:
            link[key] = getattr(args, key)
    LinkConfig.from_mapping(link)  # fail at start, naming the field
    settings = settings.model_copy(update={"link": link})
    stats = MethodStats()
    servicer = ChannelServicer(settings, stats)
    hs = health.HealthServicer(experimental_non_blocking=True)
    server, port = create_server(
        lambda s: ch_grpc.add_ChannelEmulatorServicer_to_server(servicer, s),
        [SERVICE_NAMES["channel"]],
        node="channel",
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
        print(f"channel_emulator: error: {exc}", file=sys.stderr)
        return 1
