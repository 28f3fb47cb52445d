"""FDD realizations for the TDL models (TR 38.901 7.7.2) on Sionna's TDL tables and law.

A TDL has taps, not angles: Sionna's ``TDL`` draws each tap as a sum of sinusoids (Doppler
angles ``alpha`` shared by all antennas of a link, phases ``phi`` per antenna pair) and,
without correlation matrices, its antennas are i.i.d. We follow that law exactly and split
it the FDD way, as for CDL (``datagen/realization.py``):

* shared by DL and UL: tap delays and powers, K-factor, the UE speed, the sinusoids'
  Doppler angles (the directions the energy arrives from);
* independent for the UL: the sinusoids' phases and the specular component's phase (or shared
  with ``ul_phases="shared"``); Doppler uses each carrier's wavelength.

There is no array geometry, so ``ul_array`` has no effect and the 32 antennas are i.i.d.
(no angular structure in the AD domain): use CDL profiles for spatially structured worlds.
"""

from __future__ import annotations

import numpy as np
import torch

from datagen.profiles import TDL_MODELS, GenConfig
from datagen.realization import Realization

PI = float(np.pi)
C0 = 299792458.0


class FddTdl:
    """Draws batches of FDD TDL realizations for one :class:`GenConfig` (CPU, float32)."""

    def __init__(self, cfg: GenConfig) -> None:
        if cfg.model not in TDL_MODELS:
            raise ValueError(f"FddTdl handles {TDL_MODELS}, not {cfg.model}")
        from sionna.phy.channel.tr38901 import TDL

        self.cfg = cfg
        # Used for its tables (delays, powers, LoS power/angle, sinusoid grid) only.
        tdl = TDL(model=cfg.model.split("-")[1], delay_spread=cfg.delay_spread, carrier_frequency=cfg.f_dl,
                  num_rx_ant=1, num_tx_ant=cfg.n_antennas, precision="single", device="cpu",
                  spec_version=cfg.spec_version)
        scale = cfg.delay_spread if tdl._scale_delays else 1e-9
        self.tau = (tdl._delays.double() * scale)  # [N], ascending
        self.powers = torch.real(tdl._mean_powers).float()  # [N] (NLoS part of tap 0 if LoS)
        self.has_los = bool(tdl._los)
        self.los_power = float(torch.real(tdl._los_power)) if self.has_los else 0.0
        self.los_aoa = float(tdl._los_angle_of_arrival)
        self.m = int(tdl._num_sinusoids)
        self.alpha_const = 2.0 * PI / self.m * torch.arange(1, self.m + 1, dtype=torch.float32)  # [M]
        self.n_clusters = int(tdl._num_clusters)

    def draw(self, batch: int, g: torch.Generator) -> Realization:
        c, b, n, m, nt = self.cfg, batch, self.n_clusters, self.m, self.cfg.n_antennas
        # Draw order is part of the determinism contract.
        speed = torch.rand(b, generator=g) * (c.max_speed - c.min_speed) + c.min_speed
        theta = torch.rand(b, n, 1, m, generator=g) * (2 * PI / m) - PI / m
        alpha = self.alpha_const + theta  # [B, N, 1, M], shared by antennas and by DL/UL
        ph_dl = torch.rand(b, n, nt, m, generator=g) * 2 * PI - PI
        ph_ul = torch.rand(b, n, nt, m, generator=g) * 2 * PI - PI
        spec = torch.rand(b, 2, generator=g) * 2 * PI - PI  # specular phase, DL / UL
        if c.ul_phases == "shared":
            ph_ul, spec = ph_dl, spec[:, :1].expand(b, 2)
        t = torch.tensor([0.0, float(c.target_delay)])

        def taps(f_c: float, phases: torch.Tensor, phi0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
            wd = (2 * PI * speed * f_c / C0).reshape(b, 1, 1, 1, 1)  # max Doppler, rad/s
            arg = wd * times.reshape(1, -1, 1, 1, 1) * torch.cos(alpha)[:, None] + phases[:, None]
            h = torch.polar(torch.ones(()).expand_as(arg), arg).sum(-1) / np.sqrt(m)  # [B, T, N, Nt]
            h = h * torch.sqrt(self.powers).reshape(1, 1, n, 1)
            if self.has_los:
                a0 = wd[:, :, 0, 0, 0] * times.reshape(1, -1) * np.cos(self.los_aoa) + phi0[:, None]
                h_spec = torch.polar(torch.full_like(a0, np.sqrt(self.los_power)), a0)  # [B, T]
                h = torch.cat([h[:, :, :1] + h_spec[:, :, None, None], h[:, :, 1:]], dim=2)
            return h

        h_dl = taps(c.f_dl, ph_dl, spec[:, 0], t)
        h_ul = taps(c.f_ul, ph_ul, spec[:, 1], t[1:])[:, 0]
        vel = torch.zeros(b, 3)
        vel[:, 0] = speed  # TDL has no direction of travel; the speed is what matters
        return Realization(
            h_dl=h_dl.contiguous(), h_ul=h_ul.contiguous(), tau=self.tau.expand(b, n).contiguous(),
            speed=speed.float(), velocity=vel, los=torch.full((b,), self.has_los),
            rays={"alpha": alpha[:, :, 0], "phases_dl": ph_dl, "phases_ul": ph_ul},
        )
