"""Benchmark of the multi-modal variable-rate family (docs/multimodal.md), through the link.

The shipped bundle (``bundles/mm-swin``, ``scripts/train_multimodal.sh``) on the test splits of
the ray-traced world (``data/generated/rt-street-image.h5``: the UE car in the camera's view;
``rt-street-wireless.h5``: LOS and NLOS, no picture). Every codec figure comes from scenarios
run through the three services (UE int8 ONNX encoder -> bits over the emulator -> BS decoder,
which fetches its own camera image / SRS uplink CSI); the Type II codebook runs in-process on
the same samples (``evaluation.beamforming``).

Sections (``--only``):

* ``rates``: normalized NMSE and SGCS vs B = 48..144 in steps of 8 from the one model, CSI only;
* ``fusion``: CSI only vs + image (learned extractor) vs + box (the camera read by a detector,
  ``shared.camera``) vs + uplink CSI at Ne = 4 and 32, at B = 48..144, with
  perfect CSI and with CSI estimated from CSI-RS at -15 and -5 dB (the BS's SRS estimate of
  the uplink at the same SNR);
* ``bf``: beamforming-gain CDFs at B = 76, LOS and NLOS: the codec (CSI only, + uplink,
  + image), the Type II codebook with the nearest payload (PMI bits <= 76), ideal BF = 1;
* ``type2``: every Type II configuration on the same test samples (payload, NMSE, BF gain).

Writes docs/bench/multimodal.json (merged per section), docs/img/mm_*.png and the results
part of docs/multimodal.md.

    .venv/bin/python benchmarks/bench_multimodal.py            # ~15 min on 2 idle cores
    .venv/bin/python benchmarks/bench_multimodal.py --only rates --n 50
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
    "image": ROOT / "data/generated/rt-street-image.h5",
    "wireless": ROOT / "data/generated/rt-street-wireless.h5",
}
SAMPLE = ROOT / "data/sample/rt-street-sample.h5"
BUNDLE = ROOT / "bundles/mm-swin"
OUT = ROOT / "docs/bench/multimodal.json"
DOC = ROOT / "docs/multimodal.md"
IMG = ROOT / "docs/img"
RATES = list(range(48, 145, 8))
FUSION_RATES = [48, 72, 96, 120, 144]
CSI_SNRS = [None, -5.0, -15.0]
BF_BITS = 76
BRANCHES = [("none", 32), ("image", 4), ("image", 32), ("box", 4), ("box", 32), ("uplink", 4), ("uplink", 32)]


def dataset(kind: str) -> Path:
    p = DATA[kind]
    return p if p.is_file() else SAMPLE


def truth(path: Path, n: int) -> dict[str, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        g = f["test"]
        m = min(n, g["sample_id"].shape[0])
        return {k: g[k][:m] for k in ("x_sf", "los", "has_image", "sample_id")}


def split_size(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f["test"]["sample_id"].shape[0])


def run_link(
    svc: Any,
    path: Path,
    name: str,
    n: int,
    rates: list[int],
    fusion: str = "none",
    ne: int = 32,
    csi_snr: float | None = None,
    keep: bool = False,
) -> Any:
    from csilink.runner import run_scenario

    folder = ROOT / "runs" / "bench_mm"
    folder.mkdir(parents=True, exist_ok=True)
    sc = {
        "name": name,
        "dataset": {"path": str(path), "split": "test"},
        "models": str(BUNDLE),
        "rate": [f"b{b}" for b in rates],
        "reports": min(n, split_size(path)),  # each test sample once
        "channel": {"ideal": True},
        "seed": 7,
        "batch": 50,
        "csi_rs_snr_db": csi_snr,
        "output": str(folder / name),
        "extensions": {"fusion": {"sensor": fusion, "ne": ne, "srs_snr_db": csi_snr}},
    }
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(sc, sort_keys=False))
    return run_scenario(
        p, svc.addrs["ue"], svc.addrs["channel"], svc.addrs["bs"], plots=False, keep_reconstructions=keep
    )


def _rows(res: Any) -> list[dict[str, Any]]:
    keep = ("rate", "payload", "ok", "sent", "nmse_db_sf", "sgcs", "latency_p50_ms")
    return [{k: r.get(k) for k in keep} for r in res.rows]


def section_rates(n: int) -> dict[str, Any]:
    from csilink.runner import started_services

    out: dict[str, Any] = {}
    for kind in ("image", "wireless"):
        path = dataset(kind)
        with started_services(path) as svc:
            t0 = time.time()
            res = run_link(svc, path, f"rates-{kind}", n, RATES)
            out[kind] = {"dataset": path.name, "n": min(n, split_size(path)), "rows": _rows(res)}
            print(f"  rates {kind}: {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def section_fusion(n: int) -> dict[str, Any]:
    from csilink.runner import started_services

    path = dataset("image")
    out: dict[str, Any] = {"dataset": path.name, "n": min(n, split_size(path)), "points": []}
    with started_services(path) as svc:
        for snr in CSI_SNRS:
            for sensor, ne in BRANCHES:
                t0 = time.time()
                tag = "perfect" if snr is None else f"{snr:g}dB"
                res = run_link(svc, path, f"fusion-{sensor}{ne}-{tag}", n, FUSION_RATES, sensor, ne, snr)
                out["points"].append({"csi_rs_snr_db": snr, "sensor": sensor, "ne": ne, "rows": _rows(res)})
                print(f"  fusion {sensor}/{ne} {tag}: {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def _gains(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    from shared import metrics

    return metrics.bf_gain(h, h_hat)


def section_bf(n: int) -> dict[str, Any]:
    from csilink.runner import started_services
    from evaluation import beamforming as bf

    out: dict[str, Any] = {"bits": BF_BITS, "sets": {}}
    for kind, modes in (
        ("wireless", [("none", 32), ("uplink", 32)]),
        ("image", [("none", 32), ("image", 32)]),
    ):
        path = dataset(kind)
        t = truth(path, n)
        sets: dict[str, Any] = {
            "dataset": path.name,
            "n": len(t["x_sf"]),
            "los": t["los"].astype(int).tolist(),
            "gains": {},
        }
        with started_services(path) as svc:
            for sensor, ne in modes:
                res = run_link(
                    svc, path, f"bf-{kind}-{sensor}", len(t["x_sf"]), [BF_BITS], sensor, ne, keep=True
                )
                pr = res.points[0]
                order = np.searchsorted(t["sample_id"], pr.sample_ids)
                g = np.full(len(t["x_sf"]), np.nan)
                g[order] = _gains(t["x_sf"][order], pr.h_ad)
                sets["gains"][f"codec {'CSI only' if sensor == 'none' else '+ ' + sensor}"] = g.tolist()
        cfg = bf.type2_near(BF_BITS, key="pmi_bits")
        w = bf.type2_precoders(t["x_sf"], cfg)
        sets["gains"][f"Type II {cfg.pmi_bits} PMI bits"] = bf.bf_gain(t["x_sf"], w).tolist()
        sets["type2"] = {"config": _cfg_name(cfg), "pmi_bits": cfg.pmi_bits, "payload_bits": cfg.payload_bits}
        out["sets"][kind] = sets
    return out


def _cfg_name(cfg: Any) -> str:
    pc = cfg.param_combination if cfg.param_combination else f"custom{cfg.custom}"
    return f"pc{pc}-sb{cfg.subband_size}-r{cfg.r}"


def section_type2(n: int) -> dict[str, Any]:
    from evaluation import beamforming as bf

    out: dict[str, Any] = {}
    for kind in ("image", "wireless"):
        path = dataset(kind)
        t = truth(path, n)
        rows = []
        # the configuration nearest (in PMI bits, not above) to each codec rate, each once
        near = [bf.type2_near(b, key="pmi_bits") for b in RATES]
        picks = {c.payload_bits: c for c in near}
        for cfg in sorted(picks.values(), key=lambda c: c.pmi_bits):
            pmis = bf.type2_pmis(t["x_sf"], cfg)
            g = bf.bf_gain(t["x_sf"], bf.type2_precoders(t["x_sf"], cfg, pmis))
            est = bf.type2_estimates(t["x_sf"], cfg, pmis, expand="interp")
            los = t["los"].astype(bool)
            rows.append(
                {
                    "config": _cfg_name(cfg),
                    "pmi_bits": cfg.pmi_bits,
                    "payload_bits": cfg.payload_bits,
                    "nmse_db_sf": bf.nmse_normalized_db(t["x_sf"], est),
                    "bf_gain": float(np.mean(g)),
                    "bf_gain_los": float(np.mean(g[los])) if los.any() else None,
                    "bf_gain_nlos": float(np.mean(g[~los])) if (~los).any() else None,
                }
            )
        out[kind] = {"dataset": path.name, "n": len(t["x_sf"]), "rows": rows}
    return out


SECTIONS = {"rates": section_rates, "fusion": section_fusion, "bf": section_bf, "type2": section_type2}


# --------------------------------------------------------------------------- plots + doc
def plot(doc: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "rates" in doc or "type2" in doc:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for kind, d in doc.get("rates", {}).items():
            ax.plot(
                [r["payload"] for r in d["rows"]],
                [r["nmse_db_sf"] for r in d["rows"]],
                "o-",
                label=f"one model, CSI only ({kind} test)",
            )
        for kind, d in doc.get("type2", {}).items():
            rs = sorted(d["rows"], key=lambda r: r["pmi_bits"])
            ax.plot(
                [r["pmi_bits"] for r in rs],
                [r["nmse_db_sf"] for r in rs],
                "x:",
                alpha=0.7,
                label=f"Type II, PMI bits ({kind} test)",
            )
        ax.set_xlabel("feedback bits B")
        ax.set_ylabel("NMSE (dB, normalized, SF)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(IMG / "mm_rates.png", dpi=110)
        plt.close(fig)
    if "fusion" in doc:
        snrs = sorted(
            {p["csi_rs_snr_db"] is None and 99 or p["csi_rs_snr_db"] for p in doc["fusion"]["points"]},
            reverse=True,
        )
        fig, axes = plt.subplots(1, len(snrs), figsize=(4.2 * len(snrs), 3.8), sharey=True)
        for ax, s in zip(np.atleast_1d(axes), snrs, strict=True):
            for p in doc["fusion"]["points"]:
                if (p["csi_rs_snr_db"] if p["csi_rs_snr_db"] is not None else 99) != s:
                    continue
                lab = "CSI only" if p["sensor"] == "none" else f"+ {p['sensor']} Ne={p['ne']}"
                ax.plot(
                    [r["payload"] for r in p["rows"]], [r["nmse_db_sf"] for r in p["rows"]], "o-", label=lab
                )
            ax.set_title("perfect CSI" if s == 99 else f"CSI-RS {s:g} dB")
            ax.set_xlabel("bits B")
            ax.grid(alpha=0.3)
        np.atleast_1d(axes)[0].set_ylabel("NMSE (dB, normalized)")
        np.atleast_1d(axes)[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(IMG / "mm_fusion.png", dpi=110)
        plt.close(fig)
    if "bf" in doc:
        sets = doc["bf"]["sets"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
        panels = [
            ("wireless", True, "LOS (wireless test)"),
            ("wireless", False, "NLOS (wireless test)"),
            ("image", None, "camera-paired test"),
        ]
        for ax, (kind, los, title) in zip(axes, panels, strict=True):
            if kind not in sets:
                continue
            d = sets[kind]
            mask = np.ones(d["n"], bool) if los is None else (np.asarray(d["los"]) == int(los))
            for lab, g in d["gains"].items():
                v = np.sort(np.asarray(g)[mask])
                v = v[np.isfinite(v)]
                if len(v):
                    ax.plot(v, np.arange(1, len(v) + 1) / len(v), label=lab)
            ax.axvline(1.0, color="k", ls="--", lw=0.8, label="ideal BF")
            ax.set_title(f"{title}, n={int(mask.sum())}")
            ax.set_xlabel(f"BF gain at B = {doc['bf']['bits']} (1 = ideal)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("CDF")
        axes[0].legend(fontsize=7, loc="upper left")
        axes[2].legend(fontsize=7, loc="upper left")  # its codec curve is "+ image", not "+ uplink"
        fig.tight_layout()
        fig.savefig(IMG / "mm_bf_cdf.png", dpi=110)
        plt.close(fig)


def _f(v: Any, nd: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def render(doc: dict[str, Any]) -> str:
    L: list[str] = ["<!-- bench:start -->", "## Results (`benchmarks/bench_multimodal.py`)", ""]
    prov = doc.get("provenance", {})
    L += [
        f"Bundle `{prov.get('bundle')}`, git `{prov.get('git')}`, run {prov.get('when')}. Every codec number "
        "is from scenarios through the three services (ideal link: the report's bits arrive intact); "
        "NMSE is the normalized one (eq. 6) in the SF domain.",
        "",
    ]
    if "rates" in doc:
        L += [
            "### NMSE vs B from the one model (CSI only)",
            "",
            "![rates](img/mm_rates.png)",
            "",
            "| B | " + " | ".join(f"{k} NMSE dB | {k} SGCS" for k in doc["rates"]) + " |",
            "|---|" + "---|---|" * len(doc["rates"]),
        ]
        kinds = list(doc["rates"])
        for i, r in enumerate(doc["rates"][kinds[0]]["rows"]):
            cells = []
            for k in kinds:
                rr = doc["rates"][k]["rows"][i]
                cells += [_f(rr["nmse_db_sf"]), _f(rr["sgcs"], 3)]
            trained = " (trained)" if r["payload"] in (48, 72, 96, 120, 144) else ""
            L.append(f"| {r['payload']}{trained} | " + " | ".join(cells) + " |")
        L += [
            "",
            "Test rows: " + ", ".join(f"{k} {d['n']} of `{d['dataset']}`" for k, d in doc["rates"].items()),
            "",
        ]
    if "fusion" in doc:
        f = doc["fusion"]
        L += [
            "### Fusion gains (camera-paired test set)",
            "",
            "![fusion](img/mm_fusion.png)",
            "",
            "NMSE (dB) by B; gain = CSI only minus fused (positive: fusion helps).",
            "",
        ]
        rates = [r["payload"] for r in f["points"][0]["rows"]]
        L += [
            "| CSI at the UE | BS input | "
            + " | ".join(f"B={b}" for b in rates)
            + " | gain @48 | gain @144 |",
            "|---|---|" + "---|" * (len(rates) + 2),
        ]
        base: dict[Any, list[float]] = {}
        for p in f["points"]:
            if p["sensor"] == "none":
                base[p["csi_rs_snr_db"]] = [r["nmse_db_sf"] for r in p["rows"]]
        for p in f["points"]:
            v = [r["nmse_db_sf"] for r in p["rows"]]
            b0 = base.get(p["csi_rs_snr_db"])
            g48 = b0[0] - v[0] if b0 and p["sensor"] != "none" else None
            g144 = b0[-1] - v[-1] if b0 and p["sensor"] != "none" else None
            tag = "perfect" if p["csi_rs_snr_db"] is None else f"CSI-RS {p['csi_rs_snr_db']:g} dB"
            who = "report only" if p["sensor"] == "none" else f"+ {p['sensor']}, Ne={p['ne']}"
            L.append(f"| {tag} | {who} | " + " | ".join(_f(x) for x in v) + f" | {_f(g48)} | {_f(g144)} |")
        L += ["", f"{f['n']} test samples of `{f['dataset']}`.", ""]
    if "bf" in doc:
        L += [
            f"### Beamforming gain at B = {doc['bf']['bits']}",
            "",
            "![bf](img/mm_bf_cdf.png)",
            "",
            "| test set | precoder | mean gain (all) | LOS | NLOS |",
            "|---|---|---|---|---|",
        ]
        for kind, d in doc["bf"]["sets"].items():
            los = np.asarray(d["los"]).astype(bool)
            for lab, g in d["gains"].items():
                g = np.asarray(g, float)
                L.append(
                    f"| {kind} | {lab} | {_f(np.nanmean(g), 3)} | "
                    f"{_f(np.nanmean(g[los]) if los.any() else None, 3)} | "
                    f"{_f(np.nanmean(g[~los]) if (~los).any() else None, 3)} |"
                )
            L.append(f"| {kind} | ideal BF | 1.000 | 1.000 | 1.000 |")
        L.append("")
    if "type2" in doc:
        L += [
            "### Type II codebook on the same samples",
            "",
            "| test set | config | PMI bits | payload bits | NMSE dB | BF gain | LOS | NLOS |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for kind, d in doc["type2"].items():
            for r in sorted(d["rows"], key=lambda r: r["pmi_bits"]):
                L.append(
                    f"| {kind} | {r['config']} | {r['pmi_bits']} | {r['payload_bits']} | "
                    f"{_f(r['nmse_db_sf'])} | "
                    f"{_f(r['bf_gain'], 3)} | {_f(r['bf_gain_los'], 3)} | {_f(r['bf_gain_nlos'], 3)} |"
                )
        L.append("")
    L.append("<!-- bench:end -->")
    return "\n".join(L)


def write_doc(doc: dict[str, Any]) -> None:
    page = render(doc)
    text = DOC.read_text() if DOC.is_file() else "# multimodal\n\n<!-- bench:start -->\n<!-- bench:end -->\n"
    if "<!-- bench:start -->" not in text:
        text += "\n<!-- bench:start -->\n<!-- bench:end -->\n"
    a, b = text.index("<!-- bench:start -->"), text.index("<!-- bench:end -->") + len("<!-- bench:end -->")
    DOC.write_text(text[:a] + page + text[b:])


def main(argv: list[str] | None = None) -> int:
    global BUNDLE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="sections to run (default: all)")
    ap.add_argument("--n", type=int, default=480, help="test samples per set (at most the split's size)")
    ap.add_argument("--render-only", action="store_true", help="re-render the doc and plots from the JSON")
    ap.add_argument("--bundle", type=Path, default=None, help="default: bundles/mm-swin")
    ap.add_argument("--out", type=Path, default=OUT, help="JSON (the doc is written only for the default)")
    a = ap.parse_args(argv)
    BUNDLE = a.bundle or BUNDLE
    from shared.bundle import Bundle
    from shared.provenance import git_commit

    doc = json.loads(a.out.read_text()) if a.out.is_file() else {}
    if not a.render_only:
        b = Bundle.load(BUNDLE)
        for name in a.only or list(SECTIONS):
            t0 = time.time()
            doc[name] = SECTIONS[name](a.n)
            print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
        doc["provenance"] = {
            "bundle": f"{b.model_id} v{b.version}",
            "git": git_commit(),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=1) + "\n")
    if a.out != OUT:
        return 0
    IMG.mkdir(parents=True, exist_ok=True)
    plot(doc)
    write_doc(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
