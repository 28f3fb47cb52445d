"""Scaffolding shared by the three gRPC services (UE, channel emulator, BS).

* :func:`create_server`: a ``grpc.Server`` bound to ``host:port`` (127.0.0.1 by default; port
  0 picks a free one) with message size limits, health checking, reflection and the
  :class:`ServiceInterceptor`; returns ``(server, port)``.
* :class:`ServiceInterceptor`: the ONE place where domain errors (``shared.errors``) become
  gRPC status codes (:func:`status_for`), plus per-method timing, counters and logging.
* :func:`serve_forever`: blocks until SIGTERM/SIGINT, then flips health to NOT_SERVING and
  stops with a grace period so calls in flight finish.
* :func:`call_with_retry`: forwarders call the next hop with it: UNAVAILABLE is retried with
  exponential backoff until the deadline (a restarted peer is picked up again: gRPC channels
  reconnect by themselves); other errors become :class:`RpcFailure` naming the hop.
* :class:`ResultCache`: small LRU of recent results by ``(ue_id, seq)``, so a retried report is
  answered from the cache and not counted twice.
* :func:`load_settings` / :func:`patch_settings`: pydantic settings from YAML + flags, and the
  JSON partial updates of the ``Configure`` RPCs.
* :func:`settle_heap`: after start-up and model loads, hides the long-lived heap from the
  cyclic garbage collector, so a full collection no longer stalls a request.
"""

from __future__ import annotations

import argparse
import collections
import gc
import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import BaseModel, ValidationError

from shared.errors import (
    BundleError,
    CsilinkError,
    DatasetError,
    InvalidInput,
    ModelMismatch,
    NotFound,
    NotReady,
    TooLarge,
)

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class RpcFailure(CsilinkError):
    """A call to another node failed; carries the gRPC code to pass on unchanged."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- errors -> status

_STATUS: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ModelMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (BundleError, grpc.StatusCode.FAILED_PRECONDITION),
    (DatasetError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotReady, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
]


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """gRPC code and message for an exception: the one mapping every service uses.

    ``InvalidInput`` -> INVALID_ARGUMENT, ``NotFound`` -> NOT_FOUND, ``ModelMismatch`` /
    ``BundleError`` / ``DatasetError`` / ``NotReady`` -> FAILED_PRECONDITION, ``TooLarge`` ->
    RESOURCE_EXHAUSTED, :class:`RpcFailure` -> its own code, a downstream ``grpc.RpcError`` ->
    its code; anything else is a bug -> INTERNAL (with the exception type in the message).
    """
    if isinstance(exc, RpcFailure):
        return exc.code, str(exc)
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return exc.code(), str(exc.details() if hasattr(exc, "details") else exc)
    for typ, code in _STATUS:
        if isinstance(exc, typ):
            return code, str(exc) or typ.__name__
    if isinstance(exc, CsilinkError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- timing / stats


class MethodStats:
    """Per-method call counts, error codes and latency percentiles (last ``window`` calls)."""

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, int] = collections.Counter()
        self._codes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self._lat: dict[str, collections.deque[float]] = collections.defaultdict(
            lambda: collections.deque(maxlen=window)
        )

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        with self._lock:
            self._calls[method] += 1
            self._codes[method][code.name] += 1
            self._lat[method].append(seconds)

    def snapshot(self) -> dict[str, Any]:
        import numpy as np

        with self._lock:
            out = {}
            for m, n in self._calls.items():
                lat = np.asarray(self._lat[m]) * 1e3
                out[m] = {
                    "calls": n,
                    "codes": dict(self._codes[m]),
                    "p50_ms": float(np.percentile(lat, 50)) if lat.size else 0.0,
                    "p99_ms": float(np.percentile(lat, 99)) if lat.size else 0.0,
                }
            return out

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._codes.clear()
            self._lat.clear()


def _aborted_code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The code a servicer already set with ``context.abort``/``set_code`` (None if none)."""
    try:
        code = context.code()
    except Exception:  # older grpc without ServicerContext.code()
        return None
    if code is None or code == grpc.StatusCode.OK:
        return None
    return code if isinstance(code, grpc.StatusCode) else None


