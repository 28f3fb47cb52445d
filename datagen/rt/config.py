"""The configuration of a ray-traced multi-modal dataset (``csilink-dataset/1``, SF domain).

A :class:`RtConfig` with its seed fully determines the channels of a dataset (the camera
images up to the renderer's sampling noise); ``dataset_id`` hashes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidInput

SCHEMA = "csilink-dataset/1"
SPLITS = ("train", "val", "test")
KINDS = ("image", "wireless")


@dataclass(frozen=True)
class RtConfig:
    """Everything that defines a ray-traced dataset. Metres, Hertz, degrees.

    Carriers: the paper's 28 GHz DL; its UL carrier is not given, we take 26 GHz (a 7% duplex
    gap, the same order as the 2.11 / 1.91 GHz of the CDL worlds). 120 kHz subcarriers (FR2
    numerology 3), 48 RB x 12 = 576 subcarriers (69.1 MHz): with Nt = 32 and a patch of
    2 antennas x 1 RB this is the paper's token grid 16 x 48 and N = 48 features.
    """

    profile: str = "rt-street"
    scene: str = "simple_street_canyon_with_cars"
    n_antennas: int = 32  # BS ULA (horizontal), 38.901 pattern, V polarization
    n_rb: int = 48
    subcarrier_spacing: float = 120e3
    f_dl: float = 28e9
    f_ul: float = 26e9
    # BS and camera 15 m up over the middle of the street, looking down it; the camera sees the
    # street from ~20 m to its end (~100 m) and into the far cross street's mouth.
    bs_position: tuple[float, float, float] = (-40.0, 0.5, 15.0)
    look_at: tuple[float, float, float] = (10.0, 0.5, 0.0)
    fov: float = 45.0  # camera horizontal field of view
    image_size: tuple[int, int] = (192, 256)  # H, W (the paper's resized images)
    render_spp: int = 16
    lighting: tuple[float, float] = (0.5, 1.6)  # uniform lighting scale (time of day)
    ue_color: tuple[float, float, float] = (0.8, 0.05, 0.05)
    max_depth: int = 3
    # Rays per source: 2e5 instead of 1e6 traces 4.5x faster and moves the CSI by only -26 dB NMSE.
    samples_per_src: int = 200_000
    min_distance: float = 8.0
    max_distance: float = 150.0
    # Image samples: one UE in the camera's view (x0, y0, x1, y1) regions, drawn with weights:
    # the main street in front of the camera, and the far cross street (mostly NLOS).
    view_regions: tuple[tuple[float, float, float, float], ...] = (
        (-15.0, -7.5, 60.0, 8.5), (17.0, -25.0, 30.5, 25.0))
    view_weights: tuple[float, ...] = (0.8, 0.2)
    ues_per_solve: int = 16  # wireless samples: UEs sharing one solve
    n_train_image: int = 1000
    n_train_wireless: int = 4000
    n_val_image: int = 100
    n_val_wireless: int = 200
    n_test_image: int = 100
    n_test_wireless: int = 200
    block_size: int = 16  # samples per block (one random stream, one write); a multiple of ues_per_solve
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_subcarriers(self) -> int:
        return 12 * int(self.n_rb)

    def validate(self) -> None:
        """Raise :class:`InvalidInput` naming the first bad field."""
        for name in ("n_antennas", "n_rb", "block_size", "ues_per_solve", "max_depth", "render_spp"):
            if int(getattr(self, name)) < 1:
                raise InvalidInput(f"{name} must be >= 1")
        if self.block_size % self.ues_per_solve:
            raise InvalidInput(f"block_size ({self.block_size}) must be a multiple of ues_per_solve "
                               f"({self.ues_per_solve})")
        for name in ("f_dl", "f_ul", "subcarrier_spacing", "fov", "max_distance"):
            if not float(getattr(self, name)) > 0:
                raise InvalidInput(f"{name} must be > 0")
        if len(self.view_regions) != len(self.view_weights) or abs(sum(self.view_weights) - 1) > 1e-6:
            raise InvalidInput("view_weights must give one weight per view region and sum to 1")
        for split in SPLITS:
            for kind in KINDS:
                if int(getattr(self, f"n_{split}_{kind}")) < 0:
                    raise InvalidInput(f"n_{split}_{kind} must be >= 0")
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            raise InvalidInput(f"image_size must be (H, W) >= 8, got {self.image_size}")

    def sizes(self, split: str) -> dict[str, int]:
        return {k: int(getattr(self, f"n_{split}_{k}")) for k in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def dataset_id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RtConfig:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise InvalidInput(f"unknown config field(s): {sorted(unknown)}")
        for k, v in list(changes.items()):
            if isinstance(v, list):  # YAML / JSON lists -> the tuples the dataclass holds
                changes[k] = tuple(tuple(e) if isinstance(e, list) else e for e in v)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RtConfig:
        return cls().replace(**d)


# The paper's two data sets on one world: camera-paired samples (UE in the camera's view,
# LOS-biased) and wireless-only samples (LOS and NLOS anywhere on the streets, 16 UEs a solve).
RT_STREET_IMAGE = RtConfig(profile="rt-street-image", ues_per_solve=1, block_size=8, n_train_image=1200,
                           n_train_wireless=0, n_val_image=100, n_val_wireless=0, n_test_image=100,
                           n_test_wireless=0)
RT_STREET_WIRELESS = RtConfig(profile="rt-street-wireless", n_train_image=0, n_train_wireless=8000,
                              n_val_image=0, n_val_wireless=480, n_test_image=0, n_test_wireless=480)
# The committed sample (data/sample/rt-street-sample.h5, `make sample-data`): both kinds, small.
RT_STREET_SAMPLE = RtConfig(profile="rt-street-sample", ues_per_solve=8, block_size=8, n_train_image=8,
                            n_train_wireless=8, n_val_image=0, n_val_wireless=0, n_test_image=16,
                            n_test_wireless=16)
RT_PROFILES = {c.profile: c for c in (RT_STREET_IMAGE, RT_STREET_WIRELESS, RT_STREET_SAMPLE)}
