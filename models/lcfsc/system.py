"""The whole image link in one differentiable graph, for training and in-process evaluation:
UE pilots + LS + NPN -> quantized feedback -> transmitter (masking with the fed-back H,
mask ratio from the R-CVAE; optionally SVD precoding with precoded pilots) -> MIMO block
fading + AWGN -> MMSE with the UE's estimate (of H W when precoded) -> decoder. The services
run the same pieces split over three processes."""

from __future__ import annotations

import torch
from torch import nn

from models.lcfsc import mimo_torch as mt
from models.lcfsc.mask import RCVAE, STABLE_RATIO
from models.lcfsc.nets import Decoder, Encoder, LcfscConfig, token_streams
from models.lcfsc.npn import NPN


class LcfscSystem(nn.Module):
    def __init__(self, cfg: LcfscConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.npn = NPN()
        self.rcvae = RCVAE(2 * cfg.n_symbols) if (cfg.csi_masking and cfg.learnable_ratio) else None

    def stream_csi(self, h_tx: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(precoder W or None, the streams' channel as the transmitter sees it)``."""
        if h_tx is None or self.cfg.precoding == "none":
            return None, h_tx
        w = mt.svd_precoder(h_tx)
        return w, h_tx @ w

    def mask_ratio(
        self, img: torch.Tensor, snr_db: torch.Tensor, h_net: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(m* [B] or None, L_c)``: the R-CVAE's ratio from the proxy codeword (the same
        transmitter at the stable ratio, no gradient), the stable ratio without R-CVAE."""
        zero = torch.zeros((), device=img.device)
        if not self.cfg.csi_masking:
            return None, zero
        stable = torch.full((img.shape[0],), STABLE_RATIO, device=img.device)
        if self.rcvae is None:
            return stable, zero
        with torch.no_grad():
            y_bar = self.encoder(img, snr_db, h_net, stable)
            y_bar = mt.to_real(mt.normalize_power(mt.to_symbols(y_bar)))
        return self.rcvae(y_bar)

    def transmit(
        self,
        img: torch.Tensor,
        snr_db: torch.Tensor,
        h_tx: torch.Tensor | None,
        ratio: torch.Tensor | None = None,
        ctx: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(streams [B, Nt, n] at unit power, L_c)``; ``h_tx`` gives Nt (or ``nt`` via ctx).
        With precoding the streams are not yet precoded: ``ctx["precoder"]`` holds W."""
        lc = torch.zeros((), device=img.device)
        w, h_net = self.stream_csi(h_tx)
        h_net = h_net if self.cfg.net_csi else None
        if ratio is None:
            ratio, lc = self.mask_ratio(img, snr_db, h_net)
        if ctx is not None:
            ctx["ratio_used"] = ratio
            ctx["precoder"] = w
        z = self.encoder(img, snr_db, h_net, ratio, ctx)
        s = mt.normalize_power(mt.to_symbols(z))
        nt = h_tx.shape[2] if h_tx is not None else int(ctx["nt"])  # type: ignore[index]
        return s.view(s.shape[0], nt, -1), lc

    def receive(self, y: torch.Tensor, h_e: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        x_hat, sinr = mt.mmse(h_e, y, snr_db)
        z = mt.to_real(x_hat.reshape(x_hat.shape[0], -1))
        tok = sinr[:, token_streams(self.cfg, h_e.shape[2]).to(sinr.device)]
        return self.decoder(z, tok, snr_db)

    def forward(
        self,
        img: torch.Tensor,
        h: torch.Tensor,
        snr_db: torch.Tensor,
        csi: str = "feedback",
        bits: int = 6,
        ctx: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """End to end: ``csi`` = ``perfect`` (transmitter sees true H) or ``feedback`` (the UE's
        NPN estimate quantized at ``bits`` per real). The receiver always uses its own estimate."""
        with torch.no_grad():
            h_e = self.npn(mt.ls_with_noise(h, snr_db), snr_db)
        h_tx = h if csi == "perfect" else mt.quantize_h(h_e, bits)
        ctx = {} if ctx is None else ctx
        ctx["nt"] = h.shape[2]
        x, lc = self.transmit(img, snr_db, h_tx, ctx=ctx)
        w = ctx["precoder"]
        if w is None:
            return self.receive(mt.propagate(h, x, snr_db), h_e, snr_db), lc
        # precoded: the data and the DMRS cross the same channel; the UE fits H W from both
        y = mt.propagate(h, mt.with_dmrs(w, x), snr_db)
        nt = h.shape[2]
        g_e = mt.procrustes(h_e, mt.ls_estimate(y[:, :, :nt]))
        return self.receive(y[:, :, nt:], g_e, snr_db), lc
