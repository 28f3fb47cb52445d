"""A COST 2100-style geometry-based stochastic channel (GSCM): one site, UEs anywhere in it.

RD-JSCC's large gains were measured on COST2100 *outdoor* data (CsiNet's "semi-urban, 300 MHz"
set), which no 3GPP profile here resembles: TR 38.901 UMi draws a fresh cluster topology for
every UE, CDL-C one topology for all. COST 2100 sits in between: a **fixed site** of clusters,
each seen only from its **visibility region** (VR) on the ground, so every UE position sees a
few clusters from a fixed set, at delays set by its own distances. The CSI then lives near a
low-dimensional set parameterized by the UE position, and learned priors have something to
learn. This module builds that structure (not the COST 2100 reference code, whose tables are
not reproduced here; the values below are stated and set per profile):

* **Site** (drawn once from ``cfg.seed``, shared by every split): ``n_far`` far clusters, each
  a twin cluster (COST 2100's single-interaction model with a link delay): a BS-side departure
  angle ``phi_c`` (uniform over the 120-degree sector) with ``m_far`` MPC offsets (Laplacian,
  ``aspread_deg``), a link delay ``tau_link`` (uniform 0..``max_link_us``), a shadowed power
  (log-normal ``shadow_db``, decaying ``decay_db_per_us`` with the link delay), and an MS-side
  cluster of MPC scatterers around its VR centre (Gaussian, ``ms_spread_m``). VR centres are
  uniform over the UE area; radius ``vr_radius_m`` with a ``vr_transition_m`` ramp (COST 2100's
  soft VR edge). Each MPC has a fixed complex gain (Rayleigh magnitude, uniform phase).
  ``n_los_vr`` LoS VRs give a LoS ray with power ``los_k_db`` over the scattered power.
* **Per sample** (the block's generator): the UE position (uniform over the
  ``area_m`` x ``area_m`` square centred ``area_center_m`` in front of the BS), a local cluster
  of ``m_local`` scatterers around the UE (uniform ring ``local_r_m``; COST 2100's local
  cluster moves with the MS), its direction of travel; speed from ``min_speed..max_speed``.
* **Paths**: MPC ``m`` of far cluster ``c`` leaves the BS at ``phi_c + d_m`` and has excess delay
  ``tau_link_c + (|q_m| + |ue - q_m| - |ue|) / c0``; its carrier phase follows the full path
  length (spatially consistent: a UE moving 1 m turns it by up to 2 pi at 300 MHz). Local
  scatterers and the LoS ray leave the BS towards the UE. Delays are relative to the LoS
  distance (the UE's timing). A sample has unit total path power (as every csilink profile).
* **FDD**: the UL shares the geometry, delays and magnitudes, seen at ``f_ul`` through the same
  physical array; MPC interaction phases are independent (``ul_phases="independent"``) or
  shared (diagnostic), like the 3GPP profiles.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from datagen.profiles import GenConfig
from datagen.realization import Realization

C0 = 299792458.0
DEFAULTS: dict[str, Any] = {
    "n_far": 24,  # far (twin) clusters in the site
    "m_far": 8,  # MPCs per far cluster
    "m_local": 8,  # MPCs of the local cluster around the UE
    "aspread_deg": 2.0,  # BS-side angular spread of a far cluster (Laplacian scale)
    "ms_spread_m": 8.0,  # MS-side scatterer spread (Gaussian sigma, metres)
    "max_link_us": 0.6,  # far-cluster link delays, uniform 0..max
    "shadow_db": 6.0,  # cluster shadowing (log-normal sigma)
    "decay_db_per_us": 15.0,  # cluster power loss per microsecond of link delay
    "vr_radius_m": 90.0,
    "vr_transition_m": 20.0,
    "local_r_m": [5.0, 25.0],
    "local_power_db": -6.0,  # local cluster power relative to a unit far cluster
    "n_los_vr": 6,
    "los_vr_radius_m": 80.0,
    "los_k_db": 3.0,
    "area_m": 400.0,
    "area_center_m": [240.0, 0.0],
}


def gscm_params(cfg: GenConfig) -> dict[str, Any]:
    """The model's parameters: :data:`DEFAULTS` overridden by ``cfg.extra``."""
    unknown = set(cfg.extra) - set(DEFAULTS)
    if unknown:
        from shared.errors import InvalidInput

        raise InvalidInput(f"unknown GSCM parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **cfg.extra}


def _vr_gain(d: torch.Tensor, radius: float, transition: float) -> torch.Tensor:
    """Soft visibility: 1 well inside, 0 outside, a smooth ramp over the last ``transition`` m."""
    x = (radius - d) / transition  # > 1 inside the plateau, < 0 outside
    return torch.clamp(0.5 - 0.5 * torch.cos(math.pi * torch.clamp(x, 0.0, 1.0)), 0.0, 1.0)


class FddGscm:
    """Draws batches of FDD realizations of the site of one :class:`GenConfig`."""

    def __init__(self, cfg: GenConfig) -> None:
        self.cfg = cfg
        p = self.p = gscm_params(cfg)
        rng = np.random.default_rng([int(cfg.seed), 2100])  # the site: same for every split
        nf, mf = int(p["n_far"]), int(p["m_far"])
        cx, cy = p["area_center_m"]
        half = p["area_m"] / 2
        self.vr_center = np.stack(
            [rng.uniform(cx - half, cx + half, nf), rng.uniform(cy - half, cy + half, nf)], 1
        )
        self.phi = rng.uniform(-math.pi / 3, math.pi / 3, nf)  # BS-side cluster angle
        self.mpc_phi = self.phi[:, None] + rng.laplace(0.0, math.radians(p["aspread_deg"]), (nf, mf))
        self.tau_link = rng.uniform(0.0, p["max_link_us"] * 1e-6, nf)
        shadow = rng.normal(0.0, p["shadow_db"], nf)
        self.p_c = 10 ** ((shadow - p["decay_db_per_us"] * self.tau_link * 1e6) / 10)
        self.q = self.vr_center[:, None, :] + rng.normal(
            0.0, p["ms_spread_m"], (nf, mf, 2)
        )  # MS-side scatterers
        amp = rng.rayleigh(1 / math.sqrt(2), (nf, mf)) / math.sqrt(mf)
        self.ph_dl = rng.uniform(-math.pi, math.pi, (nf, mf))
        self.ph_ul = (
            rng.uniform(-math.pi, math.pi, (nf, mf)) if cfg.ul_phases == "independent" else self.ph_dl
        )
        self.amp = amp
        self.los_center = np.stack(
            [
                rng.uniform(cx - half, cx + half, int(p["n_los_vr"])),
                rng.uniform(cy - half, cy + half, int(p["n_los_vr"])),
            ],
            1,
        )

    def _steer(self, phi: torch.Tensor, f: float) -> torch.Tensor:
        """BS ULA (along y, boresight +x), elements half a DL wavelength apart: ``[..., Nt]``."""
        a = torch.arange(self.cfg.n_antennas, dtype=torch.float64)
        d = 0.5 * C0 / self.cfg.f_dl  # metres between elements (the physical array)
        arg = (2 * math.pi * f / C0 * d * torch.sin(phi))[..., None] * a
        return torch.polar(torch.ones_like(arg), arg)

    def draw(self, batch: int, g: torch.Generator) -> Realization:
        c, p, b = self.cfg, self.p, batch
        f64 = torch.float64
        nf, mf, ml = int(p["n_far"]), int(p["m_far"]), int(p["m_local"])
        # Draw order is part of the determinism contract.
        cx, cy = p["area_center_m"]
        half = p["area_m"] / 2
        ue = torch.stack(
            [
                cx - half + torch.rand(b, generator=g, dtype=f64) * 2 * half,
                cy - half + torch.rand(b, generator=g, dtype=f64) * 2 * half,
            ],
            1,
        )  # [B, 2]
        speed = torch.rand(b, generator=g, dtype=f64) * (c.max_speed - c.min_speed) + c.min_speed
        heading = torch.rand(b, generator=g, dtype=f64) * 2 * math.pi
        r0, r1 = p["local_r_m"]
        lr = r0 + torch.rand(b, ml, generator=g, dtype=f64) * (r1 - r0)
        la = torch.rand(b, ml, generator=g, dtype=f64) * 2 * math.pi
        l_amp = torch.sqrt(-torch.log(torch.rand(b, ml, generator=g, dtype=f64).clamp_min(1e-12)) / ml)
        l_ph = torch.rand(b, 2, ml, generator=g, dtype=f64) * 2 * math.pi - math.pi  # DL / UL
        los_ph = torch.rand(b, 2, generator=g, dtype=f64) * 2 * math.pi - math.pi
        if c.ul_phases == "shared":
            l_ph = l_ph[:, :1].expand(b, 2, ml)
            los_ph = los_ph[:, :1].expand(b, 2)
        vel = torch.stack([speed * torch.cos(heading), speed * torch.sin(heading)], 1)

        q = torch.as_tensor(self.q, dtype=f64).reshape(1, nf * mf, 2)
        vr = _vr_gain(
            torch.linalg.norm(ue[:, None] - torch.as_tensor(self.vr_center, dtype=f64), dim=-1),
            p["vr_radius_m"],
            p["vr_transition_m"],
        )  # [B, nf]
        g_far = torch.sqrt(vr * torch.as_tensor(self.p_c, dtype=f64))[:, :, None] * torch.as_tensor(
            self.amp, dtype=f64
        )
        g_far = g_far.reshape(b, nf * mf)
        loc = ue[:, None] + torch.stack([lr * torch.cos(la), lr * torch.sin(la)], -1)  # [B, ml, 2]
        los_vis = _vr_gain(
            torch.linalg.norm(ue[:, None] - torch.as_tensor(self.los_center, dtype=f64), dim=-1),
            p["los_vr_radius_m"],
            p["vr_transition_m"],
        ).amax(1)  # [B]
        scat_pow = (g_far**2).sum(1) + 10 ** (p["local_power_db"] / 10) * (l_amp**2).sum(1)
        g_los = torch.sqrt(los_vis * 10 ** (p["los_k_db"] / 10) * scat_pow)  # [B]
        g_loc = math.sqrt(10 ** (p["local_power_db"] / 10)) * l_amp
        gains = torch.cat([g_far, g_loc, g_los[:, None]], 1)  # [B, N]
        norm = torch.sqrt((gains**2).sum(1, keepdim=True)).clamp_min(1e-12)
        gains = gains / norm

        def lengths(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Path lengths (m) [B, N] and BS departure angles [B, N] for UE positions ``pos``."""
            far = (
                torch.linalg.norm(q, dim=-1)
                + torch.linalg.norm(pos[:, None] - q, dim=-1)
                + C0 * torch.as_tensor(np.repeat(self.tau_link, mf), dtype=f64)
            )
            lp = loc + (pos - ue)[:, None]  # the local cluster moves with the UE
            local = torch.linalg.norm(lp, dim=-1) + torch.linalg.norm(pos[:, None] - lp, dim=-1)
            direct = torch.linalg.norm(pos, dim=-1, keepdim=True)
            ang = torch.cat(
                [
                    torch.as_tensor(self.mpc_phi.reshape(-1), dtype=f64).expand(b, nf * mf),
                    torch.atan2(lp[..., 1], lp[..., 0]),
                    torch.atan2(pos[:, 1:], pos[:, :1]),
                ],
                1,
            )
            return torch.cat([far, local, direct], 1), ang

        times = torch.tensor([0.0, float(c.target_delay)], dtype=f64)
        ph0_dl = torch.cat(
            [
                torch.as_tensor(self.ph_dl.reshape(-1), dtype=f64).expand(b, nf * mf),
                l_ph[:, 0],
                los_ph[:, :1],
            ],
            1,
        )
        ph0_ul = torch.cat(
            [
                torch.as_tensor(self.ph_ul.reshape(-1), dtype=f64).expand(b, nf * mf),
                l_ph[:, 1],
                los_ph[:, 1:],
            ],
            1,
        )
        d0, _ = lengths(ue)
        tau = (d0 - torch.linalg.norm(ue, dim=-1, keepdim=True)) / C0  # excess delay, [B, N]

        def coeffs(f: float, ph0: torch.Tensor, t: float) -> torch.Tensor:
            d, ang = lengths(ue + vel * t)
            h = torch.polar(gains, ph0 - 2 * math.pi * f / C0 * d)  # [B, N]
            return (h[..., None] * self._steer(ang, f)).to(torch.complex64)  # [B, N, Nt]

        h_dl = torch.stack([coeffs(c.f_dl, ph0_dl, float(t)) for t in times], 1)
        h_ul = coeffs(c.f_ul, ph0_ul, float(times[1]))
        pos3 = torch.cat([ue, torch.full((b, 1), -23.5, dtype=f64)], 1)  # UE 1.5 m, BS 25 m up
        return Realization(
            h_dl=h_dl.contiguous(),
            h_ul=h_ul.contiguous(),
            tau=tau.contiguous(),
            speed=speed.float(),
            velocity=torch.cat([vel, torch.zeros(b, 1, dtype=f64)], 1).float(),
            los=los_vis > 0.5,
            rays={"vr_gain": vr.float()},
            position=pos3.float(),
        )
