"""The side-information codec against its baselines (docs/vq_diffusion.md): one command, same data.

Models: the runs of ``scripts/train_vqd.sh`` (bundles/ for the shipped ones, runs/vqd/bundles/
for the rest, runs/vqd/ref-* for the unquantized reference predictors), all trained on the same
``cdl-c-fdd`` set (UL with independent ray phases) under the same CPU budget; ids ending
``-ulcopy`` / ``-umi`` on the near-copy UL set and on ``umi-nlos``.

Sections (``--only`` picks some):

* ``rd``: the prediction task with side information: NMSE (cropped AD domain) and SGCS vs bits
  for vq-diffusion (64 / 128 / 192 bits), CsiNet / CRNet with 6-bit tanh quantization and the
  uplink CSI in the decoder, Type II (a codec of the CSI now, scored against the future CSI),
  the codec without side information, and the references: z by x (the outdated CSI), z by y,
  nothing (0 dB), unquantized predictors from x and y and from x alone. Codebook utilization.
* ``side``: the value of side information: true uplink CSI, an SRS estimate at 20 / 10 / 5 /
  0 dB (``shared.estimation``, as the BS node's ``srs_snr_db`` draws it), none (zeros), and
  the model trained without it.
* ``ber``: NMSE vs bit error rate, independent bit flips on the payload (offline), the
  codec vs the 6-bit baseline; ``link``: the same through the three running services (BPSK
  over AWGN, one BS antenna, no CRC: the decoders see every flipped bit), BER measured by the
  emulator.
* ``worlds``: the near-copy UL (shared ray phases) and the geometry-varying UMi NLOS world.
* ``recon``: the reconstruction task (z = x, no side information) at ~128 bits.
* ``budget``: vqd-b128 and si-csinet-b126 at 10 and 20 CPU-minutes (runs/vqd-x2).
* ``speed``: BS decoding throughput on 2 CPU threads (4 U-Net passes) at batch 1 and 256.

    .venv/bin/python benchmarks/bench_vqd.py                  # ~15 min on 2 cores
    .venv/bin/python benchmarks/bench_vqd.py --only rd --n 300
    .venv/bin/python benchmarks/bench_vqd.py --render-only

Writes docs/bench/vqd.json (merged per section), docs/img/vqd_rd.png and the results part of
docs/vq_diffusion.md.
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

DATA = {
    "cdl": "data/generated/cdl-c-fdd.h5",
    "ulcopy": "data/generated/cdl-c-fdd-ulcopy.h5",
    "umi": "data/generated/umi-nlos.h5",
}
ROOTS = (ROOT / "bundles", ROOT / "runs" / "vqd" / "bundles")
RUNS = ROOT / "runs" / "vqd"
METHODS = {
    "vq-diffusion + SI": ("vqd-b64", "vqd-b128", "vqd-b192"),
    "CsiNet 6-bit + SI": ("si-csinet-b66", "si-csinet-b126", "si-csinet-b192"),
    "CRNet 6-bit + SI": ("si-crnet-b126",),
    "vq-diffusion, no SI": ("vqd-b128-nosi",),
}
TYPE2 = ("type2-44b", "type2-71b", "type2-118b", "type2-157b", "type2-201b", "type2-275b")
REFS = {"ref-xy": "predictor from unquantized x and y", "ref-x": "predictor from unquantized x"}
SRS_SNRS = (20.0, 10.0, 5.0, 0.0)
BERS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
LINK_SNRS = [12, 8, 6, 4, 2, 0, -2]
OUT = ROOT / "docs" / "bench" / "vqd.json"
DOC = ROOT / "docs" / "vq_diffusion.md"
FIG = ROOT / "docs" / "img" / "vqd_rd.png"
BATCH = 250


def find(mid: str) -> Any | None:
    from shared.bundle import Bundle

    for r in ROOTS:
        if (r / mid / "manifest.json").is_file():
            return Bundle.load(r / mid)
    print(f"  (no bundle {mid}: skipped; scripts/train_vqd.sh makes it)", file=sys.stderr)
    return None


def truth(world: str, n: int) -> Any:
    from evaluation.harness import load_truth

    t = load_truth(ROOT / DATA[world], "test", n, {"y_ad"})
    from shared.dataset import open_dataset

    with open_dataset(ROOT / DATA[world]) as ds:
        t.sample_ids = ds.split("test").sample_ids[: len(t.x_ad)]  # type: ignore[attr-defined]
    return t


def score(h: np.ndarray, h_hat: np.ndarray) -> dict[str, float]:
    from shared import metrics
    from shared.transforms import ad_to_sf

    s = metrics.summary(ad_to_sf(h, 1024), ad_to_sf(h_hat, 1024))
    return {"nmse_db": metrics.nmse_db(h, h_hat), "sgcs": float(s["sgcs"])}


def flip(payloads: list[Any], ber: float, seed: int) -> list[Any]:
    """Independent bit flips at ``ber`` (a hard-decision BSC), keyed per report."""
    from shared.wire import Bits

    if ber <= 0:
        return payloads
    out = []
    for i, p in enumerate(payloads):
        rng = np.random.default_rng([seed, i])
        b = p.to_array()
        out.append(Bits.from_array(b ^ (rng.random(b.size) < ber).astype(np.uint8)))
    return out


def run_bundle(
    b: Any, t: Any, y: np.ndarray | None = None, ber: float = 0.0, seed: int = 0, target: str | None = None
) -> dict[str, Any]:
    """UE int8 encoder -> wire (optionally flipped bits) -> BS decoder with ``y`` (default: the
    true uplink CSI) -> score against the bundle's target (or ``target``)."""
    from evaluation.harness import _unpacker
    from models.registry import load_bs_decoder
    from shared.ue_encoder import UeEncoder

    m = b.manifest
    rate = m.rates[0].name
    dec = load_bs_decoder(b, "cpu")
    payloads = flip(UeEncoder.from_bundle(b, threads=1).encode(t.x_ad, rate), ber, seed)
    unpack = _unpacker(b, rate, dec)
    lat = np.stack([unpack(p) for p in payloads]).astype(np.float32)
    y = t.side["y_ad"] if y is None else y
    parts = []
    for i in range(0, len(lat), BATCH):
        side = {"y_ad": y[i : i + BATCH]} if "y_ad" in m.bs.needs else {}
        parts.append(dec.decode_batch(lat[i : i + BATCH], side, None))
    h_hat = np.concatenate(parts)
    field = target or m.target.field
    res = score(t.z_ad if field == "z" else t.x_ad, h_hat)
    res.update(bits=m.rates[0].bits, rate=rate, target=field)
    return res


