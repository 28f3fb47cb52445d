"""CLLWCsiNet vs CsiNet vs CRNet (docs/cllwcsinet.md): every figure from one command, same data.

Models: the runs of ``scripts/train_cllw.sh`` (bundles/ for the shipped ones, runs/cllw/bundles/
for the rest): CLLWCsiNet (conv latent) and CsiNet / CRNet with a conv or an FC latent, at CR
4 / 8 / 16 on the COST2100-shaped profile (``cost2100-like``), and the CR 8 models on
``cdl-c-fdd`` (ids ending ``-cdl``). All trained with the same codeword noise and budget.

Sections (``--only`` picks some):

* ``table``: the paper's Table III: parameters, multiply-accumulates (``evaluation.complexity``)
  and NMSE at CR 4 / 8 / 16, clean codeword (analog, ideal link), int8 UE encoders.
* ``noise``: through the three running services: NMSE vs codeword SNR (AWGN, one BS antenna,
  -5..40 dB) at CR 8, every model.
* ``link`` also gives the digital deployment: NMSE vs bits per real (uniform ``k128-u{B}``
  rates through the services over an ideal link); ``quantizer``: mu-law vs uniform
  quantization of the same CLLWCsiNet codewords (offline).
* ``int8``: int8 vs fp32 UE encoder: NMSE, file size, latency at batch 1, throughput at 256.
* ``decoder``: the BS decoder in fp32 vs dynamically quantized (``torch.ao`` int8 Linear):
  size, speed and NMSE.
* ``xprofile``: generalization: CR 8 models trained on one profile, tested on the other.
* ``clean``: diagnostic: CLLWCsiNet CR 4 / 16 trained with and without codeword noise
  (``cllw-cr{4,16}-clean``), clean and over AWGN.

    .venv/bin/python benchmarks/bench_cllw.py                  # ~15 min on 2 cores
    .venv/bin/python benchmarks/bench_cllw.py --only noise --n 200
    .venv/bin/python benchmarks/bench_cllw.py --render-only

Writes docs/bench/cllw.json (merged per section) and the results part of docs/cllwcsinet.md.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DATA = {"cost": "data/generated/cost2100-like.h5", "cdl": "data/generated/cdl-c-fdd.h5"}
ROOTS = (ROOT / "bundles", ROOT / "runs" / "cllw" / "bundles")
CRS = (4, 8, 16)
MODELS = ("cllw", "csinet-conv", "crnet-conv", "csinet-fc", "crnet-fc")
LABEL = {
    "cllw": "CLLWCsiNet",
    "csinet-conv": "CsiNet (conv latent)",
    "crnet-conv": "CRNet (conv latent)",
    "csinet-fc": "CsiNet (FC latent)",
    "crnet-fc": "CRNet (FC latent)",
}
NOISE_SNRS = [-5, 0, 5, 10, 15, 20, 25, 30, 35, 40]
BITS = [2, 3, 4, 5, 6, 8]
TABLE_BITS = (3, 4)  # digital rates in the Table III view
OUT = ROOT / "docs" / "bench" / "cllw.json"
DOC = ROOT / "docs" / "cllwcsinet.md"


def model_id(m: str, cr: int, profile: str = "cost") -> str:
    return f"{m}-cr{cr}" + ("-cdl" if profile == "cdl" else "")


def find(mid: str) -> Any:
    from shared.bundle import Bundle

    for r in ROOTS:
        if (r / mid / "manifest.json").is_file():
            return Bundle.load(r / mid)
    raise SystemExit(f"no bundle {mid} under {[str(r) for r in ROOTS]}: run scripts/train_cllw.sh")


def _truth(profile: str, n: int) -> Any:
    from evaluation.harness import load_truth

    return load_truth(ROOT / DATA[profile], "test", n, set())


def _offline(
    b: Any, truth: Any, rates: list[str], snrs: tuple[Any, ...] = (None,), fp32: bool = False
) -> list:
    from evaluation.harness import evaluate_bundle

    rows = evaluate_bundle(b, truth, snrs, seed=0, fp32=fp32, rates=rates)
    return [{"rate": r.rate, "snr_db": r.snr_db, "nmse_db_ad": r.nmse_db_ad, "sgcs": r.sgcs} for r in rows]


def _training(b: Any) -> dict[str, Any]:
    t = b.manifest.training
    return {
        k: t.get(k)
        for k in (
            "dataset",
            "budget_minutes",
            "budget_clock",
            "cpu_minutes",
            "wall_minutes",
            "samples_seen",
            "epochs",
            "best_val_nmse_db",
        )
    }


# --------------------------------------------------------------------------- sections


def section_table(n: int) -> dict[str, Any]:
    from evaluation.complexity import bundle_complexity

    truth = _truth("cost", n)
    out: dict[str, Any] = {"n": len(truth.x_ad), "models": {}}
    for cr in CRS:
        for m in MODELS:
            mid = model_id(m, cr)
            b = find(mid)
            k = b.manifest.rates[0].name
            rows = _offline(b, truth, [k, *(f"{k}-u{q}" for q in TABLE_BITS)])
            out["models"][mid] = {
                **bundle_complexity(b),
                "nmse_db": rows[0]["nmse_db_ad"],
                "sgcs": rows[0]["sgcs"],
                "nmse_db_digital": {r["rate"].rsplit("-u", 1)[1]: r["nmse_db_ad"] for r in rows[1:]},
                "training": _training(b),
            }
            print(f"  table {mid}: {rows[0]['nmse_db_ad']:.2f} dB", file=sys.stderr)
    return out


def _scenario(name: str, profile: str, bundle: Any, rates: list[str], n: int, channel: dict) -> dict:
    return {
        "name": name,
        "dataset": {"path": str(ROOT / DATA[profile]), "split": "test"},
        "models": str(bundle.path),
        "rate": rates,
        "reports": n,
        "channel": channel,
        "seed": 0,
        "batch": 100,
        "output": str(ROOT / "runs" / "bench_cllw" / name),
    }


def _run(sc: dict[str, Any], addrs: dict[str, str]) -> list[dict[str, Any]]:
    from csilink.runner import run_scenario

    folder = ROOT / "runs" / "bench_cllw"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sc['name']}.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    t0 = time.time()
    res = run_scenario(path, addrs["ue"], addrs["channel"], addrs["bs"], plots=False)
    keep = ("rate", "snr_db", "ok", "sent", "nmse_db_ad", "sgcs", "effective_snr_db", "payload_bits")
    rows = [{k: r.get(k) for k in keep} for r in res.rows]
    print(f"  {sc['name']}: {len(rows)} points in {time.time() - t0:.0f} s", file=sys.stderr)
    return rows


def section_link(n: int) -> dict[str, Any]:
    """``noise`` and ``bits`` through the services (one start for both)."""
    from csilink.runner import started_services

    out: dict[str, Any] = {"n": n, "noise": {}, "bits": {}}
    with started_services(ROOT / DATA["cost"]) as svc:
        for m in MODELS:
            b = find(model_id(m, 8))
            k = b.manifest.rates[0].name
            out["noise"][m] = _run(
                _scenario(f"noise-{m}", "cost", b, [k], n, {"mode": "awgn", "n_rx": 1, "snr_db": NOISE_SNRS}),
                svc.addrs,
            )
            out["bits"][m] = _run(
                _scenario(f"bits-{m}", "cost", b, [k] + [f"{k}-u{q}" for q in BITS], n, {"ideal": True}),
                svc.addrs,
            )
    return out


def section_quantizer(n: int) -> dict[str, Any]:
    """mu-law (the shipped rates) vs uniform quantization of the same CLLWCsiNet CR 8 codewords:
    which scalar quantizer to put on the air, measured (offline: encoder, codec, decoder)."""
    from models.registry import load_bs_decoder
    from shared import metrics
    from shared.ue_encoder import UeEncoder
    from shared.wire import MuLawSymbolsCodec, UniformSymbolsCodec

    b = find(model_id("cllw", 8))
    truth = _truth("cost", n)
    enc = UeEncoder.from_bundle(b, threads=1)
    dec = load_bs_decoder(b, "cpu")
    z = enc.latents(truth.x_ad)
    s = b.manifest.latent_size // 2
    codecs = {
        "mulaw50_clip3": lambda q: MuLawSymbolsCodec(s, q, 50.0, 3.0),
        "uniform_clip3": lambda q: UniformSymbolsCodec(s, q, 3.0),
        "uniform_clip2": lambda q: UniformSymbolsCodec(s, q, 2.0),
    }
    out: dict[str, Any] = {"n": len(z)}
    for key, make in codecs.items():
        out[key] = {}
        for q in BITS:
            c = make(q)
            lat = np.stack([c.decode(c.encode(v), b.manifest.latent_size) for v in z])
            out[key][str(q)] = metrics.nmse_db(truth.x_ad, dec.decode_batch(lat, {}, None))
    return out


def section_int8(n: int) -> dict[str, Any]:
    from bench_encoder import bench

    truth = _truth("cost", n)
    out: dict[str, Any] = {"n": len(truth.x_ad), "models": {}}
    for mid in [model_id("cllw", cr) for cr in CRS] + [model_id(m, 8) for m in MODELS[1:]]:
        b = find(mid)
        k = b.manifest.rates[0].name
        r = {
            "int8": _offline(b, truth, [k])[0]["nmse_db_ad"],
            "fp32": _offline(b, truth, [k], fp32=True)[0]["nmse_db_ad"],
        }
        speed = {p: bench(b, p == "fp32", reps=500, threads=1) for p in ("int8", "fp32")}
        out["models"][mid] = {"nmse_db": r, "delta_db": r["int8"] - r["fp32"], "speed": speed}
        print(f"  int8 {mid}: {r}", file=sys.stderr)
    return out


def _state_bytes(module: Any) -> int:
    import torch

    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getbuffer().nbytes


def _static_fx(module: Any, z: np.ndarray) -> Any:
    """Static int8 (FX graph mode, x86 backend) of the whole decoder, convolutions included,
    calibrated on 512 codewords: the variant that also covers conv-only decoders."""
    import copy
    import warnings

    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zt = torch.from_numpy(z[:512])
        p = prepare_fx(copy.deepcopy(module).eval(), get_default_qconfig_mapping("x86"), (zt[:1],))
        with torch.inference_mode():
            p(zt)
        return convert_fx(p)


def section_decoder(n: int) -> dict[str, Any]:
    """fp32 BS decoder (batch norm folded, as the BS runs it) vs
    ``torch.ao.quantization.quantize_dynamic`` (int8 weights for Linear layers, activations
    quantized on the fly: the paper's "dynamic quantization") vs static int8 of every layer."""
    import torch

    from models.common.bs_torch import quantize_dynamic
    from models.registry import load_bs_decoder
    from shared import metrics
    from shared.ue_encoder import UeEncoder

    torch.set_num_threads(1)
    truth = _truth("cost", n)
    out: dict[str, Any] = {"n": len(truth.x_ad), "models": {}}
    for mid in [model_id(m, 8) for m in MODELS]:
        b = find(mid)
        z = UeEncoder.from_bundle(b, threads=1).latents(truth.x_ad)
        z = z / np.sqrt(np.mean(z**2, axis=1, keepdims=True) * 2)  # unit power per symbol, as sent
        dec = load_bs_decoder(b, "cpu")
        fp32 = dec.decoder
        quantize_dynamic(dec)  # what the BS does with decoder_quant: dynamic
        q, dec.decoder = dec.decoder, fp32
        row: dict[str, Any] = {}
        for name, mod in (("fp32", fp32), ("dynamic_int8", q), ("static_int8_fx", _static_fx(fp32, z))):
            dec.decoder = mod
            h = dec.decode_batch(z, {}, None)
            zt1, zt256 = torch.from_numpy(z[:1]), torch.from_numpy(z[:256])
            with torch.inference_mode():
                for _ in range(20):
                    mod(zt1)
                t = time.perf_counter()
                for _ in range(200):
                    mod(zt1)
                b1 = (time.perf_counter() - t) / 200 * 1e3
                t = time.perf_counter()
                for _ in range(5):
                    mod(zt256)
                b256 = 256 * 5 / (time.perf_counter() - t)
            row[name] = {
                "nmse_db": metrics.nmse_db(truth.x_ad, h),
                "bytes": _state_bytes(mod),
                "b1_ms": b1,
                "b256_per_s": b256,
                "quantized_modules": sum(1 for m in mod.modules() if "quantized" in type(m).__module__),
            }
        dec.decoder = fp32
        out["models"][mid] = row
        print(f"  decoder {mid}: {row}", file=sys.stderr)
    return out


def section_xprofile(n: int) -> dict[str, Any]:
    """CR 8 models on both profiles. ``test_*``: as deployed (the UE normalizes with the bundle's
    own scale, so a profile of another power level arrives off-scale: cost2100-like and
    cdl-c-fdd differ by 4.2 dB); ``renorm_*``: the input rescaled to the test profile's own
    training power (what a UE re-normalizing per deployment would send), which separates the
    structure mismatch from the level mismatch."""
    from dataclasses import replace

    out: dict[str, Any] = {"n": n, "models": {}}
    truths = {p: _truth(p, n) for p in ("cost", "cdl")}
    for m in MODELS:
        pair = {}
        for trained in ("cost", "cdl"):
            try:
                pair[trained] = find(model_id(m, 8, trained))
            except SystemExit:
                continue
        scales = {p: float(b.manifest.normalization["scale"]) for p, b in pair.items()}
        for trained, b in pair.items():
            k = b.manifest.rates[0].name
            row: dict[str, Any] = {"trained_on": trained}
            for p in ("cost", "cdl"):
                row[f"test_{p}"] = _offline(b, truths[p], [k])[0]["nmse_db_ad"]
                if p != trained and p in scales:
                    r = np.float32(scales[p] / scales[trained])  # NMSE is invariant to the common scale
                    t = truths[p]
                    tr = replace(t, x_ad=t.x_ad * r, x_sf=None if t.x_sf is None else t.x_sf * r)
                    row[f"renorm_{p}"] = _offline(b, tr, [k])[0]["nmse_db_ad"]
            out["models"][b.manifest.model_id] = row
            print(f"  xprofile {b.manifest.model_id}: {row}", file=sys.stderr)
    return out


CLEAN_SNRS = (None, 30.0, 20.0, 10.0, 0.0)


def section_clean(n: int) -> dict[str, Any]:
    """Diagnostic: CLLWCsiNet at CR 4 and 16 trained with and without codeword noise (same
    budget), at a clean codeword and over AWGN (offline): what the noise training costs and buys."""
    truth = _truth("cost", n)
    out: dict[str, Any] = {"n": len(truth.x_ad), "models": {}}
    for cr in (4, 16):
        for mid in (model_id("cllw", cr), model_id("cllw", cr) + "-clean"):
            b = find(mid)
            rows = _offline(b, truth, [b.manifest.rates[0].name], CLEAN_SNRS)
            out["models"][mid] = {"nmse_db": {str(r["snr_db"]): r["nmse_db_ad"] for r in rows}}
            print(f"  clean {mid}: {out['models'][mid]}", file=sys.stderr)
    return out


# --------------------------------------------------------------------------- rendering


def _f(v: Any, d: int = 2) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def _k(v: int) -> str:
    return f"{v / 1e3:.1f}k" if v < 1e6 else f"{v / 1e6:.2f}M"


def render(doc: dict[str, Any]) -> str:
    L: list[str] = []
    prov = doc.get("provenance", {})
    secs = doc.get("sections", {})
    if secs:
        L.append("Measured by `python benchmarks/bench_cllw.py` (each section: the run that last wrote it):")
        L.append("")
        for name, v in secs.items():
            L.append(
                f"* `{name}`: `{v['command'].strip()}` at commit {str(v['git_commit'])[:10]}, {v['created']}"
            )
    else:
        L.append(
            f"Measured by `{prov.get('command', 'python benchmarks/bench_cllw.py')}` "
            f"(commit {str(prov.get('git_commit', '?'))[:10]}, {prov.get('created', '?')})."
        )
    L.append("")
    t = doc.get("table")
    if t:
        any_b = next(iter(t["models"].values()))["training"]
        L += [
            "### Table III: parameters, multiply-accumulates, NMSE (COST2100-shaped profile)",
            "",
            f"Test split, {t['n']} samples, int8 UE encoders, clean codeword (analog, ideal link); "
            "'3 / 4 bits' = the same codeword sent as 3- or 4-bit uniform reals on the digital path "
            "(payload 2048 B / CR bits: 768 / 1,024 at CR 8). "
            f"Budget per model: {any_b.get('budget_minutes')} {any_b.get('budget_clock')}-minutes, 1 thread.",
            "",
            "| CR | model | params | MACs | UE params | UE MACs | NMSE dB | 3 bits | 4 bits | samples seen |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cr in CRS:
            for m in MODELS:
                r = t["models"].get(model_id(m, cr))
                if not r:
                    continue
                L.append(
                    f"| {cr} | {LABEL[m]} | {_k(r['params'])} | {_k(r['macs'])} | "
                    f"{_k(r['encoder_params'])} | {_k(r['encoder_macs'])} | {_f(r['nmse_db'])} | "
                    f"{_f(r['nmse_db_digital'].get('3'))} | {_f(r['nmse_db_digital'].get('4'))} | "
                    f"{r['training'].get('samples_seen') or 0:,} |"
                )
        L.append("")
    lk = doc.get("link")
    if lk:
        L += [
            "### Noise sweep through the link: NMSE (dB) vs codeword SNR, CR 8",
            "",
            f"Three services (UE int8 ONNX -> channel emulator AWGN, 1 BS antenna -> BS torch), "
            f"{lk['n']} test reports per point; the decoders are not told the SNR.",
            "",
            "| model | " + " | ".join(f"{s} dB" for s in NOISE_SNRS) + " |",
            "|---|" + "---|" * len(NOISE_SNRS),
        ]
        for m in MODELS:
            rows = {float(r["snr_db"]): r["nmse_db_ad"] for r in lk["noise"].get(m, [])}
            L.append(f"| {LABEL[m]} | " + " | ".join(_f(rows.get(float(s))) for s in NOISE_SNRS) + " |")
        L += [
            "",
            "### Digital deployment: NMSE (dB) vs bits per real, CR 8 (ideal link)",
            "",
            "| model | analog | " + " | ".join(f"{q} bits" for q in BITS) + " |",
            "|---|---|" + "---|" * len(BITS),
        ]
        for m in MODELS:
            rows = {str(r["rate"]): r["nmse_db_ad"] for r in lk["bits"].get(m, [])}
            ana = next((v for k, v in rows.items() if "-u" not in k), None)
            L.append(
                f"| {LABEL[m]} | {_f(ana)} | "
                + " | ".join(
                    _f(next((v for k, v in rows.items() if k.endswith(f"-u{q}")), None)) for q in BITS
                )
                + " |"
            )
        L.append("")
    qz = doc.get("quantizer")
    if qz:
        L += [
            "Quantizer choice (CLLWCsiNet CR 8, same codewords, NMSE dB):",
            "",
            "| quantizer | " + " | ".join(f"{q} bits" for q in BITS) + " |",
            "|---|" + "---|" * len(BITS),
        ]
        for key, label in (
            ("mulaw50_clip3", "mu-law 50, clip 3"),
            ("uniform_clip3", "uniform, clip 3"),
            ("uniform_clip2", "uniform, clip 2"),
        ):
            L.append(f"| {label} | " + " | ".join(_f(qz[key].get(str(q))) for q in BITS) + " |")
        L.append("")
    i8 = doc.get("int8")
    if i8:
        L += [
            "### int8 vs fp32 UE encoder",
            "",
            f"Test split, {i8['n']} samples, clean codeword; ONNX Runtime, 1 thread; latency p50 of the "
            "graph at batch 1, throughput of the graph at batch 256.",
            "",
            "| model | NMSE fp32 | NMSE int8 | delta dB | size fp32 | size int8 | b1 fp32 us | b1 int8 us | "
            "b256 fp32 /s | b256 int8 /s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for mid, r in i8["models"].items():
            s32, s8 = r["speed"]["fp32"], r["speed"]["int8"]
            L.append(
                f"| {mid} | {_f(r['nmse_db']['fp32'])} | {_f(r['nmse_db']['int8'])} | {r['delta_db']:+.2f} | "
                f"{s32['file_bytes'] / 1e3:.0f} kB | {s8['file_bytes'] / 1e3:.0f} kB | "
                f"{s32['graph_b1_us_p50']:.0f} | {s8['graph_b1_us_p50']:.0f} | "
                f"{s32['graph_b256_reports_per_s']:,.0f} | {s8['graph_b256_reports_per_s']:,.0f} |"
            )
        L.append("")
    dq = doc.get("decoder")
    if dq:
        L += [
            "### BS decoder: fp32 vs dynamic int8 (Linear layers) vs static int8 (all layers)",
            "",
            f"{dq['n']} test samples, clean codeword, 1 thread.",
            "",
            "| model | variant | NMSE dB | size | batch-1 ms | batch-256 reports/s | quantized modules |",
            "|---|---|---|---|---|---|---|",
        ]
        for mid, r in dq["models"].items():
            for var, v in r.items():
                L.append(
                    f"| {mid} | {var} | {_f(v['nmse_db'])} | {v['bytes'] / 1e3:.0f} kB | {v['b1_ms']:.2f} | "
                    f"{v['b256_per_s']:,.0f} | {v['quantized_modules']} |"
                )
        L.append("")
    cl = doc.get("clean")
    if cl:
        keys = [str(v) for v in CLEAN_SNRS]
        L += [
            "### Diagnostic: trained with vs without codeword noise (CLLWCsiNet, NMSE dB)",
            "",
            f"{cl['n']} test samples, offline (int8 encoder, AWGN on the codeword), same 8-minute budget.",
            "",
            "| model | clean | " + " | ".join(f"{k[:-2]} dB" for k in keys[1:]) + " |",
            "|---|---|" + "---|" * (len(keys) - 1),
        ]
        for mid, r in cl["models"].items():
            L.append(f"| {mid} | " + " | ".join(_f(r["nmse_db"].get(k)) for k in keys) + " |")
        L.append("")
    xp = doc.get("xprofile")
    if xp:
        L += [
            "### Generalization (CR 8, clean codeword): NMSE (dB) by training and test profile",
            "",
            f"{xp['n']} test samples per profile. As deployed, the UE normalizes with the bundle's own "
            "scale, so the other profile arrives off-scale (the two differ by 4.2 dB in power); the last "
            "column re-normalizes the input to the test profile's own training power.",
            "",
            "| model | trained on | test cost2100-like | test cdl-c-fdd | other profile, re-normalized |",
            "|---|---|---|---|---|",
        ]
        for mid, r in xp["models"].items():
            other = "cdl" if r["trained_on"] == "cost" else "cost"
            L.append(
                f"| {mid} | {r['trained_on']} | {_f(r['test_cost'])} | {_f(r['test_cdl'])} | "
                f"{_f(r.get(f'renorm_{other}'))} |"
            )
        L.append("")
    return "\n".join(L)


BEGIN, END = "<!-- bench_cllw:begin -->", "<!-- bench_cllw:end -->"


def write_doc(doc: dict[str, Any], path: Path = DOC) -> None:
    text = path.read_text() if path.is_file() else f"# CLLWCsiNet\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{render(doc)}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        action="append",
        choices=["table", "link", "quantizer", "int8", "decoder", "xprofile", "clean"],
    )
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
    only = a.only or ["table", "link", "quantizer", "int8", "decoder", "xprofile", "clean"]
    runs = {
        "table": lambda: section_table(a.n),
        "link": lambda: section_link(a.n_link),
        "quantizer": lambda: section_quantizer(a.n),
        "int8": lambda: section_int8(a.n),
        "decoder": lambda: section_decoder(a.n),
        "xprofile": lambda: section_xprofile(a.n),
        "clean": lambda: section_clean(a.n),
    }
    for name in only:
        doc[name] = runs[name]()
        info = provenance()
        doc.setdefault("sections", {})[name] = {
            "command": "python benchmarks/bench_cllw.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "git_commit": info["git_commit"],
            "created": info["created"],
        }
        doc["provenance"] = {
            **provenance(),
            "command": "python benchmarks/bench_cllw.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": round(time.time() - t0),
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    write_doc(doc)
    print(f"wrote {out_path} and {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
