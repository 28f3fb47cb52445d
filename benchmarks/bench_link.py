"""End-to-end link benchmark: reports/s and latency through the three processes on loopback,
next to the in-process codec (UE encoder + wire + BS decoder) measured in the same run.

    .venv/bin/csilink bench                      # = .venv/bin/python benchmarks/bench_link.py
    .venv/bin/csilink bench --quick              # shorter runs, no docs written

What it does, in one process that drives the others:

1. **In-process codec**: the digital (CsiNet-class, 128 bits) and analog (JSCC, 32 symbols)
   bundles, and the lighter digital ``--lite`` bundle (the original CsiNet's size) when shipped,
   run UE half + wire step + BS decoder (frozen graph, as the BS runs it) in this process,
   batches of ``--batch``.
1b. **Transport floor**: a do-nothing gRPC echo server, one call at a time (unary and on one
   bidi stream): what one hop costs on this machine before any csilink code runs.
2. **The split link**: the docker-compose.yml services started natively (``csilink.launcher``,
   the same commands as the containers) on free 127.0.0.1 ports; the bundles loaded over gRPC.
   * ``batched``: unary SendReports of ``--batch`` reports, ``--inflight`` calls in flight;
   * ``stream``: the same batches over one SendReportStream;
   * ``one-by-one``: single-report calls sent open loop at ``--rate-hz`` (each call is issued
     at its scheduled time whatever the previous ones do; latency counts from the schedule,
     so queueing shows instead of being hidden).
   The default link is ``ideal`` (the emulator passes payloads through) for the transport
   figures; one AWGN row per path shows what the emulator's own work adds. The lite bundle gets
   the throughput rows only, plus one at twice the batch with one more call in flight.
3. CPU seconds of every process (UE, emulator, BS and this driver) per report, from
   /proc: the machine's other load slows the wall clock down but not these, so
   ``capacity_2cores = 2 / cpu_s_per_report`` is the throughput two idle cores would sustain.

Writes docs/bench/link.json and the "Link" section of docs/performance.md (unless --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DIGITAL_ID, ANALOG_ID, LITE_ID = "csinet-b128", "csinet-jscc-k32", "csinet-lite-b128"
SAMPLE = ROOT / "data" / "sample" / "cdl-c-fdd-sample.h5"
TARGETS = {"digital_reports_per_s": 2000.0, "split_overhead_max": 2.0, "p99_ms_at_200hz": 10.0}
_ARCH_KEYS = {"latent", "bits", "quantizer", "width", "blocks", "symbols", "prefixes", "snr_min", "snr_max"}
_SECTION = ("<!-- bench_link:start -->", "<!-- bench_link:end -->")


def build_parser(prog: str = "bench_link.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--digital", default=DIGITAL_ID, help="digital bundle (path or model id)")
    p.add_argument("--analog", default=ANALOG_ID, help="analog bundle (path or model id)")
    p.add_argument("--lite", default=LITE_ID,
                   help="a lighter digital bundle for the throughput rows ('' = none; skipped when absent)")
    p.add_argument("--dataset", type=Path, default=SAMPLE, help="dataset the UE reads")
    p.add_argument("--reports", type=int, default=10000, help="reports per throughput run")
    p.add_argument("--batch", type=int, default=256, help="reports per call (batched, stream)")
    p.add_argument("--inflight", type=int, default=2, help="unary calls in flight (batched)")
    p.add_argument("--rate-hz", type=float, default=200.0, help="one-by-one send rate (the target's)")
    p.add_argument("--extra-rates-hz", default="100",
                   help="further one-by-one rates, comma-separated (latency vs load); '' = none")
    p.add_argument("--paced-reports", type=int, default=2000, help="reports of the one-by-one run")
    p.add_argument("--quick", action="store_true", help="short runs; write nothing under docs/")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "link.json")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite the docs section from an existing --out JSON; measure nothing")
    return p


# --------------------------------------------------------------------------- helpers


def _cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one when ``pid`` is None), threads included."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (the launcher runs each node as ``python -m csilink.cli``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def settle_heap() -> None:
    """The nodes' own :func:`csilink.server_common.settle_heap`, for this driver."""
    from csilink.server_common import settle_heap as settle

    settle()


