"""Model complexity: parameters and multiply-accumulates (MACs) of a learned family's encoder
and decoder, counted by torch's own ``torch.utils.flop_counter.FlopCounterMode`` on one sample.

What is counted: convolutions and matrix products (FlopCounterMode counts ``2 x MACs`` for
them; we report MACs, which is what the CSI-feedback literature calls "FLOPs", e.g. CsiNet's
5.41M at CR 4). Batch norm, activations and element-wise ops are not counted (they are a few
per cent here, and the papers leave them out too). Counts depend on the config only, not on
the weights, so a bundle's complexity comes from its manifest's model config. A diffusion decoder
counts every sampling step it runs by default.
"""

from __future__ import annotations

from typing import Any

from models.common.learned import LearnedFamily
from models.registry import get_family
from shared.errors import InvalidInput


def _macs(fn: Any, *args: Any) -> tuple[int, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        out = fn(*args)
    return int(fc.get_total_flops()) // 2, out


def model_complexity(family: str, model_config: dict[str, Any]) -> dict[str, int]:
    """``{"encoder_params", "decoder_params", "params", "encoder_macs", "decoder_macs", "macs"}``
    of ``family`` built from ``model_config`` (one sample, inference mode)."""
    import torch

    fam = get_family(family)
    if not isinstance(fam, LearnedFamily):
        raise InvalidInput(f"family {family!r} has no torch model to count")
    cfg = fam.full_config(model_config)
    model = fam.build_model(cfg).eval()
    nt, taps = int(cfg.get("nt", 32)), int(cfg.get("taps", 32))
    batch = torch.zeros(1, 2 * len(fam.fields(cfg)), nt, taps)  # side information fields too
    with torch.no_grad():
        enc_macs, z = _macs(model.encoder, batch[:, :2])
        dec_macs, _ = _macs(lambda lat: fam.decode_check(model, lat, batch), z)

    def n(m: Any) -> int:
        return sum(p.numel() for p in m.parameters())

    enc_p, dec_p = n(model.encoder), n(model.decoder)
    return {
        "encoder_params": enc_p,
        "decoder_params": dec_p,
        "params": enc_p + dec_p,
        "encoder_macs": enc_macs,
        "decoder_macs": dec_macs,
        "macs": enc_macs + dec_macs,
    }


def bundle_complexity(bundle: Any) -> dict[str, Any]:
    """:func:`model_complexity` of a bundle plus its file sizes (bytes)."""
    m = bundle.manifest
    cfg = m.bs.config.get("model", m.bs.config)
    out: dict[str, Any] = {"model_id": m.model_id, "family": m.family, **model_complexity(m.family, cfg)}
    for key, name in (("encoder_int8_bytes", m.ue.encoder), ("encoder_fp32_bytes", m.ue.encoder_fp32)):
        if name:
            out[key] = (bundle.path / name).stat().st_size
    out["decoder_bytes"] = sum((bundle.path / w).stat().st_size for w in m.bs.weights)
    return out
