"""``csinet``: CsiNet-class conv + FC autoencoder on the 2x32x32 angular-delay CSI.

tanh latent of ``latent`` reals, B-bit uniform quantization (straight-through in training),
payload ``latent * bits`` bits. Torch-free at import; the modules live in ``model.py``.
"""

from __future__ import annotations

from typing import Any

from models.common.learned import LearnedFamily
from models.registry import register_family


@register_family("csinet")
class CsiNetFamily(LearnedFamily):
    def default_config(self) -> dict[str, Any]:
        return {
            "latent": 32,
            "bits": 4,
            "quantizer": "uniform",
            "mu": 50.0,
            "width": 16,
            "blocks": 2,
            "nt": 32,
            "taps": 32,
            "compand": 1.0,
            "compand_scope": "all",
            "qat": False,
            # Size knobs: the encoder's conv width (None = width; 2 = the original CsiNet's
            # 2-channel encoder) and the decoder's refine kernels (CsiNet+ 7/5/3; the original
            # CsiNet 3/3/3, ~2.6x fewer multiply-adds; docs/performance.md).
            "enc_width": None,
            "refine_kernels": [7, 5, 3],
        }

    def latent_size(self, config: dict[str, Any]) -> int:
        return int(self.full_config(config)["latent"])

    def wire_spec(self, config: dict[str, Any]) -> dict[str, Any]:
        c = self.full_config(config)
        if c["quantizer"] == "mulaw":
            return {"kind": "mulaw", "bits": int(c["bits"]), "mu": float(c["mu"])}
        return {"kind": "uniform", "bits": int(c["bits"]), "lo": -1.0, "hi": 1.0}

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        c = self.full_config(config)
        bits = int(c["latent"]) * int(c["bits"])
        return [{"name": f"b{bits}", "bits": bits}]

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.csinet.model import CsiNetAE

        return CsiNetAE(**self.full_config(config))

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        from models.common.nets import nmse_loss

        x_hat = model(x)
        return nmse_loss(x, x_hat), x_hat
