"""FDD realizations for the TR 38.901 system-level models UMi and UMa: geometry varies per UE.

Per sample, one BS (height 10 m UMi / 25 m UMa, array boresight along +x, mechanically tilted
down towards the middle of the distance range) and one outdoor UE at 1.5 m, dropped uniformly
over the area of a 120-degree sector (azimuth -60..60 degrees, horizontal distance
``min_distance..max_distance``), moving horizontally in a random direction at a speed drawn
from ``min_speed..max_speed``. LoS follows the TR 38.901 7.4.2 probability (``los="auto"``) or
is forced (``"los"``/``"nlos"``).

Sionna 2.2's own machinery draws everything that depends on the geometry: ``UMi``/``UMa``
``set_topology`` (distances, LoS angles, LoS state, the LSP generator's delay spread, angle
spreads and K-factor per link) and the ``RaysGenerator`` (cluster delays and powers, ray
angles with their random coupling, XPR). Path loss and shadow fading are off: like the CDL
profiles, a sample has unit average cluster power (the dataset is about structure, not
link budget). The FDD split is the one of ``datagen/realization.py``:

* shared by DL and UL: the LSPs, the clusters (delays, powers), the coupled ray angles, the
  K-factor and LoS geometry, the UE velocity, the subcluster split of the two strongest
  clusters (TR 38.901 7.5 step 11, cluster delay spread ``cDS``);
* independent for the UL: the per-ray initial phases (step 10), injected through
  ``Rays.phases``; the LoS ray's ``exp(-j 2 pi d_3D / lambda)`` uses each carrier's wavelength;
* the same physical BS array (element positions in metres), seen at the UL wavelength.

The per-ray sum (step 11) uses Sionna's ``ChannelCoefficientsGenerator`` pieces as the CDL
path does, with the sum over rays (and subclusters) as one batched product;
``tests/test_datagen_umi.py`` checks it against the generator's own ``__call__``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from datagen.profiles import SYSTEM_MODELS, GenConfig
from datagen.realization import Realization, _array

PI = math.pi
UT_HEIGHT = 1.5  # m, outdoor UE (TR 38.901 Table 7.2-1)
# model -> (BS height m, default min and max horizontal distance m). UMi: ISD 200 m, UMa:
# ISD 500 m (Table 7.2-1); the defaults keep the UE inside the sector's inscribed radius.
GEOMETRY = {"UMi": (10.0, 10.0, 100.0), "UMa": (25.0, 35.0, 250.0)}
# Rays of the three subclusters of the two strongest clusters (TR 38.901 Table 7.5-5), the
# same indices Sionna's ChannelCoefficientsGenerator uses, and their delay offsets in cDS.
SUBCLUSTERS = ((0, 1, 2, 3, 4, 5, 6, 7, 18, 19), (8, 9, 10, 11, 16, 17), (12, 13, 14, 15))
SUB_OFFSETS = (0.0, 1.28, 2.56)


@dataclass
class SysDraw:
    """The random parts of a batch (see :meth:`FddSystem.sample`); Sionna objects ``[B, 1, 1, ...]``.

    ``rays_dl``/``rays_ul``: :class:`sionna.phy.channel.tr38901.Rays` (UL: departure and
    arrival swapped, own phases); ``topo_dl``/``topo_ul``: ``Topology``; ``k_factor`` float32
    ``[B, 1, 1]`` (linear); ``c_ds`` float32 ``[B]`` (s); ``strongest`` int64 ``[B, 2]``;
    ``position`` float32 ``[B, 3]`` (UE minus BS, m); ``speed`` ``[B]``; ``velocity`` ``[B, 3]``;
    ``los`` bool ``[B]``; ``rays``: the shared ray parameters, for tests (see :class:`Realization`).
    """

    rays_dl: Any
    rays_ul: Any
    topo_dl: Any
    topo_ul: Any
    k_factor: torch.Tensor
    c_ds: torch.Tensor
    strongest: torch.Tensor
    position: torch.Tensor
    speed: torch.Tensor
    velocity: torch.Tensor
    los: torch.Tensor
    rays: dict[str, torch.Tensor]


class FddSystem:
    """Draws batches of FDD UMi/UMa realizations for one :class:`GenConfig` (CPU, float32)."""

    def __init__(self, cfg: GenConfig) -> None:
        if cfg.model not in SYSTEM_MODELS:
            raise ValueError(f"FddSystem handles {SYSTEM_MODELS}, not {cfg.model}")
        from sionna.phy.channel.tr38901 import UMa, UMi
        from sionna.phy.channel.tr38901.channel_coefficients import ChannelCoefficientsGenerator

        self.cfg = cfg
        self.h_bs, d_min, d_max = GEOMETRY[cfg.model]
        self.d_min = float(cfg.min_distance) if cfg.min_distance is not None else d_min
        self.d_max = float(cfg.max_distance) if cfg.max_distance is not None else d_max
        if self.d_max < self.d_min:
            from shared.errors import InvalidInput

            raise InvalidInput(f"{cfg.model}: max_distance {self.d_max} < min_distance {self.d_min}")
        # Mechanical downtilt towards the middle of the range (positive beta tilts down, as in
        # Sionna's gen_single_sector_topology).
        self.downtilt = math.atan((self.h_bs - UT_HEIGHT) / (0.5 * (self.d_min + self.d_max)))
        self.bs_array = _array(cfg.n_antennas, cfg.bs_pattern, cfg.polarization, cfg.f_dl, cfg.bs_spacing)
        self.ut_array = _array(1, cfg.ut_pattern, cfg.polarization, cfg.f_dl, 0.5)
        cls = UMi if cfg.model == "UMi" else UMa
        # The LSPs are the DL carrier's (TR 38.901 tables depend on f_c); the UL shares them.
        self.sl = cls(carrier_frequency=cfg.f_dl, o2i_model="low", ut_array=self.ut_array,
                      bs_array=self.bs_array, direction="downlink", enable_pathloss=False,
                      enable_shadow_fading=False, precision="single", device="cpu",
                      spec_version=cfg.spec_version)
        self.n_rays = int(self.sl._scenario.rays_per_cluster)
        self.n_clusters = int(self.sl._scenario.num_clusters_max)
        if self.n_rays != 20:
            raise ValueError(f"subclustering needs 20 rays per cluster, the model has {self.n_rays}")

        def gen(f: float, tx, rx) -> ChannelCoefficientsGenerator:
            return ChannelCoefficientsGenerator(f, tx_array=tx, rx_array=rx, subclustering=True,
                                                precision="single", device="cpu")

        bs_ul = self.bs_array
        if cfg.ul_array == "rescaled":  # diagnostic: half a UL wavelength (see realization.py)
            bs_ul = _array(cfg.n_antennas, cfg.bs_pattern, cfg.polarization, cfg.f_ul, cfg.bs_spacing)
        self.gen_dl = gen(cfg.f_dl, self.bs_array, self.ut_array)
        self.gen_ul = gen(cfg.f_ul, self.ut_array, bs_ul)
        # Single-element twins: with single-polarized arrays the element field is the same on
        # every element, so it is computed once per ray (as in realization.py).
        bs1 = _array(1, cfg.bs_pattern, cfg.polarization, cfg.f_dl, cfg.bs_spacing)
        self.gen_dl1 = gen(cfg.f_dl, bs1, self.ut_array)
        self.gen_ul1 = gen(cfg.f_ul, self.ut_array, bs1)
        # group mask [3, M]: ray m belongs to subcluster s
        mask = torch.zeros(3, self.n_rays)
        for s, idx in enumerate(SUBCLUSTERS):
            mask[s, list(idx)] = 1.0
        self._sub_mask = mask
        # The UE has one antenna at its origin, so the UE-side array factor is 1 (_bs_offsets).
        assert self.ut_array.num_ant == 1 and float(self.ut_array.ant_pos.abs().max()) == 0.0

    # ------------------------------------------------------------------ random parts
    def _drop(self, b: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        """UE positions (uniform over the sector's area), velocities and orientations."""
        c = self.cfg
        r = torch.sqrt(torch.rand(b, generator=g) * (self.d_max**2 - self.d_min**2) + self.d_min**2)
        phi = (torch.rand(b, generator=g) * 2 - 1) * (PI / 3)
        speed = torch.rand(b, generator=g) * (c.max_speed - c.min_speed) + c.min_speed
        heading = torch.rand(b, generator=g) * 2 * PI  # horizontal direction of travel
        yaw = torch.rand(b, generator=g) * 2 * PI  # UE bearing (omni: only polarization)
        pos = torch.stack([r * torch.cos(phi), r * torch.sin(phi),
                           torch.full((b,), UT_HEIGHT - self.h_bs)], dim=-1)
        vel = torch.stack([speed * torch.cos(heading), speed * torch.sin(heading), torch.zeros(b)], dim=-1)
        ut_or = torch.stack([yaw, torch.zeros(b), torch.zeros(b)], dim=-1)
        return {"position": pos, "speed": speed, "velocity": vel, "ut_or": ut_or}

    def _sionna_rays(self, drop: dict[str, torch.Tensor], seed: int):
        """Topology, LSPs and rays from Sionna's UMi/UMa for the dropped UEs (seeded)."""
        from sionna.phy import config

        b = drop["position"].shape[0]
        # Sionna draws from its global generator; seeding it from the block's stream keeps a
        # block a pure function of (config, split, block).
        config.torch_rng("cpu").manual_seed(seed)
        # A fresh topology every call: Sionna skips the LSP and LoS draws when set_topology sees
        # the same topology again, which would make a draw depend on the previous one.
        self.sl.reset_topology()
        bs_loc = torch.zeros(b, 1, 3)
        bs_loc[..., 2] = self.h_bs
        bs_or = torch.zeros(b, 1, 3)
        bs_or[..., 1] = self.downtilt
        los = {"auto": "random", "los": True, "nlos": False}[self.cfg.los]
        self.sl.set_topology(ut_loc=(drop["position"] + bs_loc[:, 0])[:, None].contiguous(), bs_loc=bs_loc,
                             ut_orientations=drop["ut_or"][:, None].contiguous(), bs_orientations=bs_or,
                             ut_velocities=drop["velocity"][:, None].contiguous(),
                             in_state=torch.zeros(b, 1, dtype=torch.bool), los=los)
        lsp = self.sl._lsp
        rays = self.sl._ray_sampler(lsp)
        return self.sl._scenario, lsp, rays

    def sample(self, batch: int, g: torch.Generator) -> SysDraw:
        """The random parts of ``batch`` realizations (``g`` is the only source of randomness)."""
        from sionna.phy.channel.tr38901.channel_coefficients import Topology
        from sionna.phy.channel.tr38901.rays import Rays

        b, n, m = batch, self.n_clusters, self.n_rays
        # Draw order is part of the determinism contract: drop, phases, Sionna's seed.
        drop = self._drop(b, g)
        ph_dl = torch.rand(b, 1, 1, n, m, 4, generator=g) * 2 * PI - PI
        ph_ul = torch.rand(b, 1, 1, n, m, 4, generator=g) * 2 * PI - PI
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        if self.cfg.ul_phases == "shared":
            ph_ul = ph_dl[..., [0, 2, 1, 3]]  # reciprocity: the UL's matrix is the DL's transpose
        sc, lsp, r = self._sionna_rays(drop, seed)

        rays_dl = Rays(delays=r.delays, powers=r.powers, aoa=r.aoa, aod=r.aod, zoa=r.zoa, zod=r.zod,
                       xpr=r.xpr, phases=ph_dl, strongest_cluster_indices=r.strongest_cluster_indices)
        # UL: the UE transmits, the BS receives: departure and arrival swap roles.
        rays_ul = Rays(delays=r.delays, powers=r.powers, aoa=r.aod, aod=r.aoa, zoa=r.zod, zod=r.zoa,
                       xpr=r.xpr, phases=ph_ul, strongest_cluster_indices=r.strongest_cluster_indices)
        la = [torch.deg2rad(x) for x in (sc.los_aoa, sc.los_aod, sc.los_zoa, sc.los_zod)]
        los = sc.los.clone()
        d3 = sc.distance_3d.clone()
        vel = drop["velocity"][:, None]
        ut_or, bs_or = sc.ut_orientations.clone(), sc.bs_orientations.clone()
        topo_dl = Topology(velocities=vel, moving_end="rx", los_aoa=la[0], los_aod=la[1], los_zoa=la[2],
                           los_zod=la[3], los=los, distance_3d=d3, tx_orientations=bs_or,
                           rx_orientations=ut_or)
        topo_ul = Topology(velocities=vel, moving_end="tx", los_aoa=la[1], los_aod=la[0], los_zoa=la[3],
                           los_zod=la[2], los=los, distance_3d=d3, tx_orientations=ut_or,
                           rx_orientations=bs_or)
        c_ds = (sc.get_param("cDS") * 1e-9).reshape(b).clone()
        return SysDraw(
            rays_dl=rays_dl, rays_ul=rays_ul, topo_dl=topo_dl, topo_ul=topo_ul,
            k_factor=lsp.k_factor.clone(), c_ds=c_ds, strongest=r.strongest_cluster_indices.reshape(b, 2),
            position=drop["position"], speed=drop["speed"], velocity=drop["velocity"], los=los.reshape(b),
            rays={"aoa": r.aoa.reshape(b, n, m), "aod": r.aod.reshape(b, n, m), "zoa": r.zoa.reshape(b, n, m),
                  "zod": r.zod.reshape(b, n, m), "delays": r.delays.reshape(b, n),
                  "powers": r.powers.reshape(b, n), "phases_dl": ph_dl.reshape(b, n, m, 4),
                  "phases_ul": ph_ul.reshape(b, n, m, 4)},
        )

    # ------------------------------------------------------------------ channel
    @staticmethod
    def _bs_offsets(gen, topo, rays) -> torch.Tensor:
        """BS array offsets ``exp(j 2 pi r.d / lambda)`` of every ray, complex64 ``[B, N, M, Nt]``.

        Sionna's ``_step_11_array_offsets`` with the single-element UE (its factor is 1, checked
        in ``__init__``) and the phase built as one real product then ``polar``: the complex
        ``exp`` of the generic version was most of a realization's cost. Element positions are
        Sionna's (GCS, rotated by the BS orientation); the wavelength is the generator's.
        """
        b, n, m = rays.aoa.shape[0], rays.aoa.shape[3], rays.aoa.shape[4]
        if topo.moving_end == "rx":  # DL: the BS transmits
            pos, zen, azi = gen._step_11_get_tx_antenna_positions(topo), rays.zod, rays.aod
        else:
            pos, zen, azi = gen._step_11_get_rx_antenna_positions(topo), rays.zoa, rays.aoa
        r_hat = gen._unit_sphere_vector(zen, azi).reshape(b, n * m, 3)
        phase = torch.matmul(r_hat, pos.reshape(b, -1, 3).transpose(1, 2)) * (2 * PI / gen._lambda_0)
        return torch.polar(torch.ones_like(phase), phase).reshape(b, n, m, -1)

    def _paths(self, gen, gen1, rays, topo, k: torch.Tensor, c_ds: torch.Tensor, strongest: torch.Tensor,
               t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 11 with subclustering (eq. 7.5-22 .. 7.5-30), rays summed by one batched product.

        The two strongest clusters split into three subclusters (delays ``+0, 1.28, 2.56 cDS``),
        the others stay whole: ``N + 4`` paths, sorted by delay; the LoS ray joins the first.

        :output h: complex64 ``[B, T, N + 4, Nt]``; ``tau`` float32 ``[B, N + 4]`` (s)
        """
        b, n, m = rays.aoa.shape[0], rays.aoa.shape[3], rays.aoa.shape[4]
        h_phase = gen._step_11_phase_matrix(rays.phases, rays)
        field = gen1._step_11_field_matrix(topo, rays.aoa, rays.aod, rays.zoa, rays.zod, h_phase)
        arr = self._bs_offsets(gen, topo, rays)  # [B, N, M, Nt]
        dop = gen._step_11_doppler_matrix(topo, rays.aoa, rays.aod, rays.zoa, rays.zod, t)
        nt = arr.shape[-1]
        nsteps = t.shape[0]
        amp = field.reshape(b, n, m) * torch.sqrt(rays.powers.reshape(b, n, 1) / m)
        coef = amp[..., None] * dop.reshape(b, n, m, nsteps)  # [B, N, M, T]
        # group g of cluster n: the strongest two use the subcluster masks, the others put all
        # rays in group 0 (groups 1, 2 empty and dropped below)
        strong = torch.zeros(b, n, dtype=torch.bool).scatter(1, strongest, True)
        whole = torch.zeros(3, m)
        whole[0] = 1.0
        mask = torch.where(strong[..., None, None], self._sub_mask, whole)  # [B, N, 3, M]
        cg = (coef[:, :, None] * mask[..., None]).permute(0, 1, 2, 4, 3).reshape(b, n, 3 * nsteps, m)
        hg = torch.matmul(cg, arr).reshape(b, n, 3, nsteps, nt)  # [B, N, 3, T, Nt]
        tau_c = rays.delays.reshape(b, n)
        off = torch.tensor(SUB_OFFSETS)[None, None, :] * c_ds.reshape(b, 1, 1)
        tau_g = tau_c[..., None] + off * strong[..., None]  # [B, N, 3]
        # keep (n, 0) for every cluster and (s, 1), (s, 2) for the strongest two
        keep = torch.cat([torch.arange(n)[None].expand(b, n) * 3,
                          strongest * 3 + 1, strongest * 3 + 2], dim=1)  # [B, N + 4]
        h = torch.gather(hg.permute(0, 3, 1, 2, 4).reshape(b, nsteps, 3 * n, nt), 2,
                         keep[:, None, :, None].expand(b, nsteps, -1, nt))
        tau = torch.gather(tau_g.reshape(b, 3 * n), 1, keep)
        order = torch.argsort(tau, dim=-1)
        tau = torch.gather(tau, 1, order)
        h = torch.gather(h, 2, order[:, None, :, None].expand_as(h))
        los = topo.los.reshape(b)
        if bool(los.any()):
            kk = k.reshape(b, 1, 1).to(h.dtype)
            h_los = gen._step_11_los(topo, t).reshape(b, -1, nsteps).transpose(1, 2)  # [B, T, Nt]
            h_los = h_los * torch.sqrt(kk / (kk + 1))
            h_all = h * torch.sqrt(1 / (kk[..., None] + 1))
            h_all = torch.cat([h_all[:, :, :1] + h_los[:, :, None], h_all[:, :, 1:]], dim=2)
            h = torch.where(los.reshape(b, 1, 1, 1), h_all, h)
        return h.contiguous(), tau

    def times(self) -> torch.Tensor:
        """The two instants: t = 0 (X) and t = target_delay (Y, Z), float32 ``[2]``."""
        return torch.tensor([0.0, float(self.cfg.target_delay)])

    def channel(self, d: SysDraw) -> Realization:
        """Path coefficients of DL (t = 0, target) and UL (target) for the draws ``d``."""
        t = self.times()
        with torch.no_grad():
            h_dl, tau = self._paths(self.gen_dl, self.gen_dl1, d.rays_dl, d.topo_dl, d.k_factor, d.c_ds,
                                    d.strongest, t)
            h_ul, _ = self._paths(self.gen_ul, self.gen_ul1, d.rays_ul, d.topo_ul, d.k_factor, d.c_ds,
                                  d.strongest, t[1:])
        return Realization(
            h_dl=h_dl, h_ul=h_ul[:, 0], tau=tau.to(torch.float64), speed=d.speed.float(),
            velocity=d.velocity.float(), los=d.los, rays=d.rays, position=d.position.float(),
        )

    def draw(self, batch: int, g: torch.Generator) -> Realization:
        """Draw ``batch`` realizations from generator ``g`` (the only source of randomness)."""
        return self.channel(self.sample(batch, g))
