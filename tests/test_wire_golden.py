"""Golden-file tests: numpy codecs and their torch twins give the same bits on fixed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.wire import AnalogCodec, Bits, MuLawCodec, UniformCodec, bits_to_ints, ints_to_bits

GOLDEN = json.loads((Path(__file__).parent / "golden" / "wire.json").read_text())
Z = np.asarray(GOLDEN["latents"]["values"], np.float32)
DIGITAL = [k for k in GOLDEN if k.startswith(("uniform", "mulaw"))]


def _codec(spec: dict):
    if spec["kind"] == "uniform":
        return UniformCodec(spec["bits"], spec["lo"], spec["hi"])
    return MuLawCodec(spec["bits"], spec["mu"])


@pytest.mark.parametrize("case", DIGITAL)
def test_numpy_codec_matches_golden(case: str) -> None:
    g = GOLDEN[case]
    c = _codec(g["spec"])
    for v, hexbits in zip(Z, g["reports"], strict=True):
        b = c.encode(v)
        assert b.n_bits == g["n_bits"]
        assert b.data.hex() == hexbits


@pytest.mark.parametrize("case", DIGITAL)
def test_batch_encoder_gives_golden_bits(case: str) -> None:
    """encode_batch (the UE's vectorized path) = encode row by row, golden bytes and lengths,
    also for latents whose bit count is not a multiple of 8 and for NaN (refused)."""
    g = GOLDEN[case]
    c = _codec(g["spec"])
    out = c.encode_batch(Z)
    assert [b.data.hex() for b in out] == g["reports"] and {b.n_bits for b in out} == {g["n_bits"]}
    odd = np.random.default_rng(0).uniform(-1.2, 1.2, (5, 7)).astype(np.float32)
    assert c.encode_batch(odd) == [c.encode(z) for z in odd]
    assert c.encode_batch(odd[:0]) == []
    with pytest.raises(Exception, match="NaN"):
        c.encode_batch(np.where(np.eye(7, dtype=bool)[:5], np.nan, odd))
    # and back: the BS's batched unpacking equals report-by-report decoding
    payloads = c.encode_batch(odd)
    np.testing.assert_array_equal(c.decode_batch(payloads, 7), np.stack([c.decode(b, 7) for b in payloads]))
    with pytest.raises(Exception, match="every payload must be a bitstream"):
        c.decode_batch([*payloads[:2], Bits(b"\x00", 8)], 7)  # 8 bits is never 7 x B here


@pytest.mark.parametrize("case", DIGITAL)
def test_torch_twin_gives_golden_bits(case: str) -> None:
    torch = pytest.importorskip("torch")
    from models.common import wire_torch as wt

    g = GOLDEN[case]
    spec = g["spec"]
    zt = torch.from_numpy(Z)
    if spec["kind"] == "uniform":
        q = wt.uniform_indices(zt, spec["bits"], spec["lo"], spec["hi"])
    else:
        q = wt.mulaw_indices(zt, spec["bits"], spec["mu"])
    for row, hexbits in zip(q.numpy(), g["reports"], strict=True):
        assert Bits.from_array(ints_to_bits(row, spec["bits"])).data.hex() == hexbits


@pytest.mark.parametrize("case", DIGITAL)
def test_torch_ste_forward_equals_numpy_dequantized(case: str) -> None:
    torch = pytest.importorskip("torch")
    from models.common import wire_torch as wt

    spec = GOLDEN[case]["spec"]
    c = _codec(spec)
    zt = torch.from_numpy(Z.copy()).requires_grad_(True)
    f = wt.ste_for_codec(c)
    out = f(zt)
    ref = np.stack([c.decode(c.encode(v), Z.shape[1]) for v in Z])
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=0, atol=1e-6)
    out.sum().backward()  # straight-through: identity gradient
    np.testing.assert_array_equal(zt.grad.numpy(), np.ones_like(Z))


@pytest.mark.parametrize("case", [k for k in GOLDEN if k.startswith("analog")])
def test_analog_numpy_and_torch_match_golden(case: str) -> None:
    torch = pytest.importorskip("torch")
    from models.common import wire_torch as wt

    g = GOLDEN[case]
    k = g["spec"]["symbols"]
    want = np.asarray(g["re"], np.float32) + 1j * np.asarray(g["im"], np.float32)
    c = AnalogCodec(k)
    np.testing.assert_allclose(np.stack([c.encode(v) for v in Z]), want, rtol=0, atol=1e-6)
    s = wt.power_normalize(torch.from_numpy(Z), k).numpy()
    np.testing.assert_allclose(s[:, 0 : 2 * k : 2] + 1j * s[:, 1 : 2 * k : 2], want, rtol=0, atol=1e-5)
    assert np.all(s[:, 2 * k :] == 0)  # unsent symbols are zero, as AnalogCodec.decode fills them


def test_bit_order_msb_first_and_zero_padded() -> None:
    # 3-bit levels 0 and 7 -> 000 111 -> 0b000111_00 (MSB-first packing, last byte padded)
    b = UniformCodec(3).encode(np.array([-1.0, 1.0], np.float32))
    assert b.n_bits == 6 and b.data == bytes([0b00011100])
    # value order = latent order: level 1 then 2 at 2 bits -> 01 10
    c = UniformCodec(2)
    b = c.encode(np.array([-0.4, 0.1], np.float32))
    assert b.to_array().tolist() == [0, 1, 1, 0]
    assert bits_to_ints(b.to_array(), 2).tolist() == [1, 2]


def test_analog_awgn_noise_power_and_prefix() -> None:
    torch = pytest.importorskip("torch")
    from models.common import wire_torch as wt

    g = torch.Generator().manual_seed(0)
    s = wt.power_normalize(torch.randn(4000, 16, generator=g), 6)
    y = wt.analog_awgn(s, 10.0, 6, generator=g)
    n = (y - s)[:, :12]
    assert abs(float((n**2).sum(1).mean()) / 6 - 0.1) < 0.005  # N0 = 10^(-10/10) per complex symbol
    assert torch.all(y[:, 12:] == 0)
    assert torch.allclose((s[:, :12] ** 2).sum(1) / 6, torch.ones(4000), atol=1e-5)


def test_wire_docstring_examples() -> None:
    """The examples in shared/wire.py (every codec kind's round trip) run."""
    import doctest

    import shared.wire

    result = doctest.testmod(shared.wire, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_uniform_symbols_codec() -> None:
    import numpy as np

    from shared.errors import InvalidInput
    from shared.wire import UniformSymbolsCodec, from_spec

    c = from_spec({"kind": "uniform-symbols", "symbols": 8, "bits": 3, "clip": 3.0})
    assert isinstance(c, UniformSymbolsCodec) and c.spec()["kind"] == "uniform-symbols"
    z = np.random.default_rng(1).standard_normal(20).astype(np.float32)
    bits = c.encode(z)
    assert bits.n_bits == 8 * 2 * 3
    back = c.decode(bits, 20)
    assert np.all(back[16:] == 0) and np.all(np.abs(back[:16]) <= 3.0)
    s = z[:16:2] + 1j * z[1:16:2]
    ref = s / np.sqrt(np.mean(np.abs(s) ** 2))
    got = back[:16:2] + 1j * back[1:16:2]
    assert np.max(np.abs(got.real - ref.real)) <= 3.0 / 8 + 1e-6  # half a cell of 6/8
    with pytest.raises(InvalidInput, match="bits"):
        c.decode(Bits.from_array(np.zeros(47, np.uint8)), 20)
