"""Benchmark of the semantic image link (docs/image_link.md).

Bundles: ``bundles/lcfsc-mse``, ``nomask-mse``, ``lcfsc-msssim``, ``nomask-msssim``
(``scripts/train_lcfsc.sh``: same data, same CPU budget per pair). Test images: the held-out
scene of the rendered corpus (``data/generated/rt-images-64.h5``, or the committed sample).
Channels: the CDL pool's test split (``data/sample/mimo-cdl.h5``).

Sections (``--only``):

* ``link``: PSNR / MS-SSIM vs SNR 0..20 dB on 2x2 with CSI fed back at 6 bits per real,
  through the three services (``csilink run`` of an ``image_link`` scenario), LCFSC vs no
  masking; the separate-coding reference (JPEG + MIMO capacity) on the same images and SNRs;
* ``snr``: the same sweep in-process on every size (same pieces the services run);
* ``sizes``: PSNR per MIMO size with perfect CSI, LCFSC vs no masking (the masking gain), and
  LCFSC at the stable ratio 0.009 (CFSC) with the same weights;
* ``csi``: LCFSC with perfect CSI vs CSI fed back at 2/4/6/8 bits per real vs an LS-only UE;
* ``sscc``: JPEG + 5G LDPC + QAM on 2x2 (evaluation.sscc), three fixed MCSs;
* ``sensitivity``: how much LCFSC's symbols change with another image's H or another ratio;
* ``seeds``: the MSE pair retrained with ``--seed 1`` at the same budget (not shipped)::

      python -m training.lcfsc jscc --out runs/lcfsc/lcfsc-mse-seed1 --variant lcfsc --loss mse \
          --minutes 30 --seed 1 --npn runs/lcfsc/npn/best.pt --images data/generated/rt-images-64.h5
      python -m models.lcfsc.export runs/lcfsc/lcfsc-mse-seed1 runs/lcfsc/seed-bundles/lcfsc-mse-seed1
      # and the same with --variant nomask / nomask-mse-seed1
      # (the runs here read the two render shards, as the shipped ones did, so their 160
      # validation images are the same: a folder of links to the shards, as --images)

* ``variant``: csilink's variant ``lcfsc-tok`` (LCFSC + each bottleneck token told the SINR of
  the stream it will ride), trained like ``lcfsc-mse`` (same data, 30 CPU-min; not shipped)::

      python -m training.lcfsc jscc --out runs/lcfsc/lcfsc-tok-mse --variant lcfsc-tok --loss mse \
          --minutes 30 --npn runs/lcfsc/npn/best.pt --images data/generated/rt-images-64.h5
      python -m models.lcfsc.export runs/lcfsc/lcfsc-tok-mse runs/lcfsc/variant-bundles/lcfsc-tok-mse

  perfect CSI on every size at 0/10/20 dB (the ``sizes`` draws), and on 2x2 the CSI quality
  (feedback at 2 and 6 bits, another image's H) and how much its symbols move with H;
* ``precoding``: the SVD-precoded pair (``lcfsc-svd-mse``, ``nomask-svd-mse``: the transmitter
  precodes with its CSI, the UE fits H W from DMRS; trained like the MSE pair, 30 CPU-min each)
  against the unprecoded MSE pair trained again beside it (``lcfsc-mse-ref``, ``nomask-mse-ref``:
  same machine, NPN, data and budget; ``runs/lcfsc/ref-bundles/``, not shipped) on the same
  draws: perfect CSI on every size, and the CSI quality (perfect, fed back at 2/4/6/8 bits,
  another image's H) on 2x2 and 8x8::

      python -m training.lcfsc jscc --out runs/lcfsc/lcfsc-svd-mse --variant lcfsc --loss mse \
          --minutes 30 --precoding svd --npn runs/lcfsc/npn/best.pt --images data/generated/rt-images-64.h5
      python -m models.lcfsc.export runs/lcfsc/lcfsc-svd-mse bundles/lcfsc-svd-mse
      # and the same with --variant nomask / nomask-svd-mse; the reference pair without
      # --precoding, exported to runs/lcfsc/ref-bundles/{lcfsc,nomask}-mse-ref

* ``link_precoding``: the same four models through the three services on 2x2 and 8x8, CSI
  perfect and fed back at 2 and 6 bits over the emulator's digital uplink, 0/10/20 dB;
* ``training``: budgets and validation curves from the bundles' manifests;
* ``complexity``: parameters, MACs, images/s on the 2 CPU cores (BS encoder in torch, UE
  decoder and NPN in ONNX Runtime).

Writes docs/bench/image_link.json (merged per section), docs/img/il_*.png and the results part
of docs/image_link.md.

    .venv/bin/python benchmarks/bench_image_link.py --n 100      # ~40 min on 2 idle cores
    .venv/bin/python benchmarks/bench_image_link.py --only sizes --n 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "data/generated/rt-images-64.h5"
SAMPLE = ROOT / "data/sample/rt-images-sample.h5"
POOL = ROOT / "data/sample/mimo-cdl.h5"
OUT = ROOT / "docs/bench/image_link.json"
DOC = ROOT / "docs/image_link.md"
IMG = ROOT / "docs/img"
MODELS = ("lcfsc-mse", "nomask-mse", "lcfsc-msssim", "nomask-msssim")
PRECODED = ("lcfsc-svd-mse", "nomask-svd-mse")  # SVD precoding with the fed-back CSI + DMRS
# the unprecoded MSE pair trained again beside the precoded one (same machine, NPN, data, budget;
# not shipped): the precoding comparison is made against these
REF = ("lcfsc-mse-ref", "nomask-mse-ref")
REF_BUNDLES = ROOT / "runs" / "lcfsc" / "ref-bundles"


def bundle_dir(model: str) -> Path:
    return REF_BUNDLES / model if model in REF else ROOT / "bundles" / model
SNRS = (0.0, 5.0, 10.0, 15.0, 20.0)
SIZES = (2, 4, 8)
LINK_BITS = 6
SEED = 5


def corpus() -> Path:
    return CORPUS if CORPUS.is_file() or list(CORPUS.parent.glob(f"{CORPUS.stem}.shard*")) else SAMPLE


def images(n: int) -> np.ndarray:
    from evaluation.image_link import shard_test_images, test_images

    c = corpus()
    return shard_test_images(c, n) if c == CORPUS else test_images(c, n)


def nodes(model: str) -> tuple[Any, Any]:
    import torch

    from models.lcfsc.bs import ImageTransmitter
    from shared.bundle import Bundle
    from shared.image_rx import ImageReceiver

    torch.set_num_threads(1)  # sections run two at a time on the 2 cores (complexity sets its own)
    b = Bundle.load(bundle_dir(model))
    return ImageTransmitter.from_bundle(b, "cpu"), ImageReceiver.from_bundle(b)


def pools() -> dict[int, np.ndarray]:
    from datagen.mimo import load_pool

    return {n: load_pool(POOL, n, "test") for n in SIZES}


def _point(res: dict[str, Any]) -> dict[str, Any]:
    return {
        "psnr_db": round(float(np.mean(res["psnr"])), 3),
        "msssim": round(float(np.mean(res["msssim"])), 4),
        **({"mask_ratio": round(res["mask_ratio"], 5)} if res.get("mask_ratio") is not None else {}),
        **({"est_nmse_db": round(res["est_nmse_db"], 2)} if "est_nmse_db" in res else {}),
        **({"outage": round(res["outage"], 3)} if "outage" in res else {}),
    }


def _sweep(
    imgs: np.ndarray,
    sizes: tuple[int, ...],
    snrs: tuple[float, ...],
    conds: list[tuple[str, str, int, str]],
    extra=None,
) -> list[dict[str, Any]]:
    """conds: (model, csi, bits, estimator); plus JPEG when ``extra`` == "jpeg"."""
    from evaluation.image_link import Condition, draws, jpeg_capacity, run_model

    ps = pools()
    loaded = {m: nodes(m) for m in {c[0] for c in conds}}
    rows = []
    for n in sizes:
        for snr in snrs:
            d = draws(ps[n], len(imgs), n, snr, SEED)
            for model, csi, bits, est in conds:
                tx, rx = loaded[model]
                t0 = time.time()
                r = run_model(tx, rx, imgs, d, Condition(n, snr, csi, bits, est))
                rows.append(
                    {
                        "model": model,
                        "n": n,
                        "snr_db": snr,
                        "csi": csi,
                        "bits": bits,
                        "estimator": est,
                        **_point(r),
                        "seconds": round(time.time() - t0, 1),
                    }
                )
                print(
                    f"  {model} {n}x{n} {snr:g} dB {csi}{bits or ''} {est}: {rows[-1]['psnr_db']:.2f} dB",
                    file=sys.stderr,
                )
            if extra == "jpeg":
                tx = loaded[conds[0][0]][0]
                r = jpeg_capacity(imgs, d["h"], d["snr"], tx.n_symbols // n)
                rows.append(
                    {
                        "model": "jpeg+capacity",
                        "n": n,
                        "snr_db": snr,
                        "csi": "perfect",
                        "bits": 0,
                        "estimator": "-",
                        **_point(r),
                        "capacity_bits": round(r["capacity_bits_mean"], 1),
                    }
                )
    return rows


def section_snr(n_img: int) -> dict[str, Any]:
    imgs = images(n_img)
    conds = [(m, "feedback", LINK_BITS, "npn") for m in MODELS]
    return {"n_images": len(imgs), "rows": _sweep(imgs, SIZES, SNRS, conds, extra="jpeg")}


def section_sizes(n_img: int) -> dict[str, Any]:
    from evaluation.image_link import Condition, draws, run_model

    imgs = images(n_img)
    snrs = (0.0, 10.0, 20.0)
    rows = _sweep(imgs, SIZES, snrs, [(m, "perfect", 0, "npn") for m in MODELS])
    # the stable-ratio ablation: the LCFSC weights with m fixed at 0.009 (what CFSC trains with)
    ps = pools()
    for model in ("lcfsc-mse", "lcfsc-msssim"):
        tx, rx = nodes(model)
        for n in SIZES:
            for snr in snrs:
                d = draws(ps[n], len(imgs), n, snr, SEED)
                r = run_model(tx, rx, imgs, d, Condition(n, snr, "perfect"), ratio=0.009)
                rows.append(
                    {
                        "model": f"{model} @ m=0.009",
                        "n": n,
                        "snr_db": snr,
                        "csi": "perfect",
                        "bits": 0,
                        "estimator": "npn",
                        **_point(r),
                    }
                )
    return {"n_images": len(imgs), "rows": rows}


def section_csi(n_img: int) -> dict[str, Any]:
    imgs = images(n_img)
    conds = [("lcfsc-mse", "perfect", 0, "npn")]
    conds += [("lcfsc-mse", "feedback", b, "npn") for b in (2, 4, 6, 8)]
    conds += [
        ("lcfsc-mse", "other", LINK_BITS, "npn"),
        ("lcfsc-mse", "feedback", LINK_BITS, "ls"),
        ("nomask-mse", "none", 0, "npn"),
        ("nomask-mse", "none", 0, "ls"),
    ]
    return {"n_images": len(imgs), "rows": _sweep(imgs, (2, 8), (0.0, 10.0, 20.0), conds)}


def section_sscc(n_img: int) -> dict[str, Any]:
    """Separate coding with a real code on 2x2 (JPEG + 5G LDPC + QAM, evaluation.sscc), the
    same images, channels and noise seeds as the ``snr`` section, the UE's NPN estimate."""
    from evaluation.image_link import draws
    from evaluation.sscc import MCS, jpeg_ldpc

    imgs = images(min(n_img, 100))  # the LDPC decoder is the slow part here
    # the UE's channel estimator: every bundle ships the same frozen NPN
    _, rx = nodes(next(m for m in MODELS if (ROOT / "bundles" / m).is_dir()))
    pool, rows = pools()[2], []
    for snr in SNRS:
        d = draws(pool, len(imgs), 2, snr, SEED)
        for mcs in MCS:
            t0 = time.time()
            r = jpeg_ldpc(imgs, d["h"], d["y_p"], d["snr"], mcs, rx.n_symbols, d["noise_seed"], rx)
            rows.append(
                {
                    "model": f"JPEG + LDPC {mcs}",
                    "n": 2,
                    "snr_db": snr,
                    "csi": "none",
                    "bits": 0,
                    "estimator": "npn",
                    **_point(r),
                    "info_bits": r["info_bits"],
                    "seconds": round(time.time() - t0, 1),
                }
            )
            print(
                f"  {mcs} {snr:g} dB: {rows[-1]['psnr_db']:.2f} dB, outage {r['outage']:.2f}", file=sys.stderr
            )
    return {"n_images": len(imgs), "rows": rows}


