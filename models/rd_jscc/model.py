"""RD-JSCC modules: the frozen analog autoencoder (coarse estimate) + the residual denoiser."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.common.wire_torch import analog_awgn, power_normalize
from models.csinet_jscc.model import JsccAE
from models.diffusion.sampler import ddim_x0, forward_noise, initial_state, loss_weight
from models.diffusion.schedule import Schedule
from models.diffusion.unet import UNet


def build_denoiser(cfg: dict[str, Any]) -> UNet:
    return UNet(
        base=int(cfg["base"]),
        mults=list(cfg["mults"]),
        extra=2 if cfg["cond_snr"] else 0,
        patch=int(cfg["patch"]),
    )


class Refinement(nn.Module):
    """The BS's second stage alone: ``refine(h, snr_db, k, steps, noise)`` on normalized CSI
    ``[B, 2, Nt, T]``; the U-Net predicts ``x0 - h`` (the correction of the coarse estimate)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        from models.rd_jscc import DIFFUSION_DEFAULTS

        cfg = self.cfg = {**DIFFUSION_DEFAULTS, **cfg}
        self.denoiser = build_denoiser(cfg)
        self.sched = Schedule.cosine(int(cfg["T"]), span=float(cfg["schedule_span"]))
        self.start = int(cfg["start_t"])

    def extra(self, snr_db: torch.Tensor, k: torch.Tensor) -> torch.Tensor | None:
        if not self.cfg["cond_snr"]:
            return None
        return torch.stack([snr_db.float() / 20.0, k.float() / 32.0], 1)

    def predict(
        self, z: torch.Tensor, h: torch.Tensor, t: torch.Tensor, extra: torch.Tensor | None
    ) -> torch.Tensor:
        return h + self.denoiser(z, h, t, extra)

    def refine(
        self, h: torch.Tensor, snr_db: torch.Tensor, k: torch.Tensor, steps: int, noise: torch.Tensor
    ) -> torch.Tensor:
        ex = self.extra(snr_db.to(h.device), k.to(h.device))
        z = initial_state(self.sched, self.start, noise, h if self.cfg["residual"] else None)
        times = self.sched.steps(int(steps), self.start)
        return ddim_x0(lambda zt, t: self.predict(zt, h, t, ex), z, self.sched, times)


class RdJscc(nn.Module):
    """``encoder``/``decoder``: the csinet-jscc autoencoder (frozen); ``denoiser``: the U-Net."""

    def __init__(self, ae: dict[str, Any], diffusion: dict[str, Any]) -> None:
        super().__init__()
        jae = JsccAE(**ae)
        self.encoder, self.decoder = jae.encoder, jae.decoder
        self.symbols, self.prefixes = jae.symbols, jae.prefixes
        self.snr_min, self.snr_max = jae.snr_min, jae.snr_max
        for p in [*self.encoder.parameters(), *self.decoder.parameters()]:
            p.requires_grad_(False)
        self.stage2 = Refinement(diffusion)  # the BS's refinement part (denoiser.safetensors)
        self.cfg = self.stage2.cfg

    def train(self, mode: bool = True) -> RdJscc:
        super().train(mode)
        self.encoder.eval()  # frozen: batch norm keeps its trained statistics
        self.decoder.eval()
        return self

    @torch.no_grad()
    def coarse(
        self, x: torch.Tensor, snr_db: torch.Tensor, k: torch.Tensor, generator: Any = None
    ) -> torch.Tensor:
        """Stage 1: the autoencoder's estimate through the AWGN twin of the analog uplink."""
        s = power_normalize(self.encoder(x), k)
        y = analog_awgn(s, snr_db, k, generator)
        return self.decoder(y, torch.as_tensor(snr_db, dtype=x.dtype).expand(x.shape[0]))

    def diffusion_loss(
        self, x: torch.Tensor, h: torch.Tensor, snr_db: torch.Tensor, k: torch.Tensor, generator: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        st = self.stage2
        b = x.shape[0]
        t = torch.randint(1, st.start + 1, (b,), generator=generator)
        eps = torch.randn(x.shape, generator=generator)
        z = forward_noise(st.sched, x, t, eps, h if self.cfg["residual"] else None, st.start)
        x0 = st.predict(z, h, t, st.extra(snr_db, k))
        w = loss_weight(st.sched, t, float(self.cfg["loss_w_min"]), float(self.cfg["loss_w_max"]))
        err = ((x - x0) ** 2).flatten(1).sum(1) / (x**2).flatten(1).sum(1).clamp_min(1e-12)
        return (w * err).mean() / w.mean(), x0

    @torch.no_grad()
    def refine(
        self, h: torch.Tensor, snr_db: torch.Tensor, k: torch.Tensor, steps: int, generator: Any = None
    ) -> torch.Tensor:
        if self.cfg.get("init_noise", False):
            noise = torch.randn(h.shape, generator=generator)
        else:
            noise = torch.zeros_like(h)
        return self.stage2.refine(h, snr_db, k, steps, noise)
