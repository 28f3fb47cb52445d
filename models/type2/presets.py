"""The shipped operating points (one bundle each, ``bundles/type2-<bits>b/``), ~45 to ~275 bits.

Six entries of TS 38.214 Table 5.2.2.2.5-1 (paramCombination-r16 1..8) and one point beyond
the table (L = 12 beams, p_v = 1/4, beta = 1/2), all with R = 2 PMI subbands per CQI subband.
They are the points on the SGCS-vs-bits front of a sweep over every table entry, subband
size (4, 8 RBs) and R on CDL-C data; the sweep and the reasons are in docs/type2.md.
"""

from __future__ import annotations

from models.type2.config import Type2Config

PRESETS: tuple[Type2Config, ...] = (
    Type2Config(param_combination=2, subband_size=8, r=2),  # L=2: 44 bits
    Type2Config(param_combination=4, subband_size=8, r=2),  # L=4: 71 bits
    Type2Config(param_combination=7, subband_size=8, r=2),  # L=6: 95 bits
    Type2Config(param_combination=8, subband_size=8, r=2),  # L=6, beta=3/4: 118 bits
    Type2Config(param_combination=7, subband_size=4, r=2),  # L=6: 157 bits
    Type2Config(param_combination=8, subband_size=4, r=2),  # L=6, beta=3/4: 201 bits
    Type2Config(param_combination=0, custom=(12, 0.25, 0.5), subband_size=4, r=2),  # beyond the table: 275
)


def bundle_name(cfg: Type2Config) -> str:
    """Folder and model id of a preset's bundle: ``type2-<bits>b``."""
    return f"type2-{cfg.payload_bits}b"
