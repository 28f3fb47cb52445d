"""Evaluation outputs: rich table, CSV, JSON with provenance, rate-distortion PNG."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from evaluation.harness import Row, rows_as_dicts
from shared.provenance import provenance

COLUMNS = (
    "model",
    "family",
    "rate",
    "bits",
    "symbols",
    "snr_db",
    "n",
    "nmse_db_ad",
    "nmse_db_sf",
    "rho",
    "sgcs",
    "n_sf",
    "sf_truth",
    "target",
    "ue_ms_per_report",
    "bs_ms_per_report",
)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def payload(r: Row | dict[str, Any]) -> str:
    d = r if isinstance(r, dict) else r.__dict__
    return f"{d['bits']} bits" if d.get("bits") is not None else f"{d['symbols']} sym"


def print_table(rows: list[Row], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col, just in (
        ("model", "left"),
        ("family", "left"),
        ("payload", "right"),
        ("SNR dB", "right"),
        ("NMSE dB (AD)", "right"),
        ("NMSE dB (SF)", "right"),
        ("rho", "right"),
        ("SGCS", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(
            r.model,
            r.family,
            payload(r),
            _fmt(r.snr_db, 0),
            _fmt(r.nmse_db_ad),
            _fmt(r.nmse_db_sf),
            _fmt(r.rho, 3),
            _fmt(r.sgcs, 3),
        )
    Console(width=None if sys.stdout.isatty() else 140).print(t)


def write_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for d in rows_as_dicts(rows):
            w.writerow({k: d.get(k) for k in COLUMNS})


def write_json(rows: list[Row], ctx: dict[str, Any], path: Path) -> dict[str, Any]:
    doc = {
        "provenance": provenance(**{k: ctx[k] for k in ("dataset", "dataset_id", "split", "n", "seed")}),
        "context": ctx,
        "results": rows_as_dicts(rows),
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return doc


def plot_rd(rows: list[Row] | list[dict[str, Any]], path: Path, title: str = "") -> None:
    """NMSE (AD, dB) vs payload bits, every method on the same axes.

    Analog rows are placed at ``symbols`` channel uses on a second axis scale: an analog
    symbol is not a bit, so they are drawn with their own markers and labelled "k sym (SNR)".
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = [r if isinstance(r, dict) else r.__dict__ for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    by_family: dict[str, list[dict[str, Any]]] = {}
    for d in ds:
        if d.get("bits") is not None:
            by_family.setdefault(d["family"], []).append(d)
    for fam, items in sorted(by_family.items()):
        items.sort(key=lambda d: d["bits"])
        ax.plot([d["bits"] for d in items], [d["nmse_db_ad"] for d in items], "o-", label=fam)
        for d in items:
            ax.annotate(
                d["model"],
                (d["bits"], d["nmse_db_ad"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xlabel("payload (bits per report)")
    ax.set_ylabel("NMSE (dB), angular-delay")
    ax.set_title("digital feedback (error-free link)")
    ax.grid(True, alpha=0.3)
    if by_family:
        ax.legend()
    ax2 = axes[1]
    analog = [d for d in ds if d.get("symbols") is not None]
    series: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for d in analog:
        series.setdefault((d["model"], d["symbols"]), []).append(d)
    for (model, k), items in sorted(series.items()):
        items.sort(key=lambda d: d["snr_db"])
        ax2.plot([d["snr_db"] for d in items], [d["nmse_db_ad"] for d in items], "s-", label=f"{model} k={k}")
    ax2.set_xlabel("uplink SNR (dB), AWGN")
    ax2.set_ylabel("NMSE (dB), angular-delay")
    ax2.set_title("analog JSCC (k complex symbols)")
    ax2.grid(True, alpha=0.3)
    if series:
        ax2.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(rows: list[Row], ctx: dict[str, Any], out: str | Path, name: str = "eval") -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / f"{name}.csv", "json": out / f"{name}.json", "png": out / f"{name}_rd.png"}
    write_csv(rows, paths["csv"])
    write_json(rows, ctx, paths["json"])
    plot_rd(rows, paths["png"], f"{ctx['dataset_id']} / {ctx['split']} (n={ctx['n']})")
    return paths
