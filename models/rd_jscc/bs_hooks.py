"""The BS refiner of RD-JSCC: ``rd-ddim`` (registered with ``bs_service.hooks``).

Options (manifest ``bs.refinement``, overridable per model in the BS settings ``hooks`` or by a
scenario's ``diffusion`` section):

* ``steps``: DDIM steps (0 = the autoencoder alone; 2 = the low-latency default; up to T);
* ``skip_above_snr_db`` / ``skip_below_snr_db``: flexible decoding, reports whose effective
  uplink SNR is at or above / below these are not refined (their autoencoder estimate is
  returned); None = no limit. The measured gain of the refinement is smallest at low SNR
  (docs/rd_jscc.md), so ``skip_below_snr_db`` is the one that saves time for free;
* ``latency_budget_ms``: per batch; the steps are cut (down to none) so the refinement's
  predicted time, from the measured cost per report and step, fits;
* ``seed``: with ``init_noise`` (model option) the initial noise of a report is keyed by
  ``(seed, its latent)``, so a report gets the same reconstruction however it is batched;
  without it (the default) sampling is deterministic.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np

from bs_service.hooks import Refiner, register_refiner
from shared.errors import BundleError, InvalidInput


@register_refiner("rd-ddim")
class ResidualDdim(Refiner):
    def __init__(
        self,
        bundle: Any = None,
        decoder: Any = None,
        steps: int | None = None,
        skip_above_snr_db: float | None = None,
        skip_below_snr_db: float | None = None,
        latency_budget_ms: float | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        import torch
        from safetensors.torch import load_file

        from models.rd_jscc.model import Refinement

        base = dict(getattr(getattr(bundle, "manifest", None), "bs", None).refinement or {}) if bundle else {}
        opts = {**base, **options}
        steps = int(base.get("steps", 2) if steps is None else steps)
        super().__init__(bundle, decoder, steps, **options)
        if bundle is None or decoder is None:
            raise BundleError("the rd-ddim refiner needs its bundle and decoder")
        cfg, weights = opts.get("model"), opts.get("weights")
        if not cfg or not weights:
            raise BundleError(
                f"bundle {bundle.model_id}: bs.refinement lacks 'model' or 'weights' for rd-ddim"
            )
        self.stage = Refinement(cfg)
        if not 0 <= steps <= self.stage.start:
            raise InvalidInput(f"rd-ddim steps must be 0..{self.stage.start}, got {steps}")
        try:
            self.stage.load_state_dict(load_file(str(bundle.file(weights))), strict=True)
        except RuntimeError as exc:
            raise BundleError(
                f"bundle {bundle.model_id}: denoiser weights do not match its config: {exc}"
            ) from None
        self.device = str(getattr(decoder, "device", "cpu"))
        self.stage = self.stage.to(self.device).eval()
        self.skip_above = None if skip_above_snr_db is None else float(skip_above_snr_db)
        self.skip_below = None if skip_below_snr_db is None else float(skip_below_snr_db)
        self.budget_ms = None if latency_budget_ms is None else float(latency_budget_ms)
        self.seed = int(seed)
        self.scale = float(bundle.manifest.normalization["scale"])
        self.symbols = int(bundle.manifest.latent_size) // 2
        self.default_snr = float(getattr(decoder, "default_snr_db", 20.0))
        self.ms_per_eval: float | None = None  # measured cost per report and U-Net evaluation
        self._torch = torch

    def _noise(self, latents: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty((len(latents), *shape), np.float32)
        for i, z in enumerate(latents):
            key = zlib.crc32(np.ascontiguousarray(z, np.float32).tobytes())
            out[i] = np.random.default_rng([self.seed, key]).standard_normal(shape, dtype=np.float32)
        return out

    def plan(self, n: int) -> int:
        """Steps for a batch of ``n`` reports under the latency budget."""
        if self.budget_ms is None or self.ms_per_eval is None:
            return self.steps
        fit = int(self.budget_ms // max(self.ms_per_eval * n, 1e-9))
        return max(0, min(self.steps, fit))

    def refine(
        self, h_ad: np.ndarray, latents: np.ndarray, side: dict[str, np.ndarray], snr_db: np.ndarray | None
    ) -> np.ndarray:
        from shared.transforms import complex_to_real, real_to_complex

        torch = self._torch
        b = len(h_ad)
        snr = np.full(b, self.default_snr, np.float32) if snr_db is None else np.asarray(snr_db, np.float32)
        todo = np.ones(b, bool)
        if self.skip_above is not None:
            todo &= snr < self.skip_above
        if self.skip_below is not None:
            todo &= snr >= self.skip_below
        steps = self.plan(int(todo.sum()))
        if steps == 0 or not todo.any():
            return h_ad
        idx = np.flatnonzero(todo)
        lat = np.asarray(latents, np.float32)[idx]
        nz = np.abs(lat).reshape(len(idx), -1, 2).sum(2) > 0  # symbols sent: the nonzero prefix
        k = np.where(nz.any(1), nz.shape[1] - np.argmax(nz[:, ::-1], axis=1), self.symbols)
        x = complex_to_real(np.asarray(h_ad)[idx] * np.float32(self.scale))
        drawn = self.stage.cfg.get("init_noise", False)  # else: the deterministic residual trajectory
        noise = self._noise(lat, x.shape[1:]) if drawn else np.zeros_like(x)
        t0 = time.perf_counter()
        with torch.inference_mode():
            dev = self.device
            out = self.stage.refine(
                torch.from_numpy(x).to(dev),
                torch.from_numpy(snr[idx]).to(dev),
                torch.from_numpy(k.astype(np.float32)).to(dev),
                steps,
                torch.from_numpy(noise).to(dev),
            )
            out = out.float().cpu().numpy()
        per = (time.perf_counter() - t0) * 1e3 / (len(idx) * steps)
        self.ms_per_eval = per if self.ms_per_eval is None else 0.8 * self.ms_per_eval + 0.2 * per
        res = np.array(h_ad, np.complex64, copy=True)
        res[idx] = real_to_complex(out) / np.float32(self.scale)
        return res
