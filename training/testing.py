"""Tiny real bundles for tests: a synthetic dataset, a few seconds of training, a real export.

Nothing is mocked: the bundle goes through the same ``train`` and ``export_run`` as shipped
ones, only smaller (few samples, narrow network, seconds of training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.bundle import Bundle

TINY_MODEL = {
    "csinet": {"latent": 8, "bits": 3, "width": 4, "blocks": 1, "compand": 0.5},
    "csinet-jscc": {"symbols": 8, "prefixes": [4, 8], "width": 4, "blocks": 1},
}
TINY_MODEL["cllwcsinet"] = {"cr": 8, "head_width": 2, "denoise_width": 4, "refine_width": 2,
                             "refine_blocks": 1, "digital_bits": [3, 6]}
TINY_MODEL["vq-diffusion"] = {"codebook_size": 4, "dim": 8, "widths": [4, 8], "features": 4, "base": 4,
                               "mults": [1, 2]}
TINY_MODEL["rd-jscc"] = {**TINY_MODEL["csinet-jscc"], "base": 8, "mults": [1, 2], "patch": 2,
                         "mulaw_symbols": 4, "mulaw_rates": [4], "val_steps": 2}


def tiny_dataset(folder: str | Path, n_train: int = 256, n_val: int = 64, n_test: int = 64) -> Path:
    from training.synthetic import make_dataset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.h5"
    if not path.exists():
        make_dataset(path, n_train=n_train, n_val=n_val, n_test=n_test, nc=64, sf_cap=32)
    return path


def tiny_bundle(
    folder: str | Path,
    family: str = "csinet",
    seconds: float = 1.5,
    model: dict[str, Any] | None = None,
    model_id: str | None = None,
) -> Bundle:
    """Train ``family`` for ``seconds`` on a tiny synthetic set and export it under ``folder``."""
    from training.export import export_run
    from training.loop import load_config, train

    folder = Path(folder)
    data = tiny_dataset(folder)
    cfg = load_config(None, family)
    cfg["model"].update(model or TINY_MODEL.get(family, {}))
    cfg["train"].update({"batch_size": 32, "val_n": 32, "val_every_s": 1e9, "ckpt_every_s": 1e9})
    mid = model_id or f"tiny-{family}"
    run = folder / f"run-{mid}"
    if family == "rd-jscc":  # stage 2 starts from a trained autoencoder (stage 1)
        ae = tiny_bundle(folder, "csinet-jscc", seconds, {**TINY_MODEL["csinet-jscc"], **{
            k: v for k, v in (model or {}).items() if k in TINY_MODEL["csinet-jscc"]}}, f"{mid}-ae")
        cfg["train"]["init_from"] = str(folder / f"run-{ae.model_id}" / "best.pt")
    train(cfg, data, run, minutes=seconds / 60.0, threads=1, progress=False)
    return export_run(run, folder / "bundles" / mid, model_id=mid, calib_n=64, force=True)
TINY_MODEL["si-baseline"] = {"latent": 8, "bits": 6, "blocks": 1}
TINY_MODEL["si-reference"] = {"base": 4, "mults": [1, 2]}
