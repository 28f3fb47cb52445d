"""In-process evaluation of the semantic image link, with exactly the pieces the services run
(``ImageTransmitter`` at the BS, ``shared.mimo`` in the emulator, ``ImageReceiver`` at the UE),
and the separate source-channel coding reference (JPEG + the MIMO capacity).

Every condition draws its channels from the pool's test split and its noise from a generator
keyed by (seed, size, SNR): all models see the same H, the same pilots noise and the same data
noise at a condition, so their differences are the models'.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared import metrics, mimo


def test_images(path: str | Path, n: int | None = None, split: str = "test") -> np.ndarray:
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        g = f[split]
        done = int(g.attrs["done"]) if "done" in g.attrs else len(g["image"])
        return g["image"][: done if n is None else min(n, done)]


def shard_test_images(merged: str | Path, n: int) -> np.ndarray:
    """Test images of a corpus, from the merged file or (while rendering) its shards, in index
    order."""
    p = Path(merged)
    if p.is_file():
        return test_images(p, n)
    import h5py

    shards = sorted(p.parent.glob(f"{p.stem}.shard*of*.h5"))
    idx, imgs = [], []
    for s in shards:
        with h5py.File(s, "r", locking=False) as f:
            g = f["test"]
            done = int(g.attrs["done"])
            idx.append(g["index"][:done])
            imgs.append(g["image"][:done])
    order = np.argsort(np.concatenate(idx))
    return np.concatenate(imgs)[order][:n]


@dataclass
class Condition:
    n: int  # MIMO size (Nt = Nr)
    snr_db: float
    csi: str  # "perfect" | "feedback" | "other" (another image's fed-back H) | "none"
    bits: int = 0  # feedback bits per real (0 for perfect / none)
    estimator: str = "npn"  # the UE's estimator: "npn" | "ls"

    @property
    def label(self) -> str:
        return self.csi if self.csi != "feedback" else f"feedback {self.bits} b/real"


def draws(pool: np.ndarray, count: int, n: int, snr_db: float, seed: int) -> dict[str, np.ndarray]:
    """Channel, pilot observation and noise generator of one condition (same for every model)."""
    rng = np.random.default_rng([seed, n, int(round(snr_db * 10)) + 1000])
    h = pool[rng.integers(0, len(pool), size=count)]
    snr = np.full(count, snr_db, np.float32)
    y_p = mimo.sound(h, snr, rng)
    return {"h": h, "snr": snr, "y_p": y_p, "noise_seed": int(rng.integers(0, 2**31))}


def feedback(h_e: np.ndarray, bits: int) -> np.ndarray:
    """What the BS gets back: each matrix through the real quantizer and its bitstream."""
    n = h_e.shape[1]
    out = np.empty_like(h_e)
    for i, m in enumerate(h_e):
        payload, nb = mimo.quantize_h(m, bits)
        out[i] = mimo.dequantize_h(payload, nb, n, n, bits)
    return out


def run_model(
    tx: Any,
    rx: Any,
    images: np.ndarray,
    d: dict[str, np.ndarray],
    cond: Condition,
    ratio: float | None = None,
) -> dict[str, Any]:
    """Transmit ``images`` over one condition's draws; metrics per image."""
    h, snr = d["h"], d["snr"]
    h_e = rx.estimate(d["y_p"], snr, refine=cond.estimator == "npn")
    fb = feedback(h_e, cond.bits) if cond.bits else h_e
    # "other": the CSI of another image's channel, fed back the same way (is H used at all?)
    h_tx = {"perfect": h, "feedback": fb, "other": np.roll(fb, 1, axis=0), "none": None}[cond.csi]
    if not tx.uses_csi:
        h_tx = None
    rng = np.random.default_rng(d["noise_seed"])
    out, ratios = [], []
    for s in range(0, len(images), 50):
        sl = slice(s, s + 50)
        x = tx.encode(images[sl], None if h_tx is None else h_tx[sl], snr[sl], nt=cond.n, ratio=ratio)
        if tx.uses_csi and tx.last_ratio is not None:
            ratios.append(tx.last_ratio)
        y = mimo.propagate(h[sl], x, snr[sl], rng)
        out.append(rx.decode(y, h_e[sl], snr[sl]))
    rec = np.concatenate(out)
    est = np.sum(np.abs(h_e - h) ** 2, (1, 2)) / np.sum(np.abs(h) ** 2, (1, 2))
    return {
        "psnr": metrics.psnr(images, rec),
        "msssim": metrics.ms_ssim(images, rec),
        "mask_ratio": float(np.mean(np.concatenate(ratios))) if ratios else None,
        "est_nmse_db": float(10 * np.log10(np.mean(est))),
        "recon": rec,
    }


# --------------------------------------------------------------------------- separate coding
def capacity_bits(h: np.ndarray, snr_db: np.ndarray, channel_uses: int) -> np.ndarray:
    """Bits the MIMO channel carries in ``channel_uses`` uses with the transmitter's equal-power
    streams (each stream at unit power, the link's convention): ``n log2 det(I + H H^H / s2)``."""
    s2 = mimo.noise_var(snr_db)[:, None, None]
    g = np.eye(h.shape[1]) + (h @ h.conj().transpose(0, 2, 1)) / s2
    return channel_uses * np.real(np.linalg.slogdet(g)[1]) / np.log(2)


def jpeg_split(img: np.ndarray, quality: int) -> tuple[bytes, bytes]:
    """A baseline JPEG at ``quality`` split into (headers, scan data): the headers (quantization
    and Huffman tables for this quality) are known at both ends, the scan is what is sent."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), optimize=False, subsampling=2)
    data = buf.getvalue()
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    return data[:start], data[start:-2]  # minus the EOI marker


def jpeg_join(header: bytes, scan: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(header + scan + b"\xff\xd9")).convert("RGB"))


def jpeg_payload_bits(img: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    """(scan bits, decoded image) of a baseline JPEG at ``quality`` (see :func:`jpeg_split`)."""
    head, scan = jpeg_split(img, quality)
    return 8 * len(scan), jpeg_join(head, scan)


QUALITIES = (1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95)


def jpeg_capacity(images: np.ndarray, h: np.ndarray, snr_db: np.ndarray, channel_uses: int) -> dict[str, Any]:
    """The best JPEG quality whose scan fits the channel's capacity for each image; when none
    fits, the receiver has nothing and shows mid-grey (the cliff)."""
    budget = capacity_bits(h, snr_db, channel_uses)
    rec = np.empty_like(images)
    fits = np.zeros(len(images), bool)
    for i, img in enumerate(images):
        best = None
        for q in QUALITIES:
            nb, dec = jpeg_payload_bits(img, q)
            if nb <= budget[i]:
                best = dec
            else:
                break
        fits[i] = best is not None
        rec[i] = best if best is not None else 128
    return {
        "psnr": metrics.psnr(images, rec),
        "msssim": metrics.ms_ssim(images, rec),
        "outage": float(1 - fits.mean()),
        "capacity_bits_mean": float(budget.mean()),
        "recon": rec,
    }
