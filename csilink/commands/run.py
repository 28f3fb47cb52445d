"""``csilink run SCENARIO.yaml``: drive the UE / channel / BS link with a scenario.

    csilink run scenarios/default.yaml --ue 127.0.0.1:50051 --channel 127.0.0.1:50052 --bs 127.0.0.1:50053
    csilink run scenarios/snr_sweep.yaml            # no addresses: starts the services itself
    csilink run scenarios/default.yaml --check      # validate the scenario only

Addresses fall back to CSILINK_UE_ADDR, CSILINK_CHANNEL_ADDR, CSILINK_BS_ADDR. Progress goes to
stderr; the results table to stdout; CSV, JSON and PNG plots to the output folder.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a scenario over the UE / channel / BS services and score it",
        description="Run a scenario file (docs/scenarios.md) over the three services: configure the "
        "link per sweep point, send every report, score the reconstructions against the dataset "
        "truth, and write results.csv, reports.csv, results.json and plots. Without node addresses "
        "(flags or CSILINK_*_ADDR) the services of docker-compose.yml are started locally for the run.",
    )
    p.add_argument("scenario", type=Path, help="scenario YAML file")
    p.add_argument("--ue", metavar="HOST:PORT", help="UE node (default: $CSILINK_UE_ADDR)")
    p.add_argument("--channel", metavar="HOST:PORT", help="channel emulator (default: $CSILINK_CHANNEL_ADDR)")
    p.add_argument("--bs", metavar="HOST:PORT", help="BS node (default: $CSILINK_BS_ADDR)")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="output folder (default: the scenario's `output`, else runs/<name>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--check", action="store_true",
                   help="validate the scenario (files, bundles, rates) and exit")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.set_defaults(func=_run)


class _Progress:
    """rich progress: one bar per sweep point (on stderr)."""

    def __init__(self, console: Any, n_points: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.n_points = n_points
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console, transient=False,
        )
        self.task: Any = None
        self.t_reports = 0

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def start_point(self, pt: Any, total: int) -> None:

        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[self.task].total)
        self._t0: float | None = None  # from the first report back: set-up time is not throughput
        self.task = self.progress.add_task(f"[{pt.index + 1}/{self.n_points}] {pt.label()}",
                                           total=total, rate="")

    def advance(self, n: int) -> None:
        import time

        now = time.perf_counter()
        if self._t0 is None:
            self._t0, self._n0 = now, n
        t = self.progress.tasks[self.task]
        done, dt = t.completed + n - self._n0, now - self._t0
        self.progress.update(self.task, advance=n, rate=f"{done / dt:,.0f} reports/s" if dt > 0 else "")


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def results_table(rows: list[dict[str, Any]], title: str) -> Any:
    """A rich Table of the per-point rows."""
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold")
    cols = [("#", "right"), ("models", "left"), ("rate", "left"), ("payload", "right"),
            ("channel", "left"), ("SNR dB", "right"), ("UEs", "right"), ("ok/sent", "right"),
            ("drop", "right"), ("err", "right"), ("NMSE dB AD", "right"), ("NMSE dB SF", "right"),
            ("SGCS", "right"), ("BER", "right"), ("p50 ms", "right"), ("p99 ms", "right"),
            ("rep/s", "right")]
    for name, just in cols:
        t.add_column(name, justify=just)
    for r in rows:
        unit = "b" if r.get("payload_unit") == "bits" else " sym"
        t.add_row(
            str(r["point"]), str(r["models"]), str(r["rate"]), f"{r['payload']}{unit}",
            "ideal" if r.get("ideal") else str(r.get("mode")),
            "-" if r.get("ideal") else _fmt(r.get("snr_db"), "g"), str(r["ues"]),
            f"{r['ok']}/{r['sent']}", str(r["dropped"]), str(r["errors"]),
            _fmt(r.get("nmse_db_ad"), ".2f"), _fmt(r.get("nmse_db_sf"), ".2f"),
            _fmt(r.get("sgcs"), ".3f") + ("*" if r.get("sf_truth") == "cropped" else ""),
            _fmt(r.get("ber"), ".2e"), _fmt(r.get("latency_p50_ms"), ".1f"),
            _fmt(r.get("latency_p99_ms"), ".1f"), _fmt(r.get("reports_per_s"), ",.0f"),
        )
    return t


def image_table(rows: list[dict[str, Any]], title: str) -> Any:
    """A rich Table of the image-link rows."""
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold")
    cols = [("#", "right"), ("model", "left"), ("MIMO", "left"), ("CSI", "left"), ("fb bits", "right"),
            ("SNR dB", "right"), ("ok/sent", "right"), ("drop", "right"), ("err", "right"),
            ("PSNR dB", "right"), ("MS-SSIM", "right"), ("H est NMSE dB", "right"),
            ("CSI NMSE dB", "right"), ("UL BER", "right"), ("p50 ms", "right")]
    for name, just in cols:
        t.add_column(name, justify=just)
    for r in rows:
        t.add_row(
            str(r["point"]), str(r["model"]), str(r["size"]), str(r["csi"]),
            "-" if r.get("feedback_payload_bits") is None else str(r["feedback_payload_bits"]),
            _fmt(r.get("snr_db"), "g"), f"{r['ok']}/{r['images']}", str(r["dropped"]), str(r["errors"]),
            _fmt(r.get("psnr_db"), ".2f"), _fmt(r.get("ms_ssim"), ".4f"), _fmt(r.get("h_nmse_db"), ".2f"),
            _fmt(r.get("csi_nmse_db"), ".2f"), _fmt(r.get("uplink_ber"), ".2e"),
            _fmt(r.get("latency_p50_ms"), ".1f"),
        )
    return t


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from csilink.runner import run_scenario
    from csilink.scenario import ResolvedScenario, load_scenario

    err = Console(stderr=True)
    rs = load_scenario(args.scenario)
    assert isinstance(rs, ResolvedScenario)
    if args.seed is not None:
        if args.seed < 0:
            from shared.errors import InvalidInput

            raise InvalidInput(f"--seed must be >= 0, got {args.seed}")
        rs.scenario.seed = args.seed
    points = rs.scenario.points()
    image_points = rs.image_link.section.points() if rs.image_link is not None else []
    if args.check:
        err.print(f"{args.scenario}: ok ({len(points)} sweep points, "
                  f"{sum(p.ues for p in points) * rs.scenario.reports} reports)")
        for p in points:
            err.print(f"  [{p.index}] {p.label()}")
        if image_points:
            n = rs.image_link.section.images.n
            err.print(f"  image link: {len(image_points)} points, {n} images each")
            for p in image_points:
                err.print(f"  [image {p.index}] {p.label()}")
        return 0
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (docker stop, a supervisor) unwinds like Ctrl-C: services we started are stopped.
        def interrupt(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt(signal.Signals(signum).name)

        old_handler = signal.signal(signal.SIGTERM, interrupt)
    try:
        with _Progress(err, len(points) + len(image_points)) as prog:
            result = run_scenario(rs, args.ue, args.channel, args.bs, args.out, plots=not args.no_plots,
                                  progress=prog, log_fn=lambda line: err.print(f"[dim]{line}[/dim]"))
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
    out = Console(file=sys.stdout, width=max(Console().width, 160))
    if result.points:
        out.print(results_table(result.rows, f"{rs.scenario.name}: {rs.source}"))
    if result.image_points:
        out.print(image_table([pr.row for pr in result.image_points], f"{rs.scenario.name}: image link"))
        for pr in result.image_points:
            for k, v in sorted(pr.reasons.items(), key=lambda kv: -kv[1])[:3]:
                out.print(f"  image point {pr.point.index}: {v} x {k}")
    if any(r.get("sf_truth") == "cropped" for r in result.rows):
        out.print("* SGCS against the cropped (32-tap) truth: no stored SF truth for these samples")
    for pr in result.points:
        reasons = {**{f"dropped: {k}": v for k, v in pr.drop_reasons.items()},
                   **{f"error: {k}": v for k, v in pr.error_reasons.items()}}
        for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            out.print(f"  point {pr.point.index}: {v} x {k}")
    if result.out_dir is not None:
        out.print(f"results in {result.out_dir}/ ({', '.join(p.name for p in result.files)})")
    return 0
