"""Pick the FDD channel model for a config: CDL-A..E, TDL-A..E, or the system-level UMi/UMa."""

from __future__ import annotations

from datagen.profiles import CDL_MODELS, GSCM_MODELS, SYSTEM_MODELS, TDL_MODELS, GenConfig
from shared.errors import InvalidInput


def make_model(cfg: GenConfig):
    """An object with ``draw(batch, generator) -> datagen.realization.Realization``."""
    if cfg.model in CDL_MODELS:
        from datagen.realization import FddCdl

        return FddCdl(cfg)
    if cfg.model in TDL_MODELS:
        from datagen.tdl import FddTdl

        return FddTdl(cfg)
    if cfg.model in SYSTEM_MODELS:
        from datagen.system import FddSystem

        return FddSystem(cfg)
    if cfg.model in GSCM_MODELS:
        from datagen.gscm import FddGscm

        return FddGscm(cfg)
    raise InvalidInput(f"model {cfg.model} is not supported by the generator yet "
                       f"(use one of {CDL_MODELS + TDL_MODELS + SYSTEM_MODELS + GSCM_MODELS})")
