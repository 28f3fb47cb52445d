"""Random draws keyed by ``(seed, ue_id, seq, stream)``.

Every report gets its own generators, derived from the scenario seed, the UE and the report's
sequence number, so the same scenario gives the same numbers however reports from many UEs
interleave or however many threads serve them. Each kind of randomness has its own stream:
adding, say, jitter to a scenario does not change the noise or the fading any report sees.

>>> a = ReportRng(seed=7, ue_id=3, seq=11)
>>> b = ReportRng(seed=7, ue_id=3, seq=11)
>>> bool(a.noise.standard_normal() == b.noise.standard_normal())
True
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

import numpy as np

from shared.errors import InvalidInput


class Stream(IntEnum):
    """Independent random streams of one report (the last word of the seed key)."""

    NOISE = 0
    FADING = 1
    LOSS = 2
    JITTER = 3


def ue_key(ue_id: int | str) -> int:
    """A UE id as a non-negative int for the seed key.

    Ints pass through (they must be >= 0); strings map to the first 8 bytes of their
    BLAKE2b hash, so named UEs are as reproducible as numbered ones.
    """
    if isinstance(ue_id, bool):
        raise InvalidInput(f"UE id must be an int or a string, got {ue_id!r}")
    if isinstance(ue_id, int | np.integer):
        if ue_id < 0:
            raise InvalidInput(f"UE id must be >= 0, got {ue_id}")
        return int(ue_id)
    if isinstance(ue_id, str):
        if not ue_id:
            raise InvalidInput("UE id must not be an empty string")
        return int.from_bytes(hashlib.blake2b(ue_id.encode(), digest_size=8).digest(), "big")
    raise InvalidInput(f"UE id must be an int or a string, got {type(ue_id).__name__}")


class ReportRng:
    """The random streams of one report: ``noise``, ``fading``, ``loss``, ``jitter``.

    Each is a ``numpy.random.Generator`` on
    ``SeedSequence([seed, ue_key(ue_id), seq, stream])``, built on first use.
    ``ReportRng.single(gen)`` wraps one generator for every stream (tests, benchmarks).
    """

    __slots__ = ("_key", "_gens", "_single")

    def __init__(self, seed: int, ue_id: int | str, seq: int) -> None:
        for name, v in (("seed", seed), ("seq", seq)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise InvalidInput(f"{name} must be a non-negative int, got {v!r}")
        self._key = (int(seed), ue_key(ue_id), int(seq))
        self._gens: dict[Stream, np.random.Generator] = {}
        self._single: np.random.Generator | None = None

    @classmethod
    def single(cls, gen: np.random.Generator) -> ReportRng:
        """All streams drawn from the one generator ``gen`` (not keyed; for loops of draws)."""
        obj = cls.__new__(cls)
        obj._key = None
        obj._gens = {}
        obj._single = gen
        return obj

    def stream(self, which: Stream) -> np.random.Generator:
        if self._single is not None:
            return self._single
        gen = self._gens.get(which)
        if gen is None:
            gen = np.random.default_rng(np.random.SeedSequence([*self._key, int(which)]))
            self._gens[which] = gen
        return gen

    @property
    def noise(self) -> np.random.Generator:
        return self.stream(Stream.NOISE)

    @property
    def fading(self) -> np.random.Generator:
        return self.stream(Stream.FADING)

    @property
    def loss(self) -> np.random.Generator:
        return self.stream(Stream.LOSS)

    @property
    def jitter(self) -> np.random.Generator:
        return self.stream(Stream.JITTER)


def as_report_rng(rng: ReportRng | np.random.Generator | int) -> ReportRng:
    """Accept a ``ReportRng``, a plain ``Generator`` (all streams from it) or an int seed."""
    if isinstance(rng, ReportRng):
        return rng
    if isinstance(rng, np.random.Generator):
        return ReportRng.single(rng)
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return ReportRng(int(rng), 0, 0)
    raise InvalidInput(f"rng must be a ReportRng, a numpy Generator or an int seed, got {type(rng).__name__}")