class ServiceInterceptor(grpc.ServerInterceptor):
    """Error mapping (:func:`status_for`), timing and logging around every RPC."""

    def __init__(self, node: str, stats: MethodStats | None = None) -> None:
        self.node = node
        self.stats = stats or MethodStats()
        self.log = logging.getLogger(f"csilink.{node}")

    def _fail(self, method: str, exc: BaseException, context: grpc.ServicerContext) -> grpc.StatusCode:
        already = _aborted_code(context)
        if already is not None:  # the servicer aborted on purpose: keep its status
            raise exc
        code, msg = status_for(exc)
        if code == grpc.StatusCode.INTERNAL:
            self.log.exception("%s failed", method)
        else:
            self.log.info("%s -> %s: %s", method, code.name, msg)
        context.abort(code, msg)
        return code  # unreachable: abort raises

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if method in ("Check", "Watch", "ServerReflectionInfo"):
            return handler  # health and reflection: untouched
        stats, fail, log_ = self.stats, self._fail, self.log

        def unary(behavior: Callable) -> Callable:
            def inner(request: Any, context: grpc.ServicerContext) -> Any:
                t0 = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    return behavior(request, context)
                except Exception as exc:
                    code = _aborted_code(context) or status_for(exc)[0]
                    fail(method, exc, context)
                finally:
                    dt = time.perf_counter() - t0
                    stats.record(method, code, dt)
                    log_.debug("%s %s %.2f ms", method, code.name, dt * 1e3)

            return inner

        def streaming(behavior: Callable) -> Callable:
            def inner(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                t0 = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    yield from behavior(request, context)
                except Exception as exc:
                    code = _aborted_code(context) or status_for(exc)[0]
                    fail(method, exc, context)
                finally:
                    stats.record(method, code, time.perf_counter() - t0)

            return inner

        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kw)
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kw)


# --------------------------------------------------------------------------- server factory


def message_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, Any]]:
    """Channel/server options: send and receive limits (beyond: RESOURCE_EXHAUSTED)."""
    return [
        ("grpc.max_send_message_length", int(max_message_bytes)),
        ("grpc.max_receive_message_length", int(max_message_bytes)),
    ]


def client_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, Any]]:
    """Options for channels to another node: size limits, fast reconnection after a restart."""
    return message_options(max_message_bytes) + [
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        ("grpc.enable_retries", 0),  # retries are ours (call_with_retry), bounded by the deadline
    ]


def create_server(
    register: Callable[[grpc.Server], None],
    service_names: Iterable[str],
    *,
    node: str,
    host: str = DEFAULT_HOST,
    port: int = 0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_workers: int = 16,
    health_servicer: health.HealthServicer | None = None,
    stats: MethodStats | None = None,
) -> tuple[grpc.Server, int]:
    """Build, bind and START a server; returns ``(server, bound_port)``.

    ``register(server)`` adds the servicers (``add_XServicer_to_server``). The health service
    reports SERVING for ``""`` and every name in ``service_names``; reflection lists them.
    Raises ``OSError`` when the address cannot be bound.
    """
    names = list(service_names)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{node}-rpc"),
        interceptors=[ServiceInterceptor(node, stats)],
        options=message_options(max_message_bytes) + [("grpc.so_reuseport", 0)],
    )
    register(server)
    hs = health_servicer or health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"{node}: cannot bind {host}:{port}")
    server.start()
    for name in ["", *names]:
        hs.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on %s:%d", node, host, bound)
    return server, bound


def settle_heap() -> None:
    """Collect once, then freeze what survives (``gc.freeze``): a node's heap is mostly
    long-lived modules, models and tensors (torch alone brings ~10^5 objects) that every full
    collection would walk again, on whichever request thread triggered it. Measured on the BS:
    full collections of 20-90 ms during a run, each one a latency spike for every report
    queued behind it. Called when serving starts and after every model load."""
    gc.collect()
    gc.freeze()


