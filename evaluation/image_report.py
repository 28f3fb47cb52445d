"""The RESULTS.md section of the semantic image link's bundles (bundles whose UE half is an
image receiver: ``ue.config.image_size``): each one in-process with the pieces the services run
(``evaluation.image_link.run_model``) on the test images of the rendered corpus (or the
committed sample), every MIMO size it serves, CSI fed back at 6 bits per real, next to JPEG +
the MIMO capacity on the same draws. The full benchmark (through the services, the LDPC
reference, the CSI-quality and complexity tables) is docs/image_link.md. Nothing here names a
family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.bundle import Bundle

IMAGE_FILES = (Path("data/generated/rt-images-64.h5"), Path("data/sample/rt-images-sample.h5"))
POOL = Path("data/sample/mimo-cdl.h5")
SNRS = (0.0, 10.0, 20.0)
BITS = 6
SEED = 5


def image_bundles(bundles: list[Bundle]) -> list[Bundle]:
    return [b for b in bundles if "image_size" in (b.manifest.ue.config or {})]


def image_file() -> Path | None:
    return next((p for p in IMAGE_FILES if p.is_file()), None)


def evaluate_images(group: list[Bundle], images: np.ndarray, pool: Path) -> list[dict[str, Any]]:
    from datagen.mimo import load_pool
    from evaluation.image_link import Condition, draws, jpeg_capacity, run_model
    from models.lcfsc.bs import ImageTransmitter
    from shared.image_rx import ImageReceiver

    nodes = {
        b.model_id: (ImageTransmitter.from_bundle(b, "cpu"), ImageReceiver.from_bundle(b)) for b in group
    }
    sizes = sorted({n for tx, _ in nodes.values() for n in tx.sizes})
    rows = []
    for n in sizes:
        hs = load_pool(pool, n, "test")
        for snr in SNRS:
            d = draws(hs, len(images), n, snr, SEED)
            for model, (tx, rx) in nodes.items():
                if n not in tx.sizes:
                    continue
                r = run_model(tx, rx, images, d, Condition(n, snr, "feedback", BITS))
                rows.append(
                    {
                        "model": model,
                        "n": n,
                        "snr_db": snr,
                        "psnr_db": float(np.mean(r["psnr"])),
                        "msssim": float(np.mean(r["msssim"])),
                    }
                )
            tx0 = next(iter(nodes.values()))[0]
            r = jpeg_capacity(images, d["h"], d["snr"], tx0.n_symbols // n)
            rows.append(
                {
                    "model": "JPEG + capacity (bound)",
                    "n": n,
                    "snr_db": snr,
                    "psnr_db": float(np.mean(r["psnr"])),
                    "msssim": float(np.mean(r["msssim"])),
                }
            )
    return rows


def render_images(rows: list[dict[str, Any]], source: Path, pool: Path, k: int) -> list[str]:
    sizes = sorted({r["n"] for r in rows})
    head = " | ".join(f"{n}x{n} {s:g} dB" for n in sizes for s in SNRS)
    out = [
        "## Semantic image link (downlink images over MIMO, CSI fed back)",
        "",
        f"Every image-link bundle in-process with the pieces the services run, on the first {k} test "
        f"images of `{source}` (an unseen city), channels from the test split of `{pool}`, CSI estimated "
        f"by the UE (LS + its denoiser) and fed back at {BITS} bits per real; the same draws for every "
        "row (seed 5). PSNR in dB, MS-SSIM below. Through the services, with the LDPC reference, the "
        "CSI-quality and complexity tables: docs/image_link.md.",
        "",
        f"| model | {head} |",
        "|---|" + "---|" * (len(sizes) * len(SNRS)),
    ]
    models = list(dict.fromkeys(r["model"] for r in rows))
    for key, nd in (("psnr_db", 2), ("msssim", 4)):
        if key == "msssim":
            out += ["", f"| model (MS-SSIM) | {head} |", "|---|" + "---|" * (len(sizes) * len(SNRS))]
        for m in models:
            cells = []
            for n in sizes:
                for s in SNRS:
                    r = next((r for r in rows if r["model"] == m and r["n"] == n and r["snr_db"] == s), None)
                    cells.append("-" if r is None else f"{r[key]:.{nd}f}")
            out.append(f"| `{m}` | " + " | ".join(cells) + " |")
    out.append("")
    return out


def section(
    bundles: list[Bundle], n: int | None = 100, images: Path | None = None, pool: Path = POOL
) -> str:
    """The whole section, or "" without image-link bundles, images or the channel pool."""
    from evaluation.image_link import test_images

    group = image_bundles(bundles)
    src = images or image_file()
    if not group or src is None or not pool.is_file():
        return ""
    imgs = test_images(src, n)
    return "\n".join(render_images(evaluate_images(group, imgs, pool), src, pool, len(imgs)))
