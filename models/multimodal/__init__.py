"""``multimodal``: variable-rate CSI feedback with sensor-aided reconstruction at the BS (paper
000, Nam & Choi): a Swin autoencoder in the spatial-frequency domain, a trainable thermometer
scalar quantizer sending 48..144 bits from one model, and a fusion refiner that uses an RGB
camera image or the uplink CSI at the BS.

Modules: ``levels`` (numpy: bit allocation, UE quantization, bit stream; torch-free),
``quantizer`` (torch: trainable boundaries, surrogate gradient), ``swin`` (Swin blocks),
``nets`` (encoder, decoder, extractors, refiner, codec, multi-rate loss). Torch-free at import.
"""
