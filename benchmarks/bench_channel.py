"""Benchmark of the channel emulator's physics (``channel_emulator.link.Link``), no gRPC.

Two parts:

* throughput: reports per second through ``Link.process_digital`` (128-bit reports, QPSK,
  CRC16, 32 BS antennas, AWGN and Rayleigh) and ``Link.process_analog`` (32 symbols, 32 BS
  antennas, Rayleigh block fading and TDL-C), one thread, best of ``--repeats`` runs;
* BER curves: simulated BER of BPSK / QPSK / 16-QAM over AWGN with one antenna, and of BPSK over
  per-symbol Rayleigh fading with 1 / 2 / 4 antennas (MRC), against theory
  (``channel_emulator.theory``), through ``transmit_bits``.

Writes ``docs/bench/channel.json``, the plot ``docs/img/channel_ber.png`` and the tables of
``docs/channel.md`` (between the ``bench:channel`` markers). Usage::

    .venv/bin/python benchmarks/bench_channel.py                 # everything (~1-2 min)
    .venv/bin/python benchmarks/bench_channel.py --quick         # fewer reports and bits
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# One thread, as one gRPC handler would use (and so the CPU time below is one core's).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from channel_emulator.config import LinkConfig  # noqa: E402
from channel_emulator.digital import transmit_bits  # noqa: E402
from channel_emulator.link import Link  # noqa: E402
from channel_emulator.rng import ReportRng  # noqa: E402
from channel_emulator.theory import ber_awgn, ber_bpsk_rayleigh_mrc  # noqa: E402
from shared.wire import Bits  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT_JSON = REPO / "docs/bench/channel.json"
OUT_PNG = REPO / "docs/img/channel_ber.png"
DOC = REPO / "docs/channel.md"
MARK_START, MARK_END = "<!-- bench:channel:start -->", "<!-- bench:channel:end -->"

THROUGHPUT_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("digital 128 bit, QPSK, CRC16, AWGN, 32 rx", "digital",
     {"mode": "awgn", "modulation": "qpsk", "crc": "crc16", "n_rx": 32, "snr_db": 0.0}),
    ("digital 128 bit, QPSK, CRC16, Rayleigh, 32 rx", "digital",
     {"mode": "rayleigh", "modulation": "qpsk", "crc": "crc16", "n_rx": 32, "snr_db": 0.0}),
    ("analog 32 symbols, Rayleigh block, 32 rx", "analog", {"mode": "rayleigh", "n_rx": 32, "snr_db": 0.0}),
    ("analog 32 symbols, TDL-C 300 ns, 32 rx", "analog", {"mode": "tdl-c", "n_rx": 32, "snr_db": 0.0}),
    ("analog 32 symbols, ideal", "analog", {"ideal": True}),
]


def throughput(kind: str, cfg: dict[str, Any], reports: int, repeats: int) -> dict[str, float]:
    """Reports/s of one Link (one thread): best and median of ``repeats`` runs of ``reports``,
    wall clock and CPU time (the CPU time per report is the steadier figure on a shared machine)."""
    link = Link(cfg)
    rng = np.random.default_rng(0)
    bits = Bits.from_array(rng.integers(0, 2, 128))
    symbols = np.exp(2j * np.pi * rng.random(32)).astype(np.complex64)
    call = (lambda s: link.process_digital(bits, 0, s)) if kind == "digital" else (
        lambda s: link.process_analog(symbols, 0, s))
    for s in range(50):  # warm-up
        call(s)
    rates, cpu_us = [], []
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(reports):
            call(r * reports + s)
        rates.append(reports / (time.perf_counter() - t0))
        cpu_us.append((time.process_time() - c0) / reports * 1e6)
    return {"reports_per_s_best": max(rates), "reports_per_s_median": float(np.median(rates)),
            "us_per_report_best": 1e6 / max(rates), "cpu_us_per_report_best": min(cpu_us),
            "cpu_reports_per_s": 1e6 / min(cpu_us)}


def simulate_ber(cfg: LinkConfig, max_bits: int, min_errors: int, seed: int) -> tuple[float, int, int]:
    """(BER, errors, bits) over reports of 20,000 bits until ``min_errors`` errors or ``max_bits``."""
    errors = bits_n = seq = 0
    rng = np.random.default_rng(seed)
    while bits_n < max_bits and errors < min_errors:
        r = transmit_bits(Bits.from_array(rng.integers(0, 2, 20_000)), cfg, ReportRng(seed, 0, seq))
        errors += r.bit_errors
        bits_n += r.n_bits_on_air
        seq += 1
    return errors / bits_n, errors, bits_n


def ber_curves(max_bits: int, min_errors: int) -> list[dict[str, Any]]:
    curves = []
    for mod, grid in [("bpsk", np.arange(-4, 11, 1.0)), ("qpsk", np.arange(-2, 14, 1.0)),
                      ("16qam", np.arange(2, 20, 1.0))]:
        pts = []
        for snr in grid:
            cfg = LinkConfig(mode="awgn", snr_db=float(snr), n_rx=1, modulation=mod, crc=None)
            ber, e, n = simulate_ber(cfg, max_bits, min_errors, seed=int((snr + 50) * 10))
            pts.append({"snr_db": float(snr), "ber": ber, "errors": e, "bits": n,
                        "theory": float(ber_awgn(mod, snr))})
        curves.append({"name": f"{mod.upper() if mod != '16qam' else '16-QAM'} AWGN, 1 rx", "modulation": mod,
                       "channel": "awgn", "n_rx": 1, "points": pts})
    for n_rx in (1, 2, 4):
        pts = []
        for snr in np.arange(-4, 21, 2.0):
            cfg = LinkConfig(mode="rayleigh", snr_db=float(snr), n_rx=n_rx, modulation="bpsk", crc=None,
                             block_fading=False)
            ber, e, n = simulate_ber(cfg, max_bits, min_errors, seed=10_000 * n_rx + int((snr + 50) * 10))
            pts.append({"snr_db": float(snr), "ber": ber, "errors": e, "bits": n,
                        "theory": float(ber_bpsk_rayleigh_mrc(snr, n_rx))})
        curves.append({"name": f"BPSK Rayleigh, {n_rx} rx MRC", "modulation": "bpsk", "channel": "rayleigh",
                       "n_rx": n_rx, "points": pts})
    return curves


def theory_curve(curve: dict[str, Any], snr_db: np.ndarray) -> np.ndarray:
    if curve["channel"] == "awgn":
        return ber_awgn(curve["modulation"], snr_db)
    return ber_bpsk_rayleigh_mrc(snr_db, curve["n_rx"])


def plot(curves: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for i, c in enumerate(curves):
        snr = [p["snr_db"] for p in c["points"]]
        dense = np.linspace(snr[0], snr[-1], 200)
        sim = [p["ber"] if p["errors"] else np.nan for p in c["points"]]
        color = f"C{i}"
        ax.semilogy(dense, theory_curve(c, dense), "-", color=color, lw=1, label=f"{c['name']} (theory)")
        ax.semilogy(snr, sim, "o", color=color, ms=4, mfc="none")
    ax.set_ylim(1e-5, 0.6)
    ax.set_xlabel("snr_db (per-antenna Es/N0, dB)")
    ax.set_ylabel("bit error rate")
    ax.set_title("csilink channel emulator: simulated (o) vs theory (-)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"Measured by `benchmarks/bench_channel.py` on {m['date']} ({m['cpus']} CPUs, load average "
             f"{m['loadavg_1min']:.1f} at the start; one thread, best of the repeats).", "",
             "| case | reports/s (wall) | CPU us/report | reports/s per core (CPU time) |",
             "|---|---:|---:|---:|"]
    for t in result["throughput"]:
        lines.append(f"| {t['case']} | {t['reports_per_s_best']:,.0f} | {t['cpu_us_per_report_best']:.0f} | "
                     f"{t['cpu_reports_per_s']:,.0f} |")
    lines += ["", "Simulated BER (uncoded, hard decisions, `transmit_bits`) vs theory at a few points of "
              "each curve; every point is in `docs/bench/channel.json`. A point stops after "
              f"{result['min_errors']} errors or {result['max_bits_per_point']:,} bits.", "",
              "| curve | snr_db | simulated | theory | errors counted |", "|---|---:|---:|---:|---:|"]
    for c in result["ber_curves"]:
        for p in c["points"][:: max(1, len(c["points"]) // 4)]:
            if p["theory"] >= 1e-4:
                lines.append(f"| {c['name']} | {p['snr_db']:.0f} | {p['ber']:.3e} | {p['theory']:.3e} | "
                             f"{p['errors']:,} |")
    lines += ["", "![BER vs SNR](img/channel_ber.png)"]
    return "\n".join(lines)


def update_doc(text: str) -> None:
    if not DOC.exists():
        return
    doc = DOC.read_text()
    if MARK_START not in doc or MARK_END not in doc:
        return
    head, rest = doc.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    DOC.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer reports and bits (a smoke run)")
    ap.add_argument("--reports", type=int, default=None, help="reports per timed run (default 2000)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ber-bits", type=int, default=None, help="max bits per BER point (default 2e6)")
    ap.add_argument("--min-errors", type=int, default=1000, help="stop a BER point after this many errors")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite the tables in docs/channel.md")
    args = ap.parse_args(argv)
    reports = args.reports or (300 if args.quick else 2000)
    ber_bits = args.ber_bits or (100_000 if args.quick else 2_000_000)

    machine = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(), "numpy": np.__version__,
               "loadavg_1min": os.getloadavg()[0]}
    tp = []
    for case, kind, cfg in THROUGHPUT_CASES:
        r = throughput(kind, cfg, reports, args.repeats)
        tp.append({"case": case, "kind": kind, "config": cfg, **r})
        print(f"{case:50s} {r['reports_per_s_best']:9,.0f} reports/s wall, "
              f"{r['cpu_us_per_report_best']:6.0f} CPU us/report", flush=True)
    curves = ber_curves(ber_bits, args.min_errors)
    for c in curves:
        worst = max(abs(p["ber"] / p["theory"] - 1) for p in c["points"] if p["theory"] >= 1e-3)
        print(f"{c['name']:32s} max relative BER error where theory >= 1e-3: {worst:.3f}", flush=True)
    result = {"machine": machine, "reports_per_run": reports, "repeats": args.repeats, "throughput": tp,
              "min_errors": args.min_errors, "max_bits_per_point": ber_bits, "ber_curves": curves}
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_plot:
        plot(curves, OUT_PNG)
    if not args.no_doc:
        update_doc(markdown(result))
    print(f"wrote {OUT_JSON.relative_to(REPO)}" + ("" if args.no_plot else f", {OUT_PNG.relative_to(REPO)}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
