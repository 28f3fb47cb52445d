"""Pick the FDD channel model for a config (CDL now; TDL/UMi/UMa where supported)."""

from __future__ import annotations

from datagen.profiles import CDL_MODELS, GenConfig
from shared.errors import InvalidInput


def make_model(cfg: GenConfig):
    """An object with ``draw(batch, generator) -> datagen.realization.Realization``."""
    if cfg.model in CDL_MODELS:
        from datagen.realization import FddCdl

        return FddCdl(cfg)
    raise InvalidInput(f"model {cfg.model} is not supported by the generator yet (use one of {CDL_MODELS})")
