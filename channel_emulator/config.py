"""``LinkConfig``: every knob of the emulated uplink, validated.

One config drives both paths (analog JSCC symbols and digital bitstreams): the fading
``mode``, the SNR, the BS array size for maximum ratio combining, then the digital-only
fields (modulation, CRC) and the network impairments (loss, delay, jitter).

SNR definition (both paths): transmitted symbols have unit average power (``Es = 1``), each
receive antenna's channel coefficient has unit average power (``E|h|^2 = 1``) and each antenna
adds complex Gaussian noise of variance ``N0 = 10^(-snr_db/10)``. So ``snr_db`` is the average
per-antenna receive SNR ``Es/N0``; with one antenna and ``mode="awgn"`` it is exactly the
symbol SNR, and MRC over ``n_rx`` antennas adds ``10 log10(n_rx)`` dB on average.

>>> cfg = LinkConfig(mode="rician", snr_db=5, rician_k_db=10, n_rx=8)
>>> cfg.updated(snr_db=0).snr_db
0.0
>>> LinkConfig.from_mapping({"mode": "fast"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
shared.errors.InvalidInput: invalid link config: mode: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import InvalidInput

Mode = Literal["awgn", "rayleigh", "rician", "tdl-a", "tdl-b", "tdl-c"]
Modulation = Literal["bpsk", "qpsk", "16qam"]
CrcName = Literal["crc6", "crc11", "crc16", "crc24a"]

MODES: tuple[str, ...] = ("awgn", "rayleigh", "rician", "tdl-a", "tdl-b", "tdl-c")
MODULATIONS: tuple[str, ...] = ("bpsk", "qpsk", "16qam")
CRCS: tuple[str, ...] = ("crc6", "crc11", "crc16", "crc24a")


class LinkConfig(BaseModel):
    """The emulated link. Immutable; ``updated(**changes)`` returns a validated copy.

    Fields (units in the names):

    * ``ideal``: noiseless passthrough: no noise, fading, loss, delay or jitter; payloads come
      back bit-exact (analog symbols unchanged, ``effective_snr_db = inf``). Other fields are
      kept but ignored.
    * ``mode``: ``awgn`` (h = 1 on every antenna), ``rayleigh`` (h ~ CN(0, 1) i.i.d. over
      antennas), ``rician`` (LOS ULA steering vector + Rayleigh scatter, K = ``rician_k_db``),
      ``tdl-a|b|c`` (3GPP TR 38.901 7.7.2 tapped delay line, frequency response on the
      subcarriers; ``delay_spread_ns``, ``subcarrier_spacing_khz``).
    * ``snr_db``: average per-antenna receive SNR Es/N0 (see the module docstring).
    * ``n_rx``: BS receive antennas combined by MRC (SIMO, 1 UE antenna).
    * ``block_fading``: True = one channel draw per report (all symbols see the same antenna
      gains; for TDL one impulse response per report); False = an independent draw per symbol.
    * ``modulation`` / ``crc``: digital path only. The CRC (TS 38.212 5.1) is appended to the
      payload and its bits go on the air; ``None`` sends the payload unprotected.
    * ``loss_prob``: probability that a report is lost outright (both paths).
    * ``delay_ms`` / ``jitter_ms``: one-way delay ``max(0, N(delay_ms, jitter_ms^2))`` per
      report (netem-style normal jitter); the ``Link`` reports it, the server waits it out.
    * ``seed``: scenario seed; draws are keyed by ``(seed, ue_id, seq)`` (``channel_emulator.rng``).
    * ``max_bits`` / ``max_symbols``: payload size limits (larger -> ``TooLarge``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ideal: bool = False
    mode: Mode = "awgn"
    snr_db: float = Field(10.0, ge=-50.0, le=100.0)
    rician_k_db: float = Field(10.0, ge=-40.0, le=60.0)
    n_rx: int = Field(32, ge=1, le=1024)
    block_fading: bool = True
    delay_spread_ns: float = Field(300.0, gt=0.0, le=10_000.0)
    subcarrier_spacing_khz: float = Field(30.0, gt=0.0, le=3_840.0)
    modulation: Modulation = "qpsk"
    crc: CrcName | None = "crc11"
    loss_prob: float = Field(0.0, ge=0.0, le=1.0)
    delay_ms: float = Field(0.0, ge=0.0, le=60_000.0)
    jitter_ms: float = Field(0.0, ge=0.0, le=60_000.0)
    seed: int = Field(0, ge=0, lt=2**63)
    max_bits: int = Field(1 << 20, ge=1, le=1 << 26)
    max_symbols: int = Field(1 << 16, ge=1, le=1 << 22)

    @field_validator("mode", "modulation", "crc", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        # "TDL-C", "QPSK", "CRC24A" are how the standards write them; accept that spelling.
        if isinstance(v, str):
            v = v.strip().lower()
            return None if v in ("", "none") else v
        return v

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None = None, **changes: Any) -> LinkConfig:
        """Build from a dict (e.g. parsed JSON/YAML or a gRPC request), raising ``InvalidInput``
        with every problem named (``field: message``) instead of pydantic's ``ValidationError``."""
        merged = {**(dict(data) if data else {}), **changes}
        try:
            return cls(**merged)
        except ValidationError as exc:
            raise InvalidInput(f"invalid link config: {_describe(exc)}") from None

    def updated(self, **changes: Any) -> LinkConfig:
        """A validated copy with ``changes`` applied (``model_copy`` would skip validation)."""
        return self.from_mapping(self.model_dump(), **changes)

    @property
    def n0(self) -> float:
        """Noise variance per receive antenna (complex, per symbol) for unit-power symbols."""
        return 10.0 ** (-self.snr_db / 10.0)

    @property
    def rician_k(self) -> float:
        """Rician K factor, linear (LOS power / scattered power)."""
        return 10.0 ** (self.rician_k_db / 10.0)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (known: {', '.join(LinkConfig.model_fields)})"
        elif err["type"] == "literal_error":
            msg += f", got {err.get('input')!r}"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
