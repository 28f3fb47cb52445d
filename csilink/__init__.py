"""csilink: split simulation of AI-native CSI feedback (UE, channel emulator, BS over gRPC)."""

__version__ = "0.1.0"
