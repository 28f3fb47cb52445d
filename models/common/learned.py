"""Base of the learned (trainable) families. Torch-free at import.

A learned family gives a model config and a torch module with ``.encoder`` (ONNX-exported,
ends at the continuous latent) and ``.decoder`` (safetensors on the BS); this base supplies
export (``training.export``) and the BS loader (``models.common.bs_torch``) for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.registry import BsDecoder, Family

if TYPE_CHECKING:  # pragma: no cover
    from shared.bundle import Bundle


class LearnedFamily(Family):
    """What a learned family adds to :class:`Family`:

    * ``default_config()``: model config defaults.
    * ``latent_size(config) -> int``: reals at the encoder output.
    * ``wire_spec(config) -> dict``: the UE wire spec (``shared.wire.from_spec``).
    * ``rates(config) -> list[dict]``: operating points for the manifest.
    * ``build_model(config)``: module with ``encoder(x) -> z`` and ``decoder(z, snr_db) -> x_hat``.
    * ``loss(model, x, generator)``: training loss with the wire twin inside.
    * ``snr_adaptive``: whether the decoder takes the SNR (analog families).
    """

    trainable = True
    snr_adaptive = False
    #: SNR the BS assumes when an analog report arrives without one (top of the training range).
    default_snr_db: float = 20.0

    def latent_size(self, config: dict[str, Any]) -> int:
        raise NotImplementedError

    def wire_spec(self, config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def rates(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def full_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``config``; unknown keys are refused."""
        from shared.errors import InvalidInput

        base = self.default_config()
        unknown = set(config or {}) - set(base)
        if unknown:
            raise InvalidInput(
                f"family {self.name!r}: unknown model config key(s) {sorted(unknown)}; known: {sorted(base)}"
            )
        return {**base, **(config or {})}

    def bs_parts(self, model: Any, config: dict[str, Any]) -> dict[str, Any]:
        """Further BS weight files beyond the decoder, ``{file name: state_dict}`` (export)."""
        return {}

    def bs_refinement(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The manifest's ``bs.refinement`` (the BS refiner hook and its options), or None."""
        return None

    # -- families that learn from more than x (side information, a future target)
    def fields(self, config: dict[str, Any]) -> tuple[str, ...]:
        """Dataset fields a training batch holds, stacked on the channel axis (x first)."""
        return ("x_ad",)

    def target(self, model: Any, batch: Any) -> Any:
        """What the loss compares against in a stacked batch (default: x, the first field)."""
        return batch[:, :2]

    def target_field(self, config: dict[str, Any]) -> str:
        """The manifest's ``target.field``: ``"x"`` (the CSI now) or ``"z"`` (the future CSI)."""
        return "x"

    def bs_needs(self, config: dict[str, Any]) -> list[str]:
        """Dataset fields the BS decoder takes as side information (e.g. ``["y_ad"]``)."""
        return []

    def ue_files(self, model: Any, config: dict[str, Any]) -> dict[str, Any]:
        """Further UE files beyond the encoder, ``{file name (.npy): array}`` (e.g. a codebook)."""
        return {}

    def decode_check(self, model: Any, latents: Any, batch: Any) -> Any:
        """The decoder on wire-decoded latents for export's int8 check (``batch``: the stacked
        fields, for side information)."""
        import torch

        snr = torch.full((len(latents),), self.default_snr_db) if self.snr_adaptive else None
        return model.decoder(latents, snr)

    def build_decoder(self, config: dict[str, Any]) -> Any:
        """The decoder module alone (the BS does not build the encoder)."""
        return self.build_model(config).decoder

    def export(self, run_dir: str | Path, out_dir: str | Path, **opts: Any) -> Bundle:
        from training.export import export_run

        return export_run(run_dir, out_dir, **opts)

    def load_bs_decoder(self, bundle: Bundle, device: str = "auto") -> BsDecoder:
        from models.common.bs_torch import TorchBsDecoder

        return TorchBsDecoder.from_bundle(self, bundle, device)
