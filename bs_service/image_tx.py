"""The BS as the transmitter of the downlink image link: image transmitters, the CSI store.

* :class:`LoadedTransmitter`: a bundle of an image-link family (``shared.image_link``) with its
  ``models.<pkg>.bs.ImageTransmitter`` (JSCC encoder, PyTorch): images + CSI -> complex
  symbols ``[B, Nt, n]`` at unit power.
* :class:`CsiStore`: the H the UEs fed back (``mimo-csi`` reports), by ``(ue_id, block)``,
  least recently used dropped first. Every report overwrites its block's entry, so the BS
  encodes with the UE's latest report, as a real BS would; the entry keeps the report's seq
  so a caller can refuse stale CSI.
* :func:`choose_csi`: what the encoder gets for a CSI mode (``feedback`` / ``perfect`` /
  ``none``).
"""

from __future__ import annotations

import collections
import importlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared import image_link as il
from shared.bundle import Bundle
from shared.errors import BundleError, InvalidInput, NotReady


@dataclass
class LoadedTransmitter:
    """An image-link bundle and its transmitter (same public fields as a ``LoadedDecoder``
    where ListModels needs them)."""

    bundle: Bundle
    tx: Any
    digest: str
    device: str

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.tx.sizes)

    @property
    def n_symbols(self) -> int:
        return int(self.tx.n_symbols)

    @property
    def image_size(self) -> int:
        return int(self.tx.image_size)

    @property
    def precoding(self) -> str:
        return str(getattr(self.tx, "precoding", "none"))

    def channel_uses(self, nt: int) -> int:
        """Channel uses per image on ``nt`` streams (data, plus Nt DMRS when precoded)."""
        return self.n_symbols // nt + (nt if self.precoding != "none" else 0)


def load_transmitter(bundle: Bundle, digest: str, device: str) -> LoadedTransmitter:
    """``models.<pkg>.bs.ImageTransmitter.from_bundle(bundle, device)``, warmed up: one zero image
    at the smallest size, so a transmitter that cannot run is refused at load, not per request."""
    pkg = "models." + bundle.family.replace("-", "_") + ".bs"
    try:
        mod = importlib.import_module(pkg)
    except ModuleNotFoundError as exc:
        raise BundleError(
            f"bundle {bundle.model_id}: family {bundle.family!r} has no image transmitter ({pkg}: {exc})"
        ) from None
    tx = mod.ImageTransmitter.from_bundle(bundle, device=device)
    lt = LoadedTransmitter(bundle, tx, digest, str(getattr(tx, "device", device)))
    n = lt.sizes[0]
    try:
        img = np.zeros((1, lt.image_size, lt.image_size, 3), np.uint8)
        snr = np.array([10.0], np.float32)
        if getattr(tx, "uses_csi", True):
            x = np.asarray(tx.encode(img, np.eye(n, dtype=np.complex64)[None], snr))
        else:  # without H the transmitter learns the stream count from ``nt``
            x = np.asarray(tx.encode(img, None, snr, nt=n))
    except Exception as exc:
        raise BundleError(
            f"bundle {bundle.model_id}: its image transmitter fails on a zero image: {exc}"
        ) from None
    if x.shape != (1, n, lt.channel_uses(n)):
        raise BundleError(
            f"bundle {bundle.model_id}: transmitter returns {list(x.shape)} for {n} streams, expected "
            f"[1, {n}, {lt.channel_uses(n)}] (n_symbols {lt.n_symbols})"
        )
    return lt


def encode_images(lt: LoadedTransmitter, images: np.ndarray, h: np.ndarray | None, nt: int,
                  snr_db: float) -> np.ndarray:
    """``[B, Nt, n]`` complex64 symbols for ``images`` uint8 ``[B, S, S, 3]`` with CSI ``h``
    (``[Nr, Nt]``, or None)."""
    b = images.shape[0]
    snr = np.full(b, snr_db, np.float32)
    if h is None:  # without H the transmitter learns the stream count from ``nt``
        x = np.asarray(lt.tx.encode(images, None, snr, nt=nt))
    else:
        x = np.asarray(lt.tx.encode(images, np.ascontiguousarray(np.broadcast_to(h, (b, *h.shape))), snr))
    want = (b, nt, lt.channel_uses(nt))
    if x.shape != want or not np.iscomplexobj(x):
        raise RuntimeError(
            f"transmitter of {lt.model_id} returned {x.dtype} {list(x.shape)}, expected {list(want)}"
        )
    if not np.all(np.isfinite(x)):
        raise RuntimeError(f"transmitter of {lt.model_id} returned NaN or Inf symbols")
    return x.astype(np.complex64, copy=False)


@dataclass
class StoredCsi:
    h: np.ndarray  # [Nr, Nt] complex64, dequantized
    seq: int  # of the report
    rate: str


class CsiStore:
    """Fed-back H by ``(ue_id, block)``, bounded (LRU)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._d: collections.OrderedDict[tuple[int, int], StoredCsi] = collections.OrderedDict()

    def put(self, ue_id: int, block: int, csi: StoredCsi) -> None:
        with self._lock:
            self._d[(ue_id, block)] = csi
            self._d.move_to_end((ue_id, block))
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def get(self, ue_id: int, block: int) -> StoredCsi | None:
        with self._lock:
            return self._d.get((ue_id, block))

    def __len__(self) -> int:
        return len(self._d)


def choose_csi(
    mode: str,
    lt: LoadedTransmitter,
    store: CsiStore,
    ue_id: int,
    block: int,
    nt: int,
    nr: int,
    h_true: np.ndarray | None,
    csi_seq: int | None,
) -> tuple[np.ndarray | None, int]:
    """The encoder's CSI for ``mode`` and the seq of the report it came from (0 if none)."""
    if mode not in il.CSI_MODES:
        raise InvalidInput(f"csi_mode must be one of {', '.join(il.CSI_MODES)}, got {mode!r}")
    uses = bool(getattr(lt.tx, "uses_csi", True))
    if mode == "none":
        if uses:
            raise InvalidInput(
                f"model {lt.model_id} encodes with CSI: csi_mode 'none' is for models that do not "
                "(use 'feedback' or 'perfect')"
            )
        return None, 0
    if mode == "perfect":
        if h_true is None:
            raise InvalidInput("csi_mode 'perfect' needs h_true (the true H from the sounding metadata)")
        if h_true.shape != (nr, nt):
            raise InvalidInput(f"h_true must be [Nr={nr}, Nt={nt}], got {list(h_true.shape)}")
        return h_true.astype(np.complex64), 0
    got = store.get(ue_id, block)
    if got is None:
        raise NotReady(
            f"the BS has no CSI of ue {ue_id} block {block} (no mimo-csi report arrived: AcquireMimoCsi "
            "with feedback first, or the report was lost on the uplink)"
        )
    if got.h.shape != (nr, nt):
        raise NotReady(
            f"the BS's CSI of ue {ue_id} block {block} is {got.h.shape[0]}x{got.h.shape[1]} (Nr x Nt), "
            f"the request is {nr}x{nt}"
        )
    if csi_seq is not None and got.seq != csi_seq:
        raise NotReady(
            f"the BS's CSI of ue {ue_id} block {block} is from report seq {got.seq}, the request wants "
            f"seq {csi_seq} (stale: that report did not arrive)"
        )
    return got.h, got.seq
