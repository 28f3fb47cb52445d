"""``csilink.v1.ChannelEmulator``: per-UE links, the air interface, forwarding to the BS.

For each report of a ``Transmit`` batch: validate the payload, run it through the UE's
``channel_emulator.link.Link`` (digital: CRC + modulation + fading/noise + CRC check; analog:
fading/noise + MRC, effective SNR), record the channel metadata; reports dropped on the air
(CRC failure, random loss) are answered here with status DATA_LOSS and the reason: never lost
silently. The survivors go to the BS in ONE ``Decode`` call after the simulated delay, and
the merged results return in request order.

Idempotent by ``(ue_id, seq)``: a retried report (same payload, same link configuration) gets
the same channel outcome from a small LRU and is not counted again.

Image link (``SoundMimo``, ``TransmitMimo``): the downlink MIMO channel of
``channel_emulator.mimo``, keyed by the UE's link ``seed``; TransmitMimo forwards the received
symbols to the UE's ``ReceiveImage`` and returns its result with the emulator's timings.
Deterministic by construction (keyed draws), so a retry needs no cache.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import sys
import threading
import time
from typing import Any

import grpc

from channel_emulator.config import LinkConfig
from channel_emulator.server import ChannelSettings
from csilink.rpc import (
    bs_grpc,
    bs_pb,
    ch_grpc,
    ch_pb,
    complex_in,
    complex_to_pb,
    copy_report_header,
    payload_of,
    pb,
    set_payload,
    status_of,
    ue_grpc,
    ue_pb,
)
from csilink.server_common import (
    MethodStats,
    ResultCache,
    call_with_retry,
    client_options,
    status_for,
    time_left,
)
from shared import image_link as il
from shared.errors import CsilinkError, InvalidInput, TooLarge
from shared.wire import Bits

log = logging.getLogger("csilink.channel")


class _UeLink:
    """One UE's link: its config, the ``Link`` that applies it, a generation number (bumped
    on every reconfiguration so cached outcomes of the old config are not reused) and counters."""

    def __init__(self, cfg: LinkConfig, generation: int) -> None:
        from channel_emulator.link import Link

        self.cfg = cfg
        self.link = Link(cfg)
        self.generation = generation
        self.lock = threading.Lock()
        self.counters: collections.Counter[str] = collections.Counter()


class ChannelServicer(ch_grpc.ChannelEmulatorServicer):
    def __init__(self, settings: ChannelSettings, method_stats: MethodStats | None = None) -> None:
        self.settings = settings
        self.method_stats = method_stats or MethodStats()
        self._lock = threading.Lock()
        self._generation = 0
        self._default_cfg = LinkConfig.from_mapping(settings.link)
        self._own_cfg: dict[int, LinkConfig] = {
            int(k): LinkConfig.from_mapping({**settings.link, **v}) for k, v in settings.links.items()
        }
        self._links: dict[int, _UeLink] = {}
        self._cache = ResultCache(settings.cache_size)
        self._bs_channel = grpc.insecure_channel(
            settings.bs_addr, options=client_options(settings.max_message_mb << 20)
        )
        self._bs = bs_grpc.BsServiceStub(self._bs_channel)
        self._ue_channel = grpc.insecure_channel(
            settings.ue_addr, options=client_options(settings.max_message_mb << 20)
        )
        self._ue = ue_grpc.UeServiceStub(self._ue_channel)
        from channel_emulator.mimo import MimoChannel, MimoPool

        pool = MimoPool(settings.mimo_pool, settings.mimo_split) if settings.mimo_pool else None
        self._mimo = MimoChannel(pool)
        self._t0 = time.monotonic_ns()
        self._counters: collections.Counter[str] = collections.Counter()

    def close(self) -> None:
        self._bs_channel.close()
        self._ue_channel.close()

    # ------------------------------------------------------------------ configuration

    def _link(self, ue_id: int) -> _UeLink:
        with self._lock:
            ul = self._links.get(ue_id)
            if ul is None:
                self._generation += 1
                ul = _UeLink(self._own_cfg.get(ue_id, self._default_cfg), self._generation)
                self._links[ue_id] = ul
            return ul

    def _effective(self) -> dict[str, Any]:
        with self._lock:
            return {
                "default": self._default_cfg.model_dump(mode="json"),
                "links": {str(k): v.model_dump(mode="json") for k, v in sorted(self._own_cfg.items())},
                "bs_addr": self.settings.bs_addr,
                "ue_addr": self.settings.ue_addr,
                "mimo_pool": self.settings.mimo_pool,
                "mimo_split": self.settings.mimo_split,
            }

    def Configure(self, request: Any, context: grpc.ServicerContext) -> Any:
        text = request.config_json.strip()
        try:
            patch = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"config_json is not valid JSON: {exc}") from None
        if not isinstance(patch, dict):
            raise InvalidInput(f"config_json must be a JSON object, got {type(patch).__name__}")
        with self._lock:
            if request.reset_links:
                self._own_cfg.clear()
            if request.ue_ids:
                # Validate every UE's new config before changing any.
                new = {
                    int(u): self._own_cfg.get(int(u), self._default_cfg).updated(**patch)
                    for u in request.ue_ids
                }
                self._own_cfg.update(new)
                touched = set(new)
            else:
                self._default_cfg = self._default_cfg.updated(**patch)
                touched = {u for u in self._links if u not in self._own_cfg}
            if request.reset_links:
                touched = set(self._links)
            for u in touched:
                self._links.pop(u, None)  # rebuilt on next use with a new generation
        if patch or request.reset_links:
            log.info("link config %s for %s", patch, list(request.ue_ids) or "default")
        return pb.ConfigureResponse(effective_json=json.dumps(self._effective()))

    # ------------------------------------------------------------------ stats

    def _stats(self, reset: bool) -> Any:
        with self._lock:
            counters = dict(self._counters)
            per_ue = {}
            for u, ul in sorted(self._links.items()):
                per_ue[str(u)] = {
                    "counters": dict(ul.counters),
                    "link": _jsonable(ul.link.stats.snapshot()),
                    "config_generation": ul.generation,
                }
                if reset:
                    ul.counters.clear()
                    ul.link.stats.reset()
            if reset:
                self._counters.clear()
        counters["cache_hits"] = float(self._cache.hits)
        detail = {
            "per_ue": per_ue,
            "rpc": self.method_stats.snapshot(),
            "config": self._effective(),
            "torch_loaded": "torch" in sys.modules,
        }
        if reset:
            self.method_stats.reset()
        return pb.Stats(
            node="channel",
            counters=counters,
            detail_json=json.dumps(detail),
            uptime_ns=time.monotonic_ns() - self._t0,
        )

    def GetStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._stats(request.reset)

    def ResetStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._stats(True)

    # ------------------------------------------------------------------ the air

    def _apply(self, report: Any, ul: _UeLink) -> Any:
        """The report as it leaves the air (a new CsiReport with ``channel`` filled)."""
        cfg = ul.cfg
        payload = payload_of(report, max_bits=cfg.max_bits, max_symbols=cfg.max_symbols)
        out = pb.CsiReport()
        out.CopyFrom(report)
        meta = out.channel
        meta.applied = True
        meta.mode = "ideal" if cfg.ideal else cfg.mode
        ue, seq = int(report.ue_id), int(report.seq)
        # Link is thread-safe; its draws are keyed by (seed, ue_id, seq).
        if isinstance(payload, Bits):
            r = ul.link.process_digital(payload, ue, seq)
            out.crc_enabled = bool(cfg.crc) and not cfg.ideal
            meta.bit_errors = int(r.bit_errors)
            meta.payload_bit_errors = int(getattr(r, "payload_bit_errors", 0))
            meta.n_bits_on_air = int(r.n_bits_on_air)
            meta.n_symbols_on_air = int(getattr(r, "n_symbols", 0))
            meta.crc_ok = bool(getattr(r, "crc_ok", None))
            inc = {"reports_digital": 1, "bits_on_air": int(r.n_bits_on_air), "bit_errors": int(r.bit_errors)}
            if r.bits_hat is not None:
                set_payload(out, r.bits_hat)
        else:
            r = ul.link.process_analog(payload, ue, seq)
            out.crc_enabled = False
            meta.n_symbols_on_air = int(payload.size)
            inc = {"reports_analog": 1, "symbols_on_air": int(payload.size)}
            if r.symbols_hat is not None:
                set_payload(out, r.symbols_hat.reshape(payload.shape))
        meta.effective_snr_db = float(getattr(r, "effective_snr_db", math.nan))
        meta.delay_ms = float(getattr(r, "delay_ms", 0.0))
        meta.dropped = bool(r.dropped)
        meta.drop_reason = str(r.reason or "") if r.dropped else ""
        inc[f"dropped_{meta.drop_reason or 'other'}" if r.dropped else "delivered"] = 1
        with ul.lock:
            ul.counters.update(inc)
        return out

    def _fingerprint(self, report: Any, ul: _UeLink) -> bytes:
        which = report.WhichOneof("payload")
        body = getattr(report, which).SerializeToString(deterministic=True) if which else b""
        return ResultCache.fingerprint(
            str(ul.generation),
            report.model_id,
            report.model_version,
            report.rate,
            report.world_key.SerializeToString(deterministic=True),
            body,
            str(report.block) if report.HasField("block") else "",
        )

    def Transmit(self, request: Any, context: grpc.ServicerContext) -> Any:
        t_start = time.perf_counter_ns()
        received = time.time_ns()
        n = len(request.reports)
        if n > self.settings.max_batch_reports:
            raise TooLarge(
                f"Transmit of {n} reports exceeds the emulator's limit of "
                f"{self.settings.max_batch_reports} (settings.max_batch_reports)"
            )
        results: list[Any] = [None] * n
        fwd_idx: list[int] = []
        fwd: list[Any] = []
        max_delay_ms = 0.0
        retries = 0
        for i, rep in enumerate(request.reports):
            try:
                ul = self._link(int(rep.ue_id))
                fp = self._fingerprint(rep, ul)
                cached = self._cache.get((int(rep.ue_id), int(rep.seq)), fp)
                if cached is not None:
                    out = pb.CsiReport.FromString(cached)
                    retries += 1
                else:
                    out = self._apply(rep, ul)
                    self._cache.put((int(rep.ue_id), int(rep.seq)), fp, out.SerializeToString())
            except CsilinkError as exc:
                res = pb.ReportResult()
                copy_report_header(rep, res)
                res.status.CopyFrom(status_of(*status_for(exc), "channel"))
                res.timestamps.CopyFrom(rep.timestamps)
                results[i] = res
                continue
            out.timestamps.channel_received_ns = received
            max_delay_ms = max(max_delay_ms, out.channel.delay_ms)
            if out.channel.dropped:
                res = pb.ReportResult()
                copy_report_header(rep, res)
                res.channel.CopyFrom(out.channel)
                res.timestamps.CopyFrom(out.timestamps)
                res.status.CopyFrom(
                    status_of(
                        grpc.StatusCode.DATA_LOSS, f"dropped on the air: {out.channel.drop_reason}", "channel"
                    )
                )
                results[i] = res
            else:
                fwd_idx.append(i)
                fwd.append(out)
        t_proc = time.perf_counter_ns() - t_start

        # Simulated air delay: the batch is delivered when its slowest report arrives.
        t_delay = 0
        if max_delay_ms > 0 and self.settings.realize_delay:
            wait = min(max_delay_ms / 1e3, time_left(context, 3600.0))
            t0 = time.perf_counter_ns()
            time.sleep(max(0.0, wait))
            t_delay = time.perf_counter_ns() - t0

        rpc_ns = 0
        if fwd:
            sent = time.time_ns()
            for r in fwd:
                r.timestamps.channel_sent_ns = sent
            t0 = time.perf_counter_ns()
            resp = call_with_retry(
                self._bs.Decode,
                bs_pb.DecodeRequest(reports=fwd),
                timeout_s=time_left(context, self.settings.forward_timeout_s),
                what=f"channel emulator -> BS at {self.settings.bs_addr}",
            )
            rpc_ns = time.perf_counter_ns() - t0
            if len(resp.results) != len(fwd):
                raise RuntimeError(f"BS answered {len(resp.results)} results for {len(fwd)} reports")
            for i, r, res in zip(fwd_idx, fwd, resp.results, strict=True):
                res.channel.CopyFrom(r.channel)
                res.timestamps.ue_received_ns = r.timestamps.ue_received_ns
                res.timestamps.ue_sent_ns = r.timestamps.ue_sent_ns
                res.timestamps.channel_received_ns = r.timestamps.channel_received_ns
                res.timestamps.channel_sent_ns = r.timestamps.channel_sent_ns
                res.timings.channel_bs_rpc_ns = rpc_ns
                res.timings.network_ns = max(0, rpc_ns - res.timings.bs_total_ns)
                results[i] = res
        total = time.perf_counter_ns() - t_start
        for res in results:
            res.timings.channel_process_ns = t_proc
            res.timings.channel_delay_ns = t_delay
            res.timings.channel_total_ns = total
        with self._lock:
            self._counters["requests"] += 1
            self._counters["reports_in"] += n
            self._counters["retries"] += retries
            self._counters["forwarded"] += len(fwd)
        return ch_pb.TransmitResponse(results=results)

    # ------------------------------------------------------------------ the image link (downlink)

    def _mimo_link(self, link: Any) -> tuple[int, int, int, int, int]:
        """(seed, ue_id, block, nt, nr) of a request's MimoLinkId, validated; the seed is the
        UE's link seed (the scenario's)."""
        il.check_size(int(link.nt), int(link.nr))
        ue = int(link.ue_id)
        return int(self._link(ue).cfg.seed), ue, int(link.block), int(link.nt), int(link.nr)

    def SoundMimo(self, request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter_ns()
        snr = il.check_snr(request.snr_db)
        seed, ue, block, nt, nr = self._mimo_link(request.link)
        y_p, h, src = self._mimo.sound(seed, ue, block, nr, nt, snr, int(request.seq))
        resp = ch_pb.SoundMimoResponse(y_p=complex_to_pb(y_p), h_source=src, snr_db=snr)
        if request.want_true_h:
            resp.h_true.CopyFrom(complex_to_pb(h))
        resp.channel_total_ns = time.perf_counter_ns() - t0
        with self._lock:
            self._counters["mimo_soundings"] += 1
        return resp

    def TransmitMimo(self, request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter_ns()
        snr = il.check_snr(request.snr_db)
        seed, ue, block, nt, nr = self._mimo_link(request.link)
        x = complex_in(request.symbols, "symbols", self.settings.max_mimo_symbols)
        if x.ndim != 3 or x.shape[1] != nt:
            raise InvalidInput(
                f"symbols must be [B, Nt, n] with Nt = link.nt = {nt}, got {list(x.shape)}"
            )
        y, src = self._mimo.transmit(seed, ue, block, nr, x, snr, int(request.seq))
        t_proc = time.perf_counter_ns() - t0
        fwd = ue_pb.ReceiveImageRequest(
            model_id=request.model_id,
            model_version=request.model_version,
            snr_db=snr,
            seq=request.seq,
            y=complex_to_pb(y),
        )
        fwd.link.CopyFrom(request.link)
        timeout = request.timeout_ms / 1e3 if request.timeout_ms else self.settings.forward_timeout_s
        t1 = time.perf_counter_ns()
        res = call_with_retry(
            self._ue.ReceiveImage,
            fwd,
            timeout_s=time_left(context, timeout),
            what=f"channel emulator -> UE at {self.settings.ue_addr}",
        )
        rpc_ns = time.perf_counter_ns() - t1
        res.h_source = src
        tm = res.timings
        tm.channel_process_ns = t_proc
        tm.channel_ue_rpc_ns = rpc_ns
        tm.network_ns = max(0, rpc_ns - tm.ue_total_ns)
        tm.channel_total_ns = time.perf_counter_ns() - t0
        with self._lock:
            self._counters["mimo_transmissions"] += 1
            self._counters["mimo_images"] += x.shape[0]
            self._counters["mimo_symbols_on_air"] += x.size
        return res


def _jsonable(x: Any) -> Any:
    """Best effort: dataclasses / numpy scalars / dicts -> JSON-friendly values."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x