def section_sensitivity(n_img: int) -> dict[str, Any]:
    """How much the transmitted symbols depend on the CSI and on the mask ratio: relative change
    ``||x - x'|| / ||x||`` of LCFSC's symbols at 10 dB when H is another image's, and when the
    ratio is 0 (no mask) or 0.1 (ten times the largest preset) instead of the learned one."""
    imgs = images(n_img)
    tx, _ = nodes("lcfsc-mse")
    out = {}
    for n in SIZES:
        h = pools()[n][: len(imgs)]
        snr = np.full(len(imgs), 10.0, np.float32)
        x = tx.encode(imgs, h, snr)

        def rel(x2: np.ndarray, x: np.ndarray = x) -> float:
            return round(float(np.linalg.norm(x - x2) / np.linalg.norm(x)), 6)

        out[f"{n}x{n}"] = {
            "learned_ratio": round(float(np.mean(tx.last_ratio)), 5),
            "another_h": rel(tx.encode(imgs, np.roll(h, 1, axis=0), snr)),
            "ratio_0": rel(tx.encode(imgs, h, snr, ratio=0.0)),
            "ratio_0.1": rel(tx.encode(imgs, h, snr, ratio=0.1)),
            "another_image": rel(tx.encode(np.roll(imgs, 1, axis=0), h, snr)),
        }
        print(f"  {n}x{n}: {out[f'{n}x{n}']}", file=sys.stderr)
    return out


