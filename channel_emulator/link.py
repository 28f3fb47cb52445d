"""``Link``: the channel emulator's entry point for the gRPC servicer.

A ``Link`` holds the current ``LinkConfig`` and the accumulated ``LinkStats``. Each call
processes one report with random streams keyed by ``(config.seed, ue_id, seq)``, so a scenario
replays identically whatever the order or concurrency of the calls; pass the UE's report
sequence number as ``seq`` (the same ``(ue_id, seq)`` twice gives the same noise).

The ``Link`` never sleeps: it returns the one-way delay (``result.delay_ms``) and the server
waits it out (e.g. ``await asyncio.sleep(result.delay_ms / 1e3)``) before delivering.

Thread-safe: the config is swapped atomically (``configure``) and every call works on the
config it read at its start; statistics take their own lock.

>>> from shared.wire import Bits
>>> link = Link({"mode": "rayleigh", "snr_db": 10, "n_rx": 8, "seed": 1})
>>> r = link.process_digital(Bits.from_array(np.ones(64, np.uint8)), ue_id=0, seq=0)
>>> r.bits_hat.n_bits, link.stats.snapshot()["reports_in"]["digital"]
(64, 1)
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from channel_emulator.analog import AnalogResult, transmit_analog
from channel_emulator.config import LinkConfig
from channel_emulator.digital import DigitalResult, transmit_bits
from channel_emulator.rng import ReportRng
from channel_emulator.stats import LinkStats
from shared.errors import InvalidInput, TooLarge
from shared.wire import Bits


def draw_delay_ms(cfg: LinkConfig, rng: ReportRng) -> float:
    """One-way delay of a report: ``max(0, N(delay_ms, jitter_ms^2))`` (0 when ideal).

    Only touches the report's jitter stream when there is jitter (building a stream costs time).
    """
    if cfg.ideal:
        return 0.0
    if cfg.jitter_ms == 0.0:
        return float(cfg.delay_ms)
    return max(0.0, float(cfg.delay_ms + cfg.jitter_ms * rng.jitter.standard_normal()))


class Link:
    """The emulated uplink between every UE and the BS.

    :param config: a ``LinkConfig``, a mapping of its fields, or None for the defaults.
    """

    def __init__(self, config: LinkConfig | Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._config = _as_config(config)
        self.stats = LinkStats()

    @property
    def config(self) -> LinkConfig:
        with self._lock:
            return self._config

    def configure(self, config: LinkConfig | Mapping[str, Any] | None = None, **changes: Any) -> LinkConfig:
        """Replace the config (``config`` given) and/or change some fields; returns the new one.

        ``link.configure(snr_db=0)`` keeps every other field. Invalid values raise
        ``InvalidInput`` and leave the link unchanged.
        """
        with self._lock:
            base = self._config if config is None else _as_config(config)
            self._config = base.updated(**changes) if changes else base
            return self._config

    def process_digital(self, bits: Bits, ue_id: int | str, seq: int) -> DigitalResult:
        """Send one digital report (``shared.wire.Bits``) of UE ``ue_id`` with sequence ``seq``.

        Raises ``InvalidInput`` (not ``Bits``, empty, bad ``ue_id``/``seq``) or ``TooLarge``
        (over ``max_bits``); such reports are counted as rejected.
        """
        cfg = self.config
        try:
            rng = ReportRng(cfg.seed, ue_id, seq)
            result = transmit_bits(bits, cfg, rng)
        except (InvalidInput, TooLarge) as exc:
            self.stats.record_rejected("digital", type(exc).__name__)
            raise
        if result.reason != "loss":
            result = dataclasses.replace(result, delay_ms=draw_delay_ms(cfg, rng))
        self.stats.record_digital(result, bits.n_bits)
        return result

    def process_analog(self, symbols: np.ndarray, ue_id: int | str, seq: int) -> AnalogResult:
        """Send one analog report (complex ``[k]`` symbols) of UE ``ue_id`` with sequence ``seq``.

        Raises ``InvalidInput`` (not 1-D, empty, NaN/Inf, all zero, bad ``ue_id``/``seq``) or
        ``TooLarge`` (over ``max_symbols``); such reports are counted as rejected.
        """
        cfg = self.config
        try:
            rng = ReportRng(cfg.seed, ue_id, seq)
            result = transmit_analog(symbols, cfg, rng)
        except (InvalidInput, TooLarge) as exc:
            self.stats.record_rejected("analog", type(exc).__name__)
            raise
        if result.reason != "loss":
            result = dataclasses.replace(result, delay_ms=draw_delay_ms(cfg, rng))
        self.stats.record_analog(result, int(np.size(symbols)))
        return result


def _as_config(config: LinkConfig | Mapping[str, Any] | None) -> LinkConfig:
    if config is None:
        return LinkConfig()
    if isinstance(config, LinkConfig):
        return config
    if isinstance(config, Mapping):
        return LinkConfig.from_mapping(config)
    raise InvalidInput(f"link config must be a LinkConfig or a mapping, got {type(config).__name__}")
