"""Type II (Rel-16 enhanced, rank 1) beamforming gain and NMSE on ray-traced DL channels.

For every Type II configuration valid for the file's band (``evaluation.beamforming.
type2_configs_for_rt``: paramCombination 1..8 x subband 4, 8 RBs x R 1, 2 for 48 RBs, payload
<= ``--max-bits``) the UE chooses its report from the full SF channel ``x_sf`` (perfect CSI at
the UE) and the BS builds the per-subband precoder and the channel estimate. Scores, per
sample and as means over all / LOS / NLOS samples (the file's ``los`` field):

* ``bf_gain``: normalized beamforming gain ``mean_k |h_k^H w_k|^2 / ||h_k||^2`` (1 = ideal);
* ``bf_rel_db``: received power relative to ideal beamforming (power-weighted over subcarriers);
* ``nmse_norm``: the scale-invariant NMSE (multi-modal paper eq. 6) of the channel estimate,
  constant per PMI subband (``subband``) and with the FD bases evaluated per subcarrier
  (``interp``, a BS-side choice on the same bits);
* ``ue_ms`` / ``bs_ms``: CPU time per sample of the UE's choice and of the BS's precoder +
  estimate (one BLAS thread).

References: for each PMI-subband layout the best unquantized precoder constant per subband
(principal eigenvector; ``subband_ideal``). Writes JSON with per-sample arrays (for CDFs)::

    .venv/bin/python benchmarks/type2_rt.py --data data/sample/rt-street-sample.h5 --split test \\
        --out /tmp/type2_rt.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# One BLAS thread: these small products gain nothing from more, and the machine is shared.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation import beamforming as bf  # noqa: E402
from models.type2.config import Type2Config  # noqa: E402
from shared import metrics  # noqa: E402
from shared.errors import DatasetError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGETS = (48, 64, 76, 96, 112, 128, 144)
DECIMALS = 5  # per-sample values in the JSON: plenty for CDFs, a small file


def load(path: Path, split: str, max_n: int | None) -> dict[str, Any]:
    """``x_sf`` [n, Nt, Nsc], ``los`` [n] and ``sample_id`` [n] of one split (the first ``max_n``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if split not in f:
                raise DatasetError(f"{path}: no split {split!r} (has {sorted(f)})")
            g = f[split]
            for k in ("x_sf", "los"):
                if k not in g:
                    raise DatasetError(f"{path}: split {split!r} has no {k!r} field")
            n = g["x_sf"].shape[0] if max_n is None else min(max_n, g["x_sf"].shape[0])
            if n == 0:
                raise DatasetError(f"{path}: split {split!r} holds no samples")
            x = np.asarray(g["x_sf"][:n])
            los = np.asarray(g["los"][:n]).astype(bool)
            sid = np.asarray(g["sample_id"][:n]) if "sample_id" in g else np.arange(n)
            meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
                    if k in ("schema", "profile", "dataset_id", "n_subcarriers", "n_antennas", "n_rb")}
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    meta = {k: (v.item() if hasattr(v, "item") else v) for k, v in meta.items()}
    return {"x_sf": x, "los": los, "sample_id": sid, "meta": meta}


def _groups(los: np.ndarray) -> dict[str, np.ndarray]:
    return {"all": np.ones_like(los), "los": los, "nlos": ~los}


def _summary(per: dict[str, np.ndarray], los: np.ndarray) -> dict[str, dict[str, float | None]]:
    """Means over all / LOS / NLOS samples; NMSE averaged linearly, then in dB (eq. 6)."""
    out: dict[str, dict[str, float | None]] = {}
    for name, m in _groups(los).items():
        if not m.any():
            out[name] = {k: None for k in per}
            continue
        row: dict[str, float | None] = {}
        for k, v in per.items():
            mean = float(np.mean(v[m]))
            row[k] = 10 * float(np.log10(max(mean, 1e-30))) if k.startswith("nmse") else mean
        out[name] = row
    return out


def _rounded(a: np.ndarray) -> list[float]:
    return [round(float(v), DECIMALS) for v in a]


def evaluate(cfg: Type2Config, x: np.ndarray, los: np.ndarray) -> dict[str, Any]:
    """Scores and CPU times of one configuration on channels ``x`` [n, Nt, Nsc]."""
    bf.type2_pmis(x[:1], cfg)  # warm the per-configuration caches out of the timing
    c0 = time.process_time()
    pmis = bf.type2_pmis(x, cfg)
    c1 = time.process_time()
    w = bf.type2_precoders(x, cfg, pmis)
    est = bf.type2_estimates(x, cfg, pmis)
    c2 = time.process_time()
    est_i = bf.type2_estimates(x, cfg, pmis, expand="interp")
    per = {
        "bf_gain": bf.bf_gain(x, w),
        "bf_rel_db": bf.bf_gain_rel_db(x, w),
        "nmse_norm_subband": metrics.nmse_normalized(x, est),
        "nmse_norm_interp": metrics.nmse_normalized(x, est_i),
    }
    n = len(x)
    return {
        "config": cfg.name, "param_combination": cfg.param_combination, "L": cfg.L, "pv": cfg.pv,
        "beta": cfg.beta, "subband_size": cfg.subband_size, "R": cfg.r, "N3": cfg.n3, "Mv": cfg.mv,
        "K0": cfg.k0, "payload_bits": cfg.payload_bits, "pmi_bits": cfg.pmi_bits,
        "mean_k_nz": float(np.mean([p.k_nz for p in pmis])),
        "ue_ms": 1e3 * (c1 - c0) / n, "bs_ms": 1e3 * (c2 - c1) / n,
        "summary": _summary(per, los),
        "per_sample": {k: _rounded(v) for k, v in per.items()},
    }