SEED_BUNDLES = ROOT / "runs" / "lcfsc" / "seed-bundles"


def section_seeds(n_img: int) -> dict[str, Any]:
    """Run-to-run spread of the masking gain: the MSE pair trained again with seed 1 (same
    budget; exported to runs/lcfsc/seed-bundles/, not shipped), perfect CSI, 0/10/20 dB, the
    same draws as the ``sizes`` section."""
    from evaluation.image_link import Condition, draws, run_model
    from models.lcfsc.bs import ImageTransmitter
    from shared.bundle import Bundle
    from shared.image_rx import ImageReceiver

    imgs, ps, rows = images(n_img), pools(), []
    for name in ("lcfsc-mse-seed1", "nomask-mse-seed1"):
        b = Bundle.load(SEED_BUNDLES / name)
        tx, rx = ImageTransmitter.from_bundle(b, "cpu"), ImageReceiver.from_bundle(b)
        for n in SIZES:
            for snr in (0.0, 10.0, 20.0):
                d = draws(ps[n], len(imgs), n, snr, SEED)
                r = run_model(tx, rx, imgs, d, Condition(n, snr, "perfect"))
                rows.append({"model": name, "n": n, "snr_db": snr, **_point(r)})
                print(f"  {name} {n}x{n} {snr:g} dB: {rows[-1]['psnr_db']:.2f} dB", file=sys.stderr)
        t = b.manifest.training or {}
        rows.append({"model": name, "summary": t.get("summary", {})})
    return {"n_images": len(imgs), "rows": rows}