def serve_forever(
    server: grpc.Server,
    health_servicer: health.HealthServicer,
    *,
    grace_s: float = 5.0,
    on_stop: Callable[[], None] | None = None,
    port_file: str | Path | None = None,
    port: int | None = None,
) -> None:
    """Block until SIGTERM or SIGINT; then NOT_SERVING, stop with ``grace_s`` for calls in
    flight, run ``on_stop``. Writes ``port`` to ``port_file`` first (atomically) when given,
    so a launcher that asked for port 0 learns the bound one."""
    stop = threading.Event()

    def _handler(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping (grace %.1f s)", signum, grace_s)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    settle_heap()  # everything loaded at start-up is long-lived
    if port_file is not None and port is not None:
        write_port_file(port_file, port)
    while not stop.wait(0.5):
        pass
    health_servicer.enter_graceful_shutdown()
    server.stop(grace_s).wait()
    if on_stop is not None:
        on_stop()
    log.info("stopped")


def write_port_file(path: str | Path, port: int) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{port}\n")
    tmp.replace(path)


# --------------------------------------------------------------------------- forwarding


def time_left(context: grpc.ServicerContext | None, default_s: float, margin_s: float = 0.05) -> float:
    """Seconds a forwarded call may take: ``default_s`` capped by the caller's own deadline
    (minus a margin to send the answer back)."""
    if context is None:
        return default_s
    remaining = context.time_remaining()
    if remaining is None:
        return default_s
    return max(0.0, min(default_s, remaining - margin_s))


def call_with_retry(
    fn: Callable[..., Any],
    request: Any,
    *,
    timeout_s: float,
    what: str,
    retry_codes: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.UNAVAILABLE,),
    base_delay_s: float = 0.05,
    max_delay_s: float = 1.0,
) -> Any:
    """Call ``fn(request, timeout=...)`` retrying ``retry_codes`` with exponential backoff while
    the deadline allows. Failures raise :class:`RpcFailure` with the original code and a message
    naming the hop (``what``) and the number of attempts."""
    deadline = time.monotonic() + timeout_s
    delay, attempt = base_delay_s, 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RpcFailure(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"{what}: no answer within {timeout_s:.2f} s ({attempt - 1} attempts)",
            )
        try:
            return fn(request, timeout=remaining)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = exc.details() if hasattr(exc, "details") else str(exc)
            left = deadline - time.monotonic()
            if code in retry_codes and left > delay:
                log.info("%s: %s (attempt %d), retrying in %.0f ms", what, code.name, attempt, delay * 1e3)
                time.sleep(delay)
                delay = min(delay * 2, max_delay_s)
                continue
            raise RpcFailure(code, f"{what}: {code.name}: {details} (after {attempt} attempt(s))") from None


# --------------------------------------------------------------------------- idempotence