class CpuMeter:
    """CPU seconds of a set of processes (and this one) between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {k: _tree_pids(v) for k, v in pids.items()}

    def _read(self) -> dict[str, float]:
        out = {"driver": _cpu_s()}
        for k, ps in self.pids.items():
            total = 0.0
            for p in ps:
                with contextlib.suppress(OSError):
                    total += _cpu_s(p)
            out[k] = total
        return out

    def start(self) -> None:
        self._t0 = self._read()

    def stop(self) -> dict[str, float]:
        t1 = self._read()
        return {k: t1[k] - self._t0[k] for k in t1}


def _pct(v: list[float] | np.ndarray, q: float) -> float:
    a = np.asarray(v, dtype=float)
    return float(np.percentile(a, q)) if a.size else math.nan


def _resolve(ref: str, family: str, config: str, workdir: Path) -> tuple[Path, bool]:
    """A bundle path; when the shipped bundle is absent, an untrained export of the shipped
    architecture (same layers, same cost per report) built here. Returns (path, trained)."""
    from shared.bundle import resolve
    from shared.errors import NotFound

    try:
        path = resolve(ref, (ROOT / "bundles",))
        return path, "untrained" not in path.name
    except NotFound:
        if Path(ref).exists() or ref not in (DIGITAL_ID, ANALOG_ID):
            raise
    import yaml

    from training.testing import tiny_bundle

    model = yaml.safe_load((ROOT / "training" / "configs" / config).read_text())["model"]
    # The layers that set the cost per report (input companding options are elementwise).
    model = {k: v for k, v in model.items() if k in _ARCH_KEYS}
    print(f"bench: {ref} is not shipped under bundles/; exporting an untrained {family} of the same "
          f"architecture ({model})", file=sys.stderr)
    b = tiny_bundle(workdir, family, seconds=1.0, model=model, model_id=f"{ref}-untrained")
    return b.path, False


# --------------------------------------------------------------------------- in-process codec


def inprocess(bundle_path: Path, rate: str, x: np.ndarray, batch: int,
              seconds: float = 4.0) -> dict[str, Any]:
    """UE encoder + wire + BS decoder in this process: reports/s and CPU s per report."""
    import torch

    from models.common.bs_torch import freeze_decoder
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle
    from shared.ue_encoder import UeEncoder, rate_codec

    # One thread each, like the UE node's encoder: the figure is the codec's cost, not how well
    # torch's thread pool copes with a busy machine.
    torch.set_num_threads(1)
    b = Bundle.load(bundle_path)
    m = b.manifest
    enc = UeEncoder.from_bundle(b, threads=1)
    codec = rate_codec(b, rate)
    dec = load_bs_decoder(b, "cpu")
    frozen = freeze_decoder(dec)  # what the BS does by default (decoder_graph: frozen)
    analog = m.rate(rate).symbols is not None
    xb = np.resize(x, (batch, *x.shape[1:]))

    def one() -> None:
        payloads = enc.encode(xb, rate)
        z = np.stack([codec.decode(p, m.latent_size) for p in payloads]).astype(np.float32)
        dec.decode_batch(z, {}, np.full(batch, 20.0, np.float32) if analog else None)

    one()  # warm-up
    n, t0, c0 = 0, time.perf_counter(), _cpu_s()
    while time.perf_counter() - t0 < seconds:
        one()
        n += batch
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return {"reports_per_s": n / wall, "cpu_s_per_report": cpu / n, "capacity_2cores": 2 * n / cpu,
            "reports": n, "batch": batch, "decoder_graph": "frozen" if frozen else "eager"}


# --------------------------------------------------------------------------- transport floor

_ECHO_SERVER = """
import sys, grpc
from concurrent import futures
reply = b"r" * int(sys.argv[2])
def stream(it, c):
    for _ in it:
        yield reply
s = grpc.server(futures.ThreadPoolExecutor(8))
h = grpc.method_handlers_generic_handler("floor.Echo", {
    "Unary": grpc.unary_unary_rpc_method_handler(lambda r, c: reply),
    "Stream": grpc.stream_stream_rpc_method_handler(stream)})
