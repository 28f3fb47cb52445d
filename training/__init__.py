"""Training, checkpoints, ONNX export and int8 quantization of the learned families (torch)."""