def references(x: np.ndarray, los: np.ndarray, cfgs: list[Type2Config]) -> list[dict[str, Any]]:
    """Best unquantized per-subband precoders for each distinct PMI-subband layout."""
    out, seen = [], set()
    for cfg in cfgs:
        layout = cfg.pmi_subbands
        if layout in seen:
            continue
        seen.add(layout)
        sb = np.asarray(cfg.subcarrier_subband)
        w = bf.subband_ideal_precoders(x, sb)
        per = {"bf_gain": bf.bf_gain(x, w, sb), "bf_rel_db": bf.bf_gain_rel_db(x, w, sb)}
        rbs = sorted({n for _, n in layout})
        out.append({"reference": f"subband_ideal-N3_{cfg.n3}", "N3": cfg.n3, "pmi_subband_rbs": rbs,
                     "summary": _summary(per, los), "per_sample": {k: _rounded(v) for k, v in per.items()}})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="HDF5 file with <split>/x_sf and los")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-n", type=int, default=None, help="first N samples of the split")
    ap.add_argument("--max-bits", type=int, default=160, help="largest Type II payload evaluated")
    ap.add_argument("--out", type=Path, default=REPO / "docs/bench/type2_rt.json")
    args = ap.parse_args(argv)
    if args.max_n is not None and args.max_n < 1:
        ap.error("--max-n must be >= 1")

    try:
        data = load(args.data, args.split, args.max_n)
    except DatasetError as exc:
        raise SystemExit(f"type2_rt: {exc}") from None
    x, los = data["x_sf"], data["los"]
    n, nt, nsc = x.shape
    cfgs = bf.type2_configs_for_rt(args.max_bits, n_subcarriers=nsc, n_antennas=nt)
    if not cfgs:
        raise SystemExit(f"no Type II configuration of at most {args.max_bits} bits for {nsc} subcarriers")
    print(f"{args.data} [{args.split}]: {n} samples ({int(los.sum())} LOS), Nt={nt}, Nsc={nsc}; "
          f"{len(cfgs)} Type II configs <= {args.max_bits} bits", flush=True)

    t0 = time.perf_counter()
    rows = []
    hdr = (f"{'config':<18} {'bits':>4} {'pmi':>4} {'gain':>6} {'LOS':>6} {'NLOS':>6} {'rel dB':>7} "
           f"{'NMSE sb':>8} {'NMSE ip':>8} {'UE ms':>6} {'BS ms':>6}")
    print(hdr)
    for cfg in cfgs:
        r = evaluate(cfg, x, los)
        rows.append(r)
        s = r["summary"]

        def f(v: float | None, fmt: str) -> str:
            return format(v, fmt) if v is not None else "-"

        print(f"{r['config']:<18} {r['payload_bits']:>4} {r['pmi_bits']:>4} {f(s['all']['bf_gain'], '6.3f')} "
              f"{f(s['los']['bf_gain'], '6.3f'):>6} {f(s['nlos']['bf_gain'], '6.3f'):>6} "
              f"{s['all']['bf_rel_db']:7.2f} {s['all']['nmse_norm_subband']:8.2f} "
              f"{s['all']['nmse_norm_interp']:8.2f} {r['ue_ms']:6.2f} {r['bs_ms']:6.2f}", flush=True)
    refs = references(x, los, cfgs)
    for ref in refs:
        s = ref["summary"]
        print(f"{ref['reference']:<23} gain {s['all']['bf_gain']:.3f} (LOS {s['los']['bf_gain'] or 0:.3f}, "
              f"NLOS {s['nlos']['bf_gain'] or 0:.3f}), rel {s['all']['bf_rel_db']:.2f} dB")
    wall = time.perf_counter() - t0

    by_name = {r["config"]: r for r in rows}
    near = []
    for t in TARGETS:
        c = bf.type2_near(t, cfgs)
        best = max((r for r in rows if r["payload_bits"] <= t), key=lambda r: r["summary"]["all"]["bf_gain"],
                   default=None)
        near.append({"target_bits": t, "near": c.name, "near_bits": c.payload_bits,
                     "near_bf_gain": by_name[c.name]["summary"]["all"]["bf_gain"],
                     "best_at_or_below": best and best["config"],
                     "best_bf_gain": best and best["summary"]["all"]["bf_gain"]})
        print(f"target {t:>3} bits: near {c.name} ({c.payload_bits} b, gain "
              f"{near[-1]['near_bf_gain']:.3f}); best <= target: "
              f"{best['config'] if best else '-'} ({best['summary']['all']['bf_gain'] if best else 0:.3f})")

    out = {
        "data": str(args.data), "split": args.split, "n": n, "n_los": int(los.sum()), "meta": data["meta"],
        "definitions": {
            "bf_gain": "per sample mean_k |h_k^H w_k|^2 / (||h_k||^2 ||w_k||^2); 1 = ideal",
            "bf_rel_db": "per sample 10 log10(sum_k |h_k^H w_k|^2/||w_k||^2 / sum_k ||h_k||^2); 0 = ideal",
            "nmse_norm_*": "per sample ||h/||h|| - h^/||h^||||^2 (linear); summaries: 10 log10 of the mean",
            "ue_ms/bs_ms": "CPU ms per sample (one BLAS thread): UE choose_pmi; BS precoder + estimate",
            "ue_csi": "perfect: the UE reports from the full x_sf",
        },
        "sample_id": [int(v) for v in data["sample_id"]], "los": [bool(v) for v in los],
        "configs": rows, "references": refs, "near": near, "wall_s": wall,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} ({wall:.1f} s, {1e3 * wall / n / len(cfgs):.2f} ms per sample and config)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
