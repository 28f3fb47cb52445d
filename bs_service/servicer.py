"""``csilink.v1.BsService``: protobuf in, :class:`BsNode` work, reconstructions out.

Per-report problems (model not loaded / version mismatch, malformed payload, unknown sample)
become a per-report ``ReportStatus``; request-level problems (oversize request) a gRPC status
through the interceptor in ``csilink.server_common``. Idempotent by ``(ue_id, seq)``: a
retried report (same payload, same model) is answered from a small LRU and not counted twice.

Image link: ``mimo-csi`` reports go to the CSI store (``BsNode.ingest_csi``) instead of a
decoder; ``SendImage`` reads images, picks the CSI, encodes, and forwards the symbols to the
emulator's ``TransmitMimo``, whose result (the UE's reconstructions) it returns.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from typing import Any

import grpc

from bs_service.config import FROZEN, BsSettings
from bs_service.hooks import fusions, refiners
from bs_service.image_tx import LoadedTransmitter, StoredCsi, choose_csi, encode_images
from bs_service.node import BsNode, Item, LoadedDecoder, Outcome
from csilink.rpc import (
    bs_grpc,
    bs_pb,
    ch_grpc,
    ch_pb,
    complex_from_pb,
    complex_in,
    complex_to_pb,
    copy_report_header,
    key_tuple,
    payload_of,
    pb,
    status_of,
)
from csilink.server_common import (
    MethodStats,
    ResultCache,
    call_with_retry,
    client_options,
    patch_settings,
    status_for,
    time_left,
)
from shared import image_link as il
from shared.errors import CsilinkError, InvalidInput, TooLarge

log = logging.getLogger("csilink.bs")


def model_info(ld: LoadedDecoder | LoadedTransmitter) -> Any:
    m = ld.bundle.manifest
    if isinstance(ld, LoadedTransmitter):
        return pb.ModelInfo(
            model_id=m.model_id,
            version=m.version,
            family=m.family,
            latent_size=m.latent_size,
            target="image",
            path=str(ld.bundle.path),
            device=ld.device,
            digest=ld.digest,
        )
    rates = [
        pb.RateInfo(
            name=r.name,
            bits=r.bits or 0,
            symbols=r.symbols or 0,
            wire_kind=str((r.wire or m.ue.wire).get("kind", "")),
        )
        for r in m.rates
    ]
    return pb.ModelInfo(
        model_id=m.model_id,
        version=m.version,
        family=m.family,
        rates=rates,
        latent_size=m.latent_size,
        target=ld.target,
        bs_needs=ld.needs,
        path=str(ld.bundle.path),
        device=ld.device,
        digest=ld.digest,
    )


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    return status_for(exc)


class BsServicer(bs_grpc.BsServiceServicer):
    def __init__(self, node: BsNode, method_stats: MethodStats | None = None) -> None:
        self.node = node
        self.method_stats = method_stats or MethodStats()
        self._cache = ResultCache(node.settings.cache_size)
        self._t0 = time.monotonic_ns()
        self._lock = threading.Lock()
        self._counters: collections.Counter[str] = collections.Counter()
        opts = client_options(node.settings.max_message_mb << 20)
        self._ch_channel = grpc.insecure_channel(node.settings.channel_addr, options=opts)
        self._channel = ch_grpc.ChannelEmulatorStub(self._ch_channel)

    @property
    def settings(self) -> BsSettings:
        return self.node.settings

    def close(self) -> None:
        self._ch_channel.close()
        self.node.close()

    # ------------------------------------------------------------------ control

    def Configure(self, request: Any, context: grpc.ServicerContext) -> Any:
        new: BsSettings = patch_settings(self.settings, request.config_json, frozen=FROZEN)
        if new.datasets != self.settings.datasets:
            from bs_service.node import BsDatasets

            # Open the new files first (a bad path fails the call and changes nothing); the old
            # views are dropped, not closed: requests in flight may still read them.
            self.node.data = BsDatasets(new.datasets)
        if new.image_datasets != self.settings.image_datasets:
            from shared.image_data import ImageDatasets

            self.node.images = ImageDatasets(new.image_datasets)  # strict here: a bad path fails the call
        self.node.reconfigure(new)
        self._cache.clear()  # hooks may have changed: old results are not what we would compute now
        return pb.ConfigureResponse(effective_json=new.model_dump_json())

    def LoadModel(self, request: Any, context: grpc.ServicerContext) -> Any:
        ld = self.node.load_model(request.path)
        self._cache.clear()
        return model_info(ld)

    def UnloadModel(self, request: Any, context: grpc.ServicerContext) -> Any:
        ld = self.node.unload_model(request.model_id)
        self._cache.clear()
        return pb.UnloadModelResponse(unloaded=model_info(ld))

    def ListModels(self, request: Any, context: grpc.ServicerContext) -> Any:
        models = [*self.node.models(), *self.node.transmitters()]
        return pb.ListModelsResponse(models=[model_info(ld) for ld in models])

    def GetStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            counters = dict(self._counters)
            if request.reset:
                self._counters.clear()
        counters["cache_hits"] = float(self._cache.hits)
        detail = {
            "rpc": self.method_stats.snapshot(),
            "models": {
                ld.model_id: {
                    "version": ld.version,
                    "device": ld.device,
                    "batcher": ld.batcher.stats() if ld.batcher else None,
                    "fusion": ld.fusion.name,
                    "refiner": ld.refiner.name,
                }
                for ld in self.node.models()
            },
            "hooks_registered": {"fusion": fusions(), "refiner": refiners()},
            "image_transmitters": {
                lt.model_id: {"version": lt.version, "device": lt.device, "sizes": list(lt.sizes)}
                for lt in self.node.transmitters()
            },
            "csi_store": len(self.node.csi),
        }
        if request.reset:
            self.method_stats.reset()
        return pb.Stats(
            node="bs",
            counters=counters,
            detail_json=json.dumps(detail),
            uptime_ns=time.monotonic_ns() - self._t0,
        )

    # ------------------------------------------------------------------ decode

    @staticmethod
    def _fingerprint(r: Any) -> bytes:
        which = r.WhichOneof("payload")
        body = getattr(r, which).SerializeToString(deterministic=True) if which else b""
        return ResultCache.fingerprint(
            r.model_id,
            r.model_version,
            r.rate,
            body,
            r.world_key.SerializeToString(deterministic=True),
            repr(float(r.channel.effective_snr_db)),
            str(r.block) if r.HasField("block") else "",
        )

    def Decode(self, request: Any, context: grpc.ServicerContext) -> Any:
        t_start = time.perf_counter_ns()
        received = time.time_ns()
        n = len(request.reports)
        if n > self.settings.max_batch_reports:
            raise TooLarge(
                f"Decode of {n} reports exceeds the BS limit of {self.settings.max_batch_reports} "
                "(settings.max_batch_reports)"
            )
        results: list[Any] = [None] * n
        todo: list[int] = []
        items: list[Item] = []
        fps: dict[int, bytes] = {}
        retries = 0
        for i, r in enumerate(request.reports):
            fp = self._fingerprint(r)
            cached = self._cache.get((int(r.ue_id), int(r.seq)), fp)
            if cached is not None:
                results[i] = pb.ReportResult.FromString(cached)
                retries += 1
                if r.model_id == il.MIMO_CSI_MODEL and results[i].status.code == pb.ReportStatus.OK:
                    # The store may hold a later report of the block by now: this one is the latest.
                    h = complex_from_pb(results[i].h_ad)
                    self.node.csi.put(int(r.ue_id), int(r.block), StoredCsi(h, int(r.seq), r.rate))
                continue
            fps[i] = fp
            try:
                payload = payload_of(r, self.settings.max_bits, self.settings.max_symbols)
            except CsilinkError as exc:
                results[i] = self._result(r, Outcome(error=exc), received)
                continue
            if r.model_id == il.MIMO_CSI_MODEL:  # the image link's CSI feedback: no decoder
                block = int(r.block) if r.HasField("block") else None
                oc = self.node.ingest_csi(int(r.ue_id), int(r.seq), block, r.model_version, r.rate, payload)
                results[i] = self._result(r, oc, received)
                continue
            snr = r.channel.effective_snr_db if r.channel.applied else float("nan")
            items.append(Item(r.model_id, r.model_version, r.rate, payload, key_tuple(r.world_key), snr))
            todo.append(i)
        outcomes = (
            self.node.decode(items, time_left(context, self.settings.decode_timeout_s)) if items else []
        )
        for i, oc in zip(todo, outcomes, strict=True):
            results[i] = self._result(request.reports[i], oc, received)
        total = time.perf_counter_ns() - t_start
        counts: collections.Counter[str] = collections.Counter()
        for i, res in enumerate(results):
            if i in fps:
                res.timings.bs_total_ns = total
                self._cache.put((int(res.ue_id), int(res.seq)), fps[i], res.SerializeToString())
                counts[
                    "reports_ok"
                    if res.status.code == pb.ReportStatus.OK
                    else f"reports_{pb.ReportStatus.Code.Name(res.status.code).lower()}"
                ] += 1
        with self._lock:
            self._counters["requests"] += 1
            self._counters["reports_in"] += n
            self._counters["retries"] += retries
            self._counters.update(counts)
        return bs_pb.DecodeResponse(results=results)

    def _result(self, r: Any, oc: Outcome, received: int) -> Any:
        res = pb.ReportResult()
        copy_report_header(r, res)
        res.channel.CopyFrom(r.channel)
        res.timestamps.CopyFrom(r.timestamps)
        res.timestamps.bs_received_ns = received
        for k, v in oc.timings.items():
            setattr(res.timings, k, v)
        if oc.error is not None:
            code, msg = _status_for(oc.error)
            if code == grpc.StatusCode.INTERNAL:
                log.error("report ue %d seq %d: %s", r.ue_id, r.seq, msg)
            res.status.CopyFrom(status_of(code, msg, "bs"))
        else:
            res.status.CopyFrom(status_of(grpc.StatusCode.OK, "", "bs"))
            res.h_ad.CopyFrom(complex_to_pb(oc.h_ad))
            res.target = oc.target
        res.timestamps.bs_done_ns = time.time_ns()
        return res

    # ------------------------------------------------------------------ image link

    def SendImage(self, request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter_ns()
        link = request.link
        il.check_size(int(link.nt), int(link.nr))
        snr = il.check_snr(request.snr_db)
        ue, block, nt, nr = int(link.ue_id), int(link.block), int(link.nt), int(link.nr)
        lt = self.node.transmitter(request.model_id)
        il.check_model_size(lt.model_id, lt.sizes, nt, nr)
        n = len(request.images)
        if n == 0:
            raise InvalidInput("SendImage names no images")
        if n > self.settings.max_images:
            raise TooLarge(
                f"SendImage of {n} images exceeds the BS limit of {self.settings.max_images} "
                "(settings.max_images)"
            )
        mode = request.csi_mode or "feedback"
        h_true = complex_in(request.h_true, "h_true") if request.HasField("h_true") else None
        csi_seq = int(request.csi_seq) if request.HasField("csi_seq") else None
        h, used_seq = choose_csi(mode, lt, self.node.csi, ue, block, nt, nr, h_true, csi_seq)

        t1 = time.perf_counter_ns()
        keys = [(k.dataset_id, k.split, int(k.index)) for k in request.images]
        images = self.node.read_images(keys, lt.image_size)
        t_read = time.perf_counter_ns() - t1
        t1 = time.perf_counter_ns()
        x = encode_images(lt, images, h, nt, snr)
        t_enc = time.perf_counter_ns() - t1

        fwd = ch_pb.TransmitMimoRequest(
            model_id=lt.model_id,
            model_version=lt.version,
            snr_db=snr,
            seq=request.seq,
            symbols=complex_to_pb(x),
            timeout_ms=request.timeout_ms,
        )
        fwd.link.CopyFrom(link)
        timeout = request.timeout_ms / 1e3 if request.timeout_ms else self.settings.forward_timeout_s
        t1 = time.perf_counter_ns()
        res = call_with_retry(
            self._channel.TransmitMimo,
            fwd,
            timeout_s=time_left(context, timeout),
            what=f"BS -> channel emulator at {self.settings.channel_addr} (TransmitMimo)",
        )
        rpc_ns = time.perf_counter_ns() - t1
        if list(res.images.shape)[:1] != [n]:
            raise RuntimeError(f"the UE returned images {list(res.images.shape)} for {n} sent")
        res.csi_mode = mode
        res.csi_seq = used_seq
        tm = res.timings
        tm.bs_read_ns, tm.bs_encode_ns, tm.bs_channel_rpc_ns = t_read, t_enc, rpc_ns
        tm.network_ns = max(0, tm.network_ns) + max(0, rpc_ns - tm.channel_total_ns)
        tm.bs_total_ns = time.perf_counter_ns() - t0
        with self._lock:
            self._counters["images_sent"] += n
            self._counters[f"images_csi_{mode}"] += n
        return res
