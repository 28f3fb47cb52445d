"""Scenario section ``extensions.diffusion`` (torch-free): the BS's RD-JSCC refinement.

extensions:
  diffusion:
    steps: 2                  # 0 = the autoencoder alone, up to 20
    skip_above_snr_db: null   # flexible decoding: no refinement at or above this uplink SNR
    skip_below_snr_db: 0      # ... nor below this one
    latency_budget_ms: null   # per batch; steps are cut to fit the measured cost
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from csilink.scenario import register_scenario_extension


class DiffusionSection(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    steps: int = Field(2, ge=0, le=20)
    skip_above_snr_db: float | None = None
    skip_below_snr_db: float | None = None
    latency_budget_ms: float | None = Field(None, gt=0)
    seed: int = 0

    def node_settings(self, ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
        spec = {"name": "rd-ddim", **self.model_dump()}
        return {"bs": {"hooks": {ctx["bs_model_id"]: {"refiner": spec}}}}


register_scenario_extension("diffusion", DiffusionSection)