def training(b: Any) -> dict[str, Any]:
    t = b.manifest.training
    keys = (
        "dataset",
        "budget_minutes",
        "budget_clock",
        "cpu_minutes",
        "wall_minutes",
        "samples_seen",
        "epochs",
    )
    return {k: t.get(k) for k in keys}


def utilization(b: Any, t: Any) -> dict[str, Any]:
    """Codebook use on the test split: entries ever picked, index entropy (bits per vector)."""
    from shared.ue_encoder import UeEncoder
    from shared.wire import bits_to_ints

    m = b.manifest
    nv = int(m.ue.wire["size"])
    k = int(math.log2(nv))
    idx = np.concatenate([bits_to_ints(p.to_array(), k) for p in UeEncoder.from_bundle(b).encode(t.x_ad)])
    p = np.bincount(idx, minlength=nv) / idx.size
    ent = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    return {"entries": nv, "used": int((p > 0).sum()), "entropy_bits": ent, "max_bits": k}


def reference(rid: str, t: Any) -> dict[str, Any] | None:
    """An unquantized predictor (runs/vqd/<rid>): normalized like its training data."""
    import torch

    from models.registry import get_family

    run = RUNS / rid
    if not (run / "best.pt").is_file():
        print(f"  (no reference run {run}: skipped)", file=sys.stderr)
        return None
    cfg = json.loads((run / "config.json").read_text())
    info = json.loads((run / "run.json").read_text())
    scale = float(info["normalization"]["scale"])
    fam = get_family("si-reference")
    model = fam.build_model(cfg["model"])
    model.load_state_dict(torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"])
    model.eval()
    from shared.transforms import complex_to_real, real_to_complex

    out = []
    with torch.inference_mode():
        for i in range(0, len(t.x_ad), BATCH):
            xb = complex_to_real(t.x_ad[i : i + BATCH] * np.float32(scale))
            yb = complex_to_real(t.side["y_ad"][i : i + BATCH] * np.float32(scale))
            batch = torch.from_numpy(np.concatenate([xb, yb, np.zeros_like(xb)], 1))
            out.append(real_to_complex(model(fam.inputs(model, batch)).numpy()) / np.float32(scale))
    res = score(t.z_ad, np.concatenate(out))
    keys = ("budget_minutes", "budget_clock", "cpu_minutes", "samples_seen", "epochs")
    res["training"] = {k: info.get(k) for k in keys}
    return res


def identities(t: Any) -> dict[str, dict[str, float]]:
    return {
        "z by x (outdated CSI)": score(t.z_ad, t.x_ad),
        "z by y (uplink CSI as is)": score(t.z_ad, t.side["y_ad"]),
        "nothing (zeros)": {"nmse_db": 0.0, "sgcs": 0.0},
    }


# --------------------------------------------------------------------------- sections


def section_rd(n: int) -> dict[str, Any]:
    from evaluation.complexity import bundle_complexity

    t = truth("cdl", n)
    out: dict[str, Any] = {"n": len(t.x_ad), "methods": {}, "type2": {}, "refs": identities(t), "util": {}}
    for label, ids in METHODS.items():
        for mid in ids:
            b = find(mid)
            if b is None:
                continue
            r = run_bundle(b, t)
            r.update(training=training(b), **{k: bundle_complexity(b).get(k) for k in ("params", "macs")})
            out["methods"].setdefault(label, {})[mid] = r
            if b.manifest.ue.wire.get("kind") == "vq":
                out["util"][mid] = utilization(b, t)
            print(f"  rd {mid}: {r['nmse_db']:.2f} dB at {r['bits']} bits", file=sys.stderr)
    for mid in TYPE2:
        b = find(mid)
        if b is not None:
            out["type2"][mid] = run_bundle(b, t, target="z")
    for rid, label in REFS.items():
        r = reference(rid, t)
        if r is not None:
            out["refs"][label] = r
    return out


def section_side(n: int) -> dict[str, Any]:
    from shared.estimation import estimation_noise, srs_key

    t = truth("cdl", n)
    out: dict[str, Any] = {"n": len(t.x_ad), "models": {}}
    y = t.side["y_ad"]
    for mid in ("vqd-b128", "si-csinet-b126", "vqd-b64"):
        b = find(mid)
        if b is None:
            continue
        rows = {"true uplink CSI": run_bundle(b, t)}
        for s in SRS_SNRS:
            did = b.manifest.training.get("dataset_id", "")
            ys = np.stack(
                [
                    estimation_noise(y[i], s, srs_key(0, did, "test", int(sid), "y_ad"))
                    for i, sid in enumerate(t.sample_ids)
                ]
            )
            rows[f"SRS estimate at {s:g} dB"] = run_bundle(b, t, y=ys)
        rows["no uplink CSI (zeros)"] = run_bundle(b, t, y=np.zeros_like(y))
        out["models"][mid] = rows
    b = find("vqd-b128-nosi")
    if b is not None:
        out["nosi"] = run_bundle(b, t)
    return out


def section_ber(n: int) -> dict[str, Any]:
    t = truth("cdl", n)
    out: dict[str, Any] = {"n": len(t.x_ad), "bers": list(BERS), "models": {}}
    for mid in ("vqd-b128", "si-csinet-b126", "si-crnet-b126", "vqd-b64", "si-csinet-b66"):
        b = find(mid)
        if b is not None:
            out["models"][mid] = [run_bundle(b, t, ber=p, seed=7)["nmse_db"] for p in BERS]
    return out


def section_link(n: int) -> dict[str, Any]:
    from csilink.runner import run_scenario, started_services

    out: dict[str, Any] = {"n": n, "models": {}}
    folder = ROOT / "runs" / "bench_vqd"
    folder.mkdir(parents=True, exist_ok=True)
    with started_services(ROOT / DATA["cdl"]) as svc:
        for mid in ("vqd-b128", "si-csinet-b126"):
            b = find(mid)
            if b is None:
                continue
            sc = {
                "name": f"ber-{mid}",
                "dataset": {"path": str(ROOT / DATA["cdl"]), "split": "test"},
                "models": str(b.path),
                "reports": n,
                "channel": {
                    "mode": "awgn", "n_rx": 1, "modulation": "bpsk", "crc": "none", "snr_db": LINK_SNRS
                },
                "seed": 3,
                "batch": 100,
                "output": str(folder / mid),
            }
            path = folder / f"{sc['name']}.yaml"
            path.write_text(yaml.safe_dump(sc, sort_keys=False))
            t0 = time.time()
            res = run_scenario(path, svc.addrs["ue"], svc.addrs["channel"], svc.addrs["bs"], plots=False)
            keep = ("snr_db", "ok", "sent", "ber", "nmse_db_ad", "sgcs", "payload_bits")
            out["models"][mid] = [{k: r.get(k) for k in keep} for r in res.rows]
            print(f"  link {mid}: {len(res.rows)} points in {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def section_worlds(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w in ("ulcopy", "umi"):
        if not (ROOT / DATA[w]).is_file():
            print(f"  (no dataset {DATA[w]}: world {w} skipped)", file=sys.stderr)
            continue
        t = truth(w, n)
        rows: dict[str, Any] = {"n": len(t.x_ad), "refs": identities(t), "models": {}}
        for mid in (f"vqd-b128-{w}", f"si-csinet-b126-{w}"):
            b = find(mid)
            if b is not None:
                rows["models"][mid] = {**run_bundle(b, t), "training": training(b)}
        out[w] = rows
    return out


def section_recon(n: int) -> dict[str, Any]:
    t = truth("cdl", n)
    out: dict[str, Any] = {"n": len(t.x_ad), "models": {}}
    for mid in ("vqd-b128-recon", "csinet-b128", "type2-118b", "type2-157b"):
        b = find(mid)
        if b is not None:
            out["models"][mid] = {**run_bundle(b, t, target="x"), "family": b.manifest.family}
    return out


def section_budget(n: int) -> dict[str, Any]:
    """The headline pair at twice the budget (runs of ``SHIP= MINUTES=20 RUNS=runs/vqd-x2
    scripts/train_vqd.sh vqd-b128 si-csinet-b126``): does the gap close with training?"""
    from shared.bundle import Bundle

    t = truth("cdl", n)
    out: dict[str, Any] = {"n": len(t.x_ad), "models": {}}
    for mid in ("vqd-b128", "si-csinet-b126"):
        rows = {}
        for tag, folder in (("x1", None), ("x2", ROOT / "runs" / "vqd-x2" / "bundles" / mid)):
            if folder is None:
                b = find(mid)
            elif (folder / "manifest.json").is_file():
                b = Bundle.load(folder)
            else:
                print(f"  (no {folder}: budget x2 skipped)", file=sys.stderr)
                b = None
            if b is not None:
                rows[tag] = {**run_bundle(b, t), "training": training(b)}
        out["models"][mid] = rows
    return out


def section_speed(n: int) -> dict[str, Any]:
    import torch

    from models.registry import load_bs_decoder

    torch.set_num_threads(2)
    t = truth("cdl", 256)
    out: dict[str, Any] = {"threads": 2, "models": {}}
    for mid in ("vqd-b128", "si-csinet-b126"):
        b = find(mid)
        if b is None:
            continue
        dec = load_bs_decoder(b, "cpu")
        lat = np.random.default_rng(0).standard_normal((256, b.manifest.latent_size)).astype(np.float32)
        y = t.side["y_ad"]
        dec.decode_batch(lat[:8], {"y_ad": y[:8]}, None)  # warm-up
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < 5.0:
            dec.decode_batch(lat[k % 256 : k % 256 + 1], {"y_ad": y[k % 256 : k % 256 + 1]}, None)
            k += 1
        one = (time.perf_counter() - t0) / k
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 8.0:
            dec.decode_batch(lat, {"y_ad": y}, None)
            reps += 1
        big = (time.perf_counter() - t0) / reps
        out["models"][mid] = {"batch1_ms": one * 1e3, "batch256_reports_per_s": 256 / big}
    return out


# --------------------------------------------------------------------------- rendering


def plot(doc: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rd = doc.get("rd")
    if not rd:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, rows in rd["methods"].items():
        pts = sorted((r["bits"], r["nmse_db"]) for r in rows.values())
        ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    if rd["type2"]:
        pts = sorted((r["bits"], r["nmse_db"]) for r in rd["type2"].values())
        ax.plot(*zip(*pts, strict=True), marker="s", ls="--", color="gray", label="Type II (codes x)")
    styles = iter([":", "-.", "--", (0, (1, 3))])
    lines: list[tuple[float, list[str]]] = []  # references within 0.2 dB share one line
    for label, r in sorted(rd["refs"].items(), key=lambda kv: kv[1]["nmse_db"]):
        if label.startswith("nothing"):
            continue
        if lines and abs(lines[-1][0] - r["nmse_db"]) < 0.2:
            lines[-1][1].append(label)
        else:
            lines.append((r["nmse_db"], [label]))
    for y, labels in lines:
        ax.axhline(y, ls=next(styles, ":"), color="k", lw=0.8)
        ax.text(40, y + 0.15, "; ".join(labels), fontsize=7)
    ax.set_xlabel("bits per report")
    ax.set_ylabel("NMSE of the DL CSI 5 ms ahead (dB, AD domain)")
    ax.set_title("cdl-c-fdd, UL with independent ray phases, 1,000 test samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    FIG.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIG, dpi=110)
    plt.close(fig)


def _f(v: Any, nd: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def render(doc: dict[str, Any]) -> str:
    L: list[str] = []
    sec = doc.get("sections", {})

    def prov(name: str) -> None:
        s = sec.get(name)
        if s:
            L.append(f"_`{s['command'].strip()}` at {s['git_commit'][:7]}, {s['created'][:16]}._")
            L.append("")

    rd = doc.get("rd")
    if rd:
        L += ["### Rate-distortion: predicting the DL CSI 5 ms ahead, with side information", ""]
        prov("rd")
        L.append(f"cdl-c-fdd test split, {rd['n']} samples; NMSE against z in the cropped AD domain.")
        L.append("")
        L.append("| method | model | bits | NMSE (dB) | SGCS | params | budget (CPU-min) | samples seen |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for label, rows in rd["methods"].items():
            for mid, r in sorted(rows.items(), key=lambda kv: kv[1]["bits"]):
                tr = r.get("training") or {}
                L.append(
                    f"| {label} | {mid} | {r['bits']} | {_f(r['nmse_db'])} | {_f(r['sgcs'], 3)} | "
                    f"{r.get('params') or '-'} | {_f(tr.get('cpu_minutes'), 1)} | "
                    f"{tr.get('samples_seen') or '-'} |"
                )
        for mid, r in sorted(rd["type2"].items(), key=lambda kv: kv[1]["bits"]):
            L.append(
                f"| Type II (codes x, scored vs z) | {mid} | {r['bits']} | {_f(r['nmse_db'])} | "
                f"{_f(r['sgcs'], 3)} | - | - | - |"
            )
        for label, r in rd["refs"].items():
            tr = r.get("training") or {}
            L.append(
                f"| reference | {label} | - | {_f(r['nmse_db'])} | {_f(r['sgcs'], 3)} | - | "
                f"{_f(tr.get('cpu_minutes'), 1)} | {tr.get('samples_seen') or '-'} |"
            )
        L.append("")
        L.append(f"![rate-distortion](img/{FIG.name})")
        L.append("")
        if rd.get("util"):
            L.append(
                "Codebook utilization on the test split (index entropy: bits actually carried per vector):"
            )
            L.append("")
            L.append("| model | entries | used | entropy (bits / vector) |")
            L.append("|---|---:|---:|---:|")
            for mid, u in rd["util"].items():
                L.append(
                    f"| {mid} | {u['entries']} | {u['used']} | {_f(u['entropy_bits'])} of {u['max_bits']} |"
                )
            L.append("")
        best: dict[int, tuple[str, float]] = {}
        for label, rows in rd["methods"].items():
            if label.startswith("vq-diffusion"):
                continue
            for mid, r in rows.items():
                best.setdefault(r["bits"], (mid, r["nmse_db"]))
                if r["nmse_db"] < best[r["bits"]][1]:
                    best[r["bits"]] = (mid, r["nmse_db"])
        ours = rd["methods"].get("vq-diffusion + SI", {})
        if ours and best:
            L.append("Gap to the best baseline at (about) equal bits (negative: vq-diffusion better):")
            L.append("")
            for mid, r in sorted(ours.items(), key=lambda kv: kv[1]["bits"]):
                near = min(best, key=lambda b: abs(b - r["bits"]))
                L.append(
                    f"- {mid} ({r['bits']} bits): {_f(r['nmse_db'] - best[near][1])} dB vs "
                    f"{best[near][0]} ({near} bits, {_f(best[near][1])} dB)"
                )
            L.append("")

    side = doc.get("side")
    if side:
        L += ["### The value of side information", ""]
        prov("side")
        mids = list(side["models"])
        L.append("| uplink CSI at the BS | " + " | ".join(mids) + " |")
        L.append("|---|" + "---:|" * len(mids))
        for cond in next(iter(side["models"].values())):
            L.append(f"| {cond} | " + " | ".join(_f(side["models"][m][cond]["nmse_db"]) for m in mids) + " |")
        if side.get("nosi"):
            L.append(
                f"| model trained without it (vqd-b128-nosi) | {_f(side['nosi']['nmse_db'])} |"
                + " |" * (len(mids) - 1)
            )
        L.append("")

    ber = doc.get("ber")
    if ber:
        L += ["### Robustness: NMSE (dB) vs bit error rate (independent flips, offline)", ""]
        prov("ber")
        L.append("| model | " + " | ".join(f"{p:g}" for p in ber["bers"]) + " |")
        L.append("|---|" + "---:|" * len(ber["bers"]))
        for mid, vals in ber["models"].items():
            L.append(f"| {mid} | " + " | ".join(_f(v) for v in vals) + " |")
        L.append("")

    link = doc.get("link")
    if link:
        L += ["### Through the running services: BPSK over AWGN, one BS antenna, no CRC", ""]
        prov("link")
        L.append("| model | SNR (dB) | BER measured | reports ok / sent | NMSE (dB) |")
        L.append("|---|---:|---:|---:|---:|")
        for mid, rows in link["models"].items():
            for r in rows:
                L.append(
                    f"| {mid} | {r['snr_db']} | {r['ber']:.2e} | {r['ok']} / {r['sent']} | "
                    f"{_f(r['nmse_db_ad'])} |"
                )
        L.append("")

    worlds = doc.get("worlds")
    if worlds:
        L += ["### Other worlds: the near-copy UL and UMi NLOS", ""]
        prov("worlds")
        L.append("| world | model / reference | bits | NMSE (dB) | SGCS |")
        L.append("|---|---|---:|---:|---:|")
        names = {"ulcopy": "cdl-c-fdd, UL sharing the DL's ray phases", "umi": "umi-nlos (geometry per UE)"}
        for w, rows in worlds.items():
            for mid, r in rows["models"].items():
                L.append(f"| {names[w]} | {mid} | {r['bits']} | {_f(r['nmse_db'])} | {_f(r['sgcs'], 3)} |")
            for label, r in rows["refs"].items():
                L.append(f"| {names[w]} | {label} | - | {_f(r['nmse_db'])} | {_f(r['sgcs'], 3)} |")
        L.append("")

    recon = doc.get("recon")
    if recon:
        L += ["### The reconstruction task (z = x, no side information)", ""]
        prov("recon")
        L.append("| model | family | bits | NMSE (dB) | SGCS |")
        L.append("|---|---|---:|---:|---:|")
        for mid, r in recon["models"].items():
            L.append(f"| {mid} | {r['family']} | {r['bits']} | {_f(r['nmse_db'])} | {_f(r['sgcs'], 3)} |")
        L.append("")

    budget = doc.get("budget")
    if budget:
        L += ["### Twice the budget: the headline pair at 10 and 20 CPU-minutes", ""]
        prov("budget")
        L.append("| model | bits | budget (CPU-min) | samples seen | NMSE vs z (dB) |")
        L.append("|---|---:|---:|---:|---:|")
        for mid, rows in budget["models"].items():
            for r in rows.values():
                tr = r.get("training") or {}
                L.append(
                    f"| {mid} | {r['bits']} | {_f(tr.get('cpu_minutes'), 1)} | "
                    f"{tr.get('samples_seen') or '-'} | {_f(r['nmse_db'])} |"
                )
        L.append("")

    speed = doc.get("speed")
    if speed:
        L += ["### BS decoding throughput (2 CPU threads)", ""]
        prov("speed")
        L.append("| model | batch 1 (ms / report) | batch 256 (reports / s) |")
        L.append("|---|---:|---:|")
        for mid, r in speed["models"].items():
            L.append(f"| {mid} | {_f(r['batch1_ms'])} | {_f(r['batch256_reports_per_s'], 0)} |")
        L.append("")
    return "\n".join(L)


BEGIN, END = "<!-- bench_vqd:begin -->", "<!-- bench_vqd:end -->"


def write_doc(doc: dict[str, Any], path: Path = DOC) -> None:
    plot(doc)
    text = path.read_text() if path.is_file() else f"# Side-information diffusion codec\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{render(doc)}\n{END}{tail}")


SECTIONS = ("rd", "side", "ber", "link", "worlds", "recon", "budget", "speed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=SECTIONS)
    ap.add_argument("--n", type=int, default=1000, help="test samples (offline sections)")
    ap.add_argument("--n-link", type=int, default=300, help="reports per point through the services")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args(argv)
    out_path = Path(a.out)
    doc = json.loads(out_path.read_text()) if out_path.is_file() else {}
    if a.render_only:
        write_doc(doc)
        return 0
    from shared.provenance import provenance

    t0 = time.time()
    runs = {
        "rd": lambda: section_rd(a.n),
        "side": lambda: section_side(a.n),
        "ber": lambda: section_ber(a.n),
        "link": lambda: section_link(a.n_link),
        "worlds": lambda: section_worlds(a.n),
        "recon": lambda: section_recon(a.n),
        "budget": lambda: section_budget(a.n),
        "speed": lambda: section_speed(a.n),
    }
    cmd = "python benchmarks/bench_vqd.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in a.only or SECTIONS:
        doc[name] = runs[name]()
        info = provenance()
        doc.setdefault("sections", {})[name] = {
            "command": cmd,
            "git_commit": info["git_commit"],
            "created": info["created"],
        }
        doc["provenance"] = {**info, "command": cmd, "seconds": round(time.time() - t0)}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    write_doc(doc)
    print(f"wrote {out_path} and {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
