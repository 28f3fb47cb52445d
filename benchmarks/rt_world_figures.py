"""Figures and statistics of the ray-traced street world (``rt-street-*`` datasets).

Reads one or more ray-traced dataset files (complete, or ``.partial`` files still being
written: only the ``n_written`` rows of each split are read, the file is opened read-only
without HDF5 file locking) and writes:

* ``rt_world_examples.png``: ~8 camera images, the UE car marked by projecting the visible
  part of its 3-D box (position, ``CAR_HALF``, yaw, height: see ``--car-centre-z``) through the
  camera's pinhole model
  (Sionna RT's ``Camera(position, look_at)`` with world z up and no roll, rendered by
  ``scene.render(fov=...)``: Mitsuba ``perspective`` with ``fov_axis='x'``, i.e. ``fov`` is the
  *horizontal* field of view), titled LOS/NLOS, ground distance to the BS and lighting;
* ``rt_world_map.png``: top view of the UE positions (image vs wireless samples, LOS vs
  NLOS), the BS, the camera's ground footprint and view cone, the buildings and view regions;
* ``rt_world_csi.png``: for 3 samples, ``|x_sf|`` (DL, 28 GHz) and ``|y_sf|`` (UL, 26 GHz)
  in dB and their angular-delay power (FFT over antennas, IFFT over subcarriers);
* a JSON of statistics per file and split: counts, LOS fraction, n_paths, distance and path
  gain quantiles, lighting range, DL/UL reciprocity measures (against a shuffled-pair
  baseline) and a check of the camera projection against the red car's pixels.

    .venv/bin/python benchmarks/rt_world_figures.py
    .venv/bin/python benchmarks/rt_world_figures.py --data data/generated/rt-street-image.h5.partial \\
        --data data/generated/rt-street-wireless.h5.partial --max-n 200 --out-dir /tmp/rt
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datagen.rt.config import RtConfig  # noqa: E402
from datagen.rt.world import BUILDINGS, CAR_HALF, FLOOR  # noqa: E402
from shared.camera import red_mask  # noqa: E402

DEFAULT_DATA = ROOT / "data" / "sample" / "rt-street-sample.h5"
# The UE car (sionna.rt.scene.low_poly_car): axis-aligned box 4.4 x 1.8 x 1.5 m, a body up to
# 0.75 m and a cabin above. Sionna RT's ``SceneObject.position`` is the centre of that box, and
# ``StreetWorld.place`` sets it to (x, y, 0): the body is under the floor and only the cabin
# (0 .. 0.75 m) shows in the images. ``--car-centre-z`` follows a change of ``place``
# (0.75 puts the car's wheels on the floor).
CAR_BOX_HEIGHT = 1.5
DEFAULT_CAR_CENTRE_Z = 0.0
CAMERA_ABOVE_BS = 0.5  # world.py: the camera is 0.5 m above the BS array
CHUNK = 32  # rows read and processed at a time
RED_MIN_PIXELS = 5  # fewer red pixels than this: the car counts as hidden
DELAY_TAPS_SHOWN = 32
ANGLE_OVERSAMPLE = 4


# --------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class PinholeCamera:
    """Sionna RT's camera as rendered by ``StreetWorld.render``: look-at with world z up,
    no roll, horizontal field of view ``fov`` (Mitsuba ``fov_axis='x'``), square pixels."""

    position: np.ndarray
    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray
    focal_px: float
    width: int
    height: int

    @classmethod
    def from_config(cls, cfg: RtConfig) -> PinholeCamera:
        pos = np.asarray(cfg.bs_position, np.float64) + np.array([0.0, 0.0, CAMERA_ABOVE_BS])
        fwd = np.asarray(cfg.look_at, np.float64) - pos
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        h, w = (int(v) for v in cfg.image_size)
        focal = 0.5 * w / math.tan(math.radians(float(cfg.fov)) / 2)
        return cls(pos, fwd, right, up, focal, w, h)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points ``[..., 3]`` -> pixel column ``u``, row ``v`` (0 = top-left corner of
        the image, pixel centres at +0.5) and depth along the optical axis."""
        d = np.asarray(pts, np.float64) - self.position
        z = d @ self.forward
        zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
        u = 0.5 * self.width + self.focal_px * (d @ self.right) / zs
        v = 0.5 * self.height - self.focal_px * (d @ self.up) / zs
        return u, v, z

    def ray(self, u: float, v: float) -> np.ndarray:
        """The world direction of pixel coordinate (u, v)."""
        x, y = (u - 0.5 * self.width) / self.focal_px, (0.5 * self.height - v) / self.focal_px
        r = self.forward + x * self.right + y * self.up
        return r / np.linalg.norm(r)


