"""``rd-jscc``: analog JSCC autoencoder + residual diffusion refinement at the BS (RD-JSCC).

The UE half is the ``csinet-jscc`` encoder (SNR-adaptive, Matryoshka variable rate: every
prefix of up to ``symbols`` complex symbols is a working rate); the BS decodes with the
autoencoder's decoder, then refines with a few deterministic DDIM steps of a conditional
x0-predicting U-Net that starts from the residual-initialized state
(``models.diffusion.sampler``). Training is two-stage (the paper's Alg. 1 and 2): the
autoencoder is a ``csinet-jscc`` run; an ``rd-jscc`` run loads it (``train.init_from``),
freezes it and trains the denoiser alone.

Extra BS parts: ``denoiser.safetensors`` and ``bs.refinement`` (``{"name": "rd-ddim",
"steps": 2, "skip_above_snr_db": ...}``), the refiner hook of ``models/rd_jscc/bs_hooks.py``.
Extra rates ``k16-mu{B}``: the k = 16 latent mu-law companded and quantized to B bits per
real, sent as bits on the digital path. Torch-free at import.
"""

from __future__ import annotations

from typing import Any

from models.csinet_jscc import CsiNetJsccFamily
from models.registry import register_family

#: Denoiser and diffusion settings (beside the autoencoder's csinet-jscc keys).
DIFFUSION_DEFAULTS: dict[str, Any] = {
    "T": 20,  # diffusion steps in training
    "start_t": 20,  # N: where sampling starts (residual-initialized state)
    # the cosine schedule over the first 40% of its range: abar_T = 0.65, noise at t = T about
    # as strong as an autoencoder's error (-2..-10 dB), not pure noise (docs/rd_jscc.md)
    "schedule_span": 0.4,
    "base": 24,  # U-Net width of the first level
    "mults": [1, 2, 3, 4],
    "patch": 2,  # first level at half resolution (CPU budget)
    "cond_snr": True,  # uplink SNR and symbol count also condition the U-Net
    "residual": True,  # False: Gaussian diffusion from noise (baseline), same network
    # loss weight clip(abar/(1-abar), min, max); 1/1 = plain x0 NMSE at every t: the paper's
    # abar/(1-abar) clipped at 5 favours the small-t steps that 2-step sampling never visits
    # (measured: docs/rd_jscc.md)
    "loss_w_min": 1.0,
    "loss_w_max": 1.0,
    # sampling starts at sqrt(abar_N) h + sqrt(1 - abar_N) eps with eps drawn (True) or 0 (False:
    # the deterministic residual trajectory; better NMSE here, docs/rd_jscc.md)
    "init_noise": False,
    "val_steps": 2,  # DDIM steps of the validation NMSE in training
    "mulaw_rates": [2, 3, 4, 5, 6],  # B of the k16-mu{B} digital rates
    "mulaw_symbols": 16,
    "mulaw_clip": 3.0,
}


@register_family("rd-jscc")
class RdJsccFamily(CsiNetJsccFamily):
    #: parameters an ``init_from`` autoencoder checkpoint does not hold
    init_fresh = ("stage2.",)

    def default_config(self) -> dict[str, Any]:
        return {**super().default_config(), **DIFFUSION_DEFAULTS}

    def ae_config(self, config: dict[str, Any]) -> dict[str, Any]:
        c = self.full_config(config)
        return {k: c[k] for k in CsiNetJsccFamily.default_config(self)}

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        c = self.full_config(config)
        out = super().rates(config)
        k = int(c["mulaw_symbols"])
        for b in c["mulaw_rates"]:
            wire = {
                "kind": "mulaw-symbols",
                "symbols": k,
                "bits": int(b),
                "mu": 50.0,
                "clip": float(c["mulaw_clip"]),
            }
            out.append({"name": f"k{k}-mu{b}", "bits": 2 * k * int(b), "wire": wire})
        return out

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.rd_jscc.model import RdJscc

        c = self.full_config(config)
        return RdJscc(self.ae_config(c), {k: c[k] for k in DIFFUSION_DEFAULTS})

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        import torch

        from models.common.nets import nmse_loss

        b = x.shape[0]
        snr = model.snr_min + (model.snr_max - model.snr_min) * torch.rand(b, generator=generator)
        k = torch.as_tensor(model.prefixes)[torch.randint(len(model.prefixes), (b,), generator=generator)]
        h = model.coarse(x, snr, k, generator)
        if not model.training:  # validation: the sampler the BS runs
            x_hat = model.refine(h, snr, k, int(model.cfg["val_steps"]), generator)
            return nmse_loss(x, x_hat), x_hat
        return model.diffusion_loss(x, h, snr, k, generator)

    # -- export: the extra BS parts
    def bs_parts(self, model: Any, config: dict[str, Any]) -> dict[str, Any]:
        return {"denoiser.safetensors": model.stage2.state_dict()}

    def bs_refinement(self, config: dict[str, Any]) -> dict[str, Any]:
        c = self.full_config(config)
        return {
            "name": "rd-ddim",
            "weights": "denoiser.safetensors",
            "steps": 2,
            "skip_above_snr_db": None,
            "model": {k: c[k] for k in DIFFUSION_DEFAULTS},
        }