VARIANT_BUNDLES = ROOT / "runs" / "lcfsc" / "variant-bundles"


def section_variant(n_img: int) -> dict[str, Any]:
    """``lcfsc-tok-mse`` against the shipped pair on the same draws: perfect CSI per size, then
    CSI quality on 2x2, and the sensitivity of its symbols to H (as ``sensitivity``)."""
    from evaluation.image_link import Condition, draws, run_model
    from models.lcfsc.bs import ImageTransmitter
    from shared.bundle import Bundle
    from shared.image_rx import ImageReceiver

    imgs, ps, rows = images(n_img), pools(), []
    name = "lcfsc-tok-mse"
    b = Bundle.load(VARIANT_BUNDLES / name)
    tx, rx = ImageTransmitter.from_bundle(b, "cpu"), ImageReceiver.from_bundle(b)
    conds = [(n, snr, "perfect", 0) for n in SIZES for snr in (0.0, 10.0, 20.0)]
    conds += [(2, snr, csi, bits) for snr in (0.0, 10.0, 20.0)
              for csi, bits in (("feedback", 2), ("feedback", LINK_BITS), ("other", LINK_BITS))]
    for n, snr, csi, bits in conds:
        d = draws(ps[n], len(imgs), n, snr, SEED)
        r = run_model(tx, rx, imgs, d, Condition(n, snr, csi, bits, "npn"))
        rows.append({"model": name, "n": n, "snr_db": snr, "csi": csi, "bits": bits, **_point(r)})
        print(f"  {name} {n}x{n} {snr:g} dB {csi}{bits or ''}: {rows[-1]['psnr_db']:.2f} dB", file=sys.stderr)
    sens = {}
    for n in SIZES:
        h = ps[n][: len(imgs)]
        snr = np.full(len(imgs), 10.0, np.float32)
        x = tx.encode(imgs, h, snr)
        sens[f"{n}x{n}"] = round(float(np.linalg.norm(x - tx.encode(imgs, np.roll(h, 1, axis=0), snr))
                                       / np.linalg.norm(x)), 6)
    t = b.manifest.training or {}
    return {"n_images": len(imgs), "rows": rows, "another_h_rel_change": sens,
            "training": {k: t.get(k) for k in ("summary", "cpu_minutes", "samples_seen") if k in t}}


