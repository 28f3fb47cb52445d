"""Python client of the split link: ``LinkClient(ue_addr, channel_addr, bs_addr)``.

>>> with LinkClient("127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053") as link:  # doctest: +SKIP
...     link.wait_ready()
...     link.load_model("bundles/csinet-b128")                  # UE and BS
...     link.configure_channel({"mode": "awgn", "snr_db": 10})  # default link
...     out = link.send([("", "test", i) for i in range(64)], rate="b128")
...     out[0].ok, out[0].h_ad.shape, out[0].channel.bit_errors
(True, (32, 32), 0)

The downlink image link (docs/image_link.md): ``acquire_mimo_csi`` (UE sounds, estimates and
feeds the quantized H back to the BS) then ``send_image`` (BS encodes images of its image
dataset, the emulator carries them over the same MIMO channel, the UE decodes)::

    acq = link.acquire_mimo_csi(ue_id=0, block=3, nt=4, snr_db=10, seq=3, model_id="lcfsc-mse",
                                feedback_bits=6)
    out = link.send_image([("", "test", 0)], ue_id=0, block=3, nt=4, snr_db=10, model_id="lcfsc-mse",
                          csi_mode="feedback", csi_seq=3)
    out.images.shape  # (1, 64, 64, 3) uint8

Results are typed (:class:`ReportOutcome`, numpy reconstructions); a request-level failure
raises :class:`LinkError` carrying the gRPC code and the node's message. numpy + grpc only.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from csilink.rpc import (
    SERVICE_NAMES,
    bs_grpc,
    bs_pb,
    ch_grpc,
    code_name,
    complex_from_pb,
    complex_to_pb,
    il_pb,
    images_from_pb,
    key_to_pb,
    pb,
    ue_grpc,
    ue_pb,
)
from csilink.server_common import DEFAULT_MAX_MESSAGE_BYTES, client_options
from shared.errors import CsilinkError, InvalidInput

Key = tuple[str, str, int] | tuple[str, str, int, int]


class LinkError(CsilinkError):
    """A request-level failure of a node (``code``: ``grpc.StatusCode``)."""

    def __init__(self, node: str, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{node} {method}: {code.name}: {details}")
        self.node, self.method, self.code, self.details = node, method, code, details


@dataclass(frozen=True)
class ChannelInfo:
    """What the emulator did to a report (simulation metadata)."""

    applied: bool = False
    mode: str = ""
    effective_snr_db: float = math.nan
    bit_errors: int = 0
    payload_bit_errors: int = 0
    n_bits_on_air: int = 0
    n_symbols_on_air: int = 0
    dropped: bool = False
    drop_reason: str = ""
    delay_ms: float = 0.0
    crc_ok: bool = False


@dataclass(frozen=True)
class ModelSummary:
    model_id: str
    version: str
    family: str
    rates: list[dict[str, Any]]
    latent_size: int
    target: str
    bs_needs: list[str]
    path: str
    is_default: bool
    device: str
    digest: str


@dataclass
class ReportOutcome:
    """One report's result as the runner sees it.

    ``h_ad``: complex64 ``[Nt, T]`` unnormalized reconstruction of ``target`` (None unless ok);
    ``code``/``message``/``stage``: the per-report status; ``timings``: per-stage ns.
    """

    ue_id: int
    seq: int
    key: tuple[str, str, int, int]
    code: str
    message: str
    stage: str
    model_id: str
    model_version: str
    rate: str
    payload_bits: int
    payload_symbols: int
    channel: ChannelInfo
    h_ad: np.ndarray | None
    target: str
    timings: dict[str, int] = field(default_factory=dict)
    timestamps: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def dropped(self) -> bool:
        return self.channel.dropped


@dataclass
class CsiAcquisition:
    """What ``AcquireMimoCsi`` did: the UE's estimate of one block and its feedback.

    ``h_true`` is simulation METADATA (the emulator's true H, for scoring only; None unless
    asked); ``feedback`` the CSI report's outcome over the uplink (None when none was sent).
    """

    ue_id: int
    block: int
    nt: int
    nr: int
    h_est: np.ndarray
    h_true: np.ndarray | None
    estimator: str
    feedback_bits: int
    feedback: ReportOutcome | None
    snr_db: float
    h_source: str
    timings: dict[str, int] = field(default_factory=dict)

    @property
    def feedback_ok(self) -> bool:
        return self.feedback is not None and self.feedback.ok

    @property
    def nmse_db(self) -> float:
        """NMSE of the UE's estimate against the true H (dB); NaN without ``h_true``."""
        if self.h_true is None:
            return math.nan
        err = float(np.sum(np.abs(self.h_est - self.h_true) ** 2))
        return 10 * math.log10(max(err / max(float(np.sum(np.abs(self.h_true) ** 2)), 1e-30), 1e-30))


