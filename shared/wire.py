"""The wire step: continuous latent <-> what goes on the air. numpy only, deterministic.

The ONNX encoder ends at a continuous latent; one codec per kind here turns it into a
bitstream (digital families) or complex symbols (analog JSCC families). The UE and offline
evaluation both call these, and ``models/common/wire_torch.py`` holds the differentiable
twins used in training; golden-file tests prove both give the same bits.

Bit order (fixed, documented in docs/protocol.md): every quantized value is written MSB
first, values in latent order (row-major), bits packed MSB-first into bytes, the last byte
zero-padded; a report carries its exact bit count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import InvalidInput

# --------------------------------------------------------------------------- bit packing


@dataclass(frozen=True)
class Bits:
    """An exact-length bitstream: ``n_bits`` bits packed MSB-first into ``data``."""

    data: bytes
    n_bits: int

    def __post_init__(self) -> None:
        if self.n_bits < 0:
            raise InvalidInput(f"negative bit length {self.n_bits}")
        need = (self.n_bits + 7) // 8
        if len(self.data) != need:
            raise InvalidInput(
                f"bitstream of {self.n_bits} bits needs {need} bytes, got {len(self.data)}"
            )

    def to_array(self) -> np.ndarray:
        """Bits as a uint8 0/1 array of length ``n_bits``."""
        arr = np.unpackbits(np.frombuffer(self.data, dtype=np.uint8))
        return arr[: self.n_bits]

    @classmethod
    def from_array(cls, bits: np.ndarray) -> Bits:
        b = np.asarray(bits, dtype=np.uint8).ravel()
        if b.size and b.max() > 1:
            raise InvalidInput("bit array must hold only 0 and 1")
        return cls(np.packbits(b).tobytes(), int(b.size))


def ints_to_bits(q: np.ndarray, bits_per_value: int) -> np.ndarray:
    """Unsigned ints ``[..., n]`` -> bits ``[..., n*bits]`` (MSB first per value)."""
    q = np.asarray(q, dtype=np.int64)
    shifts = np.arange(bits_per_value - 1, -1, -1, dtype=np.int64)
    out = (q[..., None] >> shifts) & 1
    return out.reshape(q.shape[:-1] + (q.shape[-1] * bits_per_value,)).astype(np.uint8)


def bits_to_ints(bits: np.ndarray, bits_per_value: int) -> np.ndarray:
    """Bits ``[..., n*bits]`` -> unsigned ints ``[..., n]`` (inverse of ``ints_to_bits``)."""
    b = np.asarray(bits, dtype=np.int64)
    if b.shape[-1] % bits_per_value:
        raise InvalidInput(f"{b.shape[-1]} bits is not a multiple of {bits_per_value}")
    b = b.reshape(b.shape[:-1] + (b.shape[-1] // bits_per_value, bits_per_value))
    weights = 1 << np.arange(bits_per_value - 1, -1, -1, dtype=np.int64)
    return (b * weights).sum(-1)


# --------------------------------------------------------------------------- codecs


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        raise InvalidInput(f"{what} contains NaN or Inf")
    return x


class WireCodec:
    """Base of every wire kind. ``encode`` takes ONE report's latent (any shape, row-major)."""

    kind: str = ""
    digital: bool = True

    def spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def payload_size(self, latent_size: int) -> int:
        """Bits (digital) or complex symbols (analog) for a latent of ``latent_size`` reals."""
        raise NotImplementedError

    def encode(self, latent: np.ndarray) -> Bits | np.ndarray:
        raise NotImplementedError

    def encode_batch(self, latents: np.ndarray) -> list[Bits | np.ndarray]:
        """One payload per row of ``latents [B, ...]``, exactly as ``encode`` row by row;
        codecs override it with a vectorized version where the per-report loop costs."""
        return [self.encode(z) for z in latents]

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        """Payload -> reconstructed latent, float32 ``[latent_size]``."""
        raise NotImplementedError


