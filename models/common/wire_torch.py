"""Differentiable torch twins of the wire kinds in ``shared/wire.py`` (training only).

Each twin repeats the numpy codec's arithmetic in the same dtype and order, so the integer
levels it picks are the ones the UE will send (golden-file tests in
``tests/test_wire_torch.py`` prove it bit for bit); the backward pass is straight-through.

* ``uniform_indices`` / ``uniform_ste``: midrise B-bit quantizer of ``[lo, hi]``.
* ``mulaw_indices`` / ``mulaw_ste``: mu-law companding then the uniform quantizer.
* ``power_normalize`` / ``analog_awgn``: latent ``[B, 2k]`` -> unit-average-power complex
  symbols (pairs of reals, optional prefix of ``k'`` symbols) -> AWGN at a given SNR.
"""

from __future__ import annotations

import math

import torch

from shared.wire import AnalogCodec, MuLawCodec, UniformCodec, WireCodec


def _ste(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Forward ``z_q``, gradient of identity (straight-through)."""
    return z + (z_q - z).detach()


# --------------------------------------------------------------------------- uniform


def uniform_indices(z: torch.Tensor, bits: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Quantization levels, int64, same shape as ``z``: ``UniformCodec.quantize`` in torch."""
    levels = 1 << int(bits)
    z = z.to(torch.float32)
    u = (torch.clamp(z, lo, hi) - torch.tensor(lo, dtype=torch.float32)) / torch.tensor(
        hi - lo, dtype=torch.float32
    )
    return torch.clamp(torch.floor(u * torch.tensor(float(levels), dtype=torch.float32)), max=levels - 1).to(
        torch.int64
    )


def uniform_dequantize(q: torch.Tensor, bits: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Cell centres, float32: ``UniformCodec.dequantize`` in torch."""
    levels = 1 << int(bits)
    return (lo + (q.to(torch.float32) + 0.5) / levels * (hi - lo)).to(torch.float32)


def uniform_ste(z: torch.Tensor, bits: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Quantize-dequantize ``z`` (float32, any shape) with a straight-through gradient."""
    return _ste(z, uniform_dequantize(uniform_indices(z, bits, lo, hi), bits, lo, hi))


# --------------------------------------------------------------------------- mu-law


def mulaw_compand(z: torch.Tensor, mu: float) -> torch.Tensor:
    """``sign(z) log1p(mu |z|) / log1p(mu)`` on ``clip(z, -1, 1)``, float32 result.

    The division runs in float64 then casts, exactly as numpy does (float32 array divided by
    a float64 scalar promotes to float64 under NEP 50).
    """
    z = torch.clamp(z.to(torch.float32), -1.0, 1.0)
    num = torch.sign(z) * torch.log1p(torch.tensor(mu, dtype=torch.float32) * torch.abs(z))
    return (num.to(torch.float64) / math.log1p(mu)).to(torch.float32)


def mulaw_expand(c: torch.Tensor, mu: float) -> torch.Tensor:
    """Inverse companding: ``sign(c) expm1(|c| log1p(mu)) / mu``, float32."""
    c = c.to(torch.float32)
    return (torch.sign(c) * torch.expm1(torch.abs(c).to(torch.float64) * math.log1p(mu)) / mu).to(
        torch.float32
    )


def mulaw_indices(z: torch.Tensor, bits: int, mu: float = 50.0) -> torch.Tensor:
    """Levels, int64: ``MuLawCodec.quantize`` in torch."""
    return uniform_indices(mulaw_compand(z, mu), bits)


def mulaw_ste(z: torch.Tensor, bits: int, mu: float = 50.0) -> torch.Tensor:
    """mu-law quantize-dequantize with a straight-through gradient."""
    return _ste(z, mulaw_expand(uniform_dequantize(mulaw_indices(z, bits, mu), bits), mu))


# --------------------------------------------------------------------------- analog


def power_normalize(z: torch.Tensor, symbols: int | torch.Tensor | None = None) -> torch.Tensor:
    """Real latent ``[B, 2k]`` -> unit-average-power symbols as reals ``[B, 2k]``.

    Pairs ``(z[2i], z[2i+1])`` are one complex symbol (``AnalogCodec`` order). Only the first
    ``symbols`` symbols are sent (an int, or a ``[B]`` int tensor for per-sample prefixes);
    the rest are set to zero, as ``AnalogCodec.decode`` fills them. The sent prefix is scaled
    to mean ``|s|^2 = 1``.
    """
    b, n = z.shape
    k = n // 2
    if symbols is None:
        symbols = k
    ks = torch.as_tensor(symbols, device=z.device).expand(b) if not isinstance(symbols, int) else None
    if ks is None:
        mask = (torch.arange(k, device=z.device) < symbols).to(z.dtype).expand(b, k)
        count = torch.full((b,), float(min(symbols, k)), device=z.device, dtype=z.dtype)
    else:
        mask = (torch.arange(k, device=z.device)[None, :] < ks[:, None]).to(z.dtype)
        count = torch.clamp(ks.to(z.dtype), max=k)
    pair_mask = mask.repeat_interleave(2, dim=1)
    zm = z * pair_mask
    power = (zm**2).sum(1) / count
    return zm / torch.sqrt(torch.clamp(power, min=1e-12))[:, None]


def analog_awgn(
    s: torch.Tensor,
    snr_db: torch.Tensor | float,
    symbols: int | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add complex AWGN to unit-power symbols ``s`` (reals ``[B, 2k]``) at ``snr_db``.

    Noise per complex symbol has variance ``10^(-snr/10)`` (so ``snr = E|s|^2 / N0``), i.e.
    ``N0/2`` per real part; only the sent prefix gets noise (unsent entries stay zero).
    ``snr_db``: a float or a ``[B]`` tensor.
    """
    b, n = s.shape
    k = n // 2
    snr = torch.as_tensor(snr_db, dtype=s.dtype, device=s.device).expand(b)
    std = torch.sqrt(10.0 ** (-snr / 10.0) / 2.0)[:, None]
    noise = torch.randn(s.shape, generator=generator, device=s.device, dtype=s.dtype) * std
    if symbols is not None:
        ks = torch.as_tensor(symbols, device=s.device).expand(b)
        noise = noise * (torch.arange(k, device=s.device)[None, :] < ks[:, None]).to(
            s.dtype
        ).repeat_interleave(2, 1)
    return s + noise


# --------------------------------------------------------------------------- dispatch


def ste_for_codec(codec: WireCodec):  # noqa: ANN201 - returns a callable Tensor -> Tensor
    """The training-time twin of a digital codec: ``Tensor -> Tensor`` quantize-dequantize."""
    if isinstance(codec, MuLawCodec):
        return lambda z: mulaw_ste(z, codec.bits, codec.mu)
    if isinstance(codec, UniformCodec):
        return lambda z: uniform_ste(z, codec.bits, codec.lo, codec.hi)
    if isinstance(codec, AnalogCodec):
        raise TypeError("analog codecs have no quantizer twin; use power_normalize + analog_awgn")
    raise TypeError(f"no torch twin for wire kind {codec.kind!r}")
