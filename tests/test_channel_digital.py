"""Digital path: BER against theory, CRC drops, exact-length payloads, ideal mode, loss, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from channel_emulator.config import LinkConfig
from channel_emulator.digital import on_air_size, transmit_bits
from channel_emulator.rng import ReportRng
from channel_emulator.theory import ber_awgn, ber_bpsk_rayleigh_mrc
from shared.errors import InvalidInput, TooLarge
from shared.wire import Bits


def random_bits(n: int, seed: int = 0) -> Bits:
    return Bits.from_array(np.random.default_rng(seed).integers(0, 2, n))


def assert_ber_close(errors: int, n: int, theory: float) -> None:
    # Binomial count: within 5 standard deviations (seeded, so this never flakes).
    sd = np.sqrt(n * theory * (1 - theory))
    assert abs(errors - n * theory) < 5 * sd + 2, (errors / n, theory)


@pytest.mark.parametrize(
    ("mod", "snr_db"),
    [("bpsk", 0.0), ("bpsk", 6.0), ("qpsk", 3.0), ("qpsk", 8.0), ("16qam", 8.0), ("16qam", 14.0)],
)
def test_awgn_ber_matches_theory(mod, snr_db):
    cfg = LinkConfig(mode="awgn", snr_db=snr_db, n_rx=1, modulation=mod, crc=None)
    r = transmit_bits(random_bits(100_000), cfg, ReportRng(1, 0, 0))
    assert r.n_bits_on_air == 100_000 and not r.dropped
    assert_ber_close(r.bit_errors, r.n_bits_on_air, float(ber_awgn(mod, snr_db)))


def test_mrc_gain_on_awgn_ber():
    # 4 antennas at -3 dB each = one antenna at +3.02 dB.
    cfg = LinkConfig(mode="awgn", snr_db=-3.0, n_rx=4, modulation="qpsk", crc=None)
    r = transmit_bits(random_bits(100_000), cfg, ReportRng(2, 0, 0))
    assert_ber_close(r.bit_errors, r.n_bits_on_air, float(ber_awgn("qpsk", -3.0 + 10 * np.log10(4))))
    assert abs(r.effective_snr_db - (-3.0 + 10 * np.log10(4))) < 1e-4


@pytest.mark.parametrize("n_rx", [1, 2])
def test_rayleigh_mrc_ber_matches_closed_form(n_rx):
    cfg = LinkConfig(mode="rayleigh", snr_db=8.0, n_rx=n_rx, modulation="bpsk", crc=None, block_fading=False)
    r = transmit_bits(random_bits(100_000), cfg, ReportRng(3, 0, 0))
    assert_ber_close(r.bit_errors, r.n_bits_on_air, float(ber_bpsk_rayleigh_mrc(8.0, n_rx)))


def test_crc_drops_corrupted_reports_and_passes_clean_ones():
    cfg = LinkConfig(mode="rayleigh", snr_db=3.0, n_rx=1, modulation="qpsk", crc="crc16")
    bits = random_bits(128)
    results = [transmit_bits(bits, cfg, ReportRng(4, 0, s)) for s in range(400)]
    dropped = [r for r in results if r.dropped]
    delivered = [r for r in results if not r.dropped]
    assert dropped and delivered
    for r in dropped:
        assert r.reason == "crc" and r.bits_hat is None and r.crc_ok is False and r.bit_errors > 0
    for r in delivered:
        assert r.bits_hat == bits and r.crc_ok is True and not r.undetected_error


def test_without_crc_errors_are_delivered_at_the_exact_length():
    cfg = LinkConfig(mode="awgn", snr_db=-2.0, n_rx=1, modulation="16qam", crc=None)
    bits = random_bits(101)
    r = transmit_bits(bits, cfg, ReportRng(5, 0, 0))
    assert not r.dropped and r.reason == "" and r.crc_ok is None
    assert r.bits_hat.n_bits == 101 and r.payload_bit_errors > 0 and r.undetected_error
    got = r.bits_hat.to_array()
    assert int(np.count_nonzero(got != bits.to_array())) == r.payload_bit_errors


@pytest.mark.parametrize("mod", ["bpsk", "qpsk", "16qam"])
@pytest.mark.parametrize("crc", [None, "crc6", "crc11", "crc24a"])
def test_payload_length_and_airtime_accounting(mod, crc):
    m = {"bpsk": 1, "qpsk": 2, "16qam": 4}[mod]
    ell = {None: 0, "crc6": 6, "crc11": 11, "crc24a": 24}[crc]
    cfg = LinkConfig(mode="rician", snr_db=30, n_rx=4, modulation=mod, crc=crc)
    for n in (1, 3, 7, 33):
        bits = random_bits(n, n)
        r = transmit_bits(bits, cfg, ReportRng(6, 1, n))
        n_sym = -(-(n + ell) // m)
        assert (r.n_symbols, r.n_bits_on_air) == (n_sym, n_sym * m) == on_air_size(n, cfg)
        assert r.bits_hat == bits  # 30 dB + 6 dB array gain: error free


def test_ideal_is_bit_exact_passthrough_even_with_impairments_configured():
    cfg = LinkConfig(ideal=True, snr_db=-50, loss_prob=1.0, mode="rayleigh", crc="crc16")
    bits = random_bits(999)
    r = transmit_bits(bits, cfg, ReportRng(7, 0, 0))
    assert r.bits_hat == bits and not r.dropped and r.bit_errors == 0
    assert r.n_bits_on_air == 999 + 16 + 1  # QPSK pads the odd bit


def test_loss_drops_a_fraction_close_to_loss_prob():
    cfg = LinkConfig(loss_prob=0.3, snr_db=30)
    bits = random_bits(16)
    lost = [transmit_bits(bits, cfg, ReportRng(8, 0, s)).reason == "loss" for s in range(2000)]
    assert abs(np.mean(lost) - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 2000)
    r = transmit_bits(bits, cfg.updated(loss_prob=1.0), ReportRng(8, 0, 0))
    assert r.dropped and r.reason == "loss" and r.bits_hat is None and r.bit_errors == 0


def test_input_checks():
    cfg = LinkConfig(max_bits=64)
    with pytest.raises(InvalidInput, match="empty digital report"):
        transmit_bits(Bits(b"", 0), cfg, 0)
    with pytest.raises(InvalidInput, match="must be shared.wire.Bits"):
        transmit_bits(np.ones(8, np.uint8), cfg, 0)  # type: ignore[arg-type]
    with pytest.raises(TooLarge, match="65 bits exceeds the limit of 64"):
        transmit_bits(random_bits(65), cfg, 0)