class ResultCache:
    """LRU of recent results by ``(ue_id, seq)`` with a fingerprint of the request.

    A retried report (same key, same fingerprint) gets the stored result back and is not
    counted again; the same key with a different fingerprint (e.g. a new scenario reusing
    sequence numbers) is a new report and replaces the entry.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._d: collections.OrderedDict[tuple[int, int], tuple[bytes, bytes]] = collections.OrderedDict()
        self.hits = 0

    @staticmethod
    def fingerprint(*parts: bytes | str) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for p in parts:
            h.update(p.encode() if isinstance(p, str) else p)
            h.update(b"\0")
        return h.digest()

    def get(self, key: tuple[int, int], fp: bytes) -> bytes | None:
        with self._lock:
            hit = self._d.get(key)
            if hit is None or hit[0] != fp:
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return hit[1]

    def put(self, key: tuple[int, int], fp: bytes, value: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._d[key] = (fp, value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


# --------------------------------------------------------------------------- settings

S = TypeVar("S", bound=BaseModel)


def _validation_message(exc: ValidationError, what: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "top"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{what}: {where}: {first['msg']}{more}"


def load_settings(cls: type[S], config_path: str | Path | None, section: str, overrides: dict[str, Any]) -> S:
    """Settings from a YAML file (the whole file, or its ``section:`` mapping when it has one)
    with ``overrides`` (non-None command-line values) on top."""
    data: dict[str, Any] = {}
    if config_path:
        import yaml

        p = Path(config_path)
        if not p.is_file():
            raise InvalidInput(f"config file {p} does not exist")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"config file {p} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise InvalidInput(f"config file {p} must hold a mapping, got {type(raw).__name__}")
        data = raw.get(section, raw) if isinstance(raw.get(section), dict) else raw
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_validation_message(exc, f"{section} settings")) from None


def patch_settings(current: S, patch_json: str, *, frozen: Iterable[str] = ()) -> S:
    """``current`` updated with a JSON object (keys left out keep their value). Keys named in
    ``frozen`` (e.g. host, port) cannot change at run time."""
    if not patch_json.strip():
        return current
    try:
        patch = json.loads(patch_json)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"config_json is not valid JSON: {exc}") from None
    if not isinstance(patch, dict):
        raise InvalidInput(f"config_json must be a JSON object, got {type(patch).__name__}")
    for key in frozen:
        if key in patch and patch[key] != getattr(current, key, None):
            raise InvalidInput(f"setting {key!r} cannot change at run time (restart the node)")
    try:
        return type(current).model_validate({**current.model_dump(), **patch})
    except ValidationError as exc:
        raise InvalidInput(_validation_message(exc, "config_json")) from None


# --------------------------------------------------------------------------- command line


def add_common_args(parser: Any, default_port: int) -> None:
    """Flags every node takes: ``--host --port --config --port-file -v``."""
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help=f"port (default {default_port}; 0 = any free port)"
    )
    parser.add_argument(
        "--config", default=None, help="YAML settings file (its section for this node if any)"
    )
    parser.add_argument("--port-file", default=None, help="write the bound port here once serving")
    # SUPPRESS: under `csilink -v serve ...` the top-level flag must not be reset by this one.
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )


def setup_logging(verbose: bool) -> None:
    """Log format of every node; ``force`` because the ``csilink`` CLI may have configured it."""
    logging.basicConfig(
        force=True,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# --------------------------------------------------------------------------- the world (datasets)


class DatasetViews:
    """A node's view (``"ue"`` or ``"bs"``) of one or more dataset files, by dataset id.

    Files are opened (and their structure validated) at construction; keys with an empty
    dataset id read the first file. Fields outside the view are refused by ``shared.dataset``
    (the UE never reads y/z, the BS never x/z).
    """

    #: Fields up to this size in all are held in memory after their first read, so a service
    #: answering one report at a time never goes back to the file (the 1,000-sample test split's
    #: ``x_ad`` is 8 MB); larger fields are read from the file per request.
    PRELOAD_BYTES = 512 * 2**20

    def __init__(self, paths: list[str], view: str, preload_bytes: int | None = None) -> None:
        self._paths = list(paths)
        self._view = view
        self._preload_budget = self.PRELOAD_BYTES if preload_bytes is None else int(preload_bytes)
        self._preload_left = self._preload_budget
        self._preloaded: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._ds: dict[str, Any] = {}
        self._splits: dict[tuple[str, str], Any] = {}
        self._default: str | None = None
        with self._lock:
            self._open()  # fail at start (or at Configure) on a missing or broken file

    def _open(self) -> None:
        if self._ds or not self._paths:
            return
        from shared.dataset import open_dataset

        for p in self._paths:
            ds = open_dataset(p)
            view = ds.ue_view() if self._view == "ue" else ds.bs_view()
            self._ds[str(ds.dataset_id)] = view
            self._default = self._default or str(ds.dataset_id)

    def split(self, dataset_id: str, split: str) -> Any:
        with self._lock:
            self._open()
            if not self._ds:
                raise NotFound(f"the {self._view.upper()} has no dataset configured (settings.datasets)")
            did = dataset_id or self._default
            assert did is not None
            if did not in self._ds:
                who = self._view.upper()
                raise NotFound(f"the {who} has no dataset {dataset_id!r}; it has {sorted(self._ds)}")
            key = (did, split)
            if key not in self._splits:
                self._splits[key] = self._ds[did].split(split)
            return self._splits[key]

    def read(self, dataset_id: str, split: str, field: str, sample_ids: Any) -> Any:
        """``field`` of the samples (by global sample id), in the order given; ``NotFound`` for
        an id, split or dataset the node does not have."""
        import numpy as np

        sp = self.split(dataset_id, split)
        idx = np.array([sp.index_of(int(s)) for s in sample_ids], np.int64)
        key = (dataset_id, split, field)
        if key not in self._preloaded:
            with self._lock:
                if key not in self._preloaded:
                    self._preloaded.add(key)  # try once; a field too big stays on disk
                    shape = sp.shape(field)
                    nbytes = int(np.prod(shape)) * np.dtype(sp._dataset(field).dtype).itemsize
                    if nbytes <= self._preload_left and sp.preload(field, nbytes):
                        self._preload_left -= nbytes
        return sp.read(field, idx)

    def close(self) -> None:
        with self._lock:
            for ds in {id(v): v for v in self._ds.values()}.values():
                ds.close()
            self._ds.clear()
            self._splits.clear()
            self._preloaded.clear()
            self._preload_left = self._preload_budget
