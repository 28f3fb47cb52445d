"""CRCs of TS 38.212 5.1: check values, agreement with a direct long division, error detection."""

from __future__ import annotations

import numpy as np
import pytest

from channel_emulator import crc
from shared.errors import InvalidInput

# Generators written out from TS 38.212 5.1 as exponent lists (independent of crc.CRC_POLYS).
SPEC_EXPONENTS = {
    "crc6": [6, 5, 0],
    "crc11": [11, 10, 9, 5, 0],
    "crc16": [16, 12, 5, 0],
    "crc24a": [24, 23, 18, 17, 14, 11, 10, 7, 6, 5, 4, 3, 1, 0],
}


def long_division_parity(bits: np.ndarray, exponents: list[int]) -> np.ndarray:
    """Parity by textbook GF(2) long division of a(D) * D^L by g(D) (bit by bit)."""
    length = max(exponents)
    g = np.zeros(length + 1, np.uint8)
    for e in exponents:
        g[length - e] = 1
    reg = np.concatenate([bits.astype(np.uint8), np.zeros(length, np.uint8)])
    for i in range(bits.size):
        if reg[i]:
            reg[i : i + length + 1] ^= g
    return reg[bits.size :]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("crc24a", 0xCDE703),  # CRC-24/LTE-A in the CRC catalogue (poly 0x864cfb, init 0)
        ("crc16", 0x31C3),  # CRC-16/XMODEM (poly 0x1021, init 0)
        ("crc11", 0x5CA),  # poly 0x621, init 0: value agreed with sionna.phy.fec.crc.CRCEncoder
        ("crc6", 0x15),  # poly 0x21, init 0: value agreed with sionna.phy.fec.crc.CRCEncoder
    ],
)
def test_check_value_of_123456789(name, value):
    assert crc.crc_of_bytes(b"123456789", name) == value
    bits = np.unpackbits(np.frombuffer(b"123456789", np.uint8))
    assert crc.remainder(bits, name) == value


@pytest.mark.parametrize("name", list(SPEC_EXPONENTS))
def test_matches_long_division_for_many_lengths(name):
    rng = np.random.default_rng(5)
    for n in [1, 2, 5, 7, 8, 9, 15, 16, 17, 31, 64, 100, 128, 333]:
        bits = rng.integers(0, 2, n).astype(np.uint8)
        want = long_division_parity(bits, SPEC_EXPONENTS[name])
        np.testing.assert_array_equal(crc.parity(bits, name), want)
    assert crc.crc_length(name) == max(SPEC_EXPONENTS[name])


@pytest.mark.parametrize("name", list(SPEC_EXPONENTS))
def test_attach_then_check_and_leading_zeros(name):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 77).astype(np.uint8)
    cw = crc.attach(bits, name)
    assert cw.size == 77 + crc.crc_length(name)
    np.testing.assert_array_equal(cw[:77], bits)
    assert crc.check(cw, name)
    # Zero initial register: leading zeros do not change the parity (what the byte padding uses).
    np.testing.assert_array_equal(crc.parity(np.concatenate([np.zeros(5, np.uint8), bits]), name),
                                  crc.parity(bits, name))


@pytest.mark.parametrize("name", list(SPEC_EXPONENTS))
def test_detects_every_single_error_and_every_short_burst(name):
    rng = np.random.default_rng(2)
    cw = crc.attach(rng.integers(0, 2, 120).astype(np.uint8), name)
    length = crc.crc_length(name)
    for i in range(cw.size):
        bad = cw.copy()
        bad[i] ^= 1
        assert not crc.check(bad, name), f"single error at {i} missed"
    # Any burst of length <= L (first and last bit flipped) is detected by a degree-L generator.
    for _ in range(300):
        span = int(rng.integers(2, length + 1))
        start = int(rng.integers(0, cw.size - span + 1))
        pattern = rng.integers(0, 2, span).astype(np.uint8)
        pattern[0] = pattern[-1] = 1
        bad = cw.copy()
        bad[start : start + span] ^= pattern
        assert not crc.check(bad, name)


def test_random_error_patterns_miss_rate_is_about_two_to_minus_L():
    rng = np.random.default_rng(3)
    cw = crc.attach(rng.integers(0, 2, 60).astype(np.uint8), "crc6")
    trials = 4000
    missed = 0
    for _ in range(trials):
        e = rng.integers(0, 2, cw.size).astype(np.uint8)
        if e.any():
            missed += crc.check(cw ^ e, "crc6")
    expected = trials / 64
    assert abs(missed - expected) < 5 * np.sqrt(expected)


def test_none_and_bad_inputs():
    bits = np.array([1, 0, 1], np.uint8)
    np.testing.assert_array_equal(crc.attach(bits, None), bits)
    assert crc.crc_length(None) == 0
    with pytest.raises(InvalidInput, match="unknown CRC 'crc7'"):
        crc.attach(bits, "crc7")
    with pytest.raises(InvalidInput, match="only 0 and 1"):
        crc.parity(np.array([0, 2]), "crc16")
    with pytest.raises(InvalidInput, match="1-D"):
        crc.parity(np.zeros((2, 2), np.uint8), "crc16")
    with pytest.raises(InvalidInput, match="shorter than"):
        crc.check(bits, "crc16")


@pytest.mark.slow
def test_agrees_with_sionna_crc_encoder():
    torch = pytest.importorskip("torch")
    sionna_crc = pytest.importorskip("sionna.phy.fec.crc")
    rng = np.random.default_rng(4)
    for name in SPEC_EXPONENTS:
        enc = sionna_crc.CRCEncoder(name.upper())
        bits = rng.integers(0, 2, (16, 45)).astype(np.float32)
        ref = enc(torch.tensor(bits)).numpy().astype(np.uint8)
        mine = np.stack([crc.attach(b.astype(np.uint8), name) for b in bits])
        np.testing.assert_array_equal(mine, ref)
