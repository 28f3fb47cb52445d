"""Benchmark of the type2 family (Rel-16 enhanced Type II, rank 1) on a dataset's test split.

For each shipped operating point (``models/type2/presets.py``): the UE encodes the measured
``x_ad`` (its SF view is ``ad_to_sf(x_ad)``), the bits are unpacked at the BS and decoded;
scores against the truth:

* NMSE (dB) in the AD domain against ``x_ad`` (the shared harness's domain), and in the SF
  domain against the full ``x_sf`` (includes the delay-crop loss);
* SGCS and rho per subcarrier in the SF domain against ``x_sf`` (``ad_to_sf(x_ad)`` when the
  file has no ``x_sf``). Files store ``x_sf`` for the first samples only (``sf_cap``): the SF
  scores use those (``n_sf``), the AD NMSE uses every sample;
* encode / decode time per report: CPU time of this process (robust to other load on the
  machine) and wall time, batched, one BLAS thread. Encode = AD CSI -> bits; decode = bits ->
  AD estimate (what the BS decoder returns).

Writes ``docs/bench/type2.json`` and the results table of ``docs/type2.md`` (between the
``bench:type2`` markers). Usage::

    .venv/bin/python benchmarks/bench_type2.py                     # sample (+ generated if present)
    .venv/bin/python benchmarks/bench_type2.py --dataset data/generated/cdl-c-fdd.h5 --limit 2000
    .venv/bin/python benchmarks/bench_type2.py --synthetic 200      # no file: numpy CDL-C-shaped channels
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# One BLAS thread, as on a UE: with several, OpenBLAS threads spin on these small products
# and a loaded 2-core machine makes the timings many times worse (set before numpy loads).
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.type2 import codebook  # noqa: E402
from models.type2.config import Type2Config  # noqa: E402
from models.type2.presets import PRESETS, bundle_name  # noqa: E402
from models.type2.synthetic import multipath_sf  # noqa: E402
from models.type2.wire import Type2Codec  # noqa: E402
from shared import metrics  # noqa: E402
from shared.errors import DatasetError  # noqa: E402
from shared.transforms import ad_to_sf, sf_to_ad  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data/sample/cdl-c-fdd-sample.h5"
GENERATED = REPO / "data/generated/cdl-c-fdd.h5"
DOC = REPO / "docs/type2.md"
OUT_JSON = REPO / "docs/bench/type2.json"
MARK_START, MARK_END = "<!-- bench:type2:start -->", "<!-- bench:type2:end -->"
PAY_START, PAY_END = "<!-- payload:type2:start -->", "<!-- payload:type2:end -->"


def load_split(path: Path, split: str, limit: int | None) -> dict[str, Any]:
    """``x_ad`` [N, Nt, 32] and, when stored, ``x_sf`` [N, Nt, Nc] of one split (the first ``limit``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if split not in f:
                raise DatasetError(f"{path}: no split {split!r} (has {sorted(f)})")
            g = f[split]
            n = g["x_ad"].shape[0] if limit is None else min(limit, g["x_ad"].shape[0])
            x_ad = np.asarray(g["x_ad"][:n])
            x_sf = np.asarray(g["x_sf"][:n]) if "x_sf" in g else None
            meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
                    if k in ("schema", "profile", "dataset_id", "n_subcarriers", "n_antennas", "seed")}
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    meta = {k: (v.item() if hasattr(v, "item") else v) for k, v in meta.items()}
    return {"name": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path), "split": split,
            "x_ad": x_ad, "x_sf": x_sf, "meta": meta}


def synthetic(n: int, seed: int = 0) -> dict[str, Any]:
    h = multipath_sf(n, seed=seed)
    return {"name": f"synthetic CDL-C-shaped (numpy, seed {seed})", "split": "-", "x_ad": sf_to_ad(h),
            "x_sf": h, "meta": {"n_subcarriers": h.shape[-1]}}


