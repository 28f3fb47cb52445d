"""The BS half of learned families: a torch decoder rebuilt from the manifest + safetensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from models.registry import resolve_device
from shared.errors import BundleError, InvalidInput
from shared.transforms import real_to_complex

if TYPE_CHECKING:  # pragma: no cover
    from models.common.learned import LearnedFamily
    from shared.bundle import Bundle


def fold_batchnorm(module: torch.nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` in an
    ``nn.Sequential`` into that convolution (in place); returns how many were folded.

    Inference only: the result computes the same function (to float rounding) with one pass
    less over each feature map; on the CsiNet-class decoder it cuts CPU time per report by
    more than half (docs/performance.md).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    n = 0
    for seq in module.modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        kids = list(seq._modules.items())
        for (name_c, conv), (name_b, bn) in zip(kids, kids[1:], strict=False):
            if (
                isinstance(conv, torch.nn.Conv2d)
                and isinstance(bn, torch.nn.BatchNorm2d)
                and not bn.training
                and bn.track_running_stats
            ):
                seq._modules[name_c] = fuse_conv_bn_eval(conv, bn)
                seq._modules[name_b] = torch.nn.Identity()
                n += 1
    return n


def quantize_dynamic(decoder: object) -> int:
    """Swap a :class:`TorchBsDecoder`'s module for its dynamically quantized twin (int8 weights
    of the Linear layers, activations quantized per batch; torch's dynamic quantization, CPU
    only). Returns how many Linear layers were quantized: 0 (and nothing changed) for
    conv-only decoders, non-torch decoders, or a decoder on a GPU."""
    if not isinstance(decoder, TorchBsDecoder) or str(decoder.device) != "cpu":
        return 0
    n = sum(1 for m in decoder.decoder.modules() if isinstance(m, torch.nn.Linear))
    if n:
        import warnings

        with warnings.catch_warnings():  # torch.ao deprecation notices; the API still works
            warnings.simplefilter("ignore")
            decoder.decoder = torch.ao.quantization.quantize_dynamic(
                decoder.decoder, {torch.nn.Linear}, dtype=torch.qint8
            )
        decoder.graph = None  # a frozen graph of the fp32 module would be stale
    return n


class _Forward(torch.nn.Module):
    """``decoder(z, snr)`` as a module of tensors only, so that it can be traced."""

    def __init__(self, decoder: torch.nn.Module, with_snr: bool) -> None:
        super().__init__()
        self.decoder = decoder
        self.with_snr = with_snr

    def forward(self, z: torch.Tensor, snr: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, snr if self.with_snr else None)


def freeze_decoder(decoder: object, tol: float = 1e-4) -> bool:
    """Replace a CPU :class:`TorchBsDecoder`'s forward pass by a frozen TorchScript graph
    (weights as constants, operators fused): the same function, with less interpreter work
    per call: ~1.3-1.5x less CPU at batch 1 for the CsiNet-class decoders, 3-15% at batch 256
    (docs/performance.md).

    Checked at load: the graph is traced at batch 2 and must match the eager module at
    batch 1 and 5 within ``tol`` (relative to the output's scale); otherwise, or if tracing
    fails (data-dependent control flow), the eager module stays. Returns whether it froze.
    """
    if type(decoder) is not TorchBsDecoder or str(decoder.device) != "cpu":
        return False  # subclasses take other inputs (side information); GPUs: eager
    import logging
    import warnings

    log = logging.getLogger("csilink.bs")
    fwd = _Forward(decoder.decoder, decoder.snr_adaptive).eval()
    gen = torch.Generator().manual_seed(0)

    def example(b: int) -> tuple[torch.Tensor, ...]:
        z = torch.randn(b, decoder.latent_size, generator=gen)
        return (z, torch.linspace(-5.0, 20.0, b)) if decoder.snr_adaptive else (z,)

    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notices about Python values in the graph
            graph = torch.jit.freeze(torch.jit.trace(fwd, example(2), check_trace=False))
            for b in (1, 5, 1):  # the last one again: the profiling executor specializes on reruns
                args = example(b)
                want, got = fwd(*args), graph(*args)
                err = float((want - got).abs().max()) / max(float(want.abs().max()), 1e-12)
                if got.shape != want.shape or not err <= tol:
                    log.warning("frozen graph differs from the decoder (rel. err %.2g); kept eager", err)
                    return False
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: stay eager
        log.warning("decoder cannot be traced (%s); kept eager", str(exc).splitlines()[0][:200])
        return False
    decoder.graph = graph
    return True


def check_latents(latents: np.ndarray, latent_size: int) -> np.ndarray:
    """Validate a ``[B, latent_size]`` real batch; returns it as float32."""
    z = np.asarray(latents)
    if z.ndim != 2 or z.shape[1] != latent_size:
        raise InvalidInput(f"latents must be [B, {latent_size}], got shape {z.shape}")
    if np.iscomplexobj(z) or not np.issubdtype(z.dtype, np.number):
        raise InvalidInput(f"latents must be real numbers, got dtype {z.dtype}")
    if not np.all(np.isfinite(z)):
        raise InvalidInput("latents contain NaN or Inf")
    return z.astype(np.float32, copy=False)


class TorchBsDecoder:
    """``decode_batch(latents [B, L] float32, side, snr_db [B] | None) -> [B, Nt, T] complex64``.

    Output is unnormalized (divided by the bundle's normalization scale).
    """

    def __init__(
        self,
        decoder: torch.nn.Module,
        latent_size: int,
        scale: float,
        device: str,
        snr_adaptive: bool,
        default_snr_db: float,
        needs: list[str] | None = None,
    ) -> None:
        self.decoder = decoder.to(device).eval()
        self.folded = fold_batchnorm(self.decoder)
        if str(device) == "cpu":
            # NHWC convolutions: ~8% less CPU per report for these narrow decoders (measured)
            self.decoder = self.decoder.to(memory_format=torch.channels_last)
        self.latent_size = latent_size
        self.scale = float(scale)
        self.device = device
        self.snr_adaptive = snr_adaptive
        self.default_snr_db = float(default_snr_db)
        self.needs = list(needs or [])
        #: Frozen TorchScript twin of ``decoder`` (set by :func:`freeze_decoder`); None = eager.
        self.graph: torch.jit.ScriptModule | None = None

    @classmethod
    def from_bundle(cls, family: LearnedFamily, bundle: Bundle, device: str = "auto") -> TorchBsDecoder:
        from safetensors.torch import load_file

        m = bundle.manifest
        if not m.bs.weights:
            raise BundleError(f"bundle {m.model_id}: no BS weights listed")
        cfg: dict[str, Any] = m.bs.config
        try:
            decoder = family.build_decoder(family.full_config(cfg.get("model", cfg)))
        except (TypeError, ValueError) as exc:
            raise BundleError(
                f"bundle {m.model_id}: BS config does not build a {family.name} decoder: {exc}"
            ) from None
        state: dict[str, torch.Tensor] = {}
        for name in m.bs.weights:
            state.update(load_file(str(bundle.file(name))))
        try:
            decoder.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(
                f"bundle {m.model_id}: decoder weights do not match its config: {exc}"
            ) from None
        scale = m.normalization.get("scale")
        if not isinstance(scale, int | float) or not scale > 0:
            raise BundleError(
                f"bundle {m.model_id}: normalization.scale must be a positive number, got {scale!r}"
            )
        return cls(
            decoder,
            m.latent_size,
            scale,
            resolve_device(device),
            family.snr_adaptive,
            family.default_snr_db,
            m.bs.needs,
        )

    def decode_batch(
        self, latents: np.ndarray, side: dict[str, np.ndarray] | None = None, snr_db: np.ndarray | None = None
    ) -> np.ndarray:
        z = check_latents(latents, self.latent_size)
        snr_t = None
        if self.snr_adaptive:
            if snr_db is None:
                snr = np.full(len(z), self.default_snr_db, np.float32)
            else:
                snr = np.array(np.broadcast_to(np.asarray(snr_db, dtype=np.float32).reshape(-1), (len(z),)))
                if not np.all(np.isfinite(snr)):
                    raise InvalidInput("snr_db contains NaN or Inf")
            snr_t = torch.from_numpy(np.ascontiguousarray(snr)).to(self.device)
        zt = torch.from_numpy(np.ascontiguousarray(z)).to(self.device)
        if self.graph is not None:
            with torch.no_grad():
                x = self.graph(zt, snr_t) if snr_t is not None else self.graph(zt)
        else:
            with torch.inference_mode():
                x = self.decoder(zt, snr_t)
        return (real_to_complex(x.float().cpu().numpy()) / np.float32(self.scale)).astype(np.complex64)