@dataclass
class ImageOutcome:
    """The result of one ``SendImage``: the UE's reconstructions ``images`` uint8 ``[B, S, S, 3]``
    in request order, plus what each hop recorded."""

    ue_id: int
    block: int
    nt: int
    nr: int
    model_id: str
    model_version: str
    snr_db: float
    n_symbols: int
    images: np.ndarray
    csi_mode: str
    csi_seq: int
    h_source: str
    timings: dict[str, int] = field(default_factory=dict)


def image_outcome_from_pb(res: Any) -> ImageOutcome:
    return ImageOutcome(
        ue_id=int(res.link.ue_id),
        block=int(res.link.block),
        nt=int(res.link.nt),
        nr=int(res.link.nr),
        model_id=res.model_id,
        model_version=res.model_version,
        snr_db=float(res.snr_db),
        n_symbols=int(res.n_symbols),
        images=images_from_pb(res.images),
        csi_mode=res.csi_mode,
        csi_seq=int(res.csi_seq),
        h_source=res.h_source,
        timings=_fields(res.timings),
    )


def _mimo_link(ue_id: int, block: int, nt: int, nr: int | None) -> Any:
    return il_pb.MimoLinkId(ue_id=int(ue_id), block=int(block), nt=int(nt), nr=int(nt if nr is None else nr))


def _image_key(key: Any) -> Any:
    """An ``ImageKey`` from an ImageKey, a dict, ``(dataset_id, split, index)`` or ``(split, index)``."""
    if isinstance(key, il_pb.ImageKey):
        return key
    if isinstance(key, dict):
        return il_pb.ImageKey(**key)
    if isinstance(key, tuple | list) and len(key) == 3:
        return il_pb.ImageKey(dataset_id=str(key[0]), split=str(key[1]), index=int(key[2]))
    if isinstance(key, tuple | list) and len(key) == 2:
        return il_pb.ImageKey(split=str(key[0]), index=int(key[1]))
    raise InvalidInput(f"cannot make an image key of {key!r}: give (dataset_id, split, index)")


def _fields(msg: Any) -> dict[str, Any]:
    return {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}


def outcome_from_pb(res: Any) -> ReportOutcome:
    """A :class:`ReportOutcome` from a ``ReportResult`` message."""
    ok = res.status.code == pb.ReportStatus.OK
    return ReportOutcome(
        ue_id=int(res.ue_id),
        seq=int(res.seq),
        key=(
            res.world_key.dataset_id,
            res.world_key.split,
            int(res.world_key.sample_id),
            int(res.world_key.time_index),
        ),
        code=code_name(res.status.code),
        message=res.status.message,
        stage=res.status.stage,
        model_id=res.model_id,
        model_version=res.model_version,
        rate=res.rate,
        payload_bits=int(res.payload_bits),
        payload_symbols=int(res.payload_symbols),
        channel=ChannelInfo(**_fields(res.channel)),
        h_ad=complex_from_pb(res.h_ad) if ok and res.HasField("h_ad") else None,
        target=res.target,
        timings=_fields(res.timings),
        timestamps=_fields(res.timestamps),
    )


def model_from_pb(m: Any) -> ModelSummary:
    return ModelSummary(
        model_id=m.model_id,
        version=m.version,
        family=m.family,
        rates=[
            {"name": r.name, "bits": r.bits or None, "symbols": r.symbols or None, "wire_kind": r.wire_kind}
            for r in m.rates
        ],
        latent_size=int(m.latent_size),
        target=m.target,
        bs_needs=list(m.bs_needs),
        path=m.path,
        is_default=m.is_default,
        device=m.device,
        digest=m.digest,
    )


