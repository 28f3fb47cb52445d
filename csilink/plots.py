"""PNG plots of a scenario run: NMSE and SGCS vs SNR, vs payload size, and the latency CDF.

Input is the runner's per-point rows (dicts, the same as ``results.csv``) and per-point
latency samples. matplotlib (Agg backend) is imported inside the functions so the runner
stays importable without it; when it is missing, no plot is written and the caller is told.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Row fields that identify a curve (everything but the x axis).
_CURVE_KEYS_SNR = ("models", "mode", "ues", "rate")
_CURVE_KEYS_BITS = ("models", "mode", "ues", "snr_db")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(float(v))


def _curves(rows: Sequence[Mapping[str, Any]], x: str, keys: tuple[str, ...]) -> dict[str, list]:
    """Group rows into curves: label -> sorted [(x, row)] (rows without a finite x are left out)."""
    out: dict[str, list] = {}
    for r in rows:
        if not _finite(r.get(x)):
            continue
        label = ", ".join(f"{r[k]}" if k != "ues" else f"{r[k]} UE" for k in keys
                          if r.get(k) not in (None, ""))
        out.setdefault(label or "all", []).append((float(r[x]), r))
    return {k: sorted(v, key=lambda t: t[0]) for k, v in out.items()}


def _metric_axes(plt: Any, rows: Sequence[Mapping[str, Any]], x: str, xlabel: str,
                 keys: tuple[str, ...], title: str, path: Path) -> Path | None:
    curves = _curves(rows, x, keys)
    if not curves:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, pts in curves.items():
        xs = [p[0] for p in pts]
        # angular-delay NMSE; codecs scored in the SF domain (ray-traced world) have only the SF one
        nmse = [p[1].get("nmse_db_ad") if _finite(p[1].get("nmse_db_ad"))
                else p[1].get("nmse_db_sf") if _finite(p[1].get("nmse_db_sf")) else np.nan for p in pts]
        sg = [p[1].get("sgcs") if _finite(p[1].get("sgcs")) else np.nan for p in pts]
        ax1.plot(xs, nmse, marker="o", label=label)
        ax2.plot(xs, sg, marker="o", label=label)
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("NMSE (dB; angular-delay, or SF where only that is scored)")
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("SGCS")
    ax2.set_ylim(0.0, 1.02)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    ax1.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_run(rows: Sequence[Mapping[str, Any]], latencies_ms: Mapping[str, np.ndarray],
             out_dir: str | Path, title: str = "") -> list[Path]:
    """Write ``nmse_vs_snr.png``, ``nmse_vs_bits.png`` and ``latency_cdf.png`` into ``out_dir``.

    :input rows: per-point dicts with at least ``models, mode, ues, rate, snr_db, payload,
        nmse_db_ad, sgcs`` (``payload`` = bits or symbols per report)
    :input latencies_ms: curve label -> float ``[n]`` end-to-end latencies of ok reports (ms)
    :output: the files written (a plot with no data to show is skipped)
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the dev/train extras
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _metric_axes(plt, rows, "snr_db", "channel SNR (dB)", _CURVE_KEYS_SNR,
                     f"{title}: reconstruction vs SNR", out / "nmse_vs_snr.png"),
        _metric_axes(plt, rows, "payload", "payload (bits, or symbols for analog)", _CURVE_KEYS_BITS,
                     f"{title}: reconstruction vs payload", out / "nmse_vs_bits.png"),
        _latency_cdf(plt, latencies_ms, f"{title}: end-to-end latency", out / "latency_cdf.png"),
    ]
    return [p for p in written if p is not None]


def _latency_cdf(plt: Any, latencies_ms: Mapping[str, np.ndarray], title: str, path: Path) -> Path | None:
    series = {k: np.sort(np.asarray(v, dtype=float)) for k, v in latencies_ms.items() if np.size(v)}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, v in series.items():
        ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency per report (ms, runner call round trip)")
    ax.set_ylabel("CDF")
    ax.grid(True, which="both", alpha=0.3)
    if len(series) <= 12:
        ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
