"""The UE node's work, free of gRPC: models, measurement, encoding.

``UeNode.measure_encode(items, model_id, rate, csi_rs_snr_db)`` reads each sample's DL CSI
(``x_ad``, the dataset's UE view only), adds channel-estimation noise when asked (keyed draw
by ``(seed, ue_id, seq)``), runs the model's encoder in batches and returns one
:class:`Encoded` per item (payload or error). The servicer turns them into ``CsiReport``s.

Image link (downlink receiver): a bundle of an image-link family (``shared.image_link``)
loads as an ``ImageReceiver`` (``shared.image_rx``: learned channel estimator + decoder, ONNX)
instead of a CSI encoder. ``estimate`` turns received pilots into the UE's own channel estimate,
kept per ``(ue_id, block)`` in a bounded :class:`EstimateCache`; ``receive_images`` equalises and
decodes with that estimate (never with the true channel, which the UE does not have).

numpy + onnxruntime only: no torch anywhere on this path.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csilink.server_common import DatasetViews, settle_heap
from shared import image_link as il
from shared import mimo
from shared.bundle import MANIFEST, Bundle, resolve
from shared.errors import CsilinkError, InvalidInput, ModelMismatch, NotFound, NotReady
from shared.estimation import CSI_RS_STREAM
from shared.estimation import estimation_noise as _estimation_noise
from shared.wire import Bits
from ue_service.config import UeSettings

log = logging.getLogger("csilink.ue")

#: Last word of the SeedSequence key of the estimation noise (the channel emulator's streams
#: use 0..3 with the same (seed, ue_id, seq) prefix, so the UE's draw never coincides).
ESTIMATION_STREAM = CSI_RS_STREAM


@dataclass
class LoadedModel:
    """A bundle and its UE encoder."""

    bundle: Bundle
    encoder: Any
    digest: str

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def is_image(self) -> bool:
        """An image-link receiver (``encoder`` is an ``ImageReceiver``), not a CSI encoder."""
        return il.is_image_family(self.bundle.family)


@dataclass
class Estimate:
    """The UE's channel estimate of one block, as ReceiveImage uses it."""

    h: np.ndarray  # [Nr, Nt] complex64
    snr_db: float
    seq: int
    estimator: str


class EstimateCache:
    """The UE's channel estimates by ``(ue_id, block)``, least recently used dropped first: a
    block's estimate is needed only until its images arrive."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._d: collections.OrderedDict[tuple[int, int], Estimate] = collections.OrderedDict()

    def put(self, ue_id: int, block: int, est: Estimate) -> None:
        with self._lock:
            self._d[(ue_id, block)] = est
            self._d.move_to_end((ue_id, block))
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def get(self, ue_id: int, block: int) -> Estimate:
        with self._lock:
            est = self._d.get((ue_id, block))
            if est is not None:
                self._d.move_to_end((ue_id, block))
        if est is None:
            raise NotReady(
                f"the UE has no channel estimate of ue {ue_id} block {block} (AcquireMimoCsi first; "
                f"it keeps the last {self.size} blocks)"
            )
        return est

    def __len__(self) -> int:
        return len(self._d)


@dataclass
class Item:
    """One report to make."""

    key: tuple[str, str, int, int]  # (dataset_id, split, sample_id, time_index)
    ue_id: int
    seq: int


@dataclass
class Encoded:
    """What the UE made of one item: a payload, or an error (``error`` set, payload None)."""

    item: Item
    payload: Bits | np.ndarray | None = None
    error: CsilinkError | None = None
    timings: dict[str, int] = field(default_factory=dict)


def make_encoder(bundle: Bundle, threads: int = 1) -> Any:
    """The UE half of ``bundle`` (``shared.ue_encoder``: the ONNX encoder, or a non-learned
    family's numpy encoder from ``models/<pkg>/ue.py``; for an image-link family the
    ``shared.image_rx.ImageReceiver``)."""
    if il.is_image_family(bundle.family):
        from shared.image_rx import ImageReceiver

        return ImageReceiver.from_bundle(bundle)
    from shared.ue_encoder import UeEncoder

    return UeEncoder.from_bundle(bundle, threads=threads)


def estimation_noise(x: np.ndarray, snr_db: float, seed: int, ue_id: int, seq: int) -> np.ndarray:
    """``x + n`` with ``n ~ CN(0, P/snr)``, ``P = mean |x|^2`` of this sample: the UE's channel
    estimate from CSI-RS at ``snr_db``. Keyed draw: same (seed, ue_id, seq) -> same noise.

    :input x: ``[Nt, T]`` complex64
    :output: ``[Nt, T]`` complex64
    """
    return _estimation_noise(x, snr_db, [seed, ue_id, seq, ESTIMATION_STREAM])


class UeDatasets(DatasetViews):
    """The UE's view of the world: ``x_*`` only (the dataset's ``ue_view()``)."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(paths, "ue")

    def read_x(self, dataset_id: str, split: str, sample_ids: np.ndarray, field: str = "x_ad") -> np.ndarray:
        """``field`` (``x_ad``: angular-delay ``[n, Nt, T]``; ``x_sf``: spatial-frequency
        ``[n, Nt, Nsc]``) of the samples, complex64, in the order given."""
        return np.asarray(self.read(dataset_id, split, field, sample_ids), dtype=np.complex64)