def evaluate(cfg: Type2Config, data: dict[str, Any], batch: int = 64) -> dict[str, Any]:
    """Scores and timings of one configuration on one dataset."""
    codec = Type2Codec(cfg)
    x_ad = data["x_ad"]
    truth_sf = data["x_sf"] if data["x_sf"] is not None else ad_to_sf(x_ad, cfg.n_subcarriers)
    n_sf = len(truth_sf)
    est_ad, est_sf = [], []
    t_enc = t_dec = c_enc = c_dec = 0.0
    codec.encode(x_ad[:1])  # warm the per-configuration caches
    for s in range(0, len(x_ad), batch):
        xb = x_ad[s : s + batch]
        t0, c0 = time.perf_counter(), time.process_time()
        reports = codec.encode(xb)
        t1, c1 = time.perf_counter(), time.process_time()
        lat = np.stack([codec.unpack(r) for r in reports])
        ad = codec.decode_ad(lat)  # what the BS decoder returns
        t2, c2 = time.perf_counter(), time.process_time()
        sf = codec.decode_sf(lat[: max(0, n_sf - s)])  # for the SF scores (not timed; may be empty)
        t_enc, t_dec = t_enc + (t1 - t0), t_dec + (t2 - t1)
        c_enc, c_dec = c_enc + (c1 - c0), c_dec + (c2 - c1)
        assert all(r.n_bits == cfg.payload_bits for r in reports)
        est_ad.append(ad)
        est_sf.append(sf)
    ad, sf = np.concatenate(est_ad), np.concatenate(est_sf)
    n = len(x_ad)
    return {
        "config": cfg.name, "bundle": bundle_name(cfg) if cfg in PRESETS else None,
        "bits": cfg.payload_bits, "pmi_bits": cfg.pmi_bits, "L": cfg.L, "pv": cfg.pv, "beta": cfg.beta,
        "subband_size": cfg.subband_size, "R": cfg.r, "N3": cfg.n3, "Mv": cfg.mv, "K0": cfg.k0,
        "expand": cfg.expand, "n": n, "n_sf": n_sf,
        "sgcs": float(np.mean(metrics.sgcs(truth_sf, sf))),
        "rho": float(np.mean(metrics.rho(truth_sf, sf))),
        "nmse_ad_db": metrics.nmse_db(x_ad, ad),
        "nmse_sf_db": metrics.nmse_db(truth_sf, sf),
        "encode_us_per_report": 1e6 * c_enc / n,
        "decode_us_per_report": 1e6 * c_dec / n,
        "encode_wall_us_per_report": 1e6 * t_enc / n,
        "decode_wall_us_per_report": 1e6 * t_dec / n,
    }


def ideal_subband(data: dict[str, Any], cfg: Type2Config) -> dict[str, Any]:
    """Reference without compression: the measured channel's subband means, spread over subbands."""
    x_ad = data["x_ad"]
    truth_sf = data["x_sf"] if data["x_sf"] is not None else ad_to_sf(x_ad, cfg.n_subcarriers)
    x_ad = x_ad[: len(truth_sf)]
    ue_sf = ad_to_sf(x_ad, cfg.n_subcarriers)
    idx = codebook.subband_of_subcarrier(cfg)
    est = np.stack([codebook.subband_target(h, cfg)[:, idx] for h in ue_sf]).astype(np.complex64)
    return {"config": f"uncompressed subband means (subband {cfg.subband_size} RBs, R={cfg.r})",
            "bits": None, "n": len(x_ad), "n_sf": len(truth_sf),
            "sgcs": float(np.mean(metrics.sgcs(truth_sf, est))),
            "rho": float(np.mean(metrics.rho(truth_sf, est))),
            "nmse_ad_db": metrics.nmse_db(x_ad, sf_to_ad(est, cfg.n_taps)),
            "nmse_sf_db": metrics.nmse_db(truth_sf, est)}


def extra_configs() -> list[Type2Config]:
    """Variants beside the presets: R = 1, other table entries, the interp expansion, more beams."""
    return [
        Type2Config(param_combination=1, subband_size=4, r=1),
        Type2Config(param_combination=4, subband_size=8, r=1),
        Type2Config(param_combination=5, subband_size=4, r=2),
        Type2Config(param_combination=6, subband_size=4, r=2),
        Type2Config(param_combination=8, subband_size=4, r=1),
        Type2Config(param_combination=4, subband_size=8, r=2, expand="interp"),
        Type2Config(param_combination=8, subband_size=4, r=2, expand="interp"),
        Type2Config(param_combination=0, custom=(6, 0.5, 0.75), subband_size=4, r=2),
        Type2Config(param_combination=0, custom=(8, 0.25, 0.5), subband_size=4, r=2),
        Type2Config(param_combination=0, custom=(16, 0.25, 0.5), subband_size=4, r=2),
    ]


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| configuration | bundle | bits (PMI) | L | p_v | beta | N3 | Mv | K0 | SGCS | rho | "
            "NMSE AD (dB) | NMSE SF (dB) | encode (us CPU) | decode (us CPU) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    out = []
    for r in rows:
        if r.get("bits") is None:
            out.append(f"| {r['config']} | - | - | | | | | | | {r['sgcs']:.3f} | {r['rho']:.3f} | "
                       f"{r['nmse_ad_db']:.2f} | {r['nmse_sf_db']:.2f} | | |")
            continue
        name = r["config"] + (" (interp)" if r["expand"] == "interp" else "")
        out.append(f"| {name} | {r['bundle'] or '-'} | {r['bits']} ({r['pmi_bits']}) | {r['L']} | "
                   f"{r['pv']:g} | {r['beta']:g} | {r['N3']} | {r['Mv']} | {r['K0']} | "
                   f"{r['sgcs']:.3f} | {r['rho']:.3f} | "
                   f"{r['nmse_ad_db']:.2f} | {r['nmse_sf_db']:.2f} | {r['encode_us_per_report']:.0f} | "
                   f"{r['decode_us_per_report']:.0f} |")
    return head + "\n".join(out) + "\n"


