"""A ray-traced street world: one BS with a co-located camera, UEs that are cars.

Sionna RT (Mitsuba 3 / Dr.Jit on the CPU) traces the DL paths from the BS array at the DL
carrier and, separately, at the UL carrier (path amplitudes depend on the solve frequency,
so evaluating the DL paths at the UL carrier would be wrong); the same geometry and the
same car poses give both. The camera renders the same instant.

Several UE cars can share one solve (the ``wireless`` samples): each car is a scatterer for
the others, as in traffic, and the solve is shared (the cost is per transmitter, not per
receiver). Image samples have a single UE car so the picture shows exactly one of them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from datagen.rt.config import RtConfig

# Dr.Jit's CPU backend needs a newer LLVM than Debian 12's default (15 aborts with "Cannot
# select ... fmaximum"); scripts/install_llvm.sh installs libllvm19.
LLVM_PATH = "/usr/lib/x86_64-linux-gnu/libLLVM-19.so"

# Building footprints of ``simple_street_canyon_with_cars`` (x0, y0, x1, y1), metres, and the
# cars parked there; UE positions keep a margin from both.
BUILDINGS = (
    (-62.4, -36.5, -31.0, -8.6), (-15.1, -36.5, 16.0, -8.6), (31.5, -36.5, 62.6, -8.6),
    (-62.4, 9.6, -31.3, 37.5), (-15.1, 9.6, 16.0, 37.5), (32.4, 10.3, 63.5, 38.2),
)
FLOOR = (-92.0, -58.0, 90.0, 58.0)
CAR_HALF = (2.2, 0.9)  # half length / half width of the car mesh (sionna.rt.scene.low_poly_car)
ANTENNA_HEIGHT = 1.6  # on the roof (the car mesh is 1.52 m tall)


def ensure_llvm() -> None:
    """Point Dr.Jit at LLVM 19 before mitsuba is imported; clear error when it is missing."""
    from shared.errors import InvalidInput

    path = os.environ.get("DRJIT_LIBLLVM_PATH", LLVM_PATH)
    if not os.path.exists(path):
        if cuda_present():  # Sionna RT then runs its CUDA variant (OptiX) and needs no LLVM
            return
        raise InvalidInput(f"ray tracing needs LLVM 19 ({path} missing): run scripts/install_llvm.sh "
                           "(apt-get install libllvm19) or set DRJIT_LIBLLVM_PATH")
    os.environ["DRJIT_LIBLLVM_PATH"] = path


def cuda_present() -> bool:
    """An NVIDIA driver is loaded (Mitsuba's CUDA variants are then tried first)."""
    return os.path.exists("/dev/nvidiactl")


def llvm_available() -> bool:
    return os.path.exists(os.environ.get("DRJIT_LIBLLVM_PATH", LLVM_PATH))


def _inside(x: float, y: float, box: tuple[float, float, float, float], margin: float) -> bool:
    return box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin


@dataclass
class Drop:
    """UE car poses of one solve: positions ``[K, 2]`` (x, y on the ground) and yaws ``[K]``."""

    xy: np.ndarray
    yaw: np.ndarray


class StreetWorld:
    """The scene, the BS, the camera and ``n_ues`` UE cars (with a receiver on each roof)."""

    def __init__(self, cfg: RtConfig, n_ues: int) -> None:
        ensure_llvm()
        import mitsuba as mi
        import sionna.rt as rt
        from sionna.rt import (
            Camera,
            ITURadioMaterial,
            PathSolver,
            PlanarArray,
            Receiver,
            SceneObject,
            Transmitter,
            load_scene,
        )

        self.cfg, self.n_ues, self.mi = cfg, n_ues, mi
        self.scene = load_scene(getattr(rt.scene, cfg.scene), merge_shapes=False)
        self.parked = [self._bbox(o) for n, o in self.scene.objects.items() if n.startswith("car_")]
        # A red car: the camera sees one distinct vehicle, as a BS camera tracking its UE would.
        mat = ITURadioMaterial("ue-car-metal", "metal", thickness=0.01, color=tuple(cfg.ue_color))
        self.cars = [SceneObject(fname=rt.scene.low_poly_car, name=f"ue_car_{k}", radio_material=mat)
                     for k in range(n_ues)]
        self.scene.edit(add=self.cars)
        self.scene.rx_array = PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
        self.rxs = [Receiver(f"ue_{k}", position=mi.Point3f(0.0, 0.0, ANTENNA_HEIGHT))
                    for k in range(n_ues)]
        bs = Transmitter("bs", position=mi.Point3f(*map(float, cfg.bs_position)),
                         look_at=mi.Point3f(*map(float, cfg.look_at)))
        self.scene.add(bs)
        for r in self.rxs:
            self.scene.add(r)
        cam_pos = (cfg.bs_position[0], cfg.bs_position[1], cfg.bs_position[2] + 0.5)
        self.camera = Camera(position=mi.Point3f(*map(float, cam_pos)),
                             look_at=mi.Point3f(*map(float, cfg.look_at)))
        self.solver = PathSolver()
        self._Planar = PlanarArray

    @staticmethod
    def _bbox(obj) -> tuple[float, float, float, float]:
        b = obj.mi_mesh.bbox()
        return float(b.min[0]), float(b.min[1]), float(b.max[0]), float(b.max[1])

    # ------------------------------------------------------------------ drops
    def free(self, x: float, y: float, taken: list[tuple[float, float]]) -> bool:
        """On the floor, off buildings and parked cars, not on another UE car."""
        c = self.cfg
        d = math.hypot(x - c.bs_position[0], y - c.bs_position[1])
        if not _inside(x, y, FLOOR, 0.0) or not c.min_distance <= d <= c.max_distance:
            return False
        if any(_inside(x, y, b, 1.5) for b in BUILDINGS) or any(_inside(x, y, b, 1.2) for b in self.parked):
            return False
        return all(math.hypot(x - u, y - v) > 6.0 for u, v in taken)

    def draw(self, rng: np.random.Generator, kind: str) -> Drop:
        """Poses for one solve. ``image``: one UE in the camera's view region (LOS-biased);
        ``wireless``: ``n_ues`` UEs anywhere on the streets within ``max_distance``."""
        c = self.cfg
        k = 1 if kind == "image" else self.n_ues
        taken: list[tuple[float, float]] = []
        while len(taken) < k:
            if kind == "image":
                box = c.view_regions[int(rng.choice(len(c.view_regions), p=c.view_weights))]
            else:
                box = FLOOR
            x, y = float(rng.uniform(box[0], box[2])), float(rng.uniform(box[1], box[3]))
            if self.free(x, y, taken):
                taken.append((x, y))
        xy = np.asarray(taken, np.float64)
        # Cars drive along the street they are on (main street: along x; cross streets: along y),
        # either way, with a few degrees of wander.
        along_x = np.abs(xy[:, 1]) < 9.0
        base = np.where(along_x, 0.0, np.pi / 2) + np.pi * rng.integers(0, 2, size=k)
        yaw = base + np.deg2rad(rng.uniform(-8, 8, size=k))
        return Drop(xy=xy, yaw=yaw)

    def place(self, drop: Drop) -> None:
        mi = self.mi
        far = 0
        for k in range(self.n_ues):
            if k < len(drop.xy):
                x, y, yaw = (float(v) for v in (*drop.xy[k], drop.yaw[k]))
            else:  # unused cars wait off the map, far from every path
                x, y, yaw = 500.0 + 20.0 * far, 500.0, 0.0
                far += 1
            self.cars[k].position = mi.Point3f(x, y, 0.0)
            self.cars[k].orientation = mi.Point3f(yaw, 0.0, 0.0)
            self.rxs[k].position = mi.Point3f(x, y, ANTENNA_HEIGHT)

    # ------------------------------------------------------------------ channels
    def solve(self, uplink: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """OFDM channels of every placed UE: ``h [n_ues, Nt, Nsc]`` complex64 (BS antennas x
        subcarriers, DL direction BS->UE or UL UE->BS), ``los [n_ues]`` and ``n_paths [n_ues]``."""
        from sionna.rt import subcarrier_frequencies

        c = self.cfg
        f = c.f_ul if uplink else c.f_dl
        self.scene.frequency = f
        # The physical array is fixed: element spacing is half a DL wavelength at every carrier.
        spacing = 0.5 * f / c.f_dl
        self.scene.tx_array = self._Planar(num_rows=1, num_cols=c.n_antennas, horizontal_spacing=spacing,
                                           vertical_spacing=spacing, pattern="tr38901", polarization="V")
        paths = self.solver(self.scene, max_depth=c.max_depth, los=True, specular_reflection=True,
                            diffuse_reflection=False, refraction=True, diffraction=True, synthetic_array=True,
                            samples_per_src=int(c.samples_per_src), seed=int(self._seed))
        freqs = subcarrier_frequencies(c.n_subcarriers, c.subcarrier_spacing)
        h = paths.cfr(frequencies=freqs, normalize_delays=True, reverse_direction=uplink, out_type="numpy")
        # DL: [rx, rx_ant, tx, tx_ant, t, f]; UL (reversed): [tx=UE.., ..] -> both to [UE, Nt, Nsc]
        h = np.asarray(h)
        # UL (reversed): [rx=BS, ant, tx=UE, 1, t, f]; DL: [rx=UE, 1, tx=BS, ant, t, f]
        h = h[0, :, :, 0, 0, :].transpose(1, 0, 2) if uplink else h[:, 0, 0, :, 0, :]
        valid = np.asarray(paths.valid.numpy())  # [rx, tx, paths] with a synthetic array
        inter = np.asarray(paths.interactions.numpy())  # [depth, rx, tx, paths]
        valid = valid.reshape(valid.shape[0], -1)
        direct = (inter == 0).all(axis=0).reshape(inter.shape[1], -1) & valid
        return h.astype(np.complex64), direct.any(axis=1), valid.sum(axis=1).astype(np.int32)

    _seed = 1

    def set_seed(self, seed: int) -> None:
        """The ray-launch seed of the next solves (so a block is a function of its seed)."""
        self._seed = int(seed) & 0x7FFFFFFF

    # ------------------------------------------------------------------ camera
    def render(self, lighting: float) -> np.ndarray:
        """The camera's RGB image, uint8 ``[H, W, 3]`` (sRGB)."""
        mi = self.mi
        c = self.cfg
        bmp = self.scene.render(camera=self.camera, resolution=(int(c.image_size[1]), int(c.image_size[0])),
                                num_samples=int(c.render_spp), fov=float(c.fov),
                                lighting_scale=float(lighting), return_bitmap=True, show_devices=False)
        bmp = bmp.convert(mi.Bitmap.PixelFormat.RGB, mi.Struct.Type.UInt8, srgb_gamma=True)
        return np.array(bmp, copy=True)
