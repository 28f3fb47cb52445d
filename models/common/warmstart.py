"""PCA warm start of a CsiNet-class autoencoder (encoder FC -> latent -> decoder FC).

On data whose sparse support changes from sample to sample (e.g. UMi NLoS, a new UE position
per sample), training from random weights sat at 0 dB NMSE (the all-zero output) for
minutes, although the best linear code (PCA) is already at -2.7 dB with 64 reals. Starting at
that linear code: the encoder FC projects on the leading principal directions (in order, so
Matryoshka prefixes carry the strongest ones), the decoder FC maps back, and the nonlinear
parts start as the identity: the encoder's convolution branch outputs zero (its last batch
norm scale 0) and every refine block is the identity (last batch norm scale 0, no activation
after the residual add: ``refine_out_act: false``), the output convolution 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


@torch.no_grad()
def pca_warm_start(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, n: int = 20000) -> dict[str, Any]:
    """``x``: normalized training CSI ``[N, 2, Nt, T]`` (the encoder's input)."""
    from models.common.nets import RefineBlock

    xs = x[:n].flatten(1).double()
    cov = xs.T @ xs / len(xs)
    w, v = torch.linalg.eigh(cov)
    order = torch.argsort(w, descending=True)
    latent = encoder.fc.out_features
    p = v[:, order[:latent]].float()  # [D, latent]
    kept = float(w[order[:latent]].sum() / w.sum())
    z = xs.float() @ p
    rms = float(z.pow(2).mean().sqrt())
    encoder.fc.weight.copy_(p.T)
    encoder.fc.bias.zero_()
    last_bn = [m for m in encoder.features.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    last_bn.weight.zero_()
    last_bn.bias.zero_()
    # the wire normalizes each report's symbols to unit average power: undo the typical scale
    dec_fc = decoder.fc
    dec_fc.weight.zero_()
    dec_fc.weight[:, :latent].copy_(p * rms)
    dec_fc.bias.zero_()
    for blk in decoder.blocks:
        if isinstance(blk, RefineBlock):
            bn = [m for m in blk.c3.modules() if isinstance(m, nn.BatchNorm2d)][-1]
            bn.weight.zero_()
            bn.bias.zero_()
    decoder.out.weight.zero_()
    decoder.out.bias.zero_()
    return {"pca_energy_kept": kept, "latent_rms": rms, "samples": int(len(xs))}
