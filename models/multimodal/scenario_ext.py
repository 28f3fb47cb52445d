"""Scenario section ``extensions.fusion`` (torch-free): what the BS fuses for a ``multimodal``
bundle, and how noisy its uplink CSI is.

extensions:
  fusion:
    sensor: image        # none (the report alone) | image (the BS camera) | uplink (SRS CSI)
                         # | box (the camera read by a detector: the UE car's box)
    ne: 32               # branch: 4 (fused at the bottleneck) or 32 (after the first projection)
    srs_snr_db: null     # the BS's uplink CSI as estimated from SRS at this SNR (null: perfect)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from csilink.scenario import register_scenario_extension


class FusionSection(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    sensor: Literal["none", "image", "uplink", "box"] = "image"
    ne: Literal[4, 32] = 32
    srs_snr_db: float | None = Field(None, ge=-50, le=100)

    def node_settings(self, ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
        spec = (
            {"name": "none"}
            if self.sensor == "none"
            else {"name": "mm-sensor", "sensor": self.sensor, "ne": self.ne}
        )
        return {"bs": {"hooks": {ctx["bs_model_id"]: {"fusion": spec}}, "srs_snr_db": self.srs_snr_db}}


register_scenario_extension("fusion", FusionSection)
