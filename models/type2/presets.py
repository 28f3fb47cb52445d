"""The shipped operating points (one bundle each, ``bundles/type2-<bits>b/``), from ~50 to ~320
bits. Table 5.2.2.2.5-1 entries where they reach; the last point is beyond the table
(custom L = 6, p_v = 1/2, beta = 3/4). Why these: docs/type2.md.
"""

from __future__ import annotations

from models.type2.config import Type2Config

PRESETS: tuple[Type2Config, ...] = (
    Type2Config(param_combination=1, subband_size=4, r=1),
    Type2Config(param_combination=2, subband_size=4, r=1),
    Type2Config(param_combination=4, subband_size=4, r=1),
    Type2Config(param_combination=5, subband_size=4, r=1),
    Type2Config(param_combination=8, subband_size=4, r=1),
    Type2Config(param_combination=0, custom=(6, 0.5, 0.75), subband_size=4, r=1),
)


def bundle_name(cfg: Type2Config) -> str:
    """Folder and model id of a preset's bundle: ``type2-<bits>b``."""
    return f"type2-{cfg.payload_bits}b"