def car_z(centre_z: float) -> tuple[float, float]:
    """The visible (above-floor) height range of the UE car's box whose centre is at ``centre_z``."""
    return max(0.0, centre_z - CAR_BOX_HEIGHT / 2), max(0.0, centre_z + CAR_BOX_HEIGHT / 2)


def car_corners(x: float, y: float, yaw: float, centre_z: float) -> np.ndarray:
    """The 8 corners ``[8, 3]`` of the visible part of the UE car's box (heading ``yaw``)."""
    c, s = math.cos(yaw), math.sin(yaw)
    out = []
    for a in (-CAR_HALF[0], CAR_HALF[0]):
        for b in (-CAR_HALF[1], CAR_HALF[1]):
            for z in car_z(centre_z):
                out.append((x + c * a - s * b, y + s * a + c * b, z))
    return np.asarray(out)


def car_centre(x: float, y: float, centre_z: float) -> np.ndarray:
    """The centre of the visible part of the UE car."""
    return np.array([x, y, 0.5 * sum(car_z(centre_z))])


# --------------------------------------------------------------------------- reading
@dataclass
class SplitData:
    """The scalar fields of the rows read from one split (CSI and images stay on disk)."""

    file: str
    split: str
    n_total: int
    n_written: int
    rows: np.ndarray
    has_image: np.ndarray
    los: np.ndarray
    n_paths: np.ndarray
    position: np.ndarray
    yaw: np.ndarray
    lighting: np.ndarray
    extra: dict = field(default_factory=dict)


def open_h5(path: str | Path):
    import h5py

    # The generators hold their .partial files open for writing: no HDF5 file lock here.
    return h5py.File(path, "r", locking=False)


def read_meta(path: str | Path, max_n: int | None) -> tuple[dict, RtConfig, list[SplitData]]:
    with open_h5(path) as f:
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        cfg = RtConfig.from_dict(json.loads(attrs["config"]))
        splits = []
        for name in f:
            g = f[name]
            n_total = int(g["sample_id"].shape[0])
            n_written = int(g.attrs.get("n_written", n_total))
            n = n_written if max_n is None else min(n_written, int(max_n))
            sl = slice(0, n)
            splits.append(SplitData(
                file=str(path), split=name, n_total=n_total, n_written=n_written, rows=np.arange(n),
                has_image=g["has_image"][sl].astype(bool), los=g["los"][sl].astype(bool),
                n_paths=g["n_paths"][sl].astype(np.int64), position=g["position"][sl].astype(np.float64),
                yaw=g["yaw"][sl].astype(np.float64), lighting=g["lighting"][sl].astype(np.float64)))
    return attrs, cfg, splits


def ground_distance(cfg: RtConfig, pos: np.ndarray) -> np.ndarray:
    bs = np.asarray(cfg.bs_position[:2], np.float64)
    return np.hypot(pos[:, 0] - bs[0], pos[:, 1] - bs[1])


# --------------------------------------------------------------------------- CSI measures
def angle_delay(h: np.ndarray, taps: int | None = None) -> np.ndarray:
    """Power ``[..., Nt, taps]``: DFT over antennas (fftshifted), IDFT over subcarriers."""
    a = np.fft.fftshift(np.fft.fft(h, axis=-2), axes=-2)
    p = np.abs(np.fft.ifft(a, axis=-1)) ** 2
    return p if taps is None else p[..., :taps]


