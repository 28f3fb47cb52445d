"""RD-JSCC side by side (docs/rd_jscc.md): every figure from one command, on the same test data.

Sections (``--only`` picks some):

* ``link``: through the three running services (native, started from docker-compose.yml):
  NMSE vs uplink SNR (AWGN, -10..20 dB) at k = 8, 16, 32 for the autoencoder alone
  (refinement steps 0), RD-JSCC 2-step and 20-step; the same over Rayleigh block fading with
  MRC over 32 BS antennas; the mu-law B-bit digital rates ``k16-mu{B}`` over an ideal link.
* ``threshold``: flexible decoding. From the link sweep: NMSE and BS time per report when
  reports at or above a threshold skip the refinement, for every threshold; the chosen one is
  then run through the services to check.
* ``throughput``: encoder (int8 ONNX), decoder, 2-step and 20-step refinement, samples/s at
  batch 1000 on this machine (2 threads), like the paper's Table III.
* ``rates``: the one variable-rate model vs rate-specific models at k = 8 and 32 (umi).
* ``cnr``: imperfect CSI: NMSE at 0 dB CNR (the UE's CSI-RS estimate) of the normally trained
  autoencoder and the one trained on H + E at 0 dB (umi), through the services.
* ``budget``: the denoiser at half its budget vs the full budget (snapshot), k = 16.
* ``chain_budget``: the whole method at two budgets (gscm): autoencoder + denoiser at 15 + 15
  and at 30 + 30 CPU-minutes (separate runs, each its own schedule), AE vs RD2 vs RD20, k = 16.

    .venv/bin/python benchmarks/bench_rdjscc.py                 # both profiles, ~30 min on 2 cores
    .venv/bin/python benchmarks/bench_rdjscc.py --profile umi --only link --n 100

Writes docs/bench/rd_jscc.json (merged per profile and section) and prints tables.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILES = {
    "cdl": {"data": "data/generated/cdl-c-fdd.h5", "rd": "rd-jscc-cdl", "ae": "csinet-jscc-k32"},
    "umi": {"data": "data/generated/umi-nlos.h5", "rd": "rd-jscc-umi", "ae": "csinet-jscc-umi"},
    "gscm": {"data": "data/generated/gscm-outdoor.h5", "rd": "rd-jscc-gscm", "ae": "csinet-jscc-gscm"},
}
SNRS = [-10, -5, 0, 5, 10, 15, 20]
RATES = [8, 16, 32]
STEPS = [0, 2, 20]
OUT = ROOT / "docs" / "bench" / "rd_jscc.json"


def _scenario(
    name: str,
    data: str,
    model: str,
    rate: list[Any],
    n: int,
    channel: dict[str, Any],
    ext: dict[str, Any] | None,
    csi_rs: float | None = None,
) -> dict[str, Any]:
    sc = {
        "name": name,
        "dataset": {"path": str(ROOT / data), "split": "test"},
        "models": model,
        "rate": rate,
        "reports": n,
        "channel": channel,
        "seed": 0,
        "batch": 100,
        "output": str(ROOT / "runs" / "bench_rdjscc" / name),
    }
    if ext is not None:
        sc["extensions"] = {"diffusion": ext}
    if csi_rs is not None:
        sc["csi_rs_snr_db"] = csi_rs
    return sc


def _run(sc: dict[str, Any], addrs: dict[str, str]) -> list[dict[str, Any]]:
    from csilink.runner import run_scenario

    folder = ROOT / "runs" / "bench_rdjscc"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sc['name']}.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    t0 = time.time()
    res = run_scenario(path, addrs["ue"], addrs["channel"], addrs["bs"], plots=False)
    keep = (
        "rate",
        "snr_db",
        "mode",
        "ok",
        "sent",
        "nmse_db_ad",
        "sgcs",
        "effective_snr_db",
        "latency_p50_ms",
        "latency_p99_ms",
        "reports_per_s",
    )
    rows = [{k: r.get(k) for k in keep} for r in res.rows]
    print(f"  {sc['name']}: {len(rows)} points in {time.time() - t0:.0f} s", file=sys.stderr)
    return rows


def section_link(p: str, n: int) -> dict[str, Any]:
    from csilink.runner import started_services

    cfg = PROFILES[p]
    bundle = str(ROOT / "bundles" / cfg["rd"])
    out: dict[str, Any] = {"n": n, "awgn": {}, "rayleigh32": {}, "mulaw": {}}
    with started_services(ROOT / cfg["data"]) as svc:
        for steps in STEPS:
            out["awgn"][str(steps)] = _run(
                _scenario(
                    f"{p}-awgn-s{steps}",
                    cfg["data"],
                    bundle,
                    RATES,
                    n,
                    {"mode": "awgn", "n_rx": 1, "snr_db": SNRS},
                    {"steps": steps},
                ),
                svc.addrs,
            )
        for steps in (0, 2):
            out["rayleigh32"][str(steps)] = _run(
                _scenario(
                    f"{p}-rayleigh32-s{steps}",
                    cfg["data"],
                    bundle,
                    [16],
                    n,
                    {
                        "mode": "rayleigh",
                        "n_rx": 32,
                        "block_fading": True,
                        "snr_db": [-25, -20, -15, -10, -5],
                    },
                    {"steps": steps},
                ),
                svc.addrs,
            )
            out["mulaw"][str(steps)] = _run(
                _scenario(
                    f"{p}-mulaw-s{steps}",
                    cfg["data"],
                    bundle,
                    [f"k16-mu{b}" for b in (2, 3, 4, 5, 6)],
                    n,
                    {"ideal": True},
                    {"steps": steps},
                ),
                svc.addrs,
            )
        out["analog_ideal"] = {
            str(s): _run(
                _scenario(f"{p}-ideal-s{s}", cfg["data"], bundle, [16], n, {"ideal": True}, {"steps": s}),
                svc.addrs,
            )
            for s in (0, 2)
        }
    return out


def _nmse_by(rows: list[dict[str, Any]], rate: Any) -> dict[float, float]:
    names = {str(rate), f"k{rate}"}
    return {float(r["snr_db"]): float(r["nmse_db_ad"]) for r in rows if str(r["rate"]) in names}


def section_threshold(p: str, link: dict[str, Any], tput: dict[str, Any], n: int) -> dict[str, Any]:
    """Thresholds from the measured per-SNR NMSE of steps 0 and 2 (AWGN sweep), both ways:
    skip the refinement at or above a threshold (the paper's rule) or below one."""
    from csilink.runner import started_services

    ae_ms = 1e3 / tput["decoder_per_s"]
    ref_ms = 1e3 / tput["refine_2_per_s"]
    table = []
    for k in RATES:
        a0 = _nmse_by(link["awgn"]["0"], k)
        a2 = _nmse_by(link["awgn"]["2"], k)
        for policy in ("above", "below"):
            for thr in [-math.inf, *SNRS, math.inf]:
                refine = [(s < thr) if policy == "above" else (s >= thr) for s in SNRS]
                per = [a2[float(s)] if r else a0[float(s)] for s, r in zip(SNRS, refine, strict=True)]
                frac = float(np.mean(refine))
                table.append(
                    {
                        "k": k,
                        "policy": f"skip {policy}",
                        "threshold_db": None if math.isinf(thr) else thr,
                        "refined_fraction": frac,
                        # mean NMSE over the SNR grid (uniform), in the linear domain
                        "nmse_db": float(10 * np.log10(np.mean(10 ** (np.array(per) / 10)))),
                        "bs_ms_per_report": ae_ms + frac * ref_ms,
                    }
                )
    # the rule: refine only where 2 steps measurably help (gain >= 0.1 dB at k = 16): skip
    # below the lowest SNR from which on the gain stays >= 0.1 dB, and at or above the SNR from
    # which on it stays below
    a0, a2 = _nmse_by(link["awgn"]["0"], 16), _nmse_by(link["awgn"]["2"], 16)
    gain = {s: a0[float(s)] - a2[float(s)] for s in SNRS}
    below = next((float(s) for s in SNRS if all(gain[t] >= 0.1 for t in SNRS if t >= s)), None)
    above = next((float(s) for s in SNRS if all(gain[t] < 0.1 for t in SNRS if t >= s)), None)
    ext = {"steps": 2, "skip_below_snr_db": below if below != SNRS[0] else None, "skip_above_snr_db": above}
    cfg = PROFILES[p]
    with started_services(ROOT / cfg["data"]) as svc:
        check = _run(
            _scenario(
                f"{p}-awgn-flex",
                cfg["data"],
                str(ROOT / "bundles" / cfg["rd"]),
                [16],
                n,
                {"mode": "awgn", "n_rx": 1, "snr_db": SNRS},
                ext,
            ),
            svc.addrs,
        )
    return {
        "gain_2step_db_k16": gain,
        "table": table,
        "chosen": ext,
        "check_through_services": check,
        "ae_ms": ae_ms,
        "refine2_ms": ref_ms,
    }


def section_throughput(p: str, batch: int = 1000) -> dict[str, Any]:
    import torch

    from bs_service.hooks import make_refiner
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle
    from shared.dataset import open_dataset
    from shared.ue_encoder import UeEncoder

    torch.set_num_threads(2)
    cfg = PROFILES[p]
    b = Bundle.load(ROOT / "bundles" / cfg["rd"])
    with open_dataset(ROOT / cfg["data"]) as ds:
        x = ds.split("test").read("x_ad", slice(0, batch))
    enc = UeEncoder.from_bundle(b, threads=2)
    dec = load_bs_decoder(b, "cpu")
    lat = np.stack([enc.codec("k16").decode(r, b.manifest.latent_size) for r in enc.encode(x, "k16")])
    snr = np.full(len(x), 10.0, np.float32)

    def rate(fn: Any, reps: int = 3) -> float:
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return reps * len(x) / (time.perf_counter() - t0)

    h = dec.decode_batch(lat, {}, snr)
    out = {
        "batch": len(x),
        "threads": 2,
        "encoder_per_s": rate(lambda: enc.encode(x, "k16")),
        "decoder_per_s": rate(lambda: dec.decode_batch(lat, {}, snr)),
    }
    for steps in (2, 20):
        ref = make_refiner({**b.manifest.bs.refinement, "steps": steps}, b, dec)
        out[f"refine_{steps}_per_s"] = rate(
            lambda ref=ref: ref.refine(h, lat, {}, snr), 1 if steps == 20 else 3
        )
    out["denoiser_params"] = sum(
        v.numel() for v in make_refiner(b.manifest.bs.refinement, b, dec).stage.denoiser.parameters()
    )
    import torch.nn as nn

    out["encoder_params_fp32"] = None
    out["decoder_params"] = sum(v.numel() for v in dec.decoder.parameters() if isinstance(v, nn.Parameter))
    return out


def _offline(
    bundle: Any, data: Path, rates: list[str], snrs: tuple[float, ...], n: int, refinement: Any = "bundle"
) -> list[dict[str, Any]]:
    from evaluation.harness import evaluate_bundle, load_truth

    truth = load_truth(data, "test", n, set(bundle.manifest.bs.needs))
    rows = evaluate_bundle(bundle, truth, snrs, seed=0, refinement=refinement, rates=rates)
    return [{"model": r.model, "rate": r.rate, "snr_db": r.snr_db, "nmse_db_ad": r.nmse_db_ad} for r in rows]


def section_rates(n: int) -> dict[str, Any]:
    from shared.bundle import Bundle

    data = ROOT / PROFILES["umi"]["data"]
    out = {}
    for mid, rates in (
        ("csinet-jscc-umi", ["k8", "k32"]),
        ("csinet-jscc-umi-k8", ["k8"]),
        ("csinet-jscc-umi-k32", ["k32"]),
    ):
        out[mid] = _offline(Bundle.load(ROOT / "bundles" / mid), data, rates, (0.0, 10.0, 20.0), n)
    return out


def section_cnr(n: int) -> dict[str, Any]:
    from csilink.runner import started_services

    cfg = PROFILES["umi"]
    out: dict[str, Any] = {}
    with started_services(ROOT / cfg["data"]) as svc:
        for mid in ("csinet-jscc-umi", "csinet-jscc-umi-cnr0"):
            for csi in (None, 0.0):
                key = f"{mid} csi_rs={'perfect' if csi is None else csi}"
                out[key] = _run(
                    _scenario(
                        f"umi-cnr-{mid}-{csi}",
                        cfg["data"],
                        str(ROOT / "bundles" / mid),
                        [16],
                        n,
                        {"mode": "awgn", "n_rx": 1, "snr_db": [0, 10, 20]},
                        None,
                        csi,
                    ),
                    svc.addrs,
                )
    return out


def section_budget(p: str, n: int) -> dict[str, Any]:
    import tempfile

    from training.export import export_run

    cfg = PROFILES[p]
    run = ROOT / "runs" / "rd" / cfg["rd"]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ck in ("snap-050", "best"):
            if not (run / f"{ck}.pt").is_file():
                continue
            b = export_run(
                run,
                Path(tmp) / ck,
                model_id=f"{cfg['rd']}-{ck}",
                checkpoint=ck,
                calib_n=200,
                check_n=200,
                force=True,
            )
            out[ck] = {
                "steps_2": _offline(b, ROOT / cfg["data"], ["k16"], (0.0, 5.0, 10.0, 20.0), n),
                "ae": _offline(b, ROOT / cfg["data"], ["k16"], (0.0, 5.0, 10.0, 20.0), n, None),
            }
    snap = run / "snap-050.pt"
    if snap.is_file():
        import torch

        ck = torch.load(snap, map_location="cpu", weights_only=True)
        out["snap_050_samples_seen"] = ck.get("samples_seen")
    return out


def _f(v: Any, d: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{d}f}"


def render(doc: dict[str, Any]) -> str:
    """Markdown tables of everything measured (docs/rd_jscc.md, between its markers)."""
    L: list[str] = []
    names = {
        "cdl": "`cdl-c-fdd`",
        "umi": "`umi-nlos` (rich)",
        "gscm": "`gscm-outdoor` (rich, COST 2100-shaped)",
    }
    for p in ("umi", "gscm", "cdl"):
        d = doc.get(p)
        if not d:
            continue
        L += [f"### {names[p]}", ""]
        if "link" in d:
            link = d["link"]
            L += [
                f"NMSE (dB, AD) vs uplink SNR, AWGN, through the services, {link['n']} test samples per "
                "point; AE = autoencoder alone (0 refinement steps), RD2 / RD20 = 2 / 20 DDIM steps.",
                "",
            ]
            head = "| k | method | " + " | ".join(f"{s} dB" for s in SNRS) + " |"
            L += [head, "|" + "---|" * (2 + len(SNRS))]
            for k in RATES:
                for steps, lab in (("0", "AE"), ("2", "RD2"), ("20", "RD20")):
                    if steps in link["awgn"]:
                        v = _nmse_by(link["awgn"][steps], k)
                        L.append(f"| {k} | {lab} | " + " | ".join(_f(v.get(float(s))) for s in SNRS) + " |")
            L.append("")
            if link.get("rayleigh32"):
                ray = link["rayleigh32"]
                snrs = sorted({float(r["snr_db"]) for r in ray["0"]})
                L += [
                    "Rayleigh block fading, MRC over 32 BS antennas, k = 16 (per-antenna SNR; mean "
                    "effective SNR after MRC in brackets):",
                    "",
                    "| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
                    "|" + "---|" * (1 + len(snrs)),
                ]
                for steps, lab in (("0", "AE"), ("2", "RD2")):
                    rows = {float(r["snr_db"]): r for r in ray[steps]}
                    L.append(
                        f"| {lab} | "
                        + " | ".join(
                            f"{_f(rows[s]['nmse_db_ad'])} ({_f(rows[s]['effective_snr_db'], 1)})"
                            for s in snrs
                        )
                        + " |"
                    )
                L.append("")
            if link.get("mulaw"):
                L += [
                    "mu-law (mu = 50) + B-bit latents as bits, k = 16, ideal digital link:",
                    "",
                    "| B (bits/real) | payload (bits) | AE | RD2 |",
                    "|---|---|---|---|",
                ]
                m0 = {r["rate"]: r["nmse_db_ad"] for r in link["mulaw"]["0"]}
                m2 = {r["rate"]: r["nmse_db_ad"] for r in link["mulaw"]["2"]}
                for b in (2, 3, 4, 5, 6):
                    L.append(f"| {b} | {32 * b} | {_f(m0.get(f'k16-mu{b}'))} | {_f(m2.get(f'k16-mu{b}'))} |")
                a0 = link.get("analog_ideal", {})
                if a0:
                    L.append(
                        f"| analog, no noise | - | {_f(a0['0'][0]['nmse_db_ad'])} | "
                        f"{_f(a0['2'][0]['nmse_db_ad'])} |"
                    )
                L.append("")
        if "throughput" in d:
            t = d["throughput"]
            L += [
                f"Throughput, samples/s at batch {t['batch']}, {t['threads']} threads, this 2-core machine "
                f"(denoiser {t['denoiser_params']:,} parameters):",
                "",
                "| encoder (int8 ONNX) | decoder | 2-step refinement | 20-step refinement |",
                "|---|---|---|---|",
                f"| {t['encoder_per_s']:,.0f} | {t['decoder_per_s']:,.0f} | {t['refine_2_per_s']:,.0f} | "
                f"{t['refine_20_per_s']:,.0f} |",
                "",
            ]
        if "threshold" in d:
            th = d["threshold"]
            L += [
                "Flexible decoding (k = 16): the refinement is skipped at or above (paper's rule) or below "
                f"a threshold; NMSE averaged over the {len(SNRS)} SNRs of the sweep, BS time per report "
                "from the throughput row:",
                "",
                "| policy | threshold (dB) | refined | NMSE (dB) | BS ms/report |",
                "|---|---|---|---|---|",
            ]
            for r in th["table"]:
                if r["k"] != 16:
                    continue
                thr = (
                    f"{r['threshold_db']:g}"
                    if r["threshold_db"] is not None
                    else ("none (refine all)" if r["refined_fraction"] == 1 else "none (refine none)")
                )
                L.append(
                    f"| {r['policy']} | {thr} | {r['refined_fraction']:.0%} | {_f(r['nmse_db'])} | "
                    f"{_f(r['bs_ms_per_report'], 3)} |"
                )
            gains = ", ".join(f"{float(s):g} dB: {_f(g)}" for s, g in th["gain_2step_db_k16"].items())
            L += [
                "",
                f"2-step gain over the autoencoder at k = 16, by SNR: {gains}; chosen: `{th['chosen']}`.",
                "",
            ]
            if th.get("check_through_services"):
                v = {float(r["snr_db"]): r["nmse_db_ad"] for r in th["check_through_services"]}
                L += [
                    "Check through the services with that policy (k = 16): "
                    + ", ".join(f"{s:g} dB: {_f(v.get(float(s)))}" for s in SNRS),
                    "",
                ]
        if "budget" in d:
            b = d["budget"]
            L += [
                "Budget (k = 16, offline harness): the denoiser at half and at its full budget:",
                "",
                "| checkpoint | SNR (dB) | AE | RD2 | gain |",
                "|---|---|---|---|---|",
            ]
            for ck in ("snap-050", "best"):
                if ck not in b:
                    continue
                ae = {r["snr_db"]: r["nmse_db_ad"] for r in b[ck]["ae"]}
                rd = {r["snr_db"]: r["nmse_db_ad"] for r in b[ck]["steps_2"]}
                for s in sorted(ae):
                    L.append(f"| {ck} | {s:g} | {_f(ae[s])} | {_f(rd[s])} | {_f(ae[s] - rd[s])} |")
            L.append("")
        if d.get("chain_budget"):
            L += [
                "The whole method at two budgets (k = 16, offline harness): autoencoder + denoiser "
                "trained 15 + 15 and 30 + 30 CPU-minutes (separate runs, each with its own schedule); "
                "gain = AE minus RD2 (positive: the refinement helps):",
                "",
                "| budget (CPU-min) | samples seen (AE / denoiser) | SNR (dB) | AE | RD2 | RD20 | gain RD2 |",
                "|---|---|---|---|---|---|---|",
            ]
            for label, c in d["chain_budget"].items():
                ae = {r["snr_db"]: r["nmse_db_ad"] for r in c["ae"]}
                r2 = {r["snr_db"]: r["nmse_db_ad"] for r in c["rd_2"]}
                r20 = {r["snr_db"]: r["nmse_db_ad"] for r in c["rd_20"]}
                seen = f"{c['samples_seen']['ae']:,} / {c['samples_seen']['denoiser']:,}"
                for s in sorted(ae):
                    L.append(
                        f"| {label} | {seen} | {s:g} | {_f(ae[s])} | {_f(r2[s])} | {_f(r20[s])} "
                        f"| {_f(ae[s] - r2[s])} |"
                    )
            L.append("")
        if "gd" in d:
            g = d["gd"]
            L += [
                "Residual vs Gaussian diffusion (k = 16, offline harness): the same autoencoder, U-Net and "
                "budget; GD starts from zeros over the full cosine range:",
                "",
                "| method | 0 dB | 5 dB | 10 dB | 20 dB |",
                "|---|---|---|---|---|",
            ]
            labels = {
                "ae": "AE",
                "rd_2": "RD 2-step",
                "rd_20": "RD 20-step",
                "gd_2": "GD 2-step",
                "gd_20": "GD 20-step",
            }
            for key, lab in labels.items():
                v = {r["snr_db"]: r["nmse_db_ad"] for r in g.get(key, [])}
                L.append(f"| {lab} | " + " | ".join(_f(v.get(s)) for s in (0.0, 5.0, 10.0, 20.0)) + " |")
            L.append("")
        if "ae_budget" in d:
            g = d["ae_budget"]
            L += [
                "The autoencoder (stage 1) at two budgets (k = 16, offline harness; the 30-minute run "
                "continues the 15-minute one, its learning-rate schedule stretched to 30 minutes):",
                "",
                "| CPU-minutes | 0 dB | 5 dB | 10 dB | 20 dB |",
                "|---|---|---|---|---|",
            ]
            for key in ("15", "30"):
                v = {r["snr_db"]: r["nmse_db_ad"] for r in g.get(key, [])}
                L.append(f"| {key} | " + " | ".join(_f(v.get(s)) for s in (0.0, 5.0, 10.0, 20.0)) + " |")
            L.append("")
        if "rates" in d:
            L += [
                "One variable-rate model vs rate-specific models (offline harness, AWGN):",
                "",
                "| model | k | 0 dB | 10 dB | 20 dB |",
                "|---|---|---|---|---|",
            ]
            for mid, rows in d["rates"].items():
                for rate in sorted({r["rate"] for r in rows}):
                    v = {r["snr_db"]: r["nmse_db_ad"] for r in rows if r["rate"] == rate}
                    L.append(
                        f"| `{mid}` | {rate[1:]} | {_f(v.get(0.0))} | {_f(v.get(10.0))} | {_f(v.get(20.0))} |"
                    )
            L.append("")
        if "cnr" in d:
            L += [
                "Imperfect CSI (k = 16, AWGN uplink): the UE encodes its CSI-RS estimate at 0 dB CNR:",
                "",
                "| model | CSI at the UE | 0 dB | 10 dB | 20 dB |",
                "|---|---|---|---|---|",
            ]
            for key, rows in d["cnr"].items():
                mid, csi = key.split(" csi_rs=")
                v = {float(r["snr_db"]): r["nmse_db_ad"] for r in rows}
                lab = "perfect" if csi == "perfect" else f"{float(csi):g} dB CNR"
                L.append(f"| `{mid}` | {lab} | {_f(v.get(0.0))} | {_f(v.get(10.0))} | {_f(v.get(20.0))} |")
            L.append("")
    return "\n".join(L)


def write_doc(doc: dict[str, Any], path: Path = ROOT / "docs" / "rd_jscc.md") -> None:
    start, end = "<!-- bench_rdjscc:start -->", "<!-- bench_rdjscc:end -->"
    text = path.read_text() if path.is_file() else f"# RD-JSCC\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    new = text[: text.index(start) + len(start)] + "\n" + render(doc) + "\n" + text[text.index(end) :]
    path.write_text(new)


def _export_tmp(run: Path, tmp: str, mid: str) -> Any:
    from training.export import export_run

    return export_run(run, Path(tmp) / mid, model_id=mid, calib_n=200, check_n=200, force=True)


def section_gd(n: int) -> dict[str, Any]:
    """Residual vs Gaussian diffusion (cdl, k = 16, offline): the same AE, U-Net and budget."""
    import tempfile

    from shared.bundle import Bundle

    data = ROOT / PROFILES["cdl"]["data"]
    rd = Bundle.load(ROOT / "bundles" / "rd-jscc-cdl")
    snrs = (0.0, 5.0, 10.0, 20.0)
    out: dict[str, Any] = {"ae": _offline(rd, data, ["k16"], snrs, n, None)}
    for steps in (2, 20):
        out[f"rd_{steps}"] = _offline(
            rd, data, ["k16"], snrs, n, {**rd.manifest.bs.refinement, "steps": steps}
        )
    with tempfile.TemporaryDirectory() as tmp:
        gd = _export_tmp(ROOT / "runs" / "rd" / "rd-jscc-cdl-gd", tmp, "rd-jscc-cdl-gd")
        for steps in (2, 20):
            out[f"gd_{steps}"] = _offline(
                gd, data, ["k16"], snrs, n, {**gd.manifest.bs.refinement, "steps": steps}
            )
    return out


def section_ae_budget(n: int) -> dict[str, Any]:
    """The umi autoencoder (stage 1) at 15 and 30 CPU-minutes (offline, k = 16)."""
    import tempfile

    from shared.bundle import Bundle

    data = ROOT / PROFILES["umi"]["data"]
    snrs = (0.0, 5.0, 10.0, 20.0)
    out = {"15": _offline(Bundle.load(ROOT / "bundles" / "csinet-jscc-umi"), data, ["k16"], snrs, n, None)}
    with tempfile.TemporaryDirectory() as tmp:
        b = _export_tmp(ROOT / "runs" / "rd" / "csinet-jscc-umi-30", tmp, "csinet-jscc-umi-30")
        out["30"] = _offline(b, data, ["k16"], snrs, n, None)
    return out


# The two budgets of the whole method (stage 1 + stage 2, CPU-minutes): runs of scripts/train_rd.sh
CHAINS = {"gscm": {"15+15": "rd-jscc-gscm", "30+30": "rd-jscc-gscm-30"}}


def section_chain_budget(p: str, n: int) -> dict[str, Any]:
    """AE alone vs RD-JSCC 2 / 20 steps at k = 16 for each budget of the whole method (offline)."""
    import tempfile

    import torch

    data = ROOT / PROFILES[p]["data"]
    snrs = (0.0, 5.0, 10.0, 15.0, 20.0)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, rid in CHAINS[p].items():
            run = ROOT / "runs" / "rd" / rid
            if not (run / "best.pt").is_file():
                print(f"  chain_budget: {run} not trained, skipped", file=sys.stderr)
                continue
            b = _export_tmp(run, tmp, rid)
            ref = b.manifest.bs.refinement
            ae_run = Path(json.loads((run / "config.json").read_text())["train"]["init_from"]).parent
            seen = {
                k: torch.load(r / "best.pt", map_location="cpu", weights_only=True).get("samples_seen")
                for k, r in (("ae", ROOT / ae_run), ("denoiser", run))
            }
            out[label] = {
                "samples_seen": seen,
                "ae": _offline(b, data, ["k16"], snrs, n, None),
                "rd_2": _offline(b, data, ["k16"], snrs, n, {**ref, "steps": 2}),
                "rd_20": _offline(b, data, ["k16"], snrs, n, {**ref, "steps": 20}),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), action="append")
    ap.add_argument(
        "--only",
        action="append",
        choices=[
            "link", "threshold", "throughput", "rates", "cnr", "budget", "gd", "ae_budget", "chain_budget"
        ],
    )
    ap.add_argument("--n", type=int, default=200, help="test samples per point")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--render-only", action="store_true", help="rewrite docs/rd_jscc.md from --out")
    a = ap.parse_args(argv)
    if a.render_only:
        write_doc(json.loads(Path(a.out).read_text()))
        return 0
    from shared.provenance import provenance

    out_path = Path(a.out)
    doc = json.loads(out_path.read_text()) if out_path.is_file() else {}
    only = set(a.only or ["link", "throughput", "threshold", "rates", "cnr", "budget"])
    for p in a.profile or ["cdl", "umi"]:
        d = doc.setdefault(p, {})
        t0 = time.time()
        if "throughput" in only:
            d["throughput"] = section_throughput(p)
            print(p, "throughput", d["throughput"], file=sys.stderr)
        if "link" in only:
            d["link"] = section_link(p, a.n)
        if "threshold" in only and "link" in d and "throughput" in d:
            d["threshold"] = section_threshold(p, d["link"], d["throughput"], a.n)
        if "budget" in only:
            d["budget"] = section_budget(p, a.n)
        if p == "umi" and "rates" in only:
            d["rates"] = section_rates(a.n)
        if p == "cdl" and "gd" in only:
            d["gd"] = section_gd(a.n)
        if p in CHAINS and "chain_budget" in only:
            d["chain_budget"] = section_chain_budget(p, a.n)
        if p == "umi" and "ae_budget" in only:
            d["ae_budget"] = section_ae_budget(a.n)
        if p == "umi" and "cnr" in only:
            d["cnr"] = section_cnr(a.n)
        d["provenance"] = {
            **provenance(),
            "command": "python benchmarks/bench_rdjscc.py " + " ".join(argv or sys.argv[1:]),
            "seconds": round(time.time() - t0),
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    write_doc(doc)
    print(f"wrote {out_path} and docs/rd_jscc.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
