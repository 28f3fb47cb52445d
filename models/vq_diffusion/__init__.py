"""``vq-diffusion``: a VQ bitstream decoded by a conditional diffusion model that also sees the
BS's own uplink CSI, predicting the DL CSI at the target instant (the 003 method).

The UE's int8 ONNX encoder ends at 64 continuous vectors of dimension ``dim``; the wire
(``shared.wire.VQCodec``, codebook shipped as ``codebook.npy``) sends each one's nearest
codeword index, ``64 log2(codebook_size)`` bits (64 / 128 / 192 bits for 2 / 4 / 8 entries).
The BS looks the codewords up, lifts them to a 32 x 32 feature map, concatenates its uplink CSI
``y`` (``side_info``) and runs ``steps`` deterministic DDIM steps of an x0-predicting U-Net from
zeros (cosine schedule, ``T`` steps). ``task``: ``predict`` (target ``z``, the DL CSI 5 ms
ahead) or ``reconstruct`` (target ``x``, the CSI now). Torch-free at import.

The paper's comparison lives here too, behind the same task / side-information interface:
``si-baseline`` (CsiNet / CRNet, FC latent, 6-bit uniform tanh quantization, uplink CSI
concatenated in the decoder) and ``si-reference`` (unquantized predictors from x and / or y:
bounds, not codecs; ``baselines.py``).
"""

from __future__ import annotations

import math
from typing import Any

from models.common.learned import LearnedFamily
from models.registry import register_family