def reciprocity(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample DL/UL similarity of ``x``, ``y`` ``[n, Nt, Nsc]`` complex.

    * ``cov_corr``: |<R_x, R_y>_F| / (||R_x|| ||R_y||), R = H H^H / Nsc (spatial covariance);
    * ``aps_cos``: cosine similarity of the angular power spectra (4x oversampled DFT over the
      antennas, power summed over subcarriers);
    * ``pdp_cos``: cosine similarity of the power delay profiles (IDFT over subcarriers, power
      summed over antennas);
    * ``inst_corr``: |x^H y| / (||x|| ||y||), the instantaneous complex correlation;
    * ``ul_dl_power_db``: 10 log10(||y||^2 / ||x||^2).
    """
    x = x.astype(np.complex128)
    y = y.astype(np.complex128)
    nsc = x.shape[-1]
    rx = x @ x.conj().swapaxes(-1, -2) / nsc
    ry = y @ y.conj().swapaxes(-1, -2) / nsc
    eps = 1e-300

    def nrm(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return np.sqrt(np.sum(np.abs(a) ** 2, axis=axes))

    cov = np.abs(np.sum(rx * ry.conj(), axis=(-1, -2))) / (nrm(rx, (-1, -2)) * nrm(ry, (-1, -2)) + eps)
    nfft = ANGLE_OVERSAMPLE * x.shape[-2]
    ax = (np.abs(np.fft.fft(x, n=nfft, axis=-2)) ** 2).sum(-1)
    ay = (np.abs(np.fft.fft(y, n=nfft, axis=-2)) ** 2).sum(-1)
    aps = np.sum(ax * ay, -1) / (np.linalg.norm(ax, axis=-1) * np.linalg.norm(ay, axis=-1) + eps)
    dx = (np.abs(np.fft.ifft(x, axis=-1)) ** 2).sum(-2)
    dy = (np.abs(np.fft.ifft(y, axis=-1)) ** 2).sum(-2)
    pdp = np.sum(dx * dy, -1) / (np.linalg.norm(dx, axis=-1) * np.linalg.norm(dy, axis=-1) + eps)
    px = np.sum(np.abs(x) ** 2, axis=(-1, -2))
    py = np.sum(np.abs(y) ** 2, axis=(-1, -2))
    inst = np.abs(np.sum(x.conj() * y, axis=(-1, -2))) / (np.sqrt(px * py) + eps)
    with np.errstate(divide="ignore"):
        ratio = 10 * np.log10(py / np.maximum(px, eps))
    return {"cov_corr": cov, "aps_cos": aps, "pdp_cos": pdp, "inst_corr": inst, "ul_dl_power_db": ratio,
            "dl_gain_db": 10 * np.log10(np.maximum(px / x[0].size, eps))}


def split_measures(path: str | Path, sd: SplitData, cam: PinholeCamera,
                   car_centre_z: float) -> dict[str, np.ndarray]:
    """Reciprocity measures of every row read, a shuffled-pair baseline (DL of row i against the
    UL of row i+n/2 mod n) and the projection check of the image rows. Reads in chunks."""
    n = len(sd.rows)
    out: dict[str, list[np.ndarray]] = {}
    perm = (np.arange(n) + n // 2) % n if n > 1 else np.arange(n)
    with open_h5(path) as f:
        g = f[sd.split]
        for s in range(0, n, CHUNK):
            sl = slice(s, min(n, s + CHUNK))
            x, y = g["x_sf"][sl], g["y_sf"][sl]
            for k, v in reciprocity(x, y).items():
                out.setdefault(k, []).append(v)
            idx = perm[sl]
            order = np.argsort(idx)
            y_other = g["y_sf"][np.sort(idx)][np.argsort(order)]
            base = reciprocity(x, y_other)
            out.setdefault("cov_corr_shuffled", []).append(base["cov_corr"])
            out.setdefault("aps_cos_shuffled", []).append(base["aps_cos"])
            out.setdefault("pdp_cos_shuffled", []).append(base["pdp_cos"])
        img_rows = np.flatnonzero(sd.has_image)
        red_n, err, du, dv = [], [], [], []
        for s in range(0, len(img_rows), CHUNK):
            rows = img_rows[s:s + CHUNK]
            imgs = g["image"][rows[0]:rows[-1] + 1][rows - rows[0]]
            for r, im in zip(rows, imgs, strict=True):
                m = red_mask(im)
                red_n.append(int(m.sum()))
                cx, cy = sd.position[r, 0], sd.position[r, 1]
                u, v, _ = cam.project(car_centre(cx, cy, car_centre_z))
                if m.sum() >= RED_MIN_PIXELS:
                    vv, uu = np.nonzero(m)
                    du.append(float(uu.mean() + 0.5 - u))
                    dv.append(float(vv.mean() + 0.5 - v))
                else:
                    du.append(np.nan)
                    dv.append(np.nan)
                err.append(math.hypot(du[-1], dv[-1]))
    res = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    res["red_pixels"] = np.asarray(red_n, np.int64)
    res["proj_err_px"] = np.asarray(err, np.float64)
    res["proj_du_px"] = np.asarray(du, np.float64)
    res["proj_dv_px"] = np.asarray(dv, np.float64)
    return res


def q(a: np.ndarray, qs=(0, 10, 50, 90, 100), nd: int = 3) -> dict[str, float] | None:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return None
    return {f"p{k}": round(float(v), nd) for k, v in zip(qs, np.percentile(a, qs), strict=True)}


def mean(a: np.ndarray, nd: int = 4) -> float | None:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return round(float(a.mean()), nd) if a.size else None


def split_stats(cfg: RtConfig, sd: SplitData, m: dict[str, np.ndarray], car_centre_z: float) -> dict:
    dist = ground_distance(cfg, sd.position)
    kinds = {"all": np.ones(len(sd.rows), bool), "image": sd.has_image, "wireless": ~sd.has_image}
    out: dict = {"n_total": sd.n_total, "n_written": sd.n_written, "n_read": len(sd.rows),
                 "n_image": int(sd.has_image.sum()), "n_wireless": int((~sd.has_image).sum())}
    for kind, sel in kinds.items():
        if not sel.any():
            continue
        out[kind] = {
            "n": int(sel.sum()),
            "los_fraction": round(float(sd.los[sel].mean()), 4),
            "n_paths": q(sd.n_paths[sel], nd=1),
            "n_paths_los": q(sd.n_paths[sel & sd.los], nd=1),
            "n_paths_nlos": q(sd.n_paths[sel & ~sd.los], nd=1),
            "distance_m": q(dist[sel], nd=1),
            "dl_gain_db": q(m["dl_gain_db"][sel], nd=1),
            "ul_minus_dl_power_db": q(m["ul_dl_power_db"][sel], nd=2),
            "reciprocity": {
                "cov_corr_mean": mean(m["cov_corr"][sel]),
                "cov_corr_shuffled_mean": mean(m["cov_corr_shuffled"][sel]),
                "aps_cos_mean": mean(m["aps_cos"][sel]),
                "aps_cos_shuffled_mean": mean(m["aps_cos_shuffled"][sel]),
                "pdp_cos_mean": mean(m["pdp_cos"][sel]),
                "pdp_cos_shuffled_mean": mean(m["pdp_cos_shuffled"][sel]),
                "inst_corr_mean": mean(m["inst_corr"][sel]),
                "cov_corr_los_mean": mean(m["cov_corr"][sel & sd.los]),
                "cov_corr_nlos_mean": mean(m["cov_corr"][sel & ~sd.los]),
            },
        }
    if sd.has_image.any():
        light = sd.lighting[sd.has_image]
        red = m["red_pixels"]
        err = m["proj_err_px"]
        out["image"]["lighting"] = {"min": round(float(light.min()), 3), "max": round(float(light.max()), 3),
                                    "mean": round(float(light.mean()), 3)}
        vis = red >= RED_MIN_PIXELS
        los_img = sd.los[sd.has_image]
        out["image"]["camera"] = {
            "car_visible_fraction": round(float(vis.mean()), 4),
            "car_visible_fraction_los": round(float(vis[los_img].mean()), 4) if los_img.any() else None,
            "car_visible_fraction_nlos": round(float(vis[~los_img].mean()), 4) if (~los_img).any() else None,
            "red_pixels": q(red, nd=0),
            "projection_error_px": q(err, nd=1),
            "projection_bias_px": {"du_mean": mean(m["proj_du_px"], 2), "dv_mean": mean(m["proj_dv_px"], 2)},
            "note": f"car visible = at least {RED_MIN_PIXELS} red pixels (each with >= 2 red neighbours); "
                    "projection error = distance from the projected centre of the car's visible box "
                    f"(box centre z = {car_centre_z:g} m, visible z {car_z(car_centre_z)}) to the red "
                    "pixels' centroid, bias = mean centroid - projection (u right, v down)",
        }
    return out


# --------------------------------------------------------------------------- figures
def fig_examples(items: list[tuple], out: Path, car_centre_z: float) -> None:
    """items: (image, cam, x, y, yaw, los, dist, lighting, label)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    n = len(items)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, cam, x, y, yaw, los, dist, light, label) in zip(axes.ravel(), items, strict=False):
        ax.imshow(img, interpolation="nearest", extent=(0, img.shape[1], img.shape[0], 0))
        u, v, z = cam.project(car_corners(x, y, yaw, car_centre_z))
        if (z > 0).all():
            u0, u1, v0, v1 = u.min() - 2, u.max() + 2, v.min() - 2, v.max() + 2
            ax.add_patch(Rectangle((u0, v0), u1 - u0, v1 - v0, fill=False, ec="yellow", lw=1.3))
            uc, vc, _ = cam.project(car_centre(x, y, car_centre_z))
            ax.add_patch(Circle((float(uc), float(vc)), max(6.0, 0.9 * (u1 - u0)), fill=False, ec="cyan",
                                lw=0.8, ls="--"))
        ax.set_xlim(0, img.shape[1])
        ax.set_ylim(img.shape[0], 0)
        head = f"{'LOS' if los else 'NLOS'}, d = {dist:.0f} m, light {light:.2f}"
        ax.set_title(f"{head}\n{label}", fontsize=8.5)
    fig.suptitle("BS camera images (192 x 256): UE car box projected from its position "
                 "(yellow), car-centre circle (cyan)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def footprint(cam: PinholeCamera, z: float, far: float) -> np.ndarray:
    """The camera's image frustum on the plane at height ``z`` (clipped at range ``far``)."""
    pts = []
    for u, v in ((0, cam.height), (cam.width, cam.height), (cam.width, 0), (0, 0)):
        r = cam.ray(u, v)
        t = (z - cam.position[2]) / r[2] if r[2] < -1e-6 else np.inf
        hor = np.hypot(r[0], r[1])
        t = min(t, far / max(hor, 1e-9))
        pts.append(cam.position[:2] + t * r[:2])
    return np.asarray(pts)


def fig_map(cfg: RtConfig, data: list[SplitData], out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    cam = PinholeCamera.from_config(cfg)
    fig, ax = plt.subplots(figsize=(12.5, 6.4))
    ax.add_patch(Rectangle(FLOOR[:2], FLOOR[2] - FLOOR[0], FLOOR[3] - FLOOR[1], fill=False, ec="0.6", lw=0.8,
                           ls=":"))
    for k, b in enumerate(BUILDINGS):
        ax.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fc="0.82", ec="0.45", lw=0.8,
                               label="buildings" if k == 0 else None))
    for k, b in enumerate(cfg.view_regions):
        lab = f"image view regions (weights {list(cfg.view_weights)})" if k == 0 else None
        ax.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, ec="tab:purple", lw=1.0, ls="--",
                               label=lab))
    fp = footprint(cam, 0.0, cfg.max_distance + 60)
    ax.add_patch(Polygon(fp, closed=True, fc="gold", alpha=0.15, ec="goldenrod", lw=1.0,
                         label=f"camera frustum on the ground (fov {cfg.fov:g} deg horiz., no occlusion)"))
    bs = np.asarray(cfg.bs_position)
    far = 200.0
    az = math.atan2(cam.forward[1], cam.forward[0])
    for s in (-1, 1):
        a = az + s * math.radians(cfg.fov) / 2
        ax.plot([bs[0], bs[0] + far * math.cos(a)], [bs[1], bs[1] + far * math.sin(a)], color="goldenrod",
                lw=0.8, ls="-.")
    pos = np.concatenate([d.position for d in data]) if data else np.zeros((0, 3))
    img = np.concatenate([d.has_image for d in data]) if data else np.zeros(0, bool)
    los = np.concatenate([d.los for d in data]) if data else np.zeros(0, bool)
    for kind, sel_k, mk in (("image", img, "o"), ("wireless", ~img, "^")):
        for tag, sel_l, col in (("LOS", los, "tab:green"), ("NLOS", ~los, "tab:red")):
            sel = sel_k & sel_l
            if sel.any():
                ax.scatter(pos[sel, 0], pos[sel, 1], s=16 if kind == "image" else 14, marker=mk, c=col,
                           alpha=0.8 if kind == "image" else 0.55, lw=0,
                           label=f"{kind} samples, {tag} ({int(sel.sum())})")
    ax.scatter([bs[0]], [bs[1]], marker="*", s=220, c="k", zorder=5,
               label=f"BS + camera ({bs[0]:g}, {bs[1]:g}, {bs[2]:g} m)")
    ax.plot([bs[0], cfg.look_at[0]], [bs[1], cfg.look_at[1]], "k:", lw=0.8)
    ax.scatter([cfg.look_at[0]], [cfg.look_at[1]], marker="x", c="k", s=30, label="look_at")
    ax.set_xlim(FLOOR[0] - 3, FLOOR[2] + 3)
    ax.set_ylim(FLOOR[1] - 3, FLOOR[3] + 3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    files = sorted({Path(d.file).name for d in data})
    ax.set_title(f"rt-street world, top view: {len(pos)} UE positions from {', '.join(files)}", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


def fig_csi(cfg: RtConfig, samples: list[tuple], out: Path) -> None:
    """samples: (x, y, title)."""
    import matplotlib.pyplot as plt

    n = len(samples)
    fig, axes = plt.subplots(n, 4, figsize=(17, 2.9 * n + 0.6), squeeze=False)
    tap_ns = 1e9 / (cfg.n_subcarriers * cfg.subcarrier_spacing)
    for r, (x, y, title) in enumerate(samples):
        ref = max(np.abs(x).max(), np.abs(y).max())
        for c, (h, name) in enumerate(((x, f"|x_sf| DL {cfg.f_dl / 1e9:g} GHz"),
                                       (y, f"|y_sf| UL {cfg.f_ul / 1e9:g} GHz"))):
            ax = axes[r, c]
            im = ax.imshow(20 * np.log10(np.abs(h) / ref + 1e-12), aspect="auto", cmap="viridis", vmin=-40,
                           vmax=0, interpolation="nearest")
            ax.set_title(f"{title}: {name}", fontsize=8.5)
            ax.set_xlabel("subcarrier")
            ax.set_ylabel("BS antenna")
            fig.colorbar(im, ax=ax, pad=0.01, label="dB")
        ad = [angle_delay(h.astype(np.complex128), DELAY_TAPS_SHOWN) for h in (x, y)]
        pref = max(a.max() for a in ad)
        nt = x.shape[0]
        for c, (a, name) in enumerate(((ad[0], "DL"), (ad[1], "UL")), start=2):
            ax = axes[r, c]
            ext = (-0.5 * tap_ns, (DELAY_TAPS_SHOWN - 0.5) * tap_ns, nt / 2 - 0.5, -nt / 2 - 0.5)
            im = ax.imshow(10 * np.log10(a / pref + 1e-12), aspect="auto", cmap="magma", vmin=-40, vmax=0,
                           interpolation="nearest", extent=ext)
            ax.set_title(f"{title}: angular-delay power, {name}", fontsize=8.5)
            ax.set_xlabel("delay (ns, relative to first path)")
            ax.set_ylabel("angle bin (antenna DFT)")
            fig.colorbar(im, ax=ax, pad=0.01, label="dB")
    fig.suptitle("DL and UL CSI of the same geometry at 28 / 26 GHz (array spaced half a DL wavelength: "
                 "UL angles land at 26/28 of the DL bin offsets); dB relative to the sample's peak",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def pick_examples(cands: list[tuple], k: int) -> list[tuple]:
    """cands: (file, split, row, los, dist). Up to a third NLOS, the rest LOS spread in distance."""
    los = sorted([c for c in cands if c[3]], key=lambda c: c[4])
    nlos = sorted([c for c in cands if not c[3]], key=lambda c: c[4])
    n_nlos = min(len(nlos), max(1, k // 3) if nlos else 0)
    n_los = min(len(los), k - n_nlos)
    n_nlos = min(len(nlos), k - n_los)

    def spread(lst: list, m: int) -> list:
        if m <= 0:
            return []
        idx = np.unique(np.round(np.linspace(0, len(lst) - 1, m)).astype(int))
        return [lst[i] for i in idx]

    return spread(los, n_los) + spread(nlos, n_nlos)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", help=f"dataset file (repeatable; default {DEFAULT_DATA})")
    ap.add_argument("--out-dir", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--stats", default=str(ROOT / "docs" / "bench" / "rt_world_stats.json"))
    ap.add_argument("--max-n", type=int, default=None, help="at most this many rows per split (default all "
                    "written rows)")
    ap.add_argument("--n-examples", type=int, default=8)
    ap.add_argument("--car-centre-z", type=float, default=DEFAULT_CAR_CENTRE_Z,
                    help="height of the UE car's bounding-box centre (default 0: StreetWorld.place puts it "
                    "at z = 0, half the car below the floor; 0.75 = wheels on the floor)")
    a = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")

    paths = [Path(p) for p in (a.data or [DEFAULT_DATA])]
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    stats: dict = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "max_n": a.max_n,
                   "car_centre_z": a.car_centre_z, "files": {}}
    all_data: list[SplitData] = []
    cfgs: dict[str, RtConfig] = {}
    cands: list[tuple] = []
    measures: dict[tuple[str, str], dict] = {}
    for p in paths:
        attrs, cfg, splits = read_meta(p, a.max_n)
        cfgs[str(p)] = cfg
        cam = PinholeCamera.from_config(cfg)
        fs: dict = {"profile": attrs.get("profile"), "dataset_id": attrs.get("dataset_id"),
                    "complete": bool(attrs.get("complete", False)), "created": attrs.get("created"),
                    "samples_per_src": int(cfg.samples_per_src), "max_depth": int(cfg.max_depth),
                    "splits": {}}
        for sd in splits:
            if len(sd.rows) == 0:
                fs["splits"][sd.split] = {"n_total": sd.n_total, "n_written": sd.n_written, "n_read": 0}
                continue
            m = split_measures(p, sd, cam, a.car_centre_z)
            measures[(str(p), sd.split)] = m
            fs["splits"][sd.split] = split_stats(cfg, sd, m, a.car_centre_z)
            all_data.append(sd)
            dist = ground_distance(cfg, sd.position)
            for r in np.flatnonzero(sd.has_image):
                cands.append((str(p), sd.split, int(r), bool(sd.los[r]), float(dist[r])))
        try:
            key = str(p.resolve().relative_to(ROOT))
        except ValueError:
            key = str(p)
        stats["files"][key] = fs
        read = ", ".join(f"{s}: {v.get('n_read', 0)}/{v['n_total']}" for s, v in fs["splits"].items())
        print(f"{p}: read {read}")

    # Figure 1: camera examples.
    chosen = pick_examples(cands, a.n_examples)
    items = []
    for fpath, split, r, los, dist in chosen:
        sd = next(d for d in all_data if d.file == fpath and d.split == split)
        with open_h5(fpath) as f:
            img = f[split]["image"][r]
        cam = PinholeCamera.from_config(cfgs[fpath])
        items.append((img, cam, sd.position[r, 0], sd.position[r, 1], sd.yaw[r], los, dist, sd.lighting[r],
                      f"{Path(fpath).name.split('.')[0]} {split}[{r}] ({sd.position[r, 0]:.0f}, "
                      f"{sd.position[r, 1]:.0f})"))
    if items:
        fig_examples(items, out_dir / "rt_world_examples.png", a.car_centre_z)

    # Figure 2: map (camera of the first file).
    fig_map(cfgs[str(paths[0])], all_data, out_dir / "rt_world_map.png")

    # Figure 3: CSI of 3 samples from the first file with data: a LOS image sample (median
    # distance), an NLOS sample, a wireless sample.
    picks: list[tuple[str, str, int, str]] = []
    for sd in all_data:
        if len(picks) >= 3:
            break
        cfg = cfgs[sd.file]
        dist = ground_distance(cfg, sd.position)
        used = {(p[0], p[1], p[2]) for p in picks}

        def add(sel: np.ndarray, what: str, sd=sd, dist=dist, used=used) -> None:
            rows = np.flatnonzero(sel)
            rows = [r for r in rows if (sd.file, sd.split, int(r)) not in used]
            if rows and len(picks) < 3 and what not in {p[3].split(",")[0] for p in picks}:
                r = int(rows[np.argsort(dist[rows])[len(rows) // 2]])
                picks.append((sd.file, sd.split, r, f"{what}, {'LOS' if sd.los[r] else 'NLOS'} "
                              f"d={dist[r]:.0f} m, {sd.n_paths[r]} paths"))
                used.add((sd.file, sd.split, r))

        add(sd.has_image & sd.los, "image")
        add(~sd.los, "nlos")
        add(~sd.has_image & sd.los, "wireless")
    csi_samples = []
    for fpath, split, r, title in picks:
        with open_h5(fpath) as f:
            csi_samples.append((f[split]["x_sf"][r], f[split]["y_sf"][r], f"{split}[{r}] {title}"))
    if csi_samples:
        fig_csi(cfgs[picks[0][0]], csi_samples, out_dir / "rt_world_csi.png")

    stats["figures"] = {"examples": [f"{Path(c[0]).name} {c[1]}[{c[2]}]" for c in chosen],
                        "csi": [f"{Path(p[0]).name} {p[1]}[{p[2]}]" for p in picks]}
    stats["measures"] = {
        "distance_m": "ground (x, y) distance from the BS",
        "dl_gain_db": "10 log10 mean |x_sf|^2 (path gain, unnormalized)",
        "cov_corr": "|<R_dl, R_ul>_F| / (||R_dl||_F ||R_ul||_F), R = H H^H / Nsc the 32 x 32 spatial "
                    "covariance",
        "aps_cos": "cosine similarity of DL / UL angular power spectra (128-point DFT over antennas, "
                   "power summed over subcarriers)",
        "pdp_cos": "cosine similarity of DL / UL power delay profiles (576-point IDFT, summed over antennas)",
        "inst_corr": "|x^H y| / (||x|| ||y||), instantaneous complex DL/UL correlation",
        "*_shuffled": "the same with the UL of another sample of the split (row i + n/2): the no-reciprocity "
                      "baseline",
        "ul_minus_dl_power_db": "10 log10 ||y_sf||^2 / ||x_sf||^2",
    }
    stats["seconds"] = round(time.time() - t0, 1)
    sp = Path(a.stats)
    sp.parent.mkdir(parents=True, exist_ok=True)
    sp.write_text(json.dumps(stats, indent=1) + "\n")
    print(f"wrote {out_dir}/rt_world_{{examples,map,csi}}.png and {sp} in {stats['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