class UniformCodec(WireCodec):
    """B-bit midrise uniform scalar quantizer of values in ``[lo, hi]`` (tanh latents).

    ``q = min(floor((z - lo) / (hi - lo) * 2^B), 2^B - 1)``; reconstruction at cell centres.

    >>> c = UniformCodec(bits=2)
    >>> c.decode(c.encode(np.array([-1.0, -0.2, 0.3, 1.0])), 4).tolist()
    [-0.75, -0.25, 0.25, 0.75]
    """

    kind = "uniform"

    def __init__(self, bits: int, lo: float = -1.0, hi: float = 1.0) -> None:
        if not 1 <= int(bits) <= 16:
            raise InvalidInput(f"uniform quantizer bits must be 1..16, got {bits}")
        if not hi > lo:
            raise InvalidInput(f"uniform quantizer range must have hi > lo, got [{lo}, {hi}]")
        self.bits, self.lo, self.hi = int(bits), float(lo), float(hi)
        self.levels = 1 << self.bits

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "bits": self.bits, "lo": self.lo, "hi": self.hi}

    def payload_size(self, latent_size: int) -> int:
        return latent_size * self.bits

    def quantize(self, z: np.ndarray) -> np.ndarray:
        z = _finite(z, "latent").astype(np.float32)
        u = (np.clip(z, self.lo, self.hi) - np.float32(self.lo)) / np.float32(self.hi - self.lo)
        return np.minimum(np.floor(u * np.float32(self.levels)), self.levels - 1).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float32)
        return (self.lo + (q + 0.5) / self.levels * (self.hi - self.lo)).astype(np.float32)

    def encode(self, latent: np.ndarray) -> Bits:
        return Bits.from_array(ints_to_bits(self.quantize(np.ravel(latent)), self.bits))

    def encode_batch(self, latents: np.ndarray) -> list[Bits | np.ndarray]:
        # one quantize / pack for the whole batch: the per-report loop was most of the UE's
        # Python time at large batches (docs/performance.md)
        z = np.asarray(latents)
        if z.ndim == 0 or len(z) == 0:
            return []
        bits = ints_to_bits(self.quantize(z.reshape(len(z), -1)), self.bits).astype(np.uint8)
        packed = np.packbits(bits, axis=1)  # each row MSB-first, zero-padded: as Bits.from_array
        return [Bits(row.tobytes(), bits.shape[1]) for row in packed]

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        if not isinstance(payload, Bits):
            raise InvalidInput("uniform codec expects a bitstream payload, got symbols")
        want = self.payload_size(latent_size)
        if payload.n_bits != want:
            raise InvalidInput(f"bitstream has {payload.n_bits} bits, this model sends {want}")
        return self.dequantize(bits_to_ints(payload.to_array(), self.bits))

    def decode_batch(self, payloads: list[Bits], latent_size: int) -> np.ndarray:
        """``decode`` of many reports in one pass: ``[len(payloads), latent_size]`` float32."""
        want = self.payload_size(latent_size)
        for p in payloads:
            if not isinstance(p, Bits) or p.n_bits != want:
                raise InvalidInput(f"every payload must be a bitstream of {want} bits")
        if not payloads:
            return np.zeros((0, latent_size), np.float32)
        buf = np.frombuffer(b"".join(p.data for p in payloads), np.uint8).reshape(len(payloads), -1)
        return self.dequantize(bits_to_ints(np.unpackbits(buf, axis=1)[:, :want], self.bits))


class MuLawCodec(UniformCodec):
    """mu-law companding of values in [-1, 1], then B-bit uniform quantization."""

    kind = "mulaw"

    def __init__(self, bits: int, mu: float = 50.0) -> None:
        super().__init__(bits, -1.0, 1.0)
        if mu <= 0:
            raise InvalidInput(f"mu must be > 0, got {mu}")
        self.mu = float(mu)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "bits": self.bits, "mu": self.mu}

    def quantize(self, z: np.ndarray) -> np.ndarray:
        z = np.clip(_finite(z, "latent").astype(np.float32), -1.0, 1.0)
        c = np.sign(z) * np.log1p(self.mu * np.abs(z)) / np.log1p(self.mu)
        return super().quantize(c.astype(np.float32))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        c = super().dequantize(q)
        return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(self.mu)) / self.mu).astype(np.float32)