def section_training(n_img: int) -> dict[str, Any]:
    """Budgets and validation curves from the bundles' manifests (no computation): what each
    model cost, and the pairs compared at equal samples as well as at equal CPU time."""
    from shared.bundle import Bundle

    out: dict[str, Any] = {}
    for m in MODELS:
        t = Bundle.load(ROOT / "bundles" / m).manifest.training or {}
        cfg, best = t.get("config", {}), t.get("best_state", {})
        curve = t.get("curve", [])
        out[m] = {
            "cpu_minutes": cfg.get("minutes"),
            "samples_seen": curve[-1]["samples"] if curve else None,
            "steps": curve[-1]["step"] if curve else None,
            "train_images": curve[-1]["train_images"] if curve else None,
            "best_at_samples": best.get("samples"),
            "wall_minutes": round(t.get("summary", {}).get("wall_s", 0) / 60, 1),
            "best_val_psnr_db": t.get("summary", {}).get("best_val_psnr_db"),
            "curve": [
                {
                    "cpu_s": r["used_s"],
                    "samples": r["samples"],
                    "val_psnr_db": round(
                        float(np.mean([v for k, v in r.items() if k.startswith("val_psnr_")])), 3
                    ),
                }
                for r in curve
            ],
        }
    return out


def section_complexity() -> dict[str, Any]:
    import onnxruntime as ort
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from models.lcfsc.system import LcfscSystem
    from shared import mimo

    out = {}
    imgs = images(64)
    for model in ("lcfsc-mse", "nomask-mse"):
        tx, rx = nodes(model)
        sysm = LcfscSystem(tx.cfg)
        enc_params = sum(p.numel() for p in tx.encoder.parameters())
        rc_params = sum(p.numel() for p in tx.rcvae.parameters()) if tx.rcvae is not None else 0
        dec_params = sum(p.numel() for p in sysm.decoder.parameters())
        npn_params = sum(p.numel() for p in sysm.npn.parameters())
        h = (np.random.default_rng(0).standard_normal((64, 2, 2)) * (1 + 1j) / 2).astype(np.complex64)
        snr = np.full(64, 10.0, np.float32)
        img1 = torch.from_numpy(imgs[:1]).permute(0, 3, 1, 2).float() / 255
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            sysm.encoder(
                img1,
                torch.tensor([10.0]),
                torch.from_numpy(h[:1]) if tx.uses_csi else None,
                torch.tensor([0.009]) if tx.uses_csi else None,
            )
        enc_macs = fc.get_total_flops() // 2
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            sysm.decoder(
                torch.zeros(1, 2 * tx.n_symbols), torch.zeros(1, tx.cfg.n_tokens), torch.tensor([10.0])
            )
        dec_macs = fc.get_total_flops() // 2
        torch.set_num_threads(2)
        t0 = time.perf_counter()
        reps = 3
        for _ in range(reps):
            x = tx.encode(imgs, h, snr)
        enc_ips = reps * len(imgs) / (time.perf_counter() - t0)
        y = mimo.propagate(h, x, snr, np.random.default_rng(1))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        rx.decoder = ort.InferenceSession(
            str(ROOT / "bundles" / model / "rx.int8.onnx"), so, providers=["CPUExecutionProvider"]
        )
        t0 = time.perf_counter()
        for _ in range(reps):
            rx.decode(y, h, snr)
        dec_ips = reps * len(imgs) / (time.perf_counter() - t0)
        out[model] = {
            "encoder_params": enc_params,
            "rcvae_params": rc_params,
            "decoder_params": dec_params,
            "npn_params": npn_params,
            "encoder_macs": int(enc_macs),
            "decoder_macs": int(dec_macs),
            "encoder_images_per_s": round(enc_ips, 1),
            "decoder_images_per_s": round(dec_ips, 1),
            "batch": len(imgs),
            "threads": 2,
        }
        print(f"  {model}: {out[model]}", file=sys.stderr)
    return out


