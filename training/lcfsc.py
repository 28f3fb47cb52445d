"""Train the semantic image link: ``npn`` (the UE's channel denoiser, Algorithm 1 of the paper)
then ``jscc`` (transmitter + receiver end to end with the NPN frozen).

Budgets are CPU seconds of this process (``time.process_time``), so runs that share the two
cores get the same compute whatever else runs; the run resumes from ``last.pt`` when started
again with the same command, and the best checkpoint (validation PSNR) is ``best.pt``.

Images come from the rendered corpus (:mod:`datagen.images`); while its shards are still being
rendered the training set is re-read every few minutes (the growing set is logged). The first
rows of shard 0 are held out for validation; the test scene is never seen.
Channels come from the CDL pool (:mod:`datagen.mimo`, train split); every batch draws one MIMO
size, an SNR uniform in 0..20 dB and the CSI the transmitter sees: the true H (30 %) or the
UE's NPN estimate quantized at 2, 4, 6 or 8 bits per real.

    python -m training.lcfsc npn  --out runs/lcfsc/npn --minutes 4
    python -m training.lcfsc jscc --out runs/lcfsc/lcfsc-mse --variant lcfsc --loss mse \\
        --npn runs/lcfsc/npn/best.pt --minutes 30
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from models.lcfsc import mimo_torch as mt
from models.lcfsc.msssim import ms_ssim
from models.lcfsc.nets import LcfscConfig
from models.lcfsc.npn import NPN
from models.lcfsc.system import LcfscSystem
from shared.errors import InvalidInput

log = logging.getLogger("csilink.training.lcfsc")
VARIANTS = {
    "lcfsc": {"csi_masking": True, "learnable_ratio": True},
    "cfsc": {"csi_masking": True, "learnable_ratio": False},
    "nomask": {"csi_masking": False, "learnable_ratio": False},
    # LCFSC + per-token stream SINR at the transmitter (csilink's variant, not in the paper)
    "lcfsc-tok": {"csi_masking": True, "learnable_ratio": True, "csi_tokens": True},
}
VAL_N = 160
RELOAD_S = 240.0
FEEDBACK_BITS = (2, 4, 6, 8)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def image_files(images: str) -> list[str]:
    """The merged file, or the shards of it that exist (a corpus still being rendered)."""
    p = Path(images)
    if p.is_file():
        return [str(p)]
    shards = sorted(glob.glob(str(p.with_name(f"{p.stem}.shard*of*.h5"))))
    if not shards:
        raise InvalidInput(f"no image corpus at {images} (nor its shards): run python -m datagen.images")
    return shards


def load_images(images: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(train uint8 [n, S, S, 3], val uint8 [VAL_N, S, S, 3])`` of what is rendered so far."""
    files = image_files(images)
    parts, val = [], None
    for k, f in enumerate(files):
        with h5py.File(f, "r", locking=False) as h:
            g = h[split]
            done = int(g.attrs["done"]) if "done" in g.attrs else len(g["image"])
            x = g["image"][:done]
        if k == 0:
            val, x = x[:VAL_N], x[VAL_N:]
        parts.append(x)
    return np.concatenate(parts), val  # type: ignore[return-value]