class VQCodec(WireCodec):
    """Vector quantization: the latent is ``[n_vectors, dim]``; each vector sends the index of
    its nearest codeword (``log2(Nv)`` bits, MSB first)."""

    kind = "vq"

    def __init__(self, codebook: np.ndarray, codebook_file: str | None = None) -> None:
        cb = np.asarray(codebook, dtype=np.float32)
        if cb.ndim != 2 or cb.shape[0] < 2:
            raise InvalidInput(f"VQ codebook must be [Nv >= 2, dim], got {cb.shape}")
        self.codebook = cb
        self.codebook_file = codebook_file
        self.index_bits = max(1, math.ceil(math.log2(cb.shape[0])))

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "codebook": self.codebook_file, "size": int(self.codebook.shape[0]),
                "dim": int(self.codebook.shape[1])}

    def payload_size(self, latent_size: int) -> int:
        return latent_size // self.codebook.shape[1] * self.index_bits

    def indices(self, latent: np.ndarray) -> np.ndarray:
        v = _finite(latent, "latent").astype(np.float32).reshape(-1, self.codebook.shape[1])
        d = (v**2).sum(1, keepdims=True) - 2 * v @ self.codebook.T + (self.codebook**2).sum(1)
        return np.argmin(d, axis=1)

    def encode(self, latent: np.ndarray) -> Bits:
        if np.size(latent) % self.codebook.shape[1]:
            raise InvalidInput(f"latent size {np.size(latent)} is not a multiple of {self.codebook.shape[1]}")
        return Bits.from_array(ints_to_bits(self.indices(latent), self.index_bits))

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        if not isinstance(payload, Bits):
            raise InvalidInput("VQ codec expects a bitstream payload, got symbols")
        want = self.payload_size(latent_size)
        if payload.n_bits != want:
            raise InvalidInput(f"bitstream has {payload.n_bits} bits, this model sends {want}")
        idx = bits_to_ints(payload.to_array(), self.index_bits)
        if np.any(idx >= self.codebook.shape[0]):
            raise InvalidInput("bitstream holds a codeword index outside the codebook")
        return self.codebook[idx].ravel()


class AnalogCodec(WireCodec):
    """Real latent ``[2k]`` -> ``k`` complex symbols at unit average power (analog JSCC).

    Consecutive pairs form a symbol (``z[0::2] + 1j z[1::2]``), so a prefix of the latent is a
    prefix of the symbols: sending only the first ``k' <= k`` symbols is rate truncation
    (Matryoshka-style variable rate). The sent prefix is normalized to unit average power.
    The BS receives ``k'`` symbols and gets back a ``[2k]`` latent, zero beyond the prefix.
    """

    kind = "analog"
    digital = False

    def __init__(self, symbols: int | None = None) -> None:
        if symbols is not None and symbols < 1:
            raise InvalidInput(f"symbol count must be >= 1, got {symbols}")
        self.symbols = symbols

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.symbols}

    def payload_size(self, latent_size: int) -> int:
        full = latent_size // 2
        return min(full, self.symbols) if self.symbols else full

    def with_symbols(self, k: int) -> AnalogCodec:
        return AnalogCodec(k)

    def encode(self, latent: np.ndarray) -> np.ndarray:
        z = _finite(latent, "latent").astype(np.float32).ravel()
        if z.size % 2:
            raise InvalidInput(f"analog latent must have an even number of reals, got {z.size}")
        s = (z[0::2] + 1j * z[1::2]).astype(np.complex64)[: self.payload_size(z.size)]
        power = float(np.mean(np.abs(s) ** 2))
        return (s / np.sqrt(max(power, 1e-12))).astype(np.complex64)

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        if isinstance(payload, Bits):
            raise InvalidInput("analog codec expects complex symbols, got a bitstream")
        s = _finite(payload, "symbols").astype(np.complex64).ravel()
        if s.size < 1 or s.size > latent_size // 2:
            raise InvalidInput(f"got {s.size} symbols, this model takes 1..{latent_size // 2}")
        z = np.zeros(latent_size, np.float32)
        z[0 : 2 * s.size : 2] = s.real
        z[1 : 2 * s.size : 2] = s.imag
        return z


