"""``csinet-jscc``: the CsiNet-class encoder emitting ``symbols`` complex symbols (analog JSCC).

The UE sends the latent as unit-average-power complex symbols (``shared.wire.AnalogCodec``);
the decoder is trained over AWGN at a random SNR uniform in ``[snr_min, snr_max]`` dB and is
told the SNR (appended to its FC input and driving ADJSCC-style channel scaling). With
``prefixes`` (Matryoshka training) every listed prefix ``k' <= symbols`` is a working rate
of the same bundle. Torch-free at import; the modules live in ``model.py``.
"""

from __future__ import annotations

from typing import Any

from models.common.learned import LearnedFamily
from models.registry import register_family


@register_family("csinet-jscc")
class CsiNetJsccFamily(LearnedFamily):
    snr_adaptive = True

    def default_config(self) -> dict[str, Any]:
        return {
            "symbols": 32,
            "prefixes": [32],
            "snr_min": -10.0,
            "snr_max": 20.0,
            "width": 16,
            "blocks": 2,
            "nt": 32,
            "taps": 32,
            "compand": 1.0,
            "compand_scope": "all",
            "qat": False,
            # imperfect-CSI training: the encoder sees H + E at this channel-to-noise ratio
            # (dB), the loss is against H; None = perfect CSI
            "train_cnr_db": None,
            # decoder refine blocks without the activation after their residual add
            "refine_out_act": True,
            # start from the linear PCA code (models/common/warmstart.py): for data whose
            # support varies per sample, where training from random weights stalls at 0 dB
            "pca_init": False,
        }

    def latent_size(self, config: dict[str, Any]) -> int:
        return 2 * int(self.full_config(config)["symbols"])

    def wire_spec(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "analog", "symbols": int(self.full_config(config)["symbols"])}

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        c = self.full_config(config)
        ks = sorted({int(k) for k in [*c["prefixes"], c["symbols"]]}, reverse=True)
        return [{"name": f"k{k}", "symbols": k, "wire": {"kind": "analog", "symbols": k}} for k in ks]

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.csinet_jscc.model import JsccAE

        return JsccAE(**self.full_config(config))

    def warm_start(self, model: Any, x: Any) -> dict[str, Any] | None:
        """Before training (fresh runs): the PCA start when the config asks for it."""
        if not getattr(model, "pca_init", False):
            return None
        from models.common.warmstart import pca_warm_start

        return pca_warm_start(model.encoder, model.decoder, x)

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        import torch

        from models.common.nets import nmse_loss

        b = x.shape[0]
        u = torch.rand(b, generator=generator)
        snr = model.snr_min + (model.snr_max - model.snr_min) * u
        idx = torch.randint(len(model.prefixes), (b,), generator=generator)
        k = torch.as_tensor(model.prefixes)[idx]
        x_in = x
        if model.train_cnr_db is not None:
            from models.csinet_jscc.model import estimation_noise

            x_in = estimation_noise(x, model.train_cnr_db, generator)
        x_hat = model(x_in, snr, k, generator)
        return nmse_loss(x, x_hat), x_hat
