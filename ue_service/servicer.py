"""``csilink.v1.UeService``: protobuf in, :class:`UeNode` work, forwarding to the emulator.

Image link: ``AcquireMimoCsi`` (sound -> estimate -> keep -> quantized feedback over the
digital uplink) and ``ReceiveImage`` (equalise with the UE's own estimate -> decode).

Thin: converts messages to domain types and back. Errors are raised as ``shared.errors``
types and mapped to gRPC codes by the interceptor in ``csilink.server_common``; per-report
problems become a per-report ``ReportStatus`` so one bad report does not sink its batch.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

from csilink.rpc import (
    ch_grpc,
    ch_pb,
    complex_in,
    complex_to_pb,
    il_pb,
    images_to_pb,
    key_tuple,
    pb,
    set_payload,
    status_of,
    ue_grpc,
    ue_pb,
)
from csilink.server_common import (
    MethodStats,
    call_with_retry,
    client_options,
    patch_settings,
    status_for,
    time_left,
)
from shared import image_link as il
from shared.errors import InvalidInput, TooLarge
from ue_service.config import FROZEN, UeSettings
from ue_service.node import Encoded, Estimate, Item, LoadedModel, UeNode

log = logging.getLogger("csilink.ue")


def model_info(lm: LoadedModel, default_id: str | None) -> Any:
    m = lm.bundle.manifest
    rates = []
    for r in m.rates:
        wire = r.wire or m.ue.wire
        rates.append(
            pb.RateInfo(
                name=r.name, bits=r.bits or 0, symbols=r.symbols or 0, wire_kind=str(wire.get("kind", ""))
            )
        )
    return pb.ModelInfo(
        model_id=m.model_id,
        version=m.version,
        family=m.family,
        rates=rates,
        latent_size=m.latent_size,
        target=f"{m.target.field}/{m.target.domain}",
        bs_needs=m.bs.needs,
        path=str(lm.bundle.path),
        is_default=(m.model_id == default_id),
        digest=lm.digest,
    )


class UeServicer(ue_grpc.UeServiceServicer):
    def __init__(self, node: UeNode, method_stats: MethodStats | None = None) -> None:
        self.node = node
        self.settings = node.settings
        self.method_stats = method_stats or MethodStats()
        self._channel = grpc.insecure_channel(
            self.settings.channel_addr, options=client_options(self.settings.max_message_mb << 20)
        )
        self._stub = ch_grpc.ChannelEmulatorStub(self._channel)
        self._t0 = time.monotonic_ns()
        self._stats_lock = threading.Lock()
        self._counters: collections.Counter[str] = collections.Counter()

    def close(self) -> None:
        self._channel.close()
        self.node.close()

    def _count(self, **kv: float) -> None:
        with self._stats_lock:
            for k, v in kv.items():
                self._counters[k] += v

    # ------------------------------------------------------------------ control

    def Configure(self, request: Any, context: grpc.ServicerContext) -> Any:
        new: UeSettings = patch_settings(self.settings, request.config_json, frozen=FROZEN)
        if new.datasets != self.settings.datasets:
            from ue_service.node import UeDatasets

            # Open the new files first (a bad path fails the call and changes nothing); the old
            # views are dropped, not closed: requests in flight may still read them.
            self.node.data = UeDatasets(new.datasets)
        self.settings = self.node.settings = new
        return pb.ConfigureResponse(effective_json=new.model_dump_json())

    def LoadModel(self, request: Any, context: grpc.ServicerContext) -> Any:
        lm = self.node.load_model(request.path, make_default=request.make_default)
        return model_info(lm, self.node.models()[1])

    def SwapModel(self, request: Any, context: grpc.ServicerContext) -> Any:
        lm = self.node.swap_model(request.model_id, request.version)
        return model_info(lm, lm.model_id)

    def UnloadModel(self, request: Any, context: grpc.ServicerContext) -> Any:
        lm = self.node.unload_model(request.model_id)
        return pb.UnloadModelResponse(unloaded=model_info(lm, None))

    def ListModels(self, request: Any, context: grpc.ServicerContext) -> Any:
        models, default = self.node.models()
        return pb.ListModelsResponse(
            models=[model_info(m, default) for m in models], default_model_id=default or ""
        )

    def GetStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._stats_lock:
            counters = dict(self._counters)
            if request.reset:
                self._counters.clear()
        detail = {"rpc": self.method_stats.snapshot()}
        models, default = self.node.models()
        detail["models"] = [m.model_id for m in models]
        detail["default_model"] = default
        detail["torch_loaded"] = "torch" in sys.modules  # must stay False: the UE never imports torch
        if request.reset:
            self.method_stats.reset()
        return pb.Stats(
            node="ue",
            counters=counters,
            detail_json=json.dumps(detail),
            uptime_ns=time.monotonic_ns() - self._t0,
        )

    # ------------------------------------------------------------------ reports

    def _encode(self, request: Any) -> tuple[list[Encoded], LoadedModel, list[Any], int]:
        """Measure + encode a request; returns the encoded items, the model, the CsiReports
        (None where the UE failed) and the UE's receive stamp."""
        received = time.time_ns()
        n = len(request.items)
        if n > self.settings.max_batch_reports:
            raise TooLarge(
                f"request of {n} reports exceeds the UE's limit of {self.settings.max_batch_reports} "
                "(settings.max_batch_reports)"
            )
        lm = self.node.model(request.model_id)  # pinned for this request even if swapped meanwhile
        snr = request.csi_rs_snr_db if request.HasField("csi_rs_snr_db") else None
        items = [Item(key_tuple(it.world_key), int(it.ue_id), int(it.seq)) for it in request.items]
        encoded = self.node.measure_encode(items, lm, request.rate, snr)
        rate = request.rate or lm.bundle.manifest.rates[0].name
        eff_snr = snr if snr is not None else self.settings.csi_rs_snr_db
        reports: list[Any] = []
        for src, e in zip(request.items, encoded, strict=True):
            if e.payload is None:
                reports.append(None)
                continue
            r = pb.CsiReport(
                ue_id=e.item.ue_id, seq=e.item.seq, model_id=lm.model_id, model_version=lm.version, rate=rate
            )
            set_payload(r, e.payload)
            r.world_key.CopyFrom(src.world_key)
            r.timestamps.ue_received_ns = received
            if eff_snr is not None:
                r.csi_rs_snr_db = float(eff_snr)
            reports.append(r)
        return encoded, lm, reports, received

    def _ue_failure(self, src: Any, e: Encoded, lm: LoadedModel, rate: str) -> Any:
        code, msg = status_for(e.error) if e.error else (grpc.StatusCode.INTERNAL, "no payload")
        res = pb.ReportResult(
            ue_id=src.ue_id,
            seq=src.seq,
            model_id=lm.model_id,
            model_version=lm.version,
            rate=rate,
            status=status_of(code, msg, "ue"),
        )
        res.world_key.CopyFrom(src.world_key)
        return res

    def Measure(self, request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter_ns()
        encoded, lm, reports, _ = self._encode(request)
        rate = request.rate or lm.bundle.manifest.rates[0].name
        total = time.perf_counter_ns() - t0
        out = ue_pb.MeasureResponse()
        for src, e, r in zip(request.items, encoded, reports, strict=True):
            item = out.items.add()
            if r is None:
                item.status.CopyFrom(self._ue_failure(src, e, lm, rate).status)
            else:
                item.report.CopyFrom(r)
                item.status.CopyFrom(status_of(grpc.StatusCode.OK, "", "ue"))
            item.timings.CopyFrom(pb.Timings(ue_total_ns=total, **e.timings))
        return out

    def _send(self, request: Any, context: grpc.ServicerContext | None) -> Any:
        t0 = time.perf_counter_ns()
        encoded, lm, reports, _ = self._encode(request)
        rate = request.rate or lm.bundle.manifest.rates[0].name
        sendable = [r for r in reports if r is not None]
        forwarded: list[Any] = []
        rpc_ns = 0
        if sendable:
            sent = time.time_ns()
            for r in sendable:
                r.timestamps.ue_sent_ns = sent
            timeout = request.timeout_ms / 1e3 if request.timeout_ms else self.settings.forward_timeout_s
            t1 = time.perf_counter_ns()
            resp = call_with_retry(
                self._stub.Transmit,
                ch_pb.TransmitRequest(reports=sendable),
                timeout_s=time_left(context, timeout),
                what=f"UE -> channel emulator at {self.settings.channel_addr}",
            )
            rpc_ns = time.perf_counter_ns() - t1
            forwarded = list(resp.results)
            if len(forwarded) != len(sendable):
                raise RuntimeError(
                    f"channel emulator answered {len(forwarded)} results for {len(sendable)} reports"
                )
        total = time.perf_counter_ns() - t0
        out = ue_pb.SendReportsResponse()
        it = iter(forwarded)
        for src, e, r in zip(request.items, encoded, reports, strict=True):
            res = self._ue_failure(src, e, lm, rate) if r is None else next(it)
            tm = res.timings
            for k, v in e.timings.items():
                setattr(tm, k, v)
            tm.ue_total_ns = total
            if r is not None:
                tm.ue_channel_rpc_ns = rpc_ns
                tm.network_ns = max(0, rpc_ns - tm.channel_total_ns) + max(0, tm.network_ns)
                res.timestamps.ue_received_ns = r.timestamps.ue_received_ns
                res.timestamps.ue_sent_ns = r.timestamps.ue_sent_ns
            code = res.status.code
            if code == pb.ReportStatus.OK:
                out.n_ok += 1
            elif res.channel.dropped:
                out.n_dropped += 1
            else:
                out.n_failed += 1
            out.results.append(res)
        self._count(
            requests=1,
            reports_in=len(request.items),
            reports_encoded=len(sendable),
            reports_ok=out.n_ok,
            reports_dropped=out.n_dropped,
            reports_failed=out.n_failed,
            ue_failed=len(request.items) - len(sendable),
        )
        return out

    def SendReports(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._send(request, context)

    def SendReportStream(self, request_iterator: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """Up to ``stream_pipeline`` requests in flight at once (encode of the next overlaps
        forwarding of the previous); responses in request order. A request-level error ends
        the stream with that status."""
        depth = self.settings.stream_pipeline
        with futures.ThreadPoolExecutor(max_workers=depth, thread_name_prefix="ue-stream") as pool:
            pending: collections.deque[futures.Future] = collections.deque()
            for req in request_iterator:
                pending.append(pool.submit(self._send, req, context))
                while len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    # ------------------------------------------------------------------ image link

    def AcquireMimoCsi(self, request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter_ns()
        link = request.link
        il.check_size(int(link.nt), int(link.nr))
        snr = il.check_snr(request.snr_db)
        ue, block, nt, nr = int(link.ue_id), int(link.block), int(link.nt), int(link.nr)
        bits = int(request.feedback_bits)
        if bits and not 1 <= bits <= 12:
            raise InvalidInput(f"feedback_bits must be 0 (no feedback) or 1..12 bits per real, got {bits}")
        estimator = request.estimator or ("model" if request.model_id else "ls")
        if estimator not in ("model", "ls"):
            raise InvalidInput(f"estimator must be 'model' or 'ls', got {request.estimator!r}")
        lm = None
        if estimator == "model":
            if not request.model_id:
                raise InvalidInput("estimator 'model' needs the model_id of a loaded image receiver")
            lm = self.node.image_model(request.model_id)
            il.check_model_size(lm.model_id, tuple(lm.encoder.sizes), nt, nr)
        timeout = request.timeout_ms / 1e3 if request.timeout_ms else self.settings.forward_timeout_s
        tm = il_pb.ImageTimings()

        sound = ch_pb.SoundMimoRequest(snr_db=snr, seq=request.seq, want_true_h=request.want_true_h)
        sound.link.CopyFrom(link)
        t1 = time.perf_counter_ns()
        sresp = call_with_retry(
            self._stub.SoundMimo,
            sound,
            timeout_s=time_left(context, timeout),
            what=f"UE -> channel emulator at {self.settings.channel_addr} (SoundMimo)",
        )
        tm.ue_sound_rpc_ns = time.perf_counter_ns() - t1
        y_p = complex_in(sresp.y_p, "received pilots")
        if y_p.shape != (nr, nt):
            raise RuntimeError(f"emulator returned pilots {list(y_p.shape)} for a {nr}x{nt} link")

        t1 = time.perf_counter_ns()
        h_e = self.node.estimate(y_p, snr, lm)
        tm.ue_estimate_ns = time.perf_counter_ns() - t1
        self.node.estimates.put(ue, block, Estimate(h_e, snr, int(request.seq), estimator))

        out = ue_pb.AcquireMimoCsiResponse(
            h_est=complex_to_pb(h_e), estimator=estimator, snr_db=sresp.snr_db, h_source=sresp.h_source
        )
        out.link.CopyFrom(link)
        if sresp.HasField("h_true"):
            out.h_true.CopyFrom(sresp.h_true)  # METADATA for the runner: passed on, never used here
        if bits:
            payload, rate = il.encode_csi(h_e, bits)
            r = pb.CsiReport(
                ue_id=ue,
                seq=request.seq,
                model_id=il.MIMO_CSI_MODEL,
                model_version=il.MIMO_CSI_VERSION,
                rate=rate,
                block=block,
            )
            set_payload(r, payload)
            r.timestamps.ue_received_ns = r.timestamps.ue_sent_ns = time.time_ns()
            t1 = time.perf_counter_ns()
            resp = call_with_retry(
                self._stub.Transmit,
                ch_pb.TransmitRequest(reports=[r]),
                timeout_s=time_left(context, timeout),
                what=f"UE -> channel emulator at {self.settings.channel_addr} (CSI feedback)",
            )
            tm.ue_feedback_rpc_ns = time.perf_counter_ns() - t1
            if len(resp.results) != 1:
                raise RuntimeError(f"channel emulator answered {len(resp.results)} results for 1 report")
            out.feedback.CopyFrom(resp.results[0])
            out.feedback_bits = payload.n_bits
        tm.ue_total_ns = time.perf_counter_ns() - t0
        out.timings.CopyFrom(tm)
        ok = out.feedback.status.code == pb.ReportStatus.OK
        self._count(
            mimo_acquisitions=1,
            mimo_feedback_sent=1 if bits else 0,
            mimo_feedback_ok=1 if bits and ok else 0,
        )
        return out

    def ReceiveImage(self, request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter_ns()
        link = request.link
        il.check_size(int(link.nt), int(link.nr))
        snr = il.check_snr(request.snr_db)
        ue, block, nt, nr = int(link.ue_id), int(link.block), int(link.nt), int(link.nr)
        lm = self.node.image_model(request.model_id, request.model_version)
        rx = lm.encoder
        il.check_model_size(lm.model_id, tuple(rx.sizes), nt, nr)
        n_sym = int(rx.n_symbols)
        y = complex_in(request.y, "received symbols", self.settings.max_images * (n_sym + nt * nt))
        uses = int(rx.channel_uses(nt)) if hasattr(rx, "channel_uses") else n_sym // nt
        if y.ndim != 3 or y.shape[1] != nr or y.shape[2] != uses:
            raise InvalidInput(
                f"received symbols must be [B, Nr={nr}, n={uses}] for model {lm.model_id} "
                f"({n_sym} symbols per image over {nt} streams"
                + (f", after {nt} DMRS" if uses != n_sym // nt else "")
                + f"), got {list(y.shape)}"
            )
        t1 = time.perf_counter_ns()
        images = self.node.receive_images(lm, ue, block, y, snr)
        t_dec = time.perf_counter_ns() - t1
        res = il_pb.ImageResult(
            model_id=lm.model_id,
            model_version=lm.version,
            snr_db=snr,
            n_symbols=n_sym,
            images=images_to_pb(images),
        )
        res.link.CopyFrom(link)
        res.timings.ue_decode_ns = t_dec
        res.timings.ue_total_ns = time.perf_counter_ns() - t0
        self._count(images_received=y.shape[0])
        return res