class LinkClient:
    """Client of the three nodes. Any address may be None when that node is not used.

    :param timeout_s: default deadline of every call (SendReports includes the whole chain).
    """

    def __init__(
        self,
        ue_addr: str | None,
        channel_addr: str | None = None,
        bs_addr: str | None = None,
        *,
        timeout_s: float = 60.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.addrs = {"ue": ue_addr, "channel": channel_addr, "bs": bs_addr}
        self.timeout_s = timeout_s
        opts = client_options(max_message_bytes)
        self._channels = {k: grpc.insecure_channel(a, options=opts) for k, a in self.addrs.items() if a}
        self._stubs: dict[str, Any] = {}
        if "ue" in self._channels:
            self._stubs["ue"] = ue_grpc.UeServiceStub(self._channels["ue"])
        if "channel" in self._channels:
            self._stubs["channel"] = ch_grpc.ChannelEmulatorStub(self._channels["channel"])
        if "bs" in self._channels:
            self._stubs["bs"] = bs_grpc.BsServiceStub(self._channels["bs"])
        self._seq: dict[int, int] = {}

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()

    def __enter__(self) -> LinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, node: str, method: str, request: Any, timeout_s: float | None = None) -> Any:
        stub = self._stubs.get(node)
        if stub is None:
            raise InvalidInput(f"no {node} address was given to LinkClient")
        try:
            return getattr(stub, method)(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise LinkError(node, method, exc.code(), exc.details() or "") from None

    def wait_ready(self, timeout_s: float = 30.0, nodes: Iterable[str] | None = None) -> None:
        """Block until every node answers SERVING to a health check; ``LinkError`` (UNAVAILABLE)
        names the first that does not within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for node in list(nodes or self._channels):
            stub = health_pb2_grpc.HealthStub(self._channels[node])
            last = "no answer"
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkError(
                        node,
                        "health",
                        grpc.StatusCode.UNAVAILABLE,
                        f"{self.addrs[node]} not SERVING after {timeout_s:.0f} s ({last})",
                    )
                try:
                    resp = stub.Check(
                        health_pb2.HealthCheckRequest(service=SERVICE_NAMES[node]),
                        timeout=min(left, 2.0),
                        wait_for_ready=True,
                    )
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                    last = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
                except grpc.RpcError as exc:
                    last = f"{exc.code().name}: {exc.details()}"
                time.sleep(0.05)

    def health(self) -> dict[str, str]:
        """``{node: "SERVING" | "NOT_SERVING" | "<code>: <details>"}`` for every node."""
        out = {}
        for node, ch in self._channels.items():
            try:
                r = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=SERVICE_NAMES[node]), timeout=2.0
                )
                out[node] = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
            except grpc.RpcError as exc:
                out[node] = f"{exc.code().name}: {exc.details()}"
        return out

    # ------------------------------------------------------------------ configuration and models

    def configure_channel(
        self,
        config: dict[str, Any] | Any | None = None,
        ue_ids: Sequence[int] = (),
        reset_links: bool = False,
    ) -> dict[str, Any]:
        """Update the default link (``ue_ids`` empty) or those UEs' links with LinkConfig fields
        (a dict, or a pydantic ``LinkConfig``); returns the effective configuration."""
        if config is not None and hasattr(config, "model_dump"):
            config = config.model_dump(mode="json")
        req = pb.ConfigureRequest(
            config_json=json.dumps(config or {}), ue_ids=list(ue_ids), reset_links=reset_links
        )
        return json.loads(self._call("channel", "Configure", req).effective_json)

    def configure(self, node: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Partial update of a UE or BS node's settings; returns the effective settings."""
        if node == "channel":
            return self.configure_channel(settings)
        req = pb.ConfigureRequest(config_json=json.dumps(settings or {}))
        return json.loads(self._call(node, "Configure", req).effective_json)

    def load_model(
        self,
        path: str,
        nodes: Sequence[str] = ("ue", "bs"),
        make_default: bool = True,
    ) -> dict[str, ModelSummary]:
        """Load a bundle (folder on the node, or a model id under its bundle roots) on the UE
        and/or the BS; on the UE it becomes the default unless ``make_default`` is False."""
        out = {}
        for node in nodes:
            req = pb.LoadModelRequest(path=str(path), make_default=make_default)
            out[node] = model_from_pb(self._call(node, "LoadModel", req))
        return out

    def swap_model(self, model: str, version: str = "") -> ModelSummary:
        """Make ``model`` the UE's default (loading it when it is a path or an unloaded id)."""
        return model_from_pb(
            self._call("ue", "SwapModel", ue_pb.SwapModelRequest(model_id=model, version=version))
        )

    def unload_model(self, model_id: str, node: str) -> ModelSummary:
        return model_from_pb(
            self._call(node, "UnloadModel", pb.UnloadModelRequest(model_id=model_id)).unloaded
        )

    def list_models(self, node: str) -> list[ModelSummary]:
        return [model_from_pb(m) for m in self._call(node, "ListModels", pb.ListModelsRequest()).models]

    # ------------------------------------------------------------------ reports

    def next_seqs(self, ue_id: int, n: int) -> list[int]:
        """``n`` fresh sequence numbers of UE ``ue_id`` from this client's counter."""
        start = self._seq.get(ue_id, 0)
        self._seq[ue_id] = start + n
        return list(range(start, start + n))

    def _request(
        self,
        keys: Sequence[Any],
        rate: str,
        model_id: str,
        ue_id: int | Sequence[int],
        seqs: Sequence[int] | None,
        csi_rs_snr_db: float | None,
        timeout_ms: int,
    ) -> Any:
        n = len(keys)
        ues = [int(ue_id)] * n if isinstance(ue_id, int | np.integer) else [int(u) for u in ue_id]
        if len(ues) != n:
            raise InvalidInput(f"{len(ues)} UE ids for {n} keys")
        if seqs is None:
            seqs = [self.next_seqs(u, 1)[0] for u in ues]
        if len(seqs) != n:
            raise InvalidInput(f"{len(seqs)} sequence numbers for {n} keys")
        req = ue_pb.SendReportsRequest(model_id=model_id, rate=rate, timeout_ms=timeout_ms)
        for k, u, s in zip(keys, ues, seqs, strict=True):
            req.items.add(world_key=key_to_pb(k), ue_id=u, seq=int(s))
        if csi_rs_snr_db is not None:
            req.csi_rs_snr_db = float(csi_rs_snr_db)
        return req

    def send(
        self,
        keys: Sequence[Any],
        *,
        rate: str = "",
        model_id: str = "",
        ue_id: int | Sequence[int] = 0,
        seqs: Sequence[int] | None = None,
        csi_rs_snr_db: float | None = None,
        timeout_s: float | None = None,
    ) -> list[ReportOutcome]:
        """Send one batch of world keys ``(dataset_id, split, sample_id)`` through UE -> channel
        -> BS; one :class:`ReportOutcome` per key, same order. ``seqs`` default to this client's
        per-UE counter (pass them for reproducible draws across runs)."""
        t = timeout_s or self.timeout_s
        req = self._request(keys, rate, model_id, ue_id, seqs, csi_rs_snr_db, int(t * 1e3))
        resp = self._call("ue", "SendReports", req, t)
        return [outcome_from_pb(r) for r in resp.results]

    def send_stream(
        self,
        batches: Iterable[dict[str, Any]],
        timeout_s: float | None = None,
    ) -> Iterator[list[ReportOutcome]]:
        """Many batches over one stream. Each batch is a dict of :meth:`send` keyword arguments
        plus ``keys``; yields one list of outcomes per batch, in order."""
        t = timeout_s or self.timeout_s

        def reqs() -> Iterator[Any]:
            for b in batches:
                b = dict(b)
                yield self._request(
                    b.pop("keys"),
                    b.pop("rate", ""),
                    b.pop("model_id", ""),
                    b.pop("ue_id", 0),
                    b.pop("seqs", None),
                    b.pop("csi_rs_snr_db", None),
                    int(t * 1e3),
                )

        stub = self._stubs.get("ue")
        if stub is None:
            raise InvalidInput("no ue address was given to LinkClient")
        try:
            for resp in stub.SendReportStream(reqs()):
                yield [outcome_from_pb(r) for r in resp.results]
        except grpc.RpcError as exc:
            raise LinkError("ue", "SendReportStream", exc.code(), exc.details() or "") from None

    def measure(
        self,
        keys: Sequence[Any],
        *,
        rate: str = "",
        model_id: str = "",
        ue_id: int = 0,
        seqs: Sequence[int] | None = None,
        csi_rs_snr_db: float | None = None,
    ) -> list[Any]:
        """The UE's encoded reports (``MeasuredReport`` messages) without sending them."""
        req = self._request(keys, rate, model_id, ue_id, seqs, csi_rs_snr_db, 0)
        return list(self._call("ue", "Measure", req).items)

    def transmit(self, reports: Sequence[Any], timeout_s: float | None = None) -> list[ReportOutcome]:
        """Send ready-made ``CsiReport`` messages straight to the emulator (-> BS)."""
        from csilink.rpc import ch_pb

        resp = self._call("channel", "Transmit", ch_pb.TransmitRequest(reports=list(reports)), timeout_s)
        return [outcome_from_pb(r) for r in resp.results]

    def decode(self, reports: Sequence[Any], timeout_s: float | None = None) -> list[ReportOutcome]:
        """Send ready-made ``CsiReport`` messages straight to the BS."""
        resp = self._call("bs", "Decode", bs_pb.DecodeRequest(reports=list(reports)), timeout_s)
        return [outcome_from_pb(r) for r in resp.results]

    # ------------------------------------------------------------------ image link

    def acquire_mimo_csi(
        self,
        *,
        ue_id: int,
        block: int,
        nt: int,
        nr: int | None = None,
        snr_db: float,
        seq: int = 0,
        model_id: str = "",
        estimator: str = "",
        feedback_bits: int = 0,
        want_true_h: bool = True,
        timeout_s: float | None = None,
    ) -> CsiAcquisition:
        """The UE sounds the ``nr x nt`` channel of ``(ue_id, block)``, estimates it (the model's
        estimator, or LS with ``estimator="ls"`` / no ``model_id``), keeps the estimate and, with
        ``feedback_bits`` > 0, sends it quantized over the uplink to the BS."""
        t = timeout_s or self.timeout_s
        req = ue_pb.AcquireMimoCsiRequest(
            link=_mimo_link(ue_id, block, nt, nr),
            snr_db=float(snr_db),
            seq=int(seq),
            model_id=model_id,
            estimator=estimator,
            feedback_bits=int(feedback_bits),
            want_true_h=want_true_h,
            timeout_ms=int(t * 1e3),
        )
        r = self._call("ue", "AcquireMimoCsi", req, t)
        return CsiAcquisition(
            ue_id=int(r.link.ue_id),
            block=int(r.link.block),
            nt=int(r.link.nt),
            nr=int(r.link.nr),
            h_est=complex_from_pb(r.h_est),
            h_true=complex_from_pb(r.h_true) if r.HasField("h_true") else None,
            estimator=r.estimator,
            feedback_bits=int(r.feedback_bits),
            feedback=outcome_from_pb(r.feedback) if r.HasField("feedback") else None,
            snr_db=float(r.snr_db),
            h_source=r.h_source,
            timings=_fields(r.timings),
        )

    def send_image(
        self,
        images: Sequence[Any],
        *,
        ue_id: int,
        block: int,
        nt: int,
        nr: int | None = None,
        model_id: str,
        snr_db: float,
        csi_mode: str = "feedback",
        h_true: np.ndarray | None = None,
        seq: int = 0,
        csi_seq: int | None = None,
        timeout_s: float | None = None,
    ) -> ImageOutcome:
        """The BS sends ``images`` (keys ``(dataset_id, split, index)`` of its image dataset) to
        the UE over the channel of ``(ue_id, block)``; the UE's reconstructions come back.
        ``csi_mode``: ``feedback`` (the H the UE fed back; ``csi_seq`` = that report's seq
        refuses stale CSI), ``perfect`` (``h_true``), ``none``."""
        t = timeout_s or self.timeout_s
        req = bs_pb.SendImageRequest(
            link=_mimo_link(ue_id, block, nt, nr),
            model_id=model_id,
            images=[_image_key(k) for k in images],
            csi_mode=csi_mode,
            snr_db=float(snr_db),
            seq=int(seq),
            timeout_ms=int(t * 1e3),
        )
        if h_true is not None:
            req.h_true.CopyFrom(complex_to_pb(h_true))
        if csi_seq is not None:
            req.csi_seq = int(csi_seq)
        return image_outcome_from_pb(self._call("bs", "SendImage", req, t))

    # ------------------------------------------------------------------ stats

    def stats(self, reset: bool = False) -> dict[str, dict[str, Any]]:
        """``{node: {"counters": {...}, "detail": {...}, "uptime_s": float}}`` of every node."""
        out = {}
        for node in self._stubs:
            s = self._call(node, "GetStats", pb.StatsRequest(reset=reset))
            out[node] = {
                "counters": dict(s.counters),
                "detail": json.loads(s.detail_json or "{}"),
                "uptime_s": s.uptime_ns / 1e9,
            }
        return out

    def reset_stats(self) -> None:
        self.stats(reset=True)
