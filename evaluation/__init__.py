"""Offline evaluation harness (UE half via ONNX Runtime + wire, BS half via the registry) and the
results report (docs/RESULTS.md)."""
