"""``cllwcsinet``: CLLWCsiNet, a light fully convolutional encoder robust to codeword noise,
with the paper's baselines (CsiNet, CRNet; convolutional or FC latent) in the same family.

``arch`` picks the network (``cllw`` / ``csinet`` / ``crnet``), ``latent`` the codeword layer
(``conv``: (1, 7) convolutions to ``2 Nt / cr`` channels of 1 x T; ``fc``: one linear layer),
``cr`` the compression ratio (codeword ``2 Nt T / cr`` reals). Training adds white Gaussian
noise to the unit-power codeword at an SNR drawn uniformly in ``[snr_min, snr_max]`` dB per
sample (the decoders are not told the SNR: the subtraction denoiser must cope on its own).

Deployments from one trained model (``rates``):

* ``k{S}``: analog, the codeword as ``S = L / 2`` complex symbols at unit average power over
  the emulator's AWGN / fading path (the paper's noise model);
* ``k{S}-u{B}``: digital, the same normalized symbols clipped and quantized uniformly to ``B``
  bits per real (``2 S B`` bits), sent as a bitstream (``shared.wire.UniformSymbolsCodec``;
  ``digital_quantizer: mulaw`` gives mu-law rates ``k{S}-mu{B}`` instead).

Torch-free at import; the modules live in ``nets.py`` / ``model.py``.
"""

from __future__ import annotations

from typing import Any

from models.common.learned import LearnedFamily
from models.registry import register_family

#: the paper's Table II latent paths (CR 16 narrows 64 -> 16 -> 4: with the paper's 64, 32, 16, 4
#: the model would be larger than at CR 8, while the paper's is 36% smaller); with the default
#: widths (branches 8, denoiser 52) these land on the paper's parameter counts, 70.26k / 66.7k
#: / 42.6k at CR 4 / 8 / 16, within 3% (benchmarks/bench_cllw.py measures them)
CLLW_CHANS = {4: [64, 32, 16], 8: [64, 32, 16, 8], 16: [64, 16, 4]}


@register_family("cllwcsinet")
class CllwCsiNetFamily(LearnedFamily):
    def default_config(self) -> dict[str, Any]:
        return {
            "arch": "cllw",
            "latent": "conv",
            "cr": 8,
            "nt": 32,
            "taps": 32,
            # conv-latent channel path, first 2 Nt, last 2 Nt / cr (None: the arch's default:
            # CLLW_CHANS for cllw, one conv straight to the codeword for csinet/crnet)
            "chans": None,
            "kernel": 7,
            "head_width": 8,  # cllw: width of each multi-resolution branch in the encoder
            # the subtraction denoiser's width (0: none; None: 52 for cllw, none for the baselines)
            "denoise_width": None,
            "refine_width": 8,  # cllw: multi-resolution RefineNet branch width
            "refine_blocks": 2,
            # signed power applied to the encoder input (1: none); 0.5 keeps the weak entries of
            # the sparse CSI inside the int8 encoder's input scale (docs/models.md)
            "compand": 0.5,
            "noise": True,  # codeword noise in training
            "snr_min": -5.0,
            "snr_max": 40.0,
            # digital deployment: B bits per real of the power-normalized symbols, clipped at
            # digital_clip; "uniform" (uniform-symbols wire, rates k{S}-u{B}) or "mulaw"
            # (mulaw-symbols, k{S}-mu{B}): uniform measured better here (docs/cllwcsinet.md)
            "digital_bits": [2, 3, 4, 5, 6, 8],
            "digital_quantizer": "uniform",
            "digital_mu": 50.0,
            "digital_clip": 3.0,
        }

    def full_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        c = super().full_config(config)
        if c["arch"] not in ("cllw", "csinet", "crnet"):
            from shared.errors import InvalidInput

            raise InvalidInput(f"cllwcsinet: arch must be cllw, csinet or crnet, got {c['arch']!r}")
        if c["chans"] is None and c["arch"] == "cllw" and c["latent"] == "conv":
            c["chans"] = CLLW_CHANS.get(int(c["cr"]))
        if c["digital_quantizer"] not in ("uniform", "mulaw"):
            from shared.errors import InvalidInput

            raise InvalidInput(
                f"cllwcsinet: digital_quantizer must be uniform or mulaw, got {c['digital_quantizer']!r}"
            )
        if c["denoise_width"] is None:
            c["denoise_width"] = 52 if c["arch"] == "cllw" else 0
        return c

    def latent_size(self, config: dict[str, Any]) -> int:
        c = self.full_config(config)
        return 2 * int(c["nt"]) * int(c["taps"]) // int(c["cr"])

    def symbols(self, config: dict[str, Any]) -> int:
        return self.latent_size(config) // 2

    def wire_spec(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "analog", "symbols": self.symbols(config)}

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        c = self.full_config(config)
        s = self.symbols(c)
        out = [{"name": f"k{s}", "symbols": s, "wire": {"kind": "analog", "symbols": s}}]
        mulaw = c["digital_quantizer"] == "mulaw"
        for b in c["digital_bits"]:
            wire: dict[str, Any] = {
                "kind": "mulaw-symbols" if mulaw else "uniform-symbols",
                "symbols": s,
                "bits": int(b),
                "clip": float(c["digital_clip"]),
            }
            if mulaw:
                wire["mu"] = float(c["digital_mu"])
            out.append({"name": f"k{s}-{'mu' if mulaw else 'u'}{b}", "bits": 2 * s * int(b), "wire": wire})
        return out

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.cllwcsinet.model import CllwAE

        return CllwAE(self.full_config(config))

    def build_decoder(self, config: dict[str, Any]) -> Any:
        from models.cllwcsinet.model import build_decoder

        return build_decoder(self.full_config(config))

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        import torch

        from models.common.nets import nmse_loss

        snr = None
        if model.noise:
            u = torch.rand(x.shape[0], generator=generator)
            snr = model.snr_min + (model.snr_max - model.snr_min) * u
        x_hat = model(x, snr, generator)
        return nmse_loss(x, x_hat), x_hat
