"""What the BS reads off its camera image without learning it: the UE car's box.

The ray-traced world paints the UE car red (``ue_color`` 0.8, 0.05, 0.05) and nothing else as
saturated; :func:`red_mask` finds its pixels (median 1 pixel from the projected car centre,
docs/rt_world.md) and :func:`car_box_features` turns them into 8 numbers: a detector's output
(visible flag, centroid, bounding box, size) that the ``box`` fusion branch of the
``multimodal`` family feeds to the BS refiner. numpy only (the BS computes them per report).
"""

from __future__ import annotations

import numpy as np

N_BOX_FEATURES = 8
MIN_PIXELS = 5  # fewer red pixels than this: the car is hidden (NLOS) or too far to tell


def red_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of the red UE car in ``uint8 [H, W, 3]``: red well above green and blue, with
    at least 2 such pixels among the 8 neighbours (drops the isolated render-noise pixels of the
    red-brown facades)."""
    x = img.astype(np.int32)
    m = (x[..., 0] > 2 * x[..., 1] + 20) & (x[..., 0] > 2 * x[..., 2] + 20)
    p = np.pad(m, 1).astype(np.int32)
    h, w = m.shape
    nb = sum(p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - m
    return m & (nb >= 2)


def car_box_features(img: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``float32 [8]``: visible (1/0), centroid u / W, v / H, box u0 / W,
    u1 / W, v0 / H, v1 / H, log(1 + pixels) / 8; all zero when the car is not seen."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"camera image must be uint8 [H, W, 3], got {img.dtype} {list(img.shape)}")
    m = red_mask(img)
    n = int(m.sum())
    if n < MIN_PIXELS:
        return np.zeros(N_BOX_FEATURES, np.float32)
    h, w = m.shape
    vv, uu = np.nonzero(m)
    return np.array([1.0, uu.mean() / w, vv.mean() / h, uu.min() / w, uu.max() / w, vv.min() / h,
                     vv.max() / h, np.log1p(n) / 8], np.float32)


def car_box_batch(images: np.ndarray) -> np.ndarray:
    """``uint8 [B, H, W, 3]`` -> ``float32 [B, 8]``."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"camera images must be uint8 [B, H, W, 3], got {images.dtype} {list(images.shape)}")
    if len(images) == 0:
        return np.zeros((0, N_BOX_FEATURES), np.float32)
    return np.stack([car_box_features(im) for im in images])