class UeNode:
    """Models + datasets + encoding. Thread-safe: requests run concurrently."""

    def __init__(self, settings: UeSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._models: dict[str, LoadedModel] = {}
        self._default: str | None = None
        self.data = UeDatasets(settings.datasets)
        self.estimates = EstimateCache(settings.estimate_cache_size)
        for i, ref in enumerate(settings.bundles):
            self.load_model(ref, make_default=(i == 0))

    # ------------------------------------------------------------------ models

    def _resolve(self, ref: str) -> Path:
        return resolve(ref, tuple(self.settings.bundle_roots))

    def load_model(self, ref: str, make_default: bool = False) -> LoadedModel:
        """Load (hash-verified) and keep a bundle; replaces a loaded model with the same id."""
        if not ref:
            raise InvalidInput("LoadModel needs a bundle path or model id")
        path = self._resolve(ref)
        bundle = Bundle.load(path)
        digest = hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest()
        encoder = make_encoder(bundle, threads=self.settings.threads)
        lm = LoadedModel(bundle, encoder, digest)
        with self._lock:
            self._models[bundle.model_id] = lm
            # The default model makes the CSI reports: an image receiver never becomes it.
            if (make_default or self._default is None) and not lm.is_image:
                self._default = bundle.model_id
        settle_heap()
        log.info("loaded %s v%s (%s) from %s", bundle.model_id, bundle.version, bundle.family, path)
        return lm

    def swap_model(self, ref: str, version: str = "") -> LoadedModel:
        """Make ``ref`` the default model, loading it first unless it is loaded already."""
        with self._lock:
            lm = self._models.get(ref)
        if lm is None:
            lm = self.load_model(ref, make_default=False)
        if version and lm.version != version:
            raise ModelMismatch(f"model {lm.model_id} is version {lm.version}, the swap asked for {version}")
        if lm.is_image:
            raise InvalidInput(
                f"model {lm.model_id} is an image-link receiver (family {lm.bundle.family}); the "
                "default model makes CSI reports"
            )
        with self._lock:
            self._default = lm.model_id
        log.info("default model is now %s v%s", lm.model_id, lm.version)
        return lm

    def unload_model(self, model_id: str) -> LoadedModel:
        with self._lock:
            lm = self._models.pop(model_id, None)
            if lm is None:
                raise NotFound(f"the UE has no model {model_id!r} loaded; it has {sorted(self._models)}")
            if self._default == model_id:
                self._default = next((m.model_id for m in self._models.values() if not m.is_image), None)
        return lm

    def models(self) -> tuple[list[LoadedModel], str | None]:
        with self._lock:
            return list(self._models.values()), self._default

    def model(self, model_id: str = "") -> LoadedModel:
        """The loaded model ``model_id`` ("" = the default); NOT_FOUND names what is loaded."""
        with self._lock:
            mid = model_id or self._default
            if mid is None:
                raise NotFound("the UE has no model loaded (LoadModel first)")
            lm = self._models.get(mid)
            if lm is None:
                raise NotFound(f"the UE has no model {mid!r} loaded; it has {sorted(self._models)}")
        if lm.is_image:
            raise InvalidInput(
                f"model {lm.model_id} is an image-link receiver (family {lm.bundle.family}): it makes "
                "no CSI reports"
            )
        return lm

    def image_model(self, model_id: str, version: str = "") -> LoadedModel:
        """The loaded image receiver ``model_id``; NOT_FOUND when not loaded, FAILED_PRECONDITION
        when ``version`` (the transmitter's) differs, INVALID_ARGUMENT when it is a CSI model."""
        if not model_id:
            raise InvalidInput("the image link needs a model_id (an image-link bundle loaded at the UE)")
        with self._lock:
            lm = self._models.get(model_id)
            if lm is None:
                raise NotFound(f"the UE has no model {model_id!r} loaded; it has {sorted(self._models)}")
        if not lm.is_image:
            raise InvalidInput(
                f"model {model_id} is a CSI-report model (family {lm.bundle.family}), not an image-link "
                f"receiver (families {', '.join(il.IMAGE_FAMILIES)})"
            )
        if version and version != lm.version:
            raise ModelMismatch(
                f"images made by model {model_id!r} v{version}, but the UE has {model_id!r} v{lm.version} "
                "loaded: version mismatch"
            )
        return lm

    # ------------------------------------------------------------------ image link

    def estimate(self, y_p: np.ndarray, snr_db: float, lm: LoadedModel | None) -> np.ndarray:
        """The UE's channel estimate ``[Nr, Nt]`` from received pilots ``[Nr, Nt]``: the image
        receiver's learned estimator, or least squares when ``lm`` is None."""
        if lm is None:
            return mimo.ls_estimate(y_p)[0]
        rx = lm.encoder
        h = rx.estimate(y_p[None].astype(np.complex64), np.array([snr_db], np.float32))
        h = np.asarray(h)
        if h.shape != (1, *y_p.shape) or not np.iscomplexobj(h) or not np.all(np.isfinite(h)):
            raise RuntimeError(
                f"estimator of {lm.model_id} returned {h.dtype} {list(h.shape)} for pilots {list(y_p.shape)}"
            )
        return h[0].astype(np.complex64)

    def receive_images(
        self, lm: LoadedModel, ue_id: int, block: int, y: np.ndarray, snr_db: float
    ) -> np.ndarray:
        """Equalise ``y [B, Nr, n]`` with the cached estimate of ``(ue_id, block)`` and decode:
        uint8 ``[B, S, S, 3]``."""
        rx = lm.encoder
        est = self.estimates.get(ue_id, block)
        b, nr = y.shape[0], y.shape[1]
        nt = est.h.shape[1]
        uses = int(rx.channel_uses(nt)) if hasattr(rx, "channel_uses") else int(rx.n_symbols) // nt
        if est.h.shape[0] != nr or y.shape[2] != uses:
            raise NotReady(
                f"the UE's estimate of ue {ue_id} block {block} is {est.h.shape[0]}x{est.h.shape[1]} "
                f"(Nr x Nt); the received symbols {list(y.shape)} are for another size"
            )
        h_e = np.ascontiguousarray(np.broadcast_to(est.h, (b, *est.h.shape)))
        out = np.asarray(rx.decode(y, h_e, np.full(b, snr_db, np.float32)))
        s = int(rx.image_size)
        if out.dtype != np.uint8 or out.shape != (b, s, s, 3):
            raise RuntimeError(
                f"decoder of {lm.model_id} returned {out.dtype} {list(out.shape)}, expected uint8 "
                f"[{b}, {s}, {s}, 3]"
            )
        return out

    # ------------------------------------------------------------------ work

    def measure_encode(
        self, items: list[Item], lm: LoadedModel, rate: str, csi_rs_snr_db: float | None
    ) -> list[Encoded]:
        """Read, estimate and encode; one :class:`Encoded` per item, same order."""
        lm.bundle.manifest.rate(rate)  # NotFound for an unknown rate: request-level
        out = [Encoded(it) for it in items]
        snr = self.settings.csi_rs_snr_db if csi_rs_snr_db is None else csi_rs_snr_db
        field = "x_" + lm.bundle.manifest.target.domain  # the domain the encoder takes

        # Read, grouped by (dataset, split) so each group is one dataset read.
        t0 = time.perf_counter_ns()
        x = np.zeros((len(items), *lm.bundle.manifest.input_shape), np.complex64)
        ok = np.zeros(len(items), bool)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, it in enumerate(items):
            if it.key[3] != 0:
                out[i].error = InvalidInput(
                    f"time_index {it.key[3]} not available: datasets hold one snapshot (0)"
                )
                continue
            groups.setdefault((it.key[0], it.key[1]), []).append(i)
        for (did, split), idx in groups.items():
            ids = np.array([items[i].key[2] for i in idx], np.int64)
            try:
                xs = self.data.read_x(did, split, ids, field)
            except CsilinkError as exc:
                # One unknown id must not sink the group: retry one by one to find the bad ones.
                if len(idx) == 1:
                    out[idx[0]].error = exc
                    continue
                for i in idx:
                    try:
                        x[i] = self.data.read_x(did, split, np.array([items[i].key[2]], np.int64), field)[0]
                        ok[i] = True
                    except CsilinkError as exc1:
                        out[i].error = exc1
                continue
            if xs.shape[1:] != x.shape[1:]:
                err = InvalidInput(
                    f"dataset {did or '(default)'} {field} is {list(xs.shape[1:])}, model "
                    f"{lm.model_id} takes {list(x.shape[1:])}"
                )
                for i in idx:
                    out[i].error = err
                continue
            x[idx] = xs
            ok[idx] = True
        t_read = time.perf_counter_ns() - t0

        t0 = time.perf_counter_ns()
        if snr is not None:
            for i in np.flatnonzero(ok):
                x[i] = estimation_noise(x[i], float(snr), self.settings.seed, items[i].ue_id, items[i].seq)
        t_est = time.perf_counter_ns() - t0

        # Encode the good ones in batches.
        good = np.flatnonzero(ok)
        bs = self.settings.encode_batch
        for s in range(0, len(good), bs):
            idx = good[s : s + bs]
            t0 = time.perf_counter_ns()
            try:
                payloads = lm.encoder.encode(x[idx], rate or None)
            except CsilinkError as exc:
                for i in idx:
                    out[i].error = exc
                continue
            t_enc = time.perf_counter_ns() - t0
            for i, p in zip(idx, payloads, strict=True):
                out[i].payload = p
                out[i].timings["ue_encode_ns"] = t_enc
        for e in out:
            e.timings["ue_read_ns"] = t_read
            e.timings["ue_estimate_ns"] = t_est
        return out

    def close(self) -> None:
        self.data.close()
