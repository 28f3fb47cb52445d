"""LinkConfig validation: defaults, clear errors naming the field, spellings, immutability."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from channel_emulator.config import LinkConfig
from shared.errors import InvalidInput


def test_defaults_are_valid_and_documented_values():
    cfg = LinkConfig()
    assert cfg.mode == "awgn" and cfg.n_rx == 32 and cfg.block_fading and not cfg.ideal
    assert cfg.modulation == "qpsk" and cfg.crc == "crc11"
    assert math.isclose(cfg.n0, 0.1)  # snr 10 dB, Es = 1


@pytest.mark.parametrize(
    ("data", "field", "hint"),
    [
        ({"mode": "fast"}, "mode", "'awgn', 'rayleigh', 'rician', 'tdl-a', 'tdl-b' or 'tdl-c'"),
        ({"snr_db": float("nan")}, "snr_db", "finite"),
        ({"snr_db": float("inf")}, "snr_db", "finite"),
        ({"snr_db": 500}, "snr_db", "less than or equal to 100"),
        ({"n_rx": 0}, "n_rx", "greater than or equal to 1"),
        ({"n_rx": 2.5}, "n_rx", "integer"),
        ({"loss_prob": 1.5}, "loss_prob", "less than or equal to 1"),
        ({"jitter_ms": -1}, "jitter_ms", "greater than or equal to 0"),
        ({"crc": "crc7"}, "crc", "'crc6', 'crc11', 'crc16' or 'crc24a'"),
        ({"modulation": "64qam"}, "modulation", "'bpsk', 'qpsk' or '16qam'"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"snr": 3}, "snr", "unknown field"),
    ],
)
def test_invalid_config_names_the_field(data, field, hint):
    with pytest.raises(InvalidInput) as info:
        LinkConfig.from_mapping(data)
    msg = str(info.value)
    assert msg.startswith("invalid link config: ")
    assert f"{field}: " in msg and hint in msg


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidInput) as info:
        LinkConfig.from_mapping({"n_rx": 0, "mode": "x"})
    assert "n_rx:" in str(info.value) and "mode:" in str(info.value)


def test_standard_spellings_are_accepted():
    cfg = LinkConfig.from_mapping({"mode": "TDL-C", "modulation": "QPSK", "crc": "CRC24A"})
    assert (cfg.mode, cfg.modulation, cfg.crc) == ("tdl-c", "qpsk", "crc24a")
    assert LinkConfig.from_mapping({"crc": "none"}).crc is None
    assert LinkConfig(crc=None).crc is None


def test_updated_validates_and_keeps_other_fields():
    cfg = LinkConfig(mode="rician", rician_k_db=3, n_rx=4)
    new = cfg.updated(snr_db=-5)
    assert new.snr_db == -5 and new.mode == "rician" and new.rician_k_db == 3 and new.n_rx == 4
    with pytest.raises(InvalidInput, match="n_rx"):
        cfg.updated(n_rx=-1)
    assert cfg.snr_db == 10.0


def test_config_is_immutable():
    cfg = LinkConfig()
    with pytest.raises(ValidationError):
        cfg.snr_db = 3.0  # type: ignore[misc]


def test_derived_quantities():
    cfg = LinkConfig(snr_db=-3, rician_k_db=10)
    assert math.isclose(cfg.n0, 10 ** 0.3)
    assert math.isclose(cfg.rician_k, 10.0)
