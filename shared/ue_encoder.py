"""The UE half of a bundle: int8 ONNX encoder + wire step. numpy + onnxruntime ONLY (no torch).

>>> enc = UeEncoder.from_bundle(Bundle.load("bundles/csinet-b128"))       # doctest: +SKIP
>>> z = enc.latents(x_ad)             # complex [B, 32, 32] -> float32 [B, latent_size]
>>> reports = enc.encode(x_ad, "b128")  # -> list of B shared.wire.Bits (or complex symbols)

Families without an ONNX encoder (``manifest.ue.encoder`` is null, e.g. ``type2``) are
delegated to a numpy encoder found by family name: the module ``models.<pkg>.ue``
(``pkg`` = family name with ``-`` -> ``_``) must define ``ue_encoder_from_bundle(bundle)``
returning an object with the same ``latents``/``encode`` methods (and must not import torch).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np

from shared.bundle import Bundle
from shared.errors import BundleError, InvalidInput
from shared.wire import Bits, WireCodec, from_spec


class UeEncoderLike(Protocol):
    """What the UE service calls, whatever the family."""

    latent_size: int

    def latents(self, x_ad: np.ndarray) -> np.ndarray: ...

    def encode(self, x_ad: np.ndarray, rate: str | None = None) -> list[Bits | np.ndarray]: ...


def check_csi(x_ad: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Validate a ``[B, Nt, T]`` complex batch (a single ``[Nt, T]`` matrix is promoted to B=1)."""
    x = np.asarray(x_ad)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or tuple(x.shape[1:]) != tuple(shape):
        raise InvalidInput(f"CSI must be [B, {shape[0]}, {shape[1]}] complex, got shape {x.shape}")
    if not np.iscomplexobj(x):
        raise InvalidInput(f"CSI must be complex, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise InvalidInput("empty CSI batch")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("CSI contains NaN or Inf")
    return x.astype(np.complex64, copy=False)


def rate_codec(bundle: Bundle, rate: str | None) -> WireCodec:
    """The wire codec of ``rate`` (the bundle's default wire, overridden per rate)."""
    m = bundle.manifest
    r = m.rate(rate)
    return from_spec(r.wire or m.ue.wire, bundle.path)


class UeEncoder:
    """ONNX Runtime encoder of a learned family plus its wire codecs."""

    def __init__(self, bundle: Bundle, session: Any, threads: int = 1) -> None:
        m = bundle.manifest
        self.bundle = bundle
        self.session = session
        self.threads = threads
        self.latent_size = int(m.latent_size)
        self.input_shape = (int(m.input_shape[0]), int(m.input_shape[1]))
        scale = m.normalization.get("scale")
        if not isinstance(scale, int | float) or not scale > 0:
            raise BundleError(
                f"bundle {m.model_id}: normalization.scale must be a positive number, got {scale!r}"
            )
        self.scale = np.float32(scale)
        self.input_name = session.get_inputs()[0].name
        self._codecs: dict[str, WireCodec] = {}

    @staticmethod
    def from_bundle(bundle: Bundle, threads: int = 1, fp32: bool = False) -> UeEncoderLike:
        """Encoder of ``bundle`` (int8 ONNX unless ``fp32``); a family hook when there is no ONNX."""
        m = bundle.manifest
        if m.ue.encoder is None:
            pkg = "models." + m.family.replace("-", "_") + ".ue"
            try:
                mod = importlib.import_module(pkg)
            except ModuleNotFoundError as exc:
                raise BundleError(
                    f"bundle {m.model_id}: no ONNX encoder and no numpy UE encoder module "
                    f"{pkg} for family {m.family!r} ({exc})"
                ) from None
            hook = getattr(mod, "ue_encoder_from_bundle", None)
            if hook is None:
                raise BundleError(f"{pkg} does not define ue_encoder_from_bundle(bundle)")
            return hook(bundle)
        import onnxruntime as ort

        name = m.ue.encoder_fp32 if fp32 else m.ue.encoder
        if name is None:
            raise BundleError(f"bundle {m.model_id}: has no fp32 encoder")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(
                str(bundle.file(name)), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"bundle {m.model_id}: ONNX Runtime cannot load {name}: {exc}") from None
        out = sess.get_outputs()[0].shape
        if len(out) != 2 or (isinstance(out[1], int) and out[1] != m.latent_size):
            raise BundleError(
                f"bundle {m.model_id}: encoder output {out} does not match latent_size {m.latent_size}"
            )
        return UeEncoder(bundle, sess, threads)

    def codec(self, rate: str | None = None) -> WireCodec:
        key = rate or ""
        if key not in self._codecs:
            self._codecs[key] = rate_codec(self.bundle, rate)
        return self._codecs[key]

    def latents(self, x_ad: np.ndarray) -> np.ndarray:
        """Normalized ONNX encoder output.

        :input x_ad: ``[B, Nt, T]`` complex (unnormalized angular-delay CSI)
        :output: ``[B, latent_size]`` float32
        """
        x = check_csi(x_ad, self.input_shape) * self.scale
        real = np.stack([x.real, x.imag], axis=1).astype(np.float32)
        z = self.session.run(None, {self.input_name: real})[0]
        return np.asarray(z, dtype=np.float32)

    def encode(self, x_ad: np.ndarray, rate: str | None = None) -> list[Bits | np.ndarray]:
        """One report per sample: ``Bits`` (digital) or complex64 symbols ``[k]`` (analog)."""
        codec = self.codec(rate)
        return codec.encode_batch(self.latents(x_ad))
