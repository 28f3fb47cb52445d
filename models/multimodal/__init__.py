"""``multimodal``: variable-rate CSI feedback with sensor-aided reconstruction at the BS (paper
000): a Swin autoencoder in the spatial-frequency domain, a trainable thermometer scalar
quantizer sending any 48..144 bits from one model, and a fusion refiner ``R`` that uses the BS's
camera image or its uplink CSI.

Modules: ``quantizer`` (trainable boundaries, surrogate gradient), ``swin`` (Swin blocks),
``nets`` (encoder, decoder, extractors, refiner, codec, multi-rate loss), ``export`` (bundle:
int8 ONNX encoder, boundaries, decoder and fusion branches), ``bs`` (the BS decoder),
``bs_hooks`` (the ``mm-sensor`` fusion hook that picks the sensor and branch), ``scenario_ext``
(``extensions.fusion`` of scenario files). The UE side is generic: ONNX Runtime + the
``thermometer`` wire kind (``shared.wire``, ``shared.thermometer``). Torch-free at import.

Training is two-stage (``python -m training.multimodal stage1|stage2``), not the generic
trainer; ``scripts/train_multimodal.sh`` runs both stages and exports the bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.registry import Family, register_family

# fusion sensor -> the dataset field it reads; "box": the camera image read by a detector
SENSORS = {"image": "image", "uplink": "y_sf", "box": "image"}
RATE_STEP = 4  # shipped rate names b48, b52, ..., b144 (any B in 48..144 works on the wire)


@register_family("multimodal")
class MultiModalFamily(Family):
    def export(self, run_dir: str | Path, out_dir: str | Path, **opts: Any) -> Any:
        from models.multimodal.export import export_bundle

        return export_bundle(run_dir, out_dir, **opts)

    def load_bs_decoder(self, bundle: Any, device: str = "auto") -> Any:
        from models.multimodal.bs import MultiModalBsDecoder

        return MultiModalBsDecoder.from_bundle(bundle, device)