def payload_table() -> str:
    """Per-preset field widths (bits) of the report, from ``Type2Config.breakdown``."""
    names = ["k_nz", "i11", "i12", "i15", "i16", "i18", "i17", "i23", "i24", "i25", "fd_offset", "ref_power",
             "ref_phase"]
    head = ("| bundle | L | p_v | beta | subband | R | N3 | Mv | K0 | " + " | ".join(names)
            + " | PMI | total | latent |\n|" + "---|" * (len(names) + 12) + "\n")
    rows = []
    for c in PRESETS:
        b = c.breakdown()
        rows.append(f"| {bundle_name(c)} | {c.L} | {c.pv:g} | {c.beta:g} | {c.subband_size} | {c.r} | "
                    f"{c.n3} | {c.mv} | {c.k0} | " + " | ".join(str(b.get(n, 0)) for n in names)
                    + f" | {c.pmi_bits} | {c.payload_bits} | {c.latent_size} |")
    return head + "\n".join(rows) + "\n"


def _replace_block(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        text = text.rstrip() + f"\n\n{start}\n{end}\n"
    a, rest = text.split(start, 1)
    _, b = rest.split(end, 1)
    return a + start + "\n" + body + end + b


def write_doc(results: list[dict[str, Any]], prov: dict[str, Any]) -> None:
    parts = [f"Measured by `benchmarks/bench_type2.py` on {prov.get('created', '?')} "
             f"(commit `{str(prov.get('git_commit', '?'))[:12]}`, {prov.get('cpus', '?')} CPUs); "
             "raw numbers in `docs/bench/type2.json`.\n"]
    for d in results:
        sf = f"x_sf of the first {d['n_sf']}" if d["has_sf"] else "ad_to_sf(x_ad)"
        parts.append(f"\n**{d['dataset']}** (split `{d['split']}`, {d['n']} samples for AD NMSE; "
                     f"SF scores against {sf})\n\n")
        parts.append(table(d["rows"]))
    text = DOC.read_text() if DOC.is_file() else "# type2\n"
    text = _replace_block(text, PAY_START, PAY_END, payload_table())
    DOC.write_text(_replace_block(text, MARK_START, MARK_END, "".join(parts)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, action="append",
                    help="HDF5 dataset(s) (default: the sample, plus data/generated/cdl-c-fdd.h5 if present)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None, help="at most this many samples per dataset")
    ap.add_argument("--synthetic", type=int, default=0, help="also run on N numpy CDL-C-shaped channels")
    ap.add_argument("--no-extra", action="store_true", help="presets only (skip the R=2 / interp variants)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = ap.parse_args(argv)

    datasets: list[dict[str, Any]] = []
    paths = args.dataset or [p for p in (SAMPLE, GENERATED) if p.is_file()]
    for p in paths:
        datasets.append(load_split(Path(p), args.split, args.limit))
    if args.synthetic:
        datasets.append(synthetic(args.synthetic))
    if not datasets:
        print(f"no dataset: {SAMPLE} is missing; pass --dataset or --synthetic N", file=sys.stderr)
        return 2

    configs = list(PRESETS) + ([] if args.no_extra else extra_configs())
    results = []
    for d in datasets:
        nc = d["x_sf"].shape[-1] if d["x_sf"] is not None else int(d["meta"].get("n_subcarriers", 667))
        rows = []
        for cfg in configs:
            cfg = Type2Config.from_spec({**cfg.to_spec(), "n_subcarriers": nc})
            r = evaluate(cfg, d)
            rows.append(r)
            print(f"{d['name']}: {r['config']:34s} {r['expand']:8s} {r['bits']:4d} b  SGCS {r['sgcs']:.3f}  "
                  f"rho {r['rho']:.3f}  NMSE AD {r['nmse_ad_db']:6.2f}  SF {r['nmse_sf_db']:6.2f} dB  "
                  f"enc {r['encode_us_per_report']:.0f} us  dec {r['decode_us_per_report']:.0f} us",
                  flush=True)
        for sb, rr in ((4, 1), (4, 2)):
            rows.append(ideal_subband(d, Type2Config(subband_size=sb, r=rr, n_subcarriers=nc)))
        results.append({"dataset": d["name"], "split": d["split"], "meta": d["meta"], "n": len(d["x_ad"]),
                        "n_sf": len(d["x_sf"]) if d["x_sf"] is not None else len(d["x_ad"]),
                        "has_sf": d["x_sf"] is not None, "rows": rows})
    try:
        from shared.provenance import provenance

        prov = provenance(benchmark="bench_type2")
    except ImportError:
        prov = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not args.no_write:
        OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
        OUT_JSON.write_text(json.dumps({"provenance": prov, "results": results}, indent=2) + "\n")
        write_doc(results, prov)
        print(f"wrote {OUT_JSON.relative_to(REPO)} and the table in {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
