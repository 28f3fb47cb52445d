"""Generation configs: one frozen dataclass, named profiles, YAML/flag overrides.

A :class:`GenConfig` fully determines a dataset's contents (with its seed): two runs with the
same config produce the same file contents, and ``dataset_id`` is a hash of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import InvalidInput

SCHEMA = "csilink-dataset/1"
CDL_MODELS = ("CDL-A", "CDL-B", "CDL-C", "CDL-D", "CDL-E")
TDL_MODELS = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E")
SYSTEM_MODELS = ("UMi", "UMa")
GSCM_MODELS = ("GSCM",)  # datagen/gscm.py: a COST 2100-style site, parameters in ``extra``
MODELS = CDL_MODELS + TDL_MODELS + SYSTEM_MODELS + GSCM_MODELS
POSITION_MODELS = SYSTEM_MODELS + GSCM_MODELS  # profiles that store the UE position
SPLITS = ("train", "val", "test")
LOS_MODES = ("auto", "los", "nlos")
# Fields that only the system-level models (UMi/UMa) read. They are left out of the canonical
# JSON of CDL/TDL configs, so adding them did not change any existing dataset_id; for UMi/UMa
# ``delay_spread`` is left out instead (the LSP generator draws the delay spread per UE).
SYSTEM_FIELDS = ("min_distance", "max_distance", "los")


@dataclass(frozen=True)
class GenConfig:
    """Everything that defines a generated dataset.

    Units: seconds, Hertz, metres per second. Angles and delays come from the TR 38.901
    tables of ``model`` (Sionna's copy, ``spec_version``).
    """

    profile: str = "generic"
    model: str = "CDL-C"
    delay_spread: float = 300e-9
    n_antennas: int = 32  # BS uniform linear array (horizontal, along y), single polarization
    bs_pattern: str = "38.901"  # "38.901" or "omni"
    bs_spacing: float = 0.5  # element spacing in DL wavelengths (the physical array is fixed)
    ut_pattern: str = "omni"
    polarization: str = "V"  # both ends; "V" (vertical) or "H" (horizontal)
    n_subcarriers: int = 667
    subcarrier_spacing: float = 15e3
    f_dl: float = 2.11e9
    f_ul: float = 1.91e9
    min_speed: float = 5.0
    max_speed: float = 5.0
    target_delay: float = 5e-3  # Y and Z are taken this long after X
    ul_phases: str = "independent"  # "independent" (physical FDD) or "shared" (diagnostic)
    # "physical": the UL sees the DL's array (0.4526 UL wavelengths); "rescaled": half a UL
    # wavelength, the artefact of a second CDL object at the UL carrier (diagnostic only).
    ul_array: str = "physical"
    n_taps: int = 32
    n_train: int = 1000
    n_val: int = 100
    n_test: int = 100
    sf_splits: tuple[str, ...] = ("test",)  # splits that also store the full SF matrices
    sf_cap: int = 1000  # at most this many SF samples per split (the first ones)
    seed: int = 0
    block_size: int = 256  # samples per random stream / HDF5 chunk (defines contents)
    spec_version: str = "19.2"
    # UMi/UMa only (see datagen/system.py): horizontal BS-UE distance range in metres (None: the
    # model's default, UMi 10..100, UMa 35..250) and the LoS state ("auto": TR 38.901 7.4.2).
    min_distance: float | None = None
    max_distance: float | None = None
    los: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`InvalidInput` naming the first bad field."""
        if self.model not in MODELS:
            raise InvalidInput(f"model {self.model!r} not one of {', '.join(MODELS)}")
        if self.ul_phases not in ("independent", "shared"):
            raise InvalidInput(f"ul_phases must be 'independent' or 'shared', got {self.ul_phases!r}")
        if self.ul_array not in ("physical", "rescaled"):
            raise InvalidInput(f"ul_array must be 'physical' or 'rescaled', got {self.ul_array!r}")
        if self.bs_pattern not in ("38.901", "omni") or self.ut_pattern not in ("38.901", "omni"):
            raise InvalidInput("antenna patterns must be '38.901' or 'omni'")
        if self.polarization not in ("V", "H"):
            raise InvalidInput(f"polarization must be 'V' or 'H', got {self.polarization!r}")
        for name in ("n_antennas", "n_subcarriers", "n_taps", "block_size"):
            if int(getattr(self, name)) < 1:
                raise InvalidInput(f"{name} must be >= 1")
        if self.n_taps > self.n_subcarriers:
            raise InvalidInput(f"n_taps ({self.n_taps}) > n_subcarriers ({self.n_subcarriers})")
        for name in ("n_train", "n_val", "n_test", "sf_cap", "seed"):
            if int(getattr(self, name)) < 0:
                raise InvalidInput(f"{name} must be >= 0")
        for name in ("subcarrier_spacing", "f_dl", "f_ul", "delay_spread", "bs_spacing"):
            if not float(getattr(self, name)) > 0:
                raise InvalidInput(f"{name} must be > 0")
        if self.target_delay < 0 or self.min_speed < 0 or self.max_speed < self.min_speed:
            raise InvalidInput("need target_delay >= 0 and 0 <= min_speed <= max_speed")
        if self.los not in LOS_MODES:
            raise InvalidInput(f"los must be one of {LOS_MODES}, got {self.los!r}")
        for name in ("min_distance", "max_distance"):
            v = getattr(self, name)
            if v is not None and not float(v) > 0:
                raise InvalidInput(f"{name} must be > 0 (metres) or null, got {v!r}")
        if (self.min_distance is not None and self.max_distance is not None
                and float(self.max_distance) < float(self.min_distance)):
            raise InvalidInput(f"max_distance ({self.max_distance}) < min_distance ({self.min_distance})")
        bad = [s for s in self.sf_splits if s not in SPLITS]
        if bad:
            raise InvalidInput(f"sf_splits: unknown split(s) {bad}; use {SPLITS}")

    # ------------------------------------------------------------------ views
    def split_sizes(self) -> dict[str, int]:
        return {"train": int(self.n_train), "val": int(self.n_val), "test": int(self.n_test)}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sf_splits"] = list(self.sf_splits)
        drop = ("delay_spread",) if self.model in SYSTEM_MODELS else SYSTEM_FIELDS
        if self.model in GSCM_MODELS:  # the site's geometry sets the delays
            drop = ("delay_spread", *SYSTEM_FIELDS)
        for k in drop:
            del d[k]  # fields the model ignores are no part of the dataset's identity
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): what the file stores and ``dataset_id`` hashes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def dataset_id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> GenConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InvalidInput(f"unknown config field(s): {sorted(unknown)}")
        if "sf_splits" in changes:
            changes["sf_splits"] = tuple(changes["sf_splits"])
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenConfig:
        return cls().replace(**d)