def load_pool(path: str, sizes: tuple[int, ...], split: str = "train") -> dict[int, torch.Tensor]:
    from datagen.mimo import load_pool as lp

    return {n: torch.from_numpy(lp(path, n, split)) for n in sizes}


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(0, 3, 1, 2).float().div(255.0)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = ((x - y) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def train_npn(
    out: Path, pool: str, minutes: float, batch: int = 128, lr: float = 1e-3, seed: int = 0
) -> dict:
    """Algorithm 1: H from the pool, identity pilots, LS, NPN, MSE to the true H."""
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    sizes = (2, 4, 8)
    hs = load_pool(pool, sizes)
    net = NPN()
    opt = torch.optim.Adam(net.parameters(), lr)
    state = {"used_s": 0.0, "samples": 0, "step": 0}
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
    gen = torch.Generator().manual_seed(seed + state["step"])
    budget, t_last, t_ck = minutes * 60, time.process_time(), 0.0
    while state["used_s"] < budget:
        for g in opt.param_groups:
            g["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * state["used_s"] / budget)))
        n = sizes[state["step"] % 3]
        h = hs[n][torch.randint(0, len(hs[n]), (batch,), generator=gen)]
        snr = torch.rand(batch, generator=gen) * 30 - 5
        h_e = net(mt.ls_with_noise(h, snr), snr)
        # error relative to the noise level, so every SNR weighs the same
        loss = ((h_e - h).abs() ** 2).mean((1, 2)).div(mt.noise_var(snr)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["samples"] += batch
        state["step"] += 1
        now = time.process_time()
        state["used_s"] += now - t_last
        t_last = now
        if state["used_s"] - t_ck > 60 or state["used_s"] >= budget:
            t_ck = state["used_s"]
            _atomic_save({"model": net.state_dict(), "opt": opt.state_dict(), "state": state}, last)
    res = evaluate_npn(net, load_pool(pool, sizes, "test"))
    _atomic_save({"model": net.state_dict(), "state": state, "eval": res}, out / "best.pt")
    summary = {
        "minutes": minutes,
        "clock": "cpu",
        "samples_seen": state["samples"],
        "steps": state["step"],
        "eval": res,
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2))
    return summary


def npn_from_bundle(bundle: str | Path, out: Path) -> Path:
    """``out/best.pt`` with the NPN weights of a shipped bundle's ``npn.onnx`` (its initializers
    are the module's parameters, prefixed ``npn.``), so a new image model trains against the
    very estimator the shipped ones have."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(Path(bundle) / "npn.onnx"))
    sd = {
        i.name.removeprefix("npn."): torch.from_numpy(numpy_helper.to_array(i).copy())
        for i in m.graph.initializer
    }
    net = NPN()
    net.load_state_dict(sd)  # strict: a bundle whose NPN is another architecture fails here
    out.mkdir(parents=True, exist_ok=True)
    _atomic_save({"model": net.state_dict(), "state": {"from_bundle": str(bundle)}}, out / "best.pt")
    return out / "best.pt"


@torch.no_grad()
def evaluate_npn(net: NPN, hs: dict[int, torch.Tensor], snrs: tuple[float, ...] = (0, 10, 20)) -> dict:
    """NMSE (dB) of LS and NPN on the pool's test split, per size and SNR."""
    torch.manual_seed(123)
    res = {}
    for n, h in hs.items():
        for s in snrs:
            snr = torch.full((len(h),), float(s))
            ls = mt.ls_with_noise(h, snr)
            e = net(ls, snr)
            p = (h.abs() ** 2).sum((1, 2))
            res[f"{n}x{n}@{s}dB"] = {
                "ls_nmse_db": round(
                    float(10 * torch.log10(((ls - h).abs() ** 2).sum((1, 2)).div(p).mean())), 2
                ),
                "npn_nmse_db": round(
                    float(10 * torch.log10(((e - h).abs() ** 2).sum((1, 2)).div(p).mean())), 2
                ),
            }
    return res


def train_jscc(
    out: Path,
    images: str,
    pool: str,
    npn: str,
    minutes: float,
    variant: str = "lcfsc",
    loss_kind: str = "mse",
    batch: int = 16,
    lr: float = 3e-4,
    seed: int = 0,
    image_size: int = 64,
    precoding: str = "none",
) -> dict:
    torch.set_num_threads(1)
    if variant not in VARIANTS:
        raise InvalidInput(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if loss_kind not in ("mse", "msssim"):
        raise InvalidInput(f"loss must be mse or msssim, got {loss_kind!r}")
    out.mkdir(parents=True, exist_ok=True)
    cfg = LcfscConfig(image_size=image_size, precoding=precoding, **VARIANTS[variant])
    run_cfg = {
        "variant": variant,
        "loss": loss_kind,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "precoding": precoding,
        "minutes": minutes,
        "images": images,
        "pool": pool,
        "npn": npn,
        "clock": "cpu",
        "model": cfg.to_dict(),
        "feedback_bits": FEEDBACK_BITS,
        "snr_db": [0, 20],
        "perfect_csi_fraction": 0.3,
    }
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        keys = ("variant", "loss", "batch", "seed", "precoding")
        was = {k: old.get(k, "none" if k == "precoding" else None) for k in keys}
        if was != {k: run_cfg[k] for k in keys}:
            raise InvalidInput(f"{out} holds a different run; use another --out")
    cfg_path.write_text(json.dumps(run_cfg, indent=2))

    torch.manual_seed(seed)
    model = LcfscSystem(cfg)
    model.npn.load_state_dict(torch.load(npn, weights_only=False)["model"])
    for p in model.npn.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr)
    state = {"used_s": 0.0, "wall_s": 0.0, "samples": 0, "step": 0, "best": -1.0, "train_images": 0}
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        torch.set_rng_state(ck["rng"])
        log.info("resumed %s at %.0f CPU-s, %d samples", out, state["used_s"], state["samples"])
    hs = load_pool(pool, cfg.sizes)
    x, xv = load_images(images)
    xv_t = to_tensor(xv)
    log.info("%s: %d training images, %d validation images", out.name, len(x), len(xv))
    gen = torch.Generator().manual_seed(seed * 1000 + state["step"])
    rng = np.random.default_rng(seed * 1000 + state["step"])
    budget = minutes * 60
    t_last, w_last, t_ck, t_val, t_reload = (
        time.process_time(),
        time.time(),
        state["used_s"],
        state["used_s"],
        state["used_s"],
    )
    logf = (out / "log.jsonl").open("a")

    def loss_fn(rec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if loss_kind == "mse":
            return ((rec - ref) ** 2).mean()
        return (1 - ms_ssim(rec, ref)).mean()

    @torch.no_grad()
    def validate() -> float:
        model.eval()
        torch.manual_seed(999)
        vals = []
        for n in cfg.sizes:
            h = hs[n][:VAL_N]
            snr = torch.full((len(h),), 10.0)
            rec, _ = model(xv_t[: len(h)], h[: len(xv_t)], snr[: len(xv_t)], csi="feedback", bits=6)
            vals.append(float(psnr(rec, xv_t[: len(h)]).mean()))
        model.train()
        row = {
            "used_s": round(state["used_s"], 1),
            "samples": state["samples"],
            "step": state["step"],
            "train_images": len(x),
            **{f"val_psnr_{n}x{n}": round(v, 3) for n, v in zip(cfg.sizes, vals, strict=True)},
        }
        logf.write(json.dumps(row) + "\n")
        logf.flush()
        log.info("%s %s", out.name, row)
        return float(np.mean(vals))

    model.train()
    while state["used_s"] < budget:
        if state["used_s"] - t_reload > RELOAD_S:
            t_reload = state["used_s"]
            try:
                x, _ = load_images(images)
            except (OSError, KeyError) as exc:  # a shard mid-write: keep what we have
                log.warning("could not re-read the images (%s); keeping %d", exc, len(x))
            t_last = time.process_time()
        frac = state["used_s"] / budget
        for g in opt.param_groups:  # warm-up then cosine to lr/20
            g["lr"] = (
                lr
                * min(1.0, (state["step"] + 1) / 200)
                * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
            )
        idx = rng.integers(0, len(x), size=batch)
        img = to_tensor(x[idx])
        if rng.random() < 0.5:
            img = img.flip(3)
        n = int(rng.choice(cfg.sizes))
        h = hs[n][torch.randint(0, len(hs[n]), (batch,), generator=gen)]
        snr = torch.rand(batch, generator=gen) * 20
        csi = "perfect" if rng.random() < 0.3 else "feedback"
        bits = int(rng.choice(FEEDBACK_BITS))
        rec, lc = model(img, h, snr, csi=csi, bits=bits)
        loss = loss_fn(rec, img) + lc  # lambda = 1 as the paper
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state["samples"] += batch
        state["step"] += 1
        state["train_images"] = len(x)
        now, wnow = time.process_time(), time.time()
        state["used_s"] += now - t_last
        state["wall_s"] += wnow - w_last
        t_last, w_last = now, wnow
        if state["used_s"] - t_val > 180 or state["used_s"] >= budget:
            t_val = state["used_s"]
            v = validate()
            t_last = time.process_time()  # validation is not charged to the budget
            if v > state["best"]:
                state["best"] = v
                _atomic_save(
                    {"model": model.state_dict(), "config": run_cfg, "state": dict(state)}, out / "best.pt"
                )
        if state["used_s"] - t_ck > 60 or state["used_s"] >= budget:
            t_ck = state["used_s"]
            _atomic_save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "state": state,
                    "rng": torch.get_rng_state(),
                },
                last,
            )
    summary = {
        "variant": variant,
        "loss": loss_kind,
        "precoding": precoding,
        "minutes": minutes,
        "clock": "cpu",
        "samples_seen": state["samples"],
        "steps": state["step"],
        "wall_s": round(state["wall_s"], 1),
        "best_val_psnr_db": round(state["best"], 3),
        "train_images": len(x),
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2))
    logf.close()
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=("npn", "jscc", "npn-from-bundle"))
    ap.add_argument("--bundle", default="bundles/lcfsc-mse", help="npn-from-bundle: the bundle to read")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, required=True, help="CPU minutes of this process")
    ap.add_argument("--images", default="data/generated/rt-images-64.h5")
    ap.add_argument("--pool", default="data/sample/mimo-cdl.h5")
    ap.add_argument("--npn", default="runs/lcfsc/npn/best.pt")
    ap.add_argument("--variant", default="lcfsc", choices=sorted(VARIANTS))
    ap.add_argument("--loss", default="mse", choices=("mse", "msssim"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--precoding", default="none", choices=("none", "svd"),
        help="svd: SVD precoding with the transmitter's CSI and precoded pilots (docs/image_link.md)",
    )
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.stage == "npn-from-bundle":
        print(npn_from_bundle(a.bundle, a.out))
    elif a.stage == "npn":
        print(json.dumps(train_npn(a.out, a.pool, a.minutes, lr=a.lr or 1e-3, seed=a.seed), indent=2))
    else:
        print(
            json.dumps(
                train_jscc(
                    a.out,
                    a.images,
                    a.pool,
                    a.npn,
                    a.minutes,
                    a.variant,
                    a.loss,
                    a.batch,
                    a.lr or 3e-4,
                    a.seed,
                    precoding=a.precoding,
                ),
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