class _SideInfoTask(LearnedFamily):
    """What the three families share: ``task`` (predict z / reconstruct x), ``side_info`` (the
    decoder takes the BS's uplink CSI y), the stacked training fields and the BS decoder."""

    def _check_task(self, c: dict[str, Any]) -> None:
        from shared.errors import InvalidInput

        if c["task"] not in ("predict", "reconstruct"):
            raise InvalidInput(f"{self.name}: task must be predict or reconstruct, got {c['task']!r}")

    def fields(self, config: dict[str, Any]) -> tuple[str, ...]:
        c = self.full_config(config)
        if c["task"] == "reconstruct":
            return ("x_ad", "y_ad") if c["side_info"] else ("x_ad",)
        return ("x_ad", "y_ad", "z_ad")

    def target_field(self, config: dict[str, Any]) -> str:
        return "z" if self.full_config(config)["task"] == "predict" else "x"

    def bs_needs(self, config: dict[str, Any]) -> list[str]:
        return ["y_ad"] if self.full_config(config)["side_info"] else []

    def _split(self, model: Any, batch: Any) -> tuple[Any, Any, Any]:
        """A stacked batch -> (x, side y or None, target)."""
        c = model.cfg
        x = batch[:, 0:2]
        y = batch[:, 2:4] if batch.shape[1] >= 4 else None
        target = batch[:, 4:6] if c["task"] == "predict" else x
        return x, (y if c["side_info"] else None), target

    def target(self, model: Any, batch: Any) -> Any:
        return self._split(model, batch)[2]

    def decode_check(self, model: Any, latents: Any, batch: Any) -> Any:
        _, y, _ = self._split(model, batch)
        return model.decoder(latents, y)

    def ue_files(self, model: Any, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def load_bs_decoder(self, bundle: Any, device: str = "auto") -> Any:
        from models.vq_diffusion.bs import SideInfoBsDecoder

        return SideInfoBsDecoder.from_bundle(self, bundle, device)


@register_family("vq-diffusion")
class VqDiffusionFamily(_SideInfoTask):
    def default_config(self) -> dict[str, Any]:
        return {
            "task": "predict",  # predict: target z (DL CSI at +5 ms); reconstruct: target x
            "side_info": True,  # the decoder is conditioned on the BS's uplink CSI y
            "codebook_size": 4,  # Nv: 64 log2(Nv) bits per report
            "dim": 128,  # D: 64 vectors of D reals
            "widths": [32, 64],  # encoder ResNet widths at 16 x 16 and 8 x 8 (the paper: 64, 128)
            "features": 8,  # decoder feature channels at 32 x 32 (the paper: 8)
            "base": 16,  # U-Net (the paper: base 64, ~14M parameters)
            "mults": [1, 2, 3, 4],
            "patch": 2,
            "T": 4,  # cosine schedule: abar = 0.847, 0.493, 0.144, 1.44e-4 (the paper's)
            "steps": 4,  # DDIM steps at the BS
            # loss weight clip(abar/(1-abar), min, max): the paper's SNR weighting by default
            "loss_w_min": 0.0,
            "loss_w_max": 1e9,
            "eta": 4.5e-4,  # weight of the VQ loss (the paper's)
            # what the U-Net is trained on: "noise" (the paper's z_t = sqrt(abar) z + sqrt(1 -
            # abar) eps at a random t) or "sampler" (the states of the BS's own DDIM run from
            # zeros at a random step, which carry no noise: docs/vq_diffusion.md measures both)
            "train_inputs": "noise",
            "compand": 0.5,  # signed square root of the input (int8 encoder, as every family)
            "nt": 32,
            "taps": 32,
        }

    def full_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        from shared.errors import InvalidInput

        c = super().full_config(config)
        self._check_task(c)
        nv = int(c["codebook_size"])
        if nv < 2 or nv & (nv - 1):
            raise InvalidInput(f"vq-diffusion: codebook_size must be a power of two >= 2, got {nv}")
        if c["train_inputs"] not in ("noise", "sampler"):
            raise InvalidInput(
                f"vq-diffusion: train_inputs must be noise or sampler, got {c['train_inputs']!r}"
            )
        if len(c["widths"]) != 2:
            raise InvalidInput(f"vq-diffusion: widths must hold two entries, got {c['widths']}")
        return c

    def bits(self, config: dict[str, Any]) -> int:
        return 64 * int(math.log2(int(self.full_config(config)["codebook_size"])))

    def latent_size(self, config: dict[str, Any]) -> int:
        return 64 * int(self.full_config(config)["dim"])

    def wire_spec(self, config: dict[str, Any]) -> dict[str, Any]:
        c = self.full_config(config)
        return {
            "kind": "vq",
            "codebook": "codebook.npy",
            "size": int(c["codebook_size"]),
            "dim": int(c["dim"]),
        }

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        b = self.bits(config)
        return [{"name": f"b{b}", "bits": b}]

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.vq_diffusion.model import VqDiffusion

        return VqDiffusion(self.full_config(config))

    def build_decoder(self, config: dict[str, Any]) -> Any:
        from models.vq_diffusion.model import VqDecoder

        return VqDecoder(self.full_config(config))

    def warm_start(self, model: Any, x: Any) -> dict[str, Any] | None:
        """k-means (a few Lloyd steps) of the untrained encoder's vectors as the first codebook."""
        import torch

        with torch.no_grad():
            v = model.encoder(x[:2000, 0:2]).reshape(-1, model.codebook.dim)
            g = torch.Generator().manual_seed(0)
            cb = v[torch.randperm(len(v), generator=g)[: len(model.codebook.embed)]].clone()
            for _ in range(10):
                idx = ((v[:, None, :] - cb[None]) ** 2).sum(-1).argmin(1)
                for k in range(len(cb)):
                    if bool((idx == k).any()):
                        cb[k] = v[idx == k].mean(0)
            model.codebook.embed.data.copy_(cb)
        return {"codebook": "k-means of the initial encoder's vectors", "vectors": int(len(v))}

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        from models.common.nets import nmse_loss

        xx, y, target = self._split(model, x)
        if not model.training:  # validation: what the BS runs (DDIM from zeros)
            x_hat = model.reconstruct(xx, y)
            return nmse_loss(target, x_hat), x_hat
        return model.loss(xx, y, target, generator)

    def ue_files(self, model: Any, config: dict[str, Any]) -> dict[str, Any]:
        return {"codebook.npy": model.codebook.embed.detach().cpu().numpy().astype("float32")}



@register_family("si-baseline")
class SiBaselineFamily(_SideInfoTask):
    """CsiNet / CRNet with an FC latent of ``latent`` tanh reals at ``bits`` bits each (the
    wire's ``uniform`` kind over [-1, 1]) and the uplink CSI concatenated in the decoder."""

    def default_config(self) -> dict[str, Any]:
        return {
            "task": "predict",
            "side_info": True,
            "arch": "csinet",  # csinet | crnet
            "latent": 21,  # reals per report: latent * bits bits (21 x 6 = 126)
            "bits": 6,  # the paper's 6-bit uniform quantization of the tanh outputs
            "blocks": 2,  # refinement blocks (CsiNet RefineNet / CRNet CRBlock)
            "compand": 0.5,
            "nt": 32,
            "taps": 32,
        }

    def full_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        from shared.errors import InvalidInput

        c = super().full_config(config)
        self._check_task(c)
        if c["arch"] not in ("csinet", "crnet"):
            raise InvalidInput(f"si-baseline: arch must be csinet or crnet, got {c['arch']!r}")
        return c

    def latent_size(self, config: dict[str, Any]) -> int:
        return int(self.full_config(config)["latent"])

    def wire_spec(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "uniform", "bits": int(self.full_config(config)["bits"]), "lo": -1.0, "hi": 1.0}

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        c = self.full_config(config)
        b = int(c["latent"]) * int(c["bits"])
        return [{"name": f"b{b}", "bits": b}]

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.vq_diffusion.baselines import SiAE

        return SiAE(self.full_config(config))

    def build_decoder(self, config: dict[str, Any]) -> Any:
        return self.build_model(config).decoder

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        from models.common.nets import nmse_loss

        xx, y, target = self._split(model, x)
        x_hat = model.reconstruct(xx, y)
        return nmse_loss(target, x_hat), x_hat


@register_family("si-reference")
class SiReferenceFamily(_SideInfoTask):
    """Unquantized predictors of the target from ``inputs`` (``xy``, ``x`` or ``y``): references
    that bound the codecs (trained like them, never exported: no UE half, no bitstream)."""

    def default_config(self) -> dict[str, Any]:
        return {
            "task": "predict",
            "side_info": True,
            "inputs": "xy",
            "base": 16,  # the codec decoder's U-Net, one pass
            "mults": [1, 2, 3, 4],
            "patch": 2,
            "nt": 32,
            "taps": 32,
        }

    def full_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        from shared.errors import InvalidInput

        c = super().full_config(config)
        self._check_task(c)
        if c["inputs"] not in ("xy", "x", "y"):
            raise InvalidInput(f"si-reference: inputs must be xy, x or y, got {c['inputs']!r}")
        c["side_info"] = "y" in c["inputs"]
        return c

    def fields(self, config: dict[str, Any]) -> tuple[str, ...]:
        return ("x_ad", "y_ad", "z_ad") if self.full_config(config)["task"] == "predict" else ("x_ad", "y_ad")

    def build_model(self, config: dict[str, Any]) -> Any:
        from models.vq_diffusion.baselines import Predictor

        return Predictor(self.full_config(config))

    def inputs(self, model: Any, batch: Any) -> Any:
        import torch

        x, y = batch[:, 0:2], batch[:, 2:4]
        src = model.cfg["inputs"]
        return torch.cat([t for k, t in (("x", x), ("y", y)) if k in src], 1)

    def target(self, model: Any, batch: Any) -> Any:
        return batch[:, 4:6] if model.cfg["task"] == "predict" else batch[:, 0:2]

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        from models.common.nets import nmse_loss

        x_hat = model(self.inputs(model, x))
        return nmse_loss(self.target(model, x), x_hat), x_hat

    def latent_size(self, config: dict[str, Any]) -> int:
        return 0

    def export(self, run_dir: Any, out_dir: Any, **opts: Any) -> Any:
        from shared.errors import InvalidInput

        raise InvalidInput("si-reference models are references with no UE half: they are not exported")