# The paper's setup (seed 003, "Simulation Settings"): CDL-C, 300 ns, 32 x 667 at 15 kHz,
# DL 2.11 GHz / UL 1.91 GHz, 5 m/s, Y and Z 5 ms (70 OFDM symbols) after X.
CDL_C_FDD = GenConfig(profile="cdl-c-fdd")

# A COST2100-shaped world (Nt=32, Nc=1024) on a 3GPP model: the COST2100 indoor picocell
# (5.3 GHz) is LoS-dominated and very sparse in the angular-delay domain, so we take CDL-D
# (LoS, K = 13.3 dB) with the TR 38.901 "indoor office, normal" delay spread at ~6 GHz
# (30 ns), 20 MHz over 1024 subcarriers (19.53 kHz), a walking UE (1 m/s), and an FDD UL
# 200 MHz below the DL. Only the shape follows COST2100; the statistics are 3GPP's.
COST2100_LIKE = GenConfig(
    profile="cost2100-like",
    model="CDL-D",
    delay_spread=30e-9,
    n_subcarriers=1024,
    subcarrier_spacing=20e6 / 1024,
    f_dl=5.3e9,
    f_ul=5.1e9,
    min_speed=1.0,
    max_speed=1.0,
)

# A rich, geometry-varying 3GPP world (what RD-JSCC asks for): TR 38.901 UMi street canyon,
# NLoS forced, one outdoor UE per sample dropped 10..100 m from a 10 m BS, 32 x 1024 at 15 kHz
# (15.36 MHz; 32 taps span 2.08 us, which keeps ~96% of UMi's energy, see docs/dataset.md),
# the paper's carriers and speed.
UMI_NLOS = GenConfig(profile="umi-nlos", model="UMi", los="nlos", n_subcarriers=1024)

# The shape of COST2100's *outdoor* data (the set of RD-JSCC's large gains): a fixed site of
# clusters with visibility regions, a UE anywhere in a 400 m x 400 m area in front of a 32-element
# BS ULA, 300 MHz, 20 MHz over 1024 subcarriers (32 taps = 1.6 us); datagen/gscm.py. Geometry
# varies with the UE's position inside one site, as in COST 2100's single-link scenarios.
GSCM_OUTDOOR = GenConfig(
    profile="gscm-outdoor",
    model="GSCM",
    n_subcarriers=1024,
    subcarrier_spacing=20e6 / 1024,
    f_dl=300e6,
    f_ul=270e6,
)

GENERIC = GenConfig(profile="generic")

PROFILES: dict[str, GenConfig] = {c.profile: c for c in (CDL_C_FDD, COST2100_LIKE, UMI_NLOS, GSCM_OUTDOOR,
                                                          GENERIC)}

PROFILE_HELP = {
    "cdl-c-fdd": "the paper's setup: CDL-C 300 ns, BS 32 (38.901, V), UE omni, 667 x 15 kHz, "
    "DL 2.11 / UL 1.91 GHz, 5 m/s, target 5 ms",
    "cost2100-like": "Nt=32, Nc=1024 shape of COST2100 indoor on 3GPP CDL-D (LoS) 30 ns, 5.3/5.1 GHz, "
    "20 MHz, 1 m/s",
    "umi-nlos": "TR 38.901 UMi NLoS, a new UE position per sample (10..100 m, BS 10 m), Nt=32, "
    "1024 x 15 kHz, DL 2.11 / UL 1.91 GHz, 5 m/s, target 5 ms; stores position and los",
    "gscm-outdoor": "COST 2100-style site (far clusters with visibility regions, local cluster, LoS "
    "regions), UE anywhere in 400 m x 400 m, Nt=32, 1024 x 19.53 kHz, DL 300 / UL 270 MHz, 5 m/s; "
    "stores position and los",
    "generic": "every field settable (--set key=value or --config YAML), models CDL-A..E, TDL-A..E, "
    "UMi, UMa (with min_distance, max_distance, los=auto|los|nlos); defaults = cdl-c-fdd",
}


def get_profile(name: str) -> GenConfig:
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidInput(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of config fields (keys as in :class:`GenConfig`)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"config {path}: expected a mapping of fields")
    return data


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value) with the value parsed as YAML (numbers, lists, ...)."""
    import yaml

    if "=" not in text:
        raise InvalidInput(f"expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip().replace("-", "_"), yaml.safe_load(raw)