def _link_run(n_img: int, name: str, models: list[str], sizes: list[int], snrs: list[float],
              csi: list[Any]) -> dict[str, Any]:
    """One image_link scenario through the three services (``csilink.runner``)."""
    import yaml

    from csilink.runner import run_scenario, started_services

    folder = ROOT / "runs" / "bench_il"
    folder.mkdir(parents=True, exist_ok=True)
    c = corpus()
    data = c if c.is_file() else SAMPLE
    sc = {
        "name": name,
        "description": f"bench_image_link.py: {', '.join(models)}, sizes {sizes}, CSI {csi}, SNR sweep",
        "image_link": {
            "bundles": [str(bundle_dir(m)) for m in models],
            "images": {"path": str(data), "split": "test", "n": n_img},
            "sizes": sizes,
            "snr_db": snrs,
            "csi": csi,
            "estimator": "model",
            "uplink": {"mode": "awgn", "snr_db": 10, "n_rx": 32, "modulation": "qpsk", "crc": "crc11"},
        },
        "seed": SEED,
        "output": str(folder / name),
    }
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(sc, sort_keys=False))
    t0 = time.time()
    with started_services(None, images=data, mimo_pool=POOL) as svc:
        res = run_scenario(p, svc.addrs["ue"], svc.addrs["channel"], svc.addrs["bs"], plots=False)
    rows = [{**r.row, "n": r.row["nt"], "msssim": r.row["ms_ssim"]} for r in res.image_points]
    return {"n_images": n_img, "dataset": data.name, "seconds": round(time.time() - t0, 1), "rows": rows}