class MuLawSymbolsCodec(WireCodec):
    """Analog JSCC latents sent as bits: the first ``symbols`` complex symbols, normalized to unit
    average power as :class:`AnalogCodec` sends them, each real part divided by ``clip`` and
    mu-law companded, then ``bits``-bit uniform quantization (``2 * symbols * bits`` bits, MSB
    first, real/imaginary interleaved). The BS gets back the ``[2k]`` latent, zero beyond the
    prefix, as from the analog path at infinite SNR.

    >>> c = MuLawSymbolsCodec(symbols=2, bits=6)
    >>> z = np.array([1.0, -1.0, 0.5, 0.25, 9.0, 9.0], np.float32)
    >>> c.encode(z).n_bits, [round(float(v), 2) for v in c.decode(c.encode(z), 6)]
    (24, [0.89, -0.89, 0.46, 0.22, 0.0, 0.0])
    """

    kind = "mulaw-symbols"

    def __init__(self, symbols: int, bits: int, mu: float = 50.0, clip: float = 3.0) -> None:
        if symbols < 1:
            raise InvalidInput(f"symbol count must be >= 1, got {symbols}")
        if not clip > 0:
            raise InvalidInput(f"clip must be > 0, got {clip}")
        self.symbols, self.clip = int(symbols), float(clip)
        self.q = MuLawCodec(bits, mu)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.symbols, "bits": self.q.bits, "mu": self.q.mu,
                "clip": self.clip}

    def payload_size(self, latent_size: int) -> int:
        return 2 * min(latent_size // 2, self.symbols) * self.q.bits

    def encode(self, latent: np.ndarray) -> Bits:
        s = AnalogCodec(self.symbols).encode(latent)
        reals = np.stack([s.real, s.imag], axis=1).ravel() / np.float32(self.clip)
        return self.q.encode(reals)

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        if not isinstance(payload, Bits):
            raise InvalidInput(f"{self.kind} codec expects a bitstream payload, got symbols")
        want = self.payload_size(latent_size)
        if payload.n_bits != want:
            raise InvalidInput(f"bitstream has {payload.n_bits} bits, this model sends {want}")
        z = np.zeros(latent_size, np.float32)
        vals = self.q.dequantize(bits_to_ints(payload.to_array(), self.q.bits)) * np.float32(self.clip)
        z[: vals.size] = vals
        return z


class UniformSymbolsCodec(MuLawSymbolsCodec):
    """As :class:`MuLawSymbolsCodec` without the companding: each real part of the unit-power
    symbols divided by ``clip`` and quantized uniformly to ``bits`` bits (midrise, cells over
    ``[-clip, clip]``). For latents whose reals are near-Gaussian (a codeword trained under
    noise), where mu-law spends its levels on a peak the data does not have.

    >>> c = UniformSymbolsCodec(symbols=2, bits=6)
    >>> z = np.array([1.0, -1.0, 0.5, 0.25, 9.0, 9.0], np.float32)
    >>> c.encode(z).n_bits, [round(float(v), 2) for v in c.decode(c.encode(z), 6)]
    (24, [0.89, -0.89, 0.42, 0.23, 0.0, 0.0])
    """

    kind = "uniform-symbols"

    def __init__(self, symbols: int, bits: int, clip: float = 3.0) -> None:
        super().__init__(symbols, bits, 50.0, clip)
        self.q = UniformCodec(bits, -1.0, 1.0)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.symbols, "bits": self.q.bits, "clip": self.clip}


_KINDS = {"uniform", "mulaw", "vq", "analog", "mulaw-symbols", "uniform-symbols", "thermometer"}


