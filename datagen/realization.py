"""One FDD channel realization per sample: DL now (X), UL at the target instant (Y), DL at the
target instant (Z), for CDL models, on Sionna's TR 38.901 pieces.

Why not two Sionna ``CDL`` objects (one per carrier)? Re-seeding a second CDL at the UL
carrier reuses the DL's random ray phases *and* rescales the array to half a UL wavelength:
the UL becomes a near copy of the DL (about -51 dB NMSE), which no FDD system sees. Here the
random parts of a realization are drawn once and split the way physics splits them:

* shared by DL and UL (frequency invariant): cluster delays and powers, ray angles and their
  random coupling (step 8 of TR 38.901 7.7.1), K-factor, UE velocity (speed and direction);
* drawn independently for the UL: the per-ray initial phases (step 10), because a ray's phase
  at the carrier is ``2 pi f tau`` plus scattering phases, which decorrelate over 200 MHz;
* the array is the same physical one: elements ``bs_spacing`` DL wavelengths apart, so
  ``bs_spacing * f_ul / f_dl`` (0.4526) UL wavelengths at the UL carrier, and the Doppler
  and array phases use the UL wavelength.

The per-ray sum (steps 10-11) is Sionna's :class:`ChannelCoefficientsGenerator` with our own
phases injected through ``Rays.phases``; the sum over clusters to subcarriers (what
``cir_to_ofdm_channel`` does) and the cropped angular-delay transform are done here in one
small batched product, so the full 32 x Nc matrix is only built when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from datagen.profiles import CDL_MODELS, GenConfig

PI = float(np.pi)


@dataclass
class Realization:
    """Per-cluster channel of a batch; the output of :meth:`FddCdl.draw`.

    * ``h_dl`` complex64 ``[B, 2, N, Nt]``: DL path coefficients at t=0 and t=target
      (cluster n, BS antenna a; single-antenna UE).
    * ``h_ul`` complex64 ``[B, N, Nt]``: UL path coefficients at t=target.
    * ``tau`` float64 ``[B, N]``: path delays (s), shared by DL and UL.
    * ``speed`` float32 ``[B]``, ``velocity`` float32 ``[B, 3]`` (m/s).
    * ``los`` bool ``[B]``.
    * ``rays``: the shared random parts, for tests: ``{"aod", "aoa", "zod", "zoa"}`` each
      ``[B, N, M]`` after coupling, and ``phases_dl``/``phases_ul`` ``[B, N, M, 4]``.
    * ``position`` float32 ``[B, 3]``: UE position relative to the BS (m); system-level models
      (UMi/UMa) only, else None.
    """

    h_dl: torch.Tensor
    h_ul: torch.Tensor
    tau: torch.Tensor
    speed: torch.Tensor
    velocity: torch.Tensor
    los: torch.Tensor
    rays: dict[str, torch.Tensor]
    position: torch.Tensor | None = None


def _array(n: int, pattern: str, pol: str, f_dl: float, spacing: float):
    from sionna.phy.channel.tr38901 import PanelArray

    # Built at the DL carrier: PanelArray stores element positions in metres
    # (spacing * lambda_DL), so the same object is the same physical array on the UL.
    return PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=n,
        polarization="single",
        polarization_type=pol,
        antenna_pattern=pattern,
        carrier_frequency=f_dl,
        element_horizontal_spacing=spacing,
        precision="single",
        device="cpu",
    )


@dataclass
class Draw:
    """The random parts of a batch (see :meth:`FddCdl.sample`); Sionna objects, ``[B, 1, 1, ...]``.

    ``pair`` int64 ``[B, N, M]``: index ``i_zod * M + j_aod`` of each ray's BS-side angle pair.
    """

    rays_dl: Any
    rays_ul: Any
    topo_dl: Any
    topo_ul: Any
    k_factor: torch.Tensor
    pair: torch.Tensor
    speed: torch.Tensor
    velocity: torch.Tensor
    los: torch.Tensor
    rays: dict[str, torch.Tensor]


class FddCdl:
    """Draws batches of FDD CDL realizations for one :class:`GenConfig` (CPU, float32)."""

    def __init__(self, cfg: GenConfig) -> None:
        if cfg.model not in CDL_MODELS:
            raise ValueError(f"FddCdl handles {CDL_MODELS}, not {cfg.model}")
        from sionna.phy.channel.tr38901 import CDL
        from sionna.phy.channel.tr38901.channel_coefficients import ChannelCoefficientsGenerator

        self.cfg = cfg
        self.bs_array = _array(cfg.n_antennas, cfg.bs_pattern, cfg.polarization, cfg.f_dl, cfg.bs_spacing)
        self.ut_array = _array(1, cfg.ut_pattern, cfg.polarization, cfg.f_dl, 0.5)
        # The CDL object is used for its tables only (cluster delays/powers, ray angles from
        # eq. 7.7-0a, K-factor, LoS angles); its own random draws are never used.
        self.cdl = CDL(
            model=cfg.model.split("-")[1],
            delay_spread=cfg.delay_spread,
            carrier_frequency=cfg.f_dl,
            ut_array=self.ut_array,
            bs_array=self.bs_array,
            direction="downlink",
            precision="single",
            device="cpu",
            spec_version=cfg.spec_version,
        )
        self.gen_dl = ChannelCoefficientsGenerator(
            cfg.f_dl, tx_array=self.bs_array, rx_array=self.ut_array, subclustering=False,
            precision="single", device="cpu",
        )
        # The physical array is the DL's; "rescaled" rebuilds it at half a UL wavelength, which
        # is what a second CDL object at the UL carrier silently does (diagnostic option).
        self.bs_array_ul = self.bs_array
        if cfg.ul_array == "rescaled":
            self.bs_array_ul = _array(cfg.n_antennas, cfg.bs_pattern, cfg.polarization, cfg.f_ul,
                                      cfg.bs_spacing)
        self.gen_ul = ChannelCoefficientsGenerator(
            cfg.f_ul, tx_array=self.ut_array, rx_array=self.bs_array_ul, subclustering=False,
            precision="single", device="cpu",
        )
        # Single-element twins of the two generators: with single-polarized arrays the element
        # field is the same on every element, so it is computed once per ray, not per antenna.
        bs1 = _array(1, cfg.bs_pattern, cfg.polarization, cfg.f_dl, cfg.bs_spacing)
        self.gen_dl1 = ChannelCoefficientsGenerator(
            cfg.f_dl, tx_array=bs1, rx_array=self.ut_array, subclustering=False,
            precision="single", device="cpu",
        )
        self.gen_ul1 = ChannelCoefficientsGenerator(
            cfg.f_ul, tx_array=self.ut_array, rx_array=bs1, subclustering=False,
            precision="single", device="cpu",
        )
        self.has_los = bool(self.cdl._has_los)
        self.n_clusters = int(self.cdl._num_clusters)
        self.n_rays = int(self.cdl._rays_per_cluster)
        # The UE has one antenna at its origin, so the UE-side array factor is 1 and the
        # array offsets depend on the BS-side angles only (see _steering_tables).
        assert self.ut_array.num_ant == 1 and float(self.ut_array.ant_pos.abs().max()) == 0.0
        self._tab_dl, self._tab_ul = self._steering_tables()

    # ------------------------------------------------------------------ random parts
    def _couple(self, ang: torch.Tensor, b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ray coupling (step 8): an independent in-cluster permutation per sample.

        Returns the coupled angles ``[B, N, M]`` and the permutation (int64, same shape).
        """
        n, m = ang.shape
        perm = torch.argsort(torch.randn(b, n, m, generator=g), dim=-1)
        return torch.gather(ang.expand(b, n, m), -1, perm), perm

    def _steering_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """BS array response for every (ZoD_i, AoD_j) ray pair a cluster can couple.

        CDL ray angles are fixed per cluster (table + eq. 7.7-0a offsets); the random coupling
        only permutes them. So the BS-side array offsets ``exp(j 2 pi r.d / lambda)`` take one
        of ``N x M x M`` values, precomputed here with Sionna's ``_step_11_array_offsets``
        (DL wavelength for the DL, UL wavelength for the UL, same element positions), and
        gathered per sample: this was most of the cost of a realization.

        :output: DL and UL tables, complex64 ``[N, M*M, Nt]``, index ``i_zod * M + j_aod``
        """
        from sionna.phy.channel.tr38901.channel_coefficients import Topology

        cdl = self.cdl
        n, m = self.n_clusters, self.n_rays
        zod = cdl._zod[:, :, None].expand(n, m, m).reshape(1, 1, 1, n, m * m)
        aod = cdl._aod[:, None, :].expand(n, m, m).reshape(1, 1, 1, n, m * m)
        zero = torch.zeros_like(zod)
        z3 = torch.zeros(1, 1, 1)
        ut_or, bs_or = torch.tensor([[[PI, 0.0, 0.0]]]), torch.zeros(1, 1, 3)
        common = dict(los_aoa=z3, los_aod=z3, los_zoa=z3, los_zod=z3, los=z3 > 0, distance_3d=z3)
        topo_dl = Topology(velocities=torch.zeros(1, 1, 3), moving_end="rx", tx_orientations=bs_or,
                           rx_orientations=ut_or, **common)
        topo_ul = Topology(velocities=torch.zeros(1, 1, 3), moving_end="tx", tx_orientations=ut_or,
                           rx_orientations=bs_or, **common)
        with torch.no_grad():
            t_dl = self.gen_dl._step_11_array_offsets(topo_dl, zero, aod, zero, zod)
            t_ul = self.gen_ul._step_11_array_offsets(topo_ul, aod, zero, zod, zero)
        return t_dl.reshape(n, m * m, -1).contiguous(), t_ul.reshape(n, m * m, -1).contiguous()

    def _velocity(self, b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        # Same law as Sionna's CDL._get_velocity: speed U[min, max], azimuth U[0, 2pi),
        # zenith U[0, pi) (not uniform on the sphere; kept for parity with Sionna).
        c = self.cfg
        speed = torch.rand(b, 1, generator=g) * (c.max_speed - c.min_speed) + c.min_speed
        phi = torch.rand(b, 1, generator=g) * 2 * PI
        theta = torch.rand(b, 1, generator=g) * PI
        v = torch.cat(
            [speed * torch.cos(phi) * torch.sin(theta), speed * torch.sin(phi) * torch.sin(theta),
             speed * torch.cos(theta)], dim=-1,
        )
        return speed[:, 0], v

    # ------------------------------------------------------------------ channel
    @staticmethod
    def _paths(gen, gen1, rays, topo, k: torch.Tensor, t: torch.Tensor,
               arr: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sionna's step 11 (eq. 7.5-22 .. 7.5-30) without the per-antenna field product.

        ``gen(..)`` would build ``[B, N, M, rx_ant, tx_ant, T]`` and sum over rays; here the
        ray sum is one batched product ``[T, M] x [M, Nt]`` per cluster. Same math, same Sionna
        pieces (field/pattern, array offsets, Doppler, LoS); ``tests/test_datagen.py`` checks
        it against ``gen(...)`` itself.

        :input arr: optional precomputed array offsets ``[B, N, M, Nt]`` (else computed)
        :output h: complex64 ``[B, T, N, Nt]`` (clusters sorted by delay), ``tau`` ``[B, N]``
        """
        b, n, m = rays.aoa.shape[0], rays.aoa.shape[3], rays.aoa.shape[4]
        h_phase = gen._step_11_phase_matrix(rays.phases, rays)
        field = gen1._step_11_field_matrix(topo, rays.aoa, rays.aod, rays.zoa, rays.zod, h_phase)
        if arr is None:
            arr = gen._step_11_array_offsets(topo, rays.aoa, rays.aod, rays.zoa, rays.zod)
        dop = gen._step_11_doppler_matrix(topo, rays.aoa, rays.aod, rays.zoa, rays.zod, t)
        amp = field.reshape(b, n, m) * torch.sqrt(rays.powers.reshape(b, n, 1) / m)
        coef = amp[..., None] * dop.reshape(b, n, m, -1)  # [B, N, M, T]
        h = torch.matmul(coef.transpose(-1, -2), arr.reshape(b, n, m, -1))  # [B, N, T, Nt]
        h = h.permute(0, 2, 1, 3)  # [B, T, N, Nt]
        tau = rays.delays.reshape(b, n)
        order = torch.argsort(tau, dim=-1)
        tau = torch.gather(tau, 1, order)
        h = torch.gather(h, 2, order[:, None, :, None].expand_as(h))
        los = topo.los.reshape(b)
        if bool(los.any()):
            kk = k.reshape(b, 1, 1).to(h.dtype)
            h_los = gen._step_11_los(topo, t).reshape(b, -1, t.shape[0]).transpose(1, 2)  # [B, T, Nt]
            h_los = h_los * torch.sqrt(kk / (kk + 1))
            h_all = h * torch.sqrt(1 / (kk[..., None] + 1))
            h_all = torch.cat([h_all[:, :, :1] + h_los[:, :, None], h_all[:, :, 1:]], dim=2)
            h = torch.where(los.reshape(b, 1, 1, 1), h_all, h)
        return h.contiguous(), tau

    def draw(self, batch: int, g: torch.Generator) -> Realization:
        """Draw ``batch`` realizations from generator ``g`` (the only source of randomness)."""
        return self.channel(self.sample(batch, g))

    def sample(self, batch: int, g: torch.Generator) -> Draw:
        """The random parts of ``batch`` realizations, as Sionna ``Rays``/``Topology`` objects."""
        from sionna.phy.channel.tr38901.channel_coefficients import Topology
        from sionna.phy.channel.tr38901.rays import Rays

        cdl, c = self.cdl, self.cfg
        b, n, m = batch, self.n_clusters, self.n_rays
        # Draw order is part of the determinism contract: coupling, velocity, DL, UL phases.
        aoa, _ = self._couple(cdl._aoa, b, g)
        aod, p_aod = self._couple(cdl._aod, b, g)
        zoa, _ = self._couple(cdl._zoa, b, g)
        zod, p_zod = self._couple(cdl._zod, b, g)
        speed, vel = self._velocity(b, g)
        ph_dl = torch.rand(b, n, m, 4, generator=g) * 2 * PI - PI
        ph_ul = torch.rand(b, n, m, 4, generator=g) * 2 * PI - PI
        if c.ul_phases == "shared":
            # Reciprocity of the same scatterers: the UL's polarization matrix is the DL's
            # transpose (theta-phi <-> phi-theta); with V-V only [0] matters anyway.
            ph_ul = ph_dl[..., [0, 2, 1, 3]]

        def ex(t: torch.Tensor) -> torch.Tensor:  # [B, N, M] -> [B, 1tx, 1rx, N, M]
            return t.reshape(b, 1, 1, *t.shape[1:])

        delays = cdl._delays.reshape(1, 1, 1, n).expand(b, 1, 1, n)
        powers = cdl._powers.reshape(1, 1, 1, n).expand(b, 1, 1, n)
        xpr = cdl._xpr.reshape(1, 1, 1, 1, 1).expand(b, 1, 1, n, m)
        k = cdl._k_factor.reshape(1, 1, 1).expand(b, 1, 1)
        rays_dl = Rays(delays=delays, powers=powers, aoa=ex(aoa), aod=ex(aod), zoa=ex(zoa), zod=ex(zod),
                       xpr=xpr, phases=ex(ph_dl))
        # UL: the UE transmits, the BS receives: departure and arrival swap roles.
        rays_ul = Rays(delays=delays, powers=powers, aoa=ex(aod), aod=ex(aoa), zoa=ex(zod), zod=ex(zoa),
                       xpr=xpr, phases=ex(ph_ul))

        z3 = torch.zeros(b, 1, 1)
        los_ang = (
            [cdl._los_aoa, cdl._los_aod, cdl._los_zoa, cdl._los_zod] if self.has_los else [0.0] * 4
        )
        la = [z3 + float(x) for x in los_ang]  # aoa, aod, zoa, zod (DL sense)
        los = torch.full((b, 1, 1), self.has_los, dtype=torch.bool)
        ut_or = torch.tensor([PI, 0.0, 0.0]).expand(b, 1, 3)  # Sionna's CDL default UE bearing
        bs_or = torch.zeros(b, 1, 3)
        topo_dl = Topology(velocities=vel[:, None, :], moving_end="rx", los_aoa=la[0], los_aod=la[1],
                           los_zoa=la[2], los_zod=la[3], los=los, distance_3d=z3,
                           tx_orientations=bs_or, rx_orientations=ut_or)
        topo_ul = Topology(velocities=vel[:, None, :], moving_end="tx", los_aoa=la[1], los_aod=la[0],
                           los_zoa=la[3], los_zod=la[2], los=los, distance_3d=z3,
                           tx_orientations=ut_or, rx_orientations=bs_or)

        return Draw(rays_dl=rays_dl, rays_ul=rays_ul, topo_dl=topo_dl, topo_ul=topo_ul, k_factor=k,
                    pair=p_zod * m + p_aod, speed=speed, velocity=vel, los=los[:, 0, 0],
                    rays={"aoa": aoa, "aod": aod, "zoa": zoa, "zod": zod, "phases_dl": ph_dl,
                          "phases_ul": ph_ul})

    def times(self) -> torch.Tensor:
        """The two instants: t = 0 (X) and t = target_delay (Y, Z), float32 ``[2]``."""
        return torch.tensor([0.0, float(self.cfg.target_delay)])

    def channel(self, d: Draw) -> Realization:
        """Path coefficients of DL (t = 0, target) and UL (target) for the draws ``d``."""
        t = self.times()
        ci = torch.arange(self.n_clusters)[None, :, None]
        k = d.k_factor
        with torch.no_grad():
            arr_dl, arr_ul = self._tab_dl[ci, d.pair], self._tab_ul[ci, d.pair]  # [B, N, M, Nt]
            h_dl, tau = self._paths(self.gen_dl, self.gen_dl1, d.rays_dl, d.topo_dl, k, t, arr_dl)
            h_ul, _ = self._paths(self.gen_ul, self.gen_ul1, d.rays_ul, d.topo_ul, k, t[1:], arr_ul)
        return Realization(
            h_dl=h_dl, h_ul=h_ul[:, 0], tau=tau.to(torch.float64), speed=d.speed.float(),
            velocity=d.velocity.float(), los=d.los, rays=d.rays,
        )
