"""csilink: split simulation of AI-native CSI feedback (UE, channel emulator, BS over gRPC)."""

import os

__version__ = "0.1.0"

# gRPC's fork handlers (on by default in recent grpcio) stop its thread pools before every
# fork and can deadlock there; csilink's processes only fork to exec (the launcher, the runner,
# the benchmarks), which needs none of that. Set before grpc is first imported; an explicit
# setting in the environment wins.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
