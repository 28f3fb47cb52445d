"""Thread-safe accumulating link statistics with a JSON-friendly snapshot.

Counts reports in and out, drops by reason, bits on the air and bit errors (BER), the SNR
measured on the noise actually drawn, the post-MRC effective SNR and a delay histogram.
Every update takes one lock, so concurrent gRPC handlers can share one ``LinkStats``.

>>> s = LinkStats()
>>> s.snapshot()["reports_in"]
{'digital': 0, 'analog': 0, 'total': 0}
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from channel_emulator.analog import AnalogResult
from channel_emulator.digital import DigitalResult

#: Delay histogram bin edges in ms; the last bin is open (>= 5000 ms).
DELAY_EDGES_MS: tuple[float, ...] = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class LinkStats:
    """Accumulated since creation or the last ``reset()``; ``snapshot()`` copies them out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._in = {"digital": 0, "analog": 0}
            self._out = {"digital": 0, "analog": 0}
            self._dropped: dict[str, int] = {"crc": 0, "loss": 0}
            self._rejected: dict[str, int] = {}
            self._bits_on_air = 0  # bits of reports that reached the receiver
            self._bits_sent = 0  # including lost reports
            self._bit_errors = 0
            self._payload_bits = 0
            self._payload_bit_errors = 0
            self._undetected = 0
            self._symbols = {"digital": 0, "analog": 0}
            self._sig = 0.0
            self._noise = 0.0
            self._eff_snr_sum = 0.0
            self._eff_snr_n = 0
            self._delay_counts = np.zeros(len(DELAY_EDGES_MS), np.int64)
            self._delay_sum = 0.0
            self._delay_max = 0.0
            self._delay_n = 0

    def _common(self, kind: str, dropped: bool, reason: str, eff_snr_db: float, sig: float, noise: float,
                delay_ms: float, lost: bool) -> None:
        self._in[kind] += 1
        if dropped:
            self._dropped[reason] = self._dropped.get(reason, 0) + 1
        else:
            self._out[kind] += 1
        self._sig += sig
        self._noise += noise
        if math.isfinite(eff_snr_db):
            self._eff_snr_sum += eff_snr_db
            self._eff_snr_n += 1
        if not lost:
            i = int(np.searchsorted(DELAY_EDGES_MS, delay_ms, side="right")) - 1
            self._delay_counts[max(i, 0)] += 1
            self._delay_sum += delay_ms
            self._delay_max = max(self._delay_max, delay_ms)
            self._delay_n += 1

    def record_digital(self, r: DigitalResult, payload_bits: int) -> None:
        """Account one digital report of ``payload_bits`` payload bits."""
        lost = r.reason == "loss"
        with self._lock:
            self._common("digital", r.dropped, r.reason, r.effective_snr_db, r.signal_energy, r.noise_energy,
                         r.delay_ms, lost)
            self._bits_sent += r.n_bits_on_air
            self._symbols["digital"] += r.n_symbols
            if not lost:
                self._bits_on_air += r.n_bits_on_air
                self._bit_errors += r.bit_errors
                self._payload_bits += payload_bits
                self._payload_bit_errors += r.payload_bit_errors
                self._undetected += int(r.undetected_error)

    def record_analog(self, r: AnalogResult, n_symbols: int) -> None:
        """Account one analog report of ``n_symbols`` symbols."""
        with self._lock:
            self._common("analog", r.dropped, r.reason, r.effective_snr_db, r.signal_energy, r.noise_energy,
                         r.delay_ms, r.reason == "loss")
            self._symbols["analog"] += n_symbols

    def record_rejected(self, kind: str, error: str) -> None:
        """Account one report refused before transmission (``error``: the exception class name)."""
        with self._lock:
            key = f"{kind}:{error}"
            self._rejected[key] = self._rejected.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """All counters as plain JSON types (``None`` where a ratio has no data).

        Keys: ``reports_in``/``reports_out`` (per kind and total), ``dropped`` (by reason, and
        total), ``rejected`` (by ``kind:error``), ``bits_sent`` (incl. lost reports),
        ``bits_on_air`` (received reports), ``bit_errors``, ``ber`` (raw channel BER),
        ``payload_bits``, ``payload_bit_errors``, ``payload_ber``, ``undetected_errors``
        (delivered reports with wrong bits), ``symbols_on_air``, ``measured_snr_db`` (per
        antenna, from drawn noise), ``effective_snr_db_mean`` (mean of the post-MRC effective
        SNR in dB over received, non-ideal reports), ``delay_ms`` (histogram and summary).
        """
        with self._lock:
            n_in = sum(self._in.values())
            return {
                "reports_in": {**self._in, "total": n_in},
                "reports_out": {**self._out, "total": sum(self._out.values())},
                "dropped": {**self._dropped, "total": sum(self._dropped.values())},
                "rejected": dict(self._rejected),
                "bits_sent": self._bits_sent,
                "bits_on_air": self._bits_on_air,
                "bit_errors": self._bit_errors,
                "ber": self._bit_errors / self._bits_on_air if self._bits_on_air else None,
                "payload_bits": self._payload_bits,
                "payload_bit_errors": self._payload_bit_errors,
                "payload_ber": self._payload_bit_errors / self._payload_bits if self._payload_bits else None,
                "undetected_errors": self._undetected,
                "symbols_on_air": {**self._symbols, "total": sum(self._symbols.values())},
                "measured_snr_db": _finite_or_none(10.0 * math.log10(self._sig / self._noise))
                if self._noise > 0 and self._sig > 0
                else None,
                "effective_snr_db_mean": self._eff_snr_sum / self._eff_snr_n if self._eff_snr_n else None,
                "delay_ms": {
                    "edges": list(DELAY_EDGES_MS),
                    "counts": self._delay_counts.tolist(),
                    "count": self._delay_n,
                    "mean": self._delay_sum / self._delay_n if self._delay_n else None,
                    "max": self._delay_max if self._delay_n else None,
                },
            }