s.add_generic_rpc_handlers((h,))
port = s.add_insecure_port("127.0.0.1:0")
s.start()
print(port, flush=True)
s.wait_for_termination()
"""


def grpc_floor(calls: int = 2000, gap_s: float = 0.002, request_bytes: int = 300,
               reply_bytes: int = 8500) -> dict[str, Any]:
    """What one gRPC hop costs on this machine with no work in it: a sync Python server that
    answers a fixed reply (the size of one report's result) to one request at a time, called
    unary and as ping-pong on one bidi stream. CPU per call of server and client, p50/p99."""
    import queue
    import subprocess

    import grpc

    proc = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER, "x", str(reply_bytes)],
                            stdout=subprocess.PIPE, text=True)
    out: dict[str, Any] = {"calls": calls, "gap_ms": gap_s * 1e3, "request_bytes": request_bytes,
                           "reply_bytes": reply_bytes}
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        chan = grpc.insecure_channel(f"127.0.0.1:{port}")
        unary = chan.unary_unary("/floor.Echo/Unary")
        req = b"q" * request_bytes
        q: queue.Queue[bytes | None] = queue.Queue()

        def gen() -> Any:
            while (m := q.get()) is not None:
                yield m

        responses = chan.stream_stream("/floor.Echo/Stream")(gen())

        def pingpong() -> None:
            q.put(req)
            next(responses)

        for name, call in (("unary", lambda: unary(req)), ("stream", pingpong)):
            for _ in range(100):
                call()
            lat = []
            s0, c0 = _cpu_s(proc.pid), _cpu_s()
            for _ in range(calls):
                t = time.perf_counter()
                call()
                lat.append((time.perf_counter() - t) * 1e3)
                time.sleep(gap_s)
            out[name] = {"p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
                         "server_cpu_ms": 1e3 * (_cpu_s(proc.pid) - s0) / calls,
                         "client_cpu_ms": 1e3 * (_cpu_s() - c0) / calls}
        q.put(None)
        chan.close()
    finally:
        proc.kill()
        proc.wait()
    return out


# --------------------------------------------------------------------------- the split link


@dataclass
class Ctx:
    client: Any
    stub: Any
    keys: list[tuple[str, str, int]]
    meter: CpuMeter
    seq: int = 0

    def seqs(self, n: int) -> list[int]:
        s = list(range(self.seq, self.seq + n))
        self.seq += n
        return s

    def batch_keys(self, n: int) -> list[tuple[str, str, int]]:
        i = self.seq % len(self.keys)
        return [self.keys[(i + j) % len(self.keys)] for j in range(n)]


def _row(case: str, path: str, mode: str, n: int, wall: float, cpu: dict[str, float], lat_ms: list[float],
         ok: int, **extra: Any) -> dict[str, Any]:
    total_cpu = sum(cpu.values())
    return {"case": case, "path": path, "mode": mode, "reports": n, "ok": ok, "wall_s": wall,
            "reports_per_s": n / wall, "latency_p50_ms": _pct(lat_ms, 50),
            "latency_p99_ms": _pct(lat_ms, 99), "cpu_s_per_report": total_cpu / n,
            "cpu_ms_per_report_by_process": {k: 1e3 * v / n for k, v in cpu.items()},
            "capacity_2cores": 2 * n / total_cpu if total_cpu > 0 else math.nan, **extra}


Timed = tuple[float, dict[str, float], list[float], int]


def run_batched(ctx: Ctx, model: str, rate: str, n: int, batch: int, inflight: int) -> Timed:
    """``inflight`` threads, each sending unary batches until ``n`` reports are done."""
    lock = threading.Lock()
    left = [n]
    lat: list[float] = []
    ok = [0]

    def worker(ue: int) -> None:
        while True:
            with lock:
                k = min(batch, left[0])
                left[0] -= k
                if k <= 0:
                    return
                keys, seqs = ctx.batch_keys(k), ctx.seqs(k)
            t = time.perf_counter()
            out = ctx.client.send(keys, model_id=model, rate=rate, ue_id=ue, seqs=seqs)
            dt = (time.perf_counter() - t) * 1e3
            with lock:
                lat.append(dt)
                ok[0] += sum(o.ok for o in out)

    settle_heap()  # the driver holds torch too: no full collection mid-run
    ctx.meter.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(u,)) for u in range(inflight)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return wall, ctx.meter.stop(), lat, ok[0]


def run_stream(ctx: Ctx, model: str, rate: str, n: int, batch: int, window: int) -> Timed:
    """Batches over one SendReportStream with at most ``window`` messages unanswered (flow
    control: without it the request iterator is drained at once and "latency" is queueing)."""
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    batches = [{"keys": ctx.batch_keys(k), "seqs": ctx.seqs(k), "model_id": model, "rate": rate, "ue_id": 0}
               for k in sizes]
    sent_at: list[float] = []
    slots = threading.Semaphore(window)

    def gen() -> Any:
        for b in batches:
            slots.acquire()
            sent_at.append(time.perf_counter())
            yield b

    lat, ok = [], 0
    settle_heap()  # the driver holds torch too: no full collection mid-run
    ctx.meter.start()
    t0 = time.perf_counter()
    for i, outs in enumerate(ctx.client.send_stream(gen())):
        lat.append((time.perf_counter() - sent_at[i]) * 1e3)
        ok += sum(o.ok for o in outs)
        slots.release()
    wall = time.perf_counter() - t0
    return wall, ctx.meter.stop(), lat, ok


def run_paced(ctx: Ctx, model: str, rate: str, n: int, hz: float) -> tuple[float, dict, list, int, float]:
    """Open loop: report i is issued at t0 + i/hz (async future), latency from that instant."""
    from csilink.rpc import key_to_pb, pb, ue_pb

    reqs = []
    for _ in range(n):
        (key,), (seq,) = ctx.batch_keys(1), ctx.seqs(1)
        item = ue_pb.ReportRequest(world_key=key_to_pb(key), ue_id=9, seq=seq)
        reqs.append(ue_pb.SendReportsRequest(model_id=model, rate=rate, timeout_ms=10_000, items=[item]))
    lat = [math.nan] * n
    ok = [0]
    late = [0.0]
    done = threading.Event()
    remaining = [n]
    lock = threading.Lock()

    def finish(i: int, sched: float, fut: Any) -> None:
        t = time.perf_counter()
        try:
            r = fut.result()
            good = r.results[0].status.code == pb.ReportStatus.OK
        except Exception:  # noqa: BLE001 - counted as not ok; latency still recorded
            good = False
        with lock:
            lat[i] = (t - sched) * 1e3
            ok[0] += good
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    settle_heap()  # the driver holds torch too: no full collection mid-run
    ctx.meter.start()
    t0 = time.perf_counter() + 0.05
    for i, req in enumerate(reqs):
        sched = t0 + i / hz
        if (d := sched - time.perf_counter()) > 0:
            time.sleep(d)  # no busy-wait: the driver shares the 2 cores with the three nodes
        late[0] = max(late[0], time.perf_counter() - sched)
        fut = ctx.stub.SendReports.future(req, timeout=10.0)
        fut.add_done_callback(lambda f, i=i, s=sched: finish(i, s, f))
    done.wait(60)
    wall = time.perf_counter() - t0
    return wall, ctx.meter.stop(), lat, ok[0], late[0] * 1e3


def bench_split(args: argparse.Namespace, paths: dict[str, Path], rates: dict[str, str],
                dataset: Path) -> list[dict[str, Any]]:
    """Rows per path label (``digital``, ``analog``, optionally ``digital-lite``: throughput rows
    only, since its one-by-one cost is the transport's, measured with ``digital``)."""
    import grpc

    from csilink.client import LinkClient
    from csilink.rpc import ue_grpc
    from csilink.runner import started_services
    from csilink.server_common import client_options
    from shared.bundle import Bundle
    from shared.dataset import open_dataset
    from shared.errors import CsilinkError

    with open_dataset(dataset) as ds:
        sp = ds.split("test")
        keys = [(ds.dataset_id, "test", int(s)) for s in sp.sample_ids]
    rows: list[dict[str, Any]] = []
    with started_services(dataset) as svc, LinkClient(**_addr_kwargs(svc.addrs), timeout_s=60) as client:
        client.wait_ready(60)
        chan = grpc.insecure_channel(svc.addrs["ue"], options=client_options())
        ctx = Ctx(client, ue_grpc.UeServiceStub(chan), keys, CpuMeter(svc.pids))
        ideal = {"ideal": True}
        awgn = {"ideal": False, "mode": "awgn", "snr_db": 10.0, "n_rx": 32, "modulation": "qpsk",
                "crc": "crc11"}
        for label, path in paths.items():
            mid = Bundle.load(path, verify=False).model_id
            rate = rates[label]
            try:
                client.load_model(str(path.resolve()))
            except CsilinkError as exc:  # one path failing must not lose the other's figures
                print(f"bench: {label}: cannot load {mid}: {exc}", file=sys.stderr)
                rows.append({"case": f"{label}: not measured", "path": label, "error": str(exc)})
                continue
            # warm-up: first calls pay connection set-up, ORT/torch first-run costs
            client.configure_channel(ideal, reset_links=True)
            run_batched(ctx, mid, rate, min(2048, args.reports), args.batch, args.inflight)
            wall, cpu, lat, ok = run_batched(ctx, mid, rate, args.reports, args.batch, args.inflight)
            rows.append(_row(f"{label} batched ({args.batch}/call, {args.inflight} in flight), ideal link",
                             label, "batched", args.reports, wall, cpu, lat, ok, link="ideal"))
            print(_brief(rows[-1]), file=sys.stderr)
            wall, cpu, lat, ok = run_stream(ctx, mid, rate, args.reports, args.batch, args.inflight)
            rows.append(_row(f"{label} stream ({args.batch}/message, {args.inflight} unanswered), ideal link",
                             label, "stream",
                             args.reports, wall, cpu, lat, ok, link="ideal"))
            print(_brief(rows[-1]), file=sys.stderr)
            if label == "digital-lite":
                # where the codec is light, per-call costs weigh: larger batches, one more in flight
                big, more = 2 * args.batch, args.inflight + 1
                wall, cpu, lat, ok = run_batched(ctx, mid, rate, args.reports, big, more)
                rows.append(_row(f"{label} batched ({big}/call, {more} in flight), ideal link",
                                 label, "batched", args.reports, wall, cpu, lat, ok, link="ideal"))
                print(_brief(rows[-1]), file=sys.stderr)
                continue
            extra = [float(h) for h in str(args.extra_rates_hz).split(",") if h.strip()]
            for hz in sorted({*extra, args.rate_hz}):
                n = max(200, round(args.paced_reports * hz / args.rate_hz))  # same duration
                wall, cpu, lat, ok, late = run_paced(ctx, mid, rate, n, hz)
                rows.append(_row(f"{label} one by one at {hz:g}/s (open loop), ideal link", label,
                                 "one-by-one", n, wall, cpu, lat, ok, link="ideal",
                                 offered_per_s=hz, max_send_lag_ms=late))
                print(_brief(rows[-1]), file=sys.stderr)
            client.configure_channel(awgn if label == "digital" else {**awgn, "n_rx": 4}, reset_links=True)
            wall, cpu, lat, ok = run_batched(ctx, mid, rate, args.reports, args.batch, args.inflight)
            link = "AWGN 10 dB, 32 rx MRC, QPSK, CRC-11" if label == "digital" else "AWGN 10 dB, 4 rx MRC"
            rows.append(_row(f"{label} batched ({args.batch}/call, {args.inflight} in flight), {link}",
                             label, "batched", args.reports, wall, cpu, lat, ok, link=link))
            print(_brief(rows[-1]), file=sys.stderr)
        chan.close()
    return rows


def _addr_kwargs(addrs: dict[str, str]) -> dict[str, str]:
    return {"ue_addr": addrs["ue"], "channel_addr": addrs["channel"], "bs_addr": addrs["bs"]}


def _brief(r: dict[str, Any]) -> str:
    return (f"  {r['case']}: {r['reports_per_s']:,.0f} reports/s (capacity on 2 idle cores "
            f"{r['capacity_2cores']:,.0f}), p50 {r['latency_p50_ms']:.2f} ms, "
            f"p99 {r['latency_p99_ms']:.2f} ms, ok {r['ok']}/{r['reports']}, CPU ms/report "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["cpu_ms_per_report_by_process"].items()))


# --------------------------------------------------------------------------- report


def verdicts(inproc: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    def best(path: str, key: str) -> float:
        return max((r[key] for r in rows if r["path"] == path and r.get("link") == "ideal"
                    and r.get("mode") != "one-by-one"),
                   default=math.nan)

    out: dict[str, Any] = {}
    for path in inproc:
        # the target's rate (200/s) when it was run, else the highest rate run
        paced = max((r for r in rows if r["path"] == path and r.get("mode") == "one-by-one"),
                    key=lambda r: (r.get("offered_per_s", 200.0) == 200.0, r.get("offered_per_s", 0.0)),
                    default=None)
        if not any(r["path"] == path and "error" not in r for r in rows):
            out[path] = {"error": next((r.get("error") for r in rows if r["path"] == path), "not measured")}
            continue
        p99 = paced["latency_p99_ms"] if paced is not None else math.nan
        wall, cap = best(path, "reports_per_s"), best(path, "capacity_2cores")
        ip = inproc[path]
        out[path] = {
            "split_reports_per_s": wall, "split_capacity_2cores": cap,
            "inprocess_reports_per_s": ip["reports_per_s"],
            "inprocess_capacity_2cores": ip["capacity_2cores"],
            "overhead_wall": ip["reports_per_s"] / wall, "overhead_cpu": ip["capacity_2cores"] / cap,
            "p99_ms_one_by_one": p99,
            # Judged on CPU per report: the in-process and split runs are minutes apart, and on a
            # shared machine their wall-clock rates compare the load of two moments, not the code.
            "meets_overhead": ip["capacity_2cores"] / cap <= TARGETS["split_overhead_max"],
            "meets_p99": p99 <= TARGETS["p99_ms_at_200hz"],
        }
    for key in ("digital", "digital-lite"):
        d = out.get(key, {"error": "not run"})
        if "error" not in d:
            d["meets_2000_wall"] = d["split_reports_per_s"] >= TARGETS["digital_reports_per_s"]
            d["meets_2000_capacity"] = d["split_capacity_2cores"] >= TARGETS["digital_reports_per_s"]
    return out


def markdown(doc: dict[str, Any], cmd: str) -> str:
    v, ip = verdicts(doc["inprocess"], doc["link"]), doc["inprocess"]
    doc["verdicts"] = v
    bd, ba = doc["bundles"]["digital"], doc["bundles"]["analog"]
    starved = any(r.get("mode") == "one-by-one" and r["ok"] < r["reports"] for r in doc["link"])
    m = doc["machine"]
    lines = [
        _SECTION[0],
        "## Link, end to end (UE -> channel emulator -> BS over gRPC on loopback)",
        "",
        f"Measured {m['created'][:10]} on {m['cpus']} CPUs"
        + (f" ({m['cpu_model']})" if m.get("cpu_model") else "")
        + f", load average {m['loadavg'][0]:.1f} at the start"
        + (f", {m['loadavg_end'][0]:.1f} at the end" if "loadavg_end" in m else "")
        + ("; other jobs (trainings) took most of both cores during the split-link runs, so their "
           "wall-clock rates and latencies say more about that load than about the link" if starved else "")
        + ". *Capacity* = 2 / (CPU seconds of UE + emulator + BS + driver per report): what two idle "
        "cores would sustain, stable under load. "
        f"Bundles: digital `{bd['model_id']}` ({bd['payload']}), "
        f"analog `{ba['model_id']}` ({ba['payload']})"
        + (f"; lighter digital `{doc['bundles']['digital-lite']['model_id']}` "
           f"({doc['bundles']['digital-lite']['payload']}, the original CsiNet's size), throughput rows only"
           if "digital-lite" in doc["bundles"] else "")
        + ("" if all(b["trained"] for b in doc["bundles"].values())
           else " (untrained exports of the shipped architectures: same cost per report)") + ".",
        "",
        "| case | ok / sent | reports/s | capacity, 2 idle cores | p50 ms | p99 ms "
        "| CPU ms/report (UE / emulator / BS / driver) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for path in ip:
        lines.append(f"| {path}: in-process codec (UE encoder + wire + BS decoder, "
                     f"batch {ip[path]['batch']}) | {ip[path]['reports']} / {ip[path]['reports']} "
                     f"| {ip[path]['reports_per_s']:,.0f} | {ip[path]['capacity_2cores']:,.0f} | | "
                     f"| {1e3 * ip[path]['cpu_s_per_report']:.3f} (one process) |")
    for r in doc["link"]:
        if "error" in r:
            lines.append(f"| {r['case']}: {r['error'][:120]} | | | | | | |")
            continue
        c = r["cpu_ms_per_report_by_process"]
        cap = f"{r['capacity_2cores']:,.0f}" if r["ok"] == r["reports"] else "-"
        lines.append(
            f"| {r['case']} | {r['ok']} / {r['reports']} | {r['reports_per_s']:,.0f} | {cap} "
            f"| {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | {c.get('ue', 0):.3f} / "
            f"{c.get('channel', 0):.3f} / {c.get('bs', 0):.3f} / {c.get('driver', 0):.3f} |")
    d, a = v["digital"], v["analog"]
    yes = {True: "met", False: "**missed**"}
    nan = {"split_reports_per_s": math.nan, "split_capacity_2cores": math.nan, "overhead_wall": math.nan,
           "overhead_cpu": math.nan, "p99_ms_one_by_one": math.nan, "meets_overhead": False,
           "meets_p99": False, "meets_2000_wall": False, "meets_2000_capacity": False}
    d, a = {**nan, **d}, {**nan, **a}
    lite = ""
    if "error" not in v.get("digital-lite", {"error": ""}):
        dl, bl = v["digital-lite"], doc["bundles"]["digital-lite"]
        bd_nmse, bl_nmse = bd.get("best_val_nmse_db"), bl.get("best_val_nmse_db")
        lite = (f" With the lighter `{bl['model_id']}`: {dl['split_reports_per_s']:,.0f} wall-clock "
                f"({yes[dl['meets_2000_wall']]}), {dl['split_capacity_2cores']:,.0f} capacity "
                f"({yes[dl['meets_2000_capacity']]})"
                + (f", at a validation NMSE of {bl_nmse:.2f} dB against {bd_nmse:.2f} dB"
                   if bd_nmse is not None and bl_nmse is not None else "") + ".")
    lines += [
        "",
        "Targets:",
        f"* digital >= 2,000 reports/s end to end on 2 cores: `{bd['model_id']}` "
        f"{d['split_reports_per_s']:,.0f} wall-clock "
        f"({yes[d['meets_2000_wall']]}), {d['split_capacity_2cores']:,.0f} capacity "
        f"({yes[d['meets_2000_capacity']]})." + lite,
        f"* split overhead <= 2x the in-process codec: digital {d['overhead_wall']:.2f}x wall / "
        f"{d['overhead_cpu']:.2f}x CPU ({yes[d['meets_overhead']]}); analog {a['overhead_wall']:.2f}x / "
        f"{a['overhead_cpu']:.2f}x ({yes[a['meets_overhead']]}); judged on CPU per report.",
        f"* p99 <= 10 ms at 200 reports/s sent one by one: digital {d['p99_ms_one_by_one']:.2f} ms "
        f"({yes[d['meets_p99']]}), analog {a['p99_ms_one_by_one']:.2f} ms ({yes[a['meets_p99']]})"
        + (" (the run was CPU-starved by other jobs: calls that timed out after 10 s count in ok / sent; "
           "judge latency on an idle machine)." if starved else "."),
    ]
    if "grpc_floor" in doc:
        f = doc["grpc_floor"]
        u, st = f["unary"], f["stream"]
        hop = u["server_cpu_ms"] + u["client_cpu_ms"]
        lines += [
            "",
            f"Transport floor, same run: a sync Python gRPC server that only answers "
            f"({f['request_bytes']} B in, {f['reply_bytes']} B out, the size of one report's result), "
            f"one call at a time: unary p50 {u['p50_ms']:.2f} ms / p99 {u['p99_ms']:.2f} ms, "
            f"{u['server_cpu_ms']:.2f} ms of server CPU + {u['client_cpu_ms']:.2f} ms of client CPU per "
            f"call; ping-pong on one bidi stream p50 {st['p50_ms']:.2f} ms, {st['server_cpu_ms']:.2f} + "
            f"{st['client_cpu_ms']:.2f} ms. A report sent one by one crosses three such hops "
            f"(driver -> UE -> emulator -> BS), so about {3 * hop:.1f} ms of CPU per report and "
            f"{3 * u['p50_ms']:.1f} ms of latency are transport before any codec work.",
        ]
    lines += [
        "",
        f"Reproduce: `{cmd}` (writes docs/bench/link.json and this section).",
        _SECTION[1],
    ]
    return "\n".join(lines)


def write_doc(path: Path, section: str) -> None:
    head = "# Performance\n\nMeasured figures; each section names the benchmark that writes it.\n"
    text = path.read_text() if path.exists() else head
    pat = re.compile(re.escape(_SECTION[0]) + ".*?" + re.escape(_SECTION[1]), re.S)
    text = pat.sub(lambda _m: section, text) if pat.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None, prog: str = "bench_link.py") -> int:
    args = build_parser(prog).parse_args(argv)
    return run(args)


def _sigterm_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so the services this process started are stopped."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    _sigterm_as_interrupt()
    if args.render_only:
        doc = json.loads(args.out.read_text())
        write_doc(args.doc, markdown(doc, ".venv/bin/csilink bench"))
        args.out.write_text(json.dumps(doc, indent=1) + "\n")  # verdicts re-derived from the rows
        print(f"wrote {args.doc} from {args.out}", file=sys.stderr)
        return 0
    from shared.bundle import Bundle
    from shared.dataset import open_dataset
    from shared.provenance import provenance

    if args.quick:
        args.reports, args.paced_reports = min(args.reports, 3000), min(args.paced_reports, 400)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-link-") as tmp:
        digital, d_trained = _resolve(args.digital, "csinet", "csinet-b128.yaml", Path(tmp) / "d")
        analog, a_trained = _resolve(args.analog, "csinet-jscc", "csinet-jscc-k32.yaml", Path(tmp) / "a")
        paths = {"digital": (digital, d_trained), "analog": (analog, a_trained)}
        if args.lite:
            try:
                from shared.bundle import resolve

                paths["digital-lite"] = (resolve(args.lite, (ROOT / "bundles",)), True)
            except Exception as exc:  # noqa: BLE001 - optional rows: say why and go on
                print(f"bench: no lite digital bundle ({exc}); its rows are skipped", file=sys.stderr)
        bundles = {}
        rates = {}
        for key, (path, trained) in paths.items():
            m = Bundle.load(path).manifest
            r = max(m.rates, key=lambda r: r.bits or r.symbols or 0)  # the full rate: 128 bits, 32 symbols
            rates[key] = r.name
            bundles[key] = {"model_id": m.model_id, "version": m.version, "family": m.family,
                            "rate": r.name, "trained": trained,
                            "payload": f"{r.bits} bits" if r.bits else f"{r.symbols} symbols",
                            "best_val_nmse_db": (m.training or {}).get("best_val_nmse_db")}
        with open_dataset(args.dataset) as ds:
            x = ds.truth_view().split("test").read("x_ad", slice(0, args.batch))
        print("bench: in-process codec", file=sys.stderr)
        inproc = {k: inprocess(p, rates[k], x, args.batch, seconds=2.0 if args.quick else 5.0)
                  for k, (p, _) in paths.items()}
        for k, v in inproc.items():
            print(f"  {k}: {v['reports_per_s']:,.0f} reports/s (capacity {v['capacity_2cores']:,.0f}, "
                  f"CPU ms/report {1e3 * v['cpu_s_per_report']:.3f})", file=sys.stderr)
        print("bench: gRPC transport floor (echo server, one call at a time)", file=sys.stderr)
        floor = grpc_floor(calls=500 if args.quick else 2000)
        brief = {k: v for k, v in floor.items() if k in ("unary", "stream")}
        print("  " + json.dumps(brief), file=sys.stderr)
        print("bench: split link (3 processes, loopback)", file=sys.stderr)
        rows = bench_split(args, {k: p for k, (p, _) in paths.items()}, rates, args.dataset)
    doc = {
        "schema": "csilink-bench-link/1",
        "machine": {**provenance(), "loadavg": list(load), "loadavg_end": list(os.getloadavg())},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "bundles": bundles,
        "targets": TARGETS,
        "inprocess": inproc,
        "grpc_floor": floor,
        "link": rows,
        "verdicts": verdicts(inproc, rows),
    }
    print(json.dumps(doc["verdicts"], indent=1))
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        write_doc(args.doc, markdown(doc, ".venv/bin/csilink bench"))
        print(f"wrote {args.out} and {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
