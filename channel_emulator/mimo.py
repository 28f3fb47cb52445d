"""The downlink MIMO block-fading channel of the semantic image link (``y = H x + n``).

One realisation ``H [Nr, Nt]`` per ``(link seed, ue_id, block)``: drawn from the channel pool
file (``datagen.mimo``, ``csilink-mimo-pool/1``: a group ``"<Nr>x<Nt>"`` per size holding
``train`` / ``test`` complex64 ``[n, Nr, Nt]`` of unit average power; the emulator uses one
split, ``test`` by default) at an index keyed by those, or i.i.d. Rayleigh ``CN(0, 1)`` when no
pool is configured. Nothing is stored per block, so the pilots and the data of one block see
the SAME H whatever the order of the calls or a restart of the emulator in between.

Noise: pilots are keyed by ``(seed, ue_id, block, PILOTS, seq)``, image ``k`` of a data
transmission by ``(seed, ue_id, block, DATA, seq + k)``: a repeated request gets the same
noise, and images do not depend on how they were batched. The keys start with a tag word of
their own, so they never meet the uplink's ``(seed, ue_id, seq, stream)`` draws
(``channel_emulator.rng``).

The math and conventions (pilots, SNR, unit power) are ``shared.mimo``'s.

>>> ch = MimoChannel(None)
>>> h1, _ = ch.h(seed=1, ue_id=0, block=7, nr=2, nt=2)
>>> y_p, h2, src = ch.sound(seed=1, ue_id=0, block=7, nr=2, nt=2, snr_db=100.0, seq=0)
>>> bool(np.array_equal(h1, h2)), src, bool(np.allclose(y_p, h1, atol=1e-4))
(True, 'rayleigh', True)
"""

from __future__ import annotations

import logging
import threading
from enum import IntEnum
from pathlib import Path

import numpy as np

from channel_emulator.rng import ue_key
from shared import mimo
from shared.errors import DatasetError, InvalidInput

log = logging.getLogger("csilink.channel")

#: First word of every MIMO seed key ("MIMO" in ASCII).
MIMO_TAG = 0x4D494D4F
#: Largest average symbol power per image accepted (unit power is the convention; a transmitter
#: far above it would fake a higher SNR).
MAX_SYMBOL_POWER = 10.0


class MimoStream(IntEnum):
    """Independent random streams of one (seed, ue_id, block)."""

    CHANNEL = 0
    PILOTS = 1
    DATA = 2


def _rng(
    seed: int, ue_id: int, block: int, stream: MimoStream, seq: int | None = None
) -> np.random.Generator:
    key = [int(seed), MIMO_TAG, ue_key(int(ue_id)), int(block), int(stream)]
    if seq is not None:
        key.append(int(seq))
    return np.random.default_rng(np.random.SeedSequence(key))


class MimoPool:
    """Channel matrices of one split of a pool file, loaded per size on first use.

    The file is checked at construction when it exists (a corrupt one fails the start); a
    missing file only fails the MIMO requests (``DatasetError`` naming it), so the CSI-report
    link of the emulator keeps working without it.
    """

    def __init__(self, path: str | Path, split: str = "test") -> None:
        self.path = Path(path)
        self.split = split
        self._lock = threading.Lock()
        self._h: dict[tuple[int, int], np.ndarray] = {}
        if self.path.is_file():
            self._groups()
        else:
            log.warning("channel pool %s does not exist: MIMO requests will fail until it does", self.path)

    def _groups(self) -> list[str]:
        import h5py

        try:
            with h5py.File(self.path, "r") as f:
                return sorted(k for k in f if isinstance(f[k], h5py.Group))
        except OSError as exc:
            raise DatasetError(f"channel pool {self.path}: not a readable HDF5 file ({exc})") from None

    def matrices(self, nr: int, nt: int) -> np.ndarray:
        """``[n, Nr, Nt]`` complex64 of the split."""
        with self._lock:
            h = self._h.get((nr, nt))
            if h is not None:
                return h
            if not self.path.is_file():
                raise DatasetError(f"channel pool {self.path} does not exist (emulator setting mimo_pool)")
            import h5py

            name = f"{nr}x{nt}"
            with h5py.File(self.path, "r") as f:
                if name not in f or self.split not in f[name]:
                    raise DatasetError(
                        f"channel pool {self.path} has no {name}/{self.split} (groups: {self._groups()})"
                    )
                h = np.asarray(f[name][self.split][()])
            if h.ndim != 3 or h.shape[1:] != (nr, nt) or not np.iscomplexobj(h) or h.shape[0] == 0:
                raise DatasetError(
                    f"channel pool {self.path}: {name}/{self.split} must be complex [n, {nr}, {nt}], "
                    f"got {h.dtype} {list(h.shape)}"
                )
            if not np.all(np.isfinite(h)):
                raise DatasetError(f"channel pool {self.path}: {name}/{self.split} holds NaN or Inf")
            h = h.astype(np.complex64)
            self._h[(nr, nt)] = h
            return h


class MimoChannel:
    """H per block, pilots and data over it. Stateless apart from the pool: thread-safe."""

    def __init__(self, pool: MimoPool | None) -> None:
        self.pool = pool

    def h(self, seed: int, ue_id: int, block: int, nr: int, nt: int) -> tuple[np.ndarray, str]:
        """The realisation ``[Nr, Nt]`` of ``(seed, ue_id, block)`` and where it came from."""
        rng = _rng(seed, ue_id, block, MimoStream.CHANNEL)
        if self.pool is None:
            w = rng.standard_normal((nr, nt, 2)) / np.sqrt(2.0)
            return (w[..., 0] + 1j * w[..., 1]).astype(np.complex64), "rayleigh"
        pool = self.pool.matrices(nr, nt)
        i = int(rng.integers(pool.shape[0]))
        return pool[i].copy(), f"pool {self.pool.path.name} {nr}x{nt}/{self.pool.split}[{i}]"

    def sound(
        self, seed: int, ue_id: int, block: int, nr: int, nt: int, snr_db: float, seq: int
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """Received pilots ``Y_p [Nr, Nt]``, the true ``H`` and its source."""
        h, src = self.h(seed, ue_id, block, nr, nt)
        y_p = mimo.sound(h[None], snr_db, _rng(seed, ue_id, block, MimoStream.PILOTS, seq))[0]
        return y_p, h, src

    def transmit(
        self, seed: int, ue_id: int, block: int, nr: int, x: np.ndarray, snr_db: float, seq: int
    ) -> tuple[np.ndarray, str]:
        """``y [B, Nr, n]`` for symbols ``x [B, Nt, n]`` (image ``k``'s noise keyed by ``seq + k``)."""
        x = np.asarray(x, np.complex64)
        if x.ndim != 3 or 0 in x.shape:
            raise InvalidInput(f"symbols must be [B, Nt, n], got {list(x.shape)}")
        power = np.mean(np.abs(x) ** 2, axis=(1, 2))
        if np.any(power > MAX_SYMBOL_POWER):
            k = int(np.argmax(power))
            raise InvalidInput(
                f"symbols of image {k} have average power {float(power[k]):.3g}; the link carries unit "
                f"average power per symbol (at most {MAX_SYMBOL_POWER:g})"
            )
        h, src = self.h(seed, ue_id, block, nr, x.shape[1])
        y = np.empty((x.shape[0], nr, x.shape[2]), np.complex64)
        for k in range(x.shape[0]):
            rng = _rng(seed, ue_id, block, MimoStream.DATA, seq + k)
            y[k] = mimo.propagate(h[None], x[k : k + 1], snr_db, rng)[0]
        return y, src
