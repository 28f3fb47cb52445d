"""``lcfsc``: the semantic image link (paper 004). The BS transmits images as analog JSCC
symbols over Nt x Nr MIMO block fading; its Swin encoder folds the CSI fed back by the UE into
the attention of its bottleneck (NI-CFMA: CSI fusion masking, the mask ratio chosen per image
by an R-CVAE); the UE estimates H from pilots (LS + the NPN denoiser), feeds it back quantized
and decodes with the mirrored Swin decoder in ONNX Runtime.

Modules: ``mimo_torch`` (the torch twin of :mod:`shared.mimo`), ``mask`` (NI-CFMA, mask
generator, R-CVAE), ``nets`` (encoder, decoder, channel ModNet), ``npn`` (channel denoiser),
``system`` (the link end to end for training), ``msssim`` (loss), ``export`` (bundle: BS
transmitter weights, UE decoder and NPN in ONNX), ``bs`` (the BS transmitter). The UE half is
:mod:`shared.image_rx` (numpy + ONNX Runtime). Training: ``python -m training.lcfsc``.
Torch-free at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.registry import Family, register_family


@register_family("lcfsc")
class LcfscFamily(Family):
    def export(self, run_dir: str | Path, out_dir: str | Path, **opts: Any) -> Any:
        from models.lcfsc.export import export_bundle

        return export_bundle(run_dir, out_dir, **opts)

    def load_bs_decoder(self, bundle: Any, device: str = "auto") -> Any:
        # An lcfsc bundle has no CSI decoder: its BS half transmits images.
        raise self._unsupported(
            "CSI report decoding (an lcfsc bundle is an image-link transmitter; the BS loads it as one)"
        )