def section_link(n_img: int) -> dict[str, Any]:
    """The headline sweep through the three services (the runner's image_link section)."""
    return _link_run(
        n_img, "image-link-bench", list(MODELS), [2], list(SNRS), [{"mode": "feedback", "bits": [LINK_BITS]}]
    )


def section_precoding(n_img: int) -> dict[str, Any]:
    """Precoded vs unprecoded MSE pairs on the same draws: perfect CSI per size at 0/10/20 dB,
    then what the CSI's quality does on 2x2 and 8x8 (fed back at 2/4/6/8 bits, another image's
    fed-back H)."""
    from shared.bundle import Bundle

    imgs = images(n_img)
    rows = _sweep(imgs, SIZES, (0.0, 10.0, 20.0), [(m, "perfect", 0, "npn") for m in (*REF, *PRECODED)])
    conds = [(m, "feedback", b, "npn") for m in (*PRECODED, REF[0]) for b in (2, 4, 6, 8)]
    conds += [(m, "other", LINK_BITS, "npn") for m in (*PRECODED, REF[0])]
    rows += _sweep(imgs, (2, 8), (0.0, 10.0, 20.0), conds)
    budget = {}
    for m in (*REF, *PRECODED):
        t = Bundle.load(bundle_dir(m)).manifest.training or {}
        sm = t.get("summary", {})
        budget[m] = {k: sm.get(k) for k in ("minutes", "samples_seen", "steps", "wall_s", "best_val_psnr_db")}
    return {"n_images": len(imgs), "rows": rows, "budget": budget}


def section_link_precoding(n_img: int) -> dict[str, Any]:
    """The precoded and unprecoded MSE pairs through the three services: CSI perfect and fed
    back at 2 and 6 bits per real over the emulator's digital uplink, 2x2 and 8x8."""
    return _link_run(
        n_img,
        "image-link-precoding",
        [*REF, *PRECODED],
        [2, 8],
        [0.0, 10.0, 20.0],
        ["perfect", {"mode": "feedback", "bits": [2, LINK_BITS]}],
    )


SECTIONS = {
    "link": section_link,
    "snr": section_snr,
    "sizes": section_sizes,
    "csi": section_csi,
    "sscc": section_sscc,
    "complexity": section_complexity,
    "training": section_training,
    "sensitivity": section_sensitivity,
    "seeds": section_seeds,
    "variant": section_variant,
    "precoding": section_precoding,
    "link_precoding": section_link_precoding,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(SECTIONS), default=None)
    ap.add_argument("--n", type=int, default=200, help="test images per condition")
    ap.add_argument("--doc-only", action="store_true", help="rewrite docs from the JSON without running")
    a = ap.parse_args(argv)
    doc = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if not a.doc_only:
        from shared.provenance import provenance

        for name in a.only or list(SECTIONS):
            t0 = time.time()
            fn = SECTIONS[name]
            res = fn() if name == "complexity" else fn(a.n)
            res["provenance"] = provenance(command=f"benchmarks/bench_image_link.py --only {name} --n {a.n}")
            print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
            # re-read before writing: sections may run in parallel processes
            doc = json.loads(OUT.read_text()) if OUT.is_file() else {}
            doc[name] = res
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(doc, indent=1))
    from evaluation.image_link_report import write_doc

    write_doc(doc, DOC, IMG)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
