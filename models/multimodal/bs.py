"""The BS half of a ``multimodal`` bundle: the Swin decoder plus its fusion branches (torch).

A report's latent is ``z(s) / K`` (48 reals from the ``thermometer`` wire). Without sensor data
the decoder reconstructs from the report alone; when the batch's ``side`` holds the sensor that
the ``mm-sensor`` fusion hook selected (``image`` uint8 ``[B, H, W, 3]`` or ``y_sf`` complex
``[B, 32, 576]``, the BS's SRS estimate), the branch ``(sensor, Ne)`` extracts its tokens and
the refiner ``R`` fuses them inside the decoder (at the bottleneck for Ne = 4, after the
first projection for Ne = 32). Output: the DL CSI direction, complex64 ``[B, 32, 576]`` with
unit mean power per entry (the codec is scale-free: scoring uses normalized NMSE).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from models.common.bs_torch import check_latents
from models.registry import resolve_device
from shared.errors import BundleError, InvalidInput


def sf_to_real(h: np.ndarray) -> torch.Tensor:
    """complex ``[B, Nt, Nsc]`` -> float32 ``[B, 2, Nt, Nsc]`` with unit RMS per sample (the
    scale the nets were trained at; the SRS estimate's own scale is meaningless)."""
    h = np.asarray(h, np.complex64)
    rms = np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2), keepdims=True))
    h = h / np.maximum(rms, 1e-30)
    return torch.from_numpy(np.stack([h.real, h.imag], axis=1).astype(np.float32))


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` -> float32 ``[B, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(0, 3, 1, 2).float().div_(255.0)


def branch_file(sensor: str, ne: int) -> str:
    return f"fusion-{sensor}-ne{int(ne)}.safetensors"


class MultiModalBsDecoder:
    """``decode_batch(latents [B, 48], side, snr_db) -> complex64 [B, 32, 576]``."""

    latent_size = 48
    needs: list[str] = []  # the CSI-only decoder needs nothing; the fusion hook adds its field

    def __init__(self, bundle: Any, codec: Any, branches: dict[tuple[str, int], Any], device: str) -> None:
        self.bundle, self.codec, self.branches = bundle, codec, branches
        self.device = torch.device(device)
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}  # sensor -> Ne chosen by the fusion hook

    @classmethod
    def from_bundle(cls, bundle: Any, device: str = "auto") -> MultiModalBsDecoder:
        from safetensors.torch import load_file

        from models.multimodal import SENSORS
        from models.multimodal.nets import MultiModalCodec

        dev = resolve_device(device)
        m = bundle.manifest
        if tuple(m.input_shape) != (32, 576) or m.latent_size != 48:
            raise BundleError(
                f"bundle {m.model_id}: multimodal decoders take 48 features of [32, 576] CSI, "
                f"manifest says latent {m.latent_size}, input {m.input_shape}"
            )

        def load(name: str) -> dict[str, torch.Tensor]:
            try:
                return load_file(str(bundle.file(name)))
            except BundleError:
                raise
            except Exception as exc:  # safetensors raises its own types
                raise BundleError(f"bundle {m.model_id}: cannot read {name}: {exc}") from None

        codec = MultiModalCodec(fusion=None)
        try:
            codec.decoder.load_state_dict(load("decoder.safetensors"))
        except RuntimeError as exc:
            raise BundleError(
                f"bundle {m.model_id}: decoder.safetensors does not fit the decoder: {exc}"
            ) from None
        codec.eval().to(dev)
        branches: dict[tuple[str, int], Any] = {}
        for b in m.bs.config.get("branches", []):
            sensor, ne = str(b["sensor"]), int(b["ne"])
            if sensor not in SENSORS:
                raise BundleError(f"bundle {m.model_id}: unknown fusion sensor {sensor!r}")
            full = MultiModalCodec(fusion=sensor, ne=ne)
            full.decoder = codec.decoder  # shared, frozen in stage 2
            state = load(b["file"])
            try:
                full.extractor.load_state_dict(
                    {k[10:]: v for k, v in state.items() if k.startswith("extractor.")}
                )
                full.refiner.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("refiner.")})
            except RuntimeError as exc:
                raise BundleError(
                    f"bundle {m.model_id}: {b['file']} does not fit branch {sensor}/Ne={ne}: {exc}"
                ) from None
            branches[(sensor, ne)] = full.eval().to(dev)
        return cls(bundle, codec, branches, dev)

    # ------------------------------------------------------------------ fusion selection
    def select(self, sensor: str | None, ne: int | None = None) -> None:
        """Which branch fuses a sensor's field when a batch carries it (the hook calls this)."""
        with self._lock:
            self._active = {}
            if sensor is None:
                return
            want = [k for k in self.branches if k[0] == sensor and (ne is None or k[1] == int(ne))]
            if not want:
                have = sorted(f"{s}/Ne={n}" for s, n in self.branches)
                raise InvalidInput(
                    f"bundle {self.bundle.model_id} has no fusion branch {sensor}"
                    f"{'' if ne is None else f'/Ne={ne}'}; it has {have}"
                )
            self._active = {sensor: max(w[1] for w in want)}

    def _branch(self, side: dict[str, np.ndarray]) -> tuple[Any, torch.Tensor] | None:
        from models.multimodal import SENSORS

        with self._lock:
            active = dict(self._active)
        for sensor, ne in active.items():
            field = SENSORS[sensor]
            if field not in side:
                continue
            s = np.asarray(side[field])
            if field == "image":
                if s.dtype != np.uint8 or s.ndim != 4 or s.shape[-1] != 3:
                    raise InvalidInput(
                        f"camera image must be uint8 [B, H, W, 3], got {s.dtype} {list(s.shape)}"
                    )
                if sensor == "box":  # the detector runs here, on the BS's own image
                    from shared.camera import car_box_batch

                    return self.branches[(sensor, ne)], torch.from_numpy(car_box_batch(s))
                return self.branches[(sensor, ne)], image_to_tensor(s)
            if s.ndim != 3 or s.shape[1:] != (32, 576) or not np.iscomplexobj(s):
                raise InvalidInput(f"uplink CSI must be complex [B, 32, 576], got {s.dtype} {list(s.shape)}")
            if not np.all(np.isfinite(s)):
                raise InvalidInput("uplink CSI contains NaN or Inf")
            return self.branches[(sensor, ne)], sf_to_real(s)
        return None

    @torch.no_grad()
    def decode_batch(
        self, latents: np.ndarray, side: dict[str, np.ndarray] | None = None, snr_db: np.ndarray | None = None
    ) -> np.ndarray:
        side = side or {}
        z = torch.from_numpy(check_latents(latents, self.latent_size)).to(self.device)
        br = self._branch(side)
        if br is None:
            x = self.codec.decode(z)
        else:
            model, sensor = br
            # samples the camera did not see (wireless-only rows) decode from the report alone
            seen = np.asarray(side.get("has_image", np.ones(len(z), bool)), bool).reshape(-1)
            if seen.shape[0] != len(z):
                raise InvalidInput(f"has_image holds {seen.shape[0]} flags for a batch of {len(z)}")
            if seen.all():
                x = model.decode(z, sensor.to(self.device))
            else:
                x = self.codec.decode(z)
                if seen.any():
                    idx = torch.from_numpy(np.flatnonzero(seen)).to(self.device)
                    x[idx] = model.decode(z[idx], sensor.to(self.device)[idx])
        x = x.float().cpu().numpy()
        h = x[:, 0] + 1j * x[:, 1]
        rms = np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2), keepdims=True))
        return (h / np.maximum(rms, 1e-30)).astype(np.complex64)
