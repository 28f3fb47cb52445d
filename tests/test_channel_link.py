"""Link: determinism by (seed, ue_id, seq), independent streams, configure, stats, threads, checks."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from channel_emulator.link import Link
from channel_emulator.stats import DELAY_EDGES_MS
from shared.errors import InvalidInput, TooLarge
from shared.wire import Bits

FADING = {"mode": "rayleigh", "snr_db": 2.0, "n_rx": 4, "block_fading": False, "seed": 11}


def bits_of(i: int, n: int = 96) -> Bits:
    return Bits.from_array(np.random.default_rng(i).integers(0, 2, n))


def symbols_of(i: int, k: int = 16) -> np.ndarray:
    return np.exp(2j * np.pi * np.random.default_rng(i).random(k)).astype(np.complex64)


def test_same_key_same_result_regardless_of_order_and_threads():
    keys = [(ue, seq) for ue in (0, 1, 7) for seq in range(20)]
    cfg = {**FADING, "crc": None, "modulation": "16qam"}
    serial = {k: Link(cfg).process_analog(symbols_of(k[1]), *k).symbols_hat for k in keys}

    link = Link(cfg)
    shuffled = keys[:]
    random.Random(0).shuffle(shuffled)
    out: dict = {}

    def worker(part):
        for k in part:
            out[k] = link.process_analog(symbols_of(k[1]), *k).symbols_hat

    threads = [threading.Thread(target=worker, args=(shuffled[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in keys:
        np.testing.assert_array_equal(out[k], serial[k])

    d1 = Link(cfg).process_digital(bits_of(3), 1, 5)
    d2 = Link(cfg).process_digital(bits_of(3), 1, 5)
    assert d1.bits_hat == d2.bits_hat and d1.bit_errors == d2.bit_errors > 0


def test_different_seq_ue_or_seed_give_different_noise():
    link = Link(FADING)
    base = link.process_analog(symbols_of(0), 0, 0).symbols_hat
    for ue, seq, seed in [(0, 1, 11), (1, 0, 11), (0, 0, 12)]:
        other = Link({**FADING, "seed": seed}).process_analog(symbols_of(0), ue, seq).symbols_hat
        assert not np.allclose(base, other)


def test_string_ue_ids_are_reproducible():
    a = Link(FADING).process_analog(symbols_of(1), "ue-alpha", 3).symbols_hat
    b = Link(FADING).process_analog(symbols_of(1), "ue-alpha", 3).symbols_hat
    c = Link(FADING).process_analog(symbols_of(1), "ue-beta", 3).symbols_hat
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_loss_and_jitter_do_not_change_the_noise_of_delivered_reports():
    plain = Link(FADING)
    impaired = Link({**FADING, "loss_prob": 0.5, "delay_ms": 20.0, "jitter_ms": 5.0})
    delivered = 0
    for seq in range(40):
        r = impaired.process_analog(symbols_of(seq), 2, seq)
        if not r.dropped:
            delivered += 1
            ref = plain.process_analog(symbols_of(seq), 2, seq)
            np.testing.assert_array_equal(r.symbols_hat, ref.symbols_hat)
            assert r.delay_ms >= 0.0
    assert 5 < delivered < 35


def test_delay_distribution_and_histogram():
    link = Link({"delay_ms": 20.0, "jitter_ms": 4.0, "snr_db": 30})
    delays = np.array([link.process_digital(bits_of(s, 8), 0, s).delay_ms for s in range(1000)])
    assert abs(delays.mean() - 20.0) < 0.6 and abs(delays.std() - 4.0) < 0.4 and delays.min() >= 0
    d = link.stats.snapshot()["delay_ms"]
    assert d["count"] == 1000 and sum(d["counts"]) == 1000 and d["edges"] == list(DELAY_EDGES_MS)
    in_10_50 = d["counts"][DELAY_EDGES_MS.index(10)] + d["counts"][DELAY_EDGES_MS.index(20)]
    assert in_10_50 == int(np.sum((delays >= 10) & (delays < 50)))
    assert d["mean"] == pytest.approx(delays.mean()) and d["max"] == pytest.approx(delays.max())
    fixed = Link({"delay_ms": 7.5})
    assert fixed.process_digital(bits_of(0, 8), 0, 0).delay_ms == 7.5


def test_stats_account_ber_drops_and_measured_snr():
    link = Link({"mode": "awgn", "snr_db": 1.0, "n_rx": 1, "crc": "crc11", "modulation": "qpsk",
                 "loss_prob": 0.2})
    results = [link.process_digital(bits_of(s, 200), 0, s) for s in range(300)]
    snap = link.stats.snapshot()
    received = [r for r in results if r.reason != "loss"]
    assert snap["reports_in"] == {"digital": 300, "analog": 0, "total": 300}
    assert snap["dropped"]["loss"] == sum(r.reason == "loss" for r in results)
    assert snap["dropped"]["crc"] == sum(r.reason == "crc" for r in results) > 0
    assert snap["reports_out"]["total"] == sum(not r.dropped for r in results)
    assert snap["bit_errors"] == sum(r.bit_errors for r in received)
    assert snap["bits_on_air"] == sum(r.n_bits_on_air for r in received)
    assert snap["bits_sent"] == 300 * 212
    assert snap["ber"] == pytest.approx(snap["bit_errors"] / snap["bits_on_air"])
    assert abs(snap["measured_snr_db"] - 1.0) < 0.1  # from the noise actually drawn
    assert snap["undetected_errors"] == 0
    link.stats.reset()
    snap = link.stats.snapshot()
    assert snap["reports_in"]["total"] == 0 and snap["ber"] is None and snap["measured_snr_db"] is None


def test_stats_are_exact_under_concurrency():
    link = Link({"snr_db": 20, "n_rx": 2})

    def worker(ue):
        for s in range(100):
            link.process_digital(bits_of(s, 40), ue, s)
            link.process_analog(symbols_of(s, 8), ue, s)

    threads = [threading.Thread(target=worker, args=(ue,)) for ue in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = link.stats.snapshot()
    assert snap["reports_in"] == {"digital": 400, "analog": 400, "total": 800}
    assert snap["symbols_on_air"]["analog"] == 400 * 8
    assert snap["bits_sent"] == 400 * 52  # 40 + crc11 + 1 pad bit (QPSK)


def test_configure_swaps_atomically_and_rejects_bad_values():
    link = Link({"snr_db": 5})
    assert link.configure(snr_db=-3).snr_db == -3 and link.config.snr_db == -3
    with pytest.raises(InvalidInput, match="n_rx"):
        link.configure(n_rx=0)
    assert link.config.snr_db == -3 and link.config.n_rx == 32
    assert link.configure({"mode": "rician"}).snr_db == 10.0  # a full replacement resets the rest
    with pytest.raises(InvalidInput, match="LinkConfig or a mapping"):
        Link(42)  # type: ignore[arg-type]


def test_invalid_reports_raise_and_are_counted():
    link = Link({"max_bits": 100, "max_symbols": 10})
    with pytest.raises(InvalidInput, match="NaN or Inf"):
        link.process_analog(np.array([np.nan], np.complex64), 0, 0)
    with pytest.raises(TooLarge):
        link.process_analog(np.ones(11, np.complex64), 0, 1)
    with pytest.raises(InvalidInput, match="empty"):
        link.process_digital(Bits(b"", 0), 0, 2)
    with pytest.raises(TooLarge):
        link.process_digital(bits_of(0, 101), 0, 3)
    with pytest.raises(InvalidInput, match="seq must be a non-negative int"):
        link.process_digital(bits_of(0, 8), 0, -1)
    with pytest.raises(InvalidInput, match="UE id must be >= 0"):
        link.process_digital(bits_of(0, 8), -2, 0)
    snap = link.stats.snapshot()
    assert snap["rejected"] == {"analog:InvalidInput": 1, "analog:TooLarge": 1, "digital:InvalidInput": 3,
                                "digital:TooLarge": 1}
    assert snap["reports_in"]["total"] == 0


def test_ideal_link_is_bit_exact_for_both_paths():
    link = Link({"ideal": True, "snr_db": -50, "loss_prob": 1.0, "delay_ms": 100})
    b = bits_of(9, 333)
    r = link.process_digital(b, 0, 0)
    assert r.bits_hat == b and r.delay_ms == 0.0
    x = symbols_of(9)
    np.testing.assert_array_equal(link.process_analog(x, 0, 0).symbols_hat, x)
