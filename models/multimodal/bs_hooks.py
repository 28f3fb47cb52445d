"""The ``mm-sensor`` fusion hook: picks the sensor (camera image or uplink CSI) and the branch
(Ne = 4 or 32) of a ``multimodal`` bundle, and names the dataset field the BS must fetch.

Fusion happens inside the decoder (``R`` sits at the bottleneck or after its first
projection), not on the latents: the hook leaves the latents as they are and tells the
decoder which branch to run when a batch carries the sensor. Torch-free.

Settings (BS ``hooks: {model_id: {fusion: {...}}}`` or ``extensions.fusion`` of a scenario)::

    {"name": "mm-sensor", "sensor": "image" | "uplink" | "box", "ne": 4 | 32}

``box`` reads the camera image too, through a detector (``shared.camera``): the car's box.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bs_service.hooks import Fusion, register_fusion
from shared.errors import InvalidInput


@register_fusion("mm-sensor")
class SensorFusion(Fusion):
    def __init__(
        self,
        bundle: Any = None,
        decoder: Any = None,
        sensor: str = "image",
        ne: int | None = None,
        **options: Any,
    ) -> None:
        from models.multimodal import SENSORS

        super().__init__(bundle, decoder, **options)
        if options:
            raise InvalidInput(f"mm-sensor fusion: unknown option(s) {sorted(options)}; known: sensor, ne")
        if sensor not in SENSORS:
            raise InvalidInput(f"mm-sensor fusion: sensor must be one of {sorted(SENSORS)}, got {sensor!r}")
        if ne is not None and int(ne) not in (4, 32):
            raise InvalidInput(f"mm-sensor fusion: ne must be 4 or 32, got {ne!r}")
        select = getattr(decoder, "select", None)
        if select is None:
            raise InvalidInput("mm-sensor fusion needs a multimodal decoder")
        select(sensor, ne)
        self.sensor, self.ne = sensor, ne
        # with the image, whether the camera saw the UE: rows without one decode CSI-only
        self.needs = [SENSORS[sensor], "has_image"] if SENSORS[sensor] == "image" else [SENSORS[sensor]]

    def fuse(self, latents: np.ndarray, side: dict[str, np.ndarray], snr_db: np.ndarray | None) -> np.ndarray:
        return latents