class ThermometerCodec(WireCodec):
    """Variable-rate thermometer quantization (``shared.thermometer``): the latent is ``N``
    continuous features with ``2^bmax - 1`` trained ordered boundaries each (``boundaries.npy``,
    ``[N, K]``). At ``bits`` total bits every feature gets the bits of
    :func:`shared.thermometer.allocate_bits` and sends its level MSB first, features in index
    order. ``decode`` returns ``z(s) / K``, the thermometer sum the decoder takes (eq. 15): its
    value set tells each feature's resolution, so no rate field is needed by the decoder."""

    kind = "thermometer"

    def __init__(self, boundaries: np.ndarray, bits: int, boundaries_file: str | None = None) -> None:
        from shared import thermometer as th

        b = np.asarray(boundaries, dtype=np.float32)
        if b.ndim != 2 or b.shape[1] < 1 or (b.shape[1] + 1) & b.shape[1]:
            raise InvalidInput(f"thermometer boundaries must be [N, 2^bmax - 1], got {b.shape}")
        if not np.all(np.isfinite(b)) or np.any(np.diff(b, axis=1) < 0):
            raise InvalidInput("thermometer boundaries must be finite and ordered per feature")
        self.boundaries, self.boundaries_file = b, boundaries_file
        self.bmax = int(np.log2(b.shape[1] + 1))
        try:
            self.per_feature = th.allocate_bits(int(bits), b.shape[0], self.bmax)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        self.bits = int(bits)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "boundaries": self.boundaries_file, "bits": self.bits}

    def payload_size(self, latent_size: int) -> int:
        return self.bits

    def encode(self, latent: np.ndarray) -> Bits:
        from shared import thermometer as th

        z = _finite(latent, "latent").astype(np.float32).reshape(1, -1)
        if z.shape[1] != self.boundaries.shape[0]:
            raise InvalidInput(f"latent has {z.shape[1]} features, the quantizer {self.boundaries.shape[0]}")
        levels = th.levels_from_features(z, self.boundaries, self.per_feature)
        data, n = th.pack_levels(levels, self.per_feature, self.bmax)
        return Bits(data, n)

    def decode(self, payload: Bits | np.ndarray, latent_size: int) -> np.ndarray:
        from shared import thermometer as th

        if not isinstance(payload, Bits):
            raise InvalidInput("thermometer codec expects a bitstream payload, got symbols")
        if payload.n_bits != self.bits:
            raise InvalidInput(f"bitstream has {payload.n_bits} bits, this rate sends {self.bits}")
        if latent_size != self.boundaries.shape[0]:
            raise InvalidInput(
                f"latent size {latent_size} does not match {self.boundaries.shape[0]} features"
            )
        levels = th.unpack_levels(payload.data, payload.n_bits, self.per_feature, self.bmax)
        therm = th.thermometer_from_levels(levels, self.per_feature, self.bmax)
        return (therm.sum(-1) / therm.shape[-1]).reshape(-1).astype(np.float32)


def from_spec(spec: dict[str, Any], bundle_dir: str | Path | None = None) -> WireCodec:
    """Build a codec from its manifest spec (``{"kind": ..., ...}``)."""
    kind = spec.get("kind")
    try:
        if kind == "uniform":
            return UniformCodec(spec["bits"], spec.get("lo", -1.0), spec.get("hi", 1.0))
        if kind == "mulaw":
            return MuLawCodec(spec["bits"], spec.get("mu", 50.0))
        if kind == "analog":
            return AnalogCodec(spec.get("symbols"))
        if kind == "uniform-symbols":
            return UniformSymbolsCodec(spec["symbols"], spec["bits"], spec.get("clip", 3.0))
        if kind == "mulaw-symbols":
            mu, clip = spec.get("mu", 50.0), spec.get("clip", 3.0)
            return MuLawSymbolsCodec(spec["symbols"], spec["bits"], mu, clip)
        if kind == "vq":
            if bundle_dir is None:
                raise InvalidInput("VQ wire spec needs the bundle folder to load its codebook")
            path = Path(bundle_dir) / spec["codebook"]
            return VQCodec(np.load(path, allow_pickle=False), spec["codebook"])
        if kind == "thermometer":
            if bundle_dir is None:
                raise InvalidInput("thermometer wire spec needs the bundle folder to load its boundaries")
            path = Path(bundle_dir) / spec["boundaries"]
            return ThermometerCodec(np.load(path, allow_pickle=False), spec["bits"], spec["boundaries"])
    except KeyError as exc:
        raise InvalidInput(f"wire spec of kind {kind!r} lacks field {exc.args[0]!r}") from None
    raise InvalidInput(f"unknown wire kind {kind!r}; known: {sorted(_KINDS)}")
