"""Tiny gRPC health probe: ``python -m csilink.healthcheck HOST:PORT [--service NAME]``.

Asks the standard ``grpc.health.v1.Health/Check`` of a node and exits 0 only when it answers
``SERVING``; anything else (unreachable, timeout, NOT_SERVING, unknown service) prints one
line naming the problem on stderr and exits 1. Docker's ``healthcheck.test`` and the native
launcher (``csilink up``) both use it, so a service is "healthy" by the same rule in both.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass(frozen=True)
class HealthResult:
    """Outcome of one probe: ``ok`` is True only for SERVING; ``detail`` says what was seen."""

    ok: bool
    detail: str


def check(address: str, service: str = "", timeout: float = 2.0) -> HealthResult:
    """Probe ``address`` (``host:port``) once.

    ``service`` is the health service name ("" = the whole server, as the gRPC convention
    has it). Never raises for network problems: they come back as ``ok=False`` with the
    gRPC status in ``detail``.
    """
    if not address or ":" not in address:
        return HealthResult(False, f"bad address {address!r}: expected HOST:PORT")
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            name = code.name if code is not None else "ERROR"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            return HealthResult(False, f"{address}: {name}: {details}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    label = f"{address}" + (f" service {service!r}" if service else "")
    return HealthResult(resp.status == health_pb2.HealthCheckResponse.SERVING, f"{label}: {status}")


def build_parser() -> argparse.ArgumentParser:
    """The probe's arguments (also parsed by the launcher to probe in-process)."""
    parser = argparse.ArgumentParser(
        prog="python -m csilink.healthcheck",
        description="Exit 0 when the gRPC server at ADDR answers SERVING to grpc.health.v1 Check.",
    )
    parser.add_argument("address", metavar="ADDR", help="HOST:PORT of the gRPC server")
    parser.add_argument("--service", default="", help='health service name ("" = whole server)')
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing when healthy")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 healthy, 1 not, 2 usage)."""
    args = build_parser().parse_args(argv)
    result = check(args.address, args.service, args.timeout)
    if not result.ok:
        print(f"unhealthy: {result.detail}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"healthy: {result.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
