"""The BS half of an ``lcfsc`` bundle: the image transmitter (PyTorch; CUDA when present)."""

from __future__ import annotations

import json

import numpy as np
import torch

from models.lcfsc import mimo_torch as mt
from models.lcfsc.nets import Encoder, LcfscConfig
from shared.bundle import Bundle
from shared.errors import BundleError, InvalidInput


def _load_module(module: torch.nn.Module, path, prefix: str) -> None:
    from safetensors.torch import load_file

    sd = {k[len(prefix) :]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise BundleError(
            f"{path}: weights do not fit ({len(missing)} missing, {len(unexpected)} unexpected)"
        )


class ImageTransmitter:
    """JSCC encoder with CSI fusion masking (or the no-masking baseline) and its mask-ratio
    R-CVAE: images + fed-back H + SNR -> unit-power symbols ``[B, Nt, L / Nt]``."""

    def __init__(
        self, cfg: LcfscConfig, encoder: Encoder, rcvae: torch.nn.Module | None, device: str
    ) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        self.encoder, self.rcvae = (
            encoder.to(self.device).eval(),
            rcvae.to(self.device).eval() if rcvae else None,
        )
        self.image_size, self.n_symbols, self.sizes = cfg.image_size, cfg.n_symbols, tuple(cfg.sizes)
        self.uses_csi = cfg.uses_csi
        self.precoding = cfg.precoding
        self.last_ratio: np.ndarray | None = None

    @classmethod
    def from_bundle(cls, bundle: Bundle, device: str | None = None) -> ImageTransmitter:
        from models.lcfsc.mask import RCVAE

        m = bundle.manifest
        if m.family != "lcfsc":
            raise BundleError(f"{m.model_id} is a {m.family} bundle, not lcfsc")
        cfg = LcfscConfig.from_dict(json.loads(json.dumps(m.bs.config["model"])))
        enc = Encoder(cfg)
        _load_module(enc, bundle.file("tx.safetensors"), "encoder.")
        rcvae = None
        if cfg.csi_masking and cfg.learnable_ratio:
            rcvae = RCVAE(2 * cfg.n_symbols)
            _load_module(rcvae, bundle.file("tx.safetensors"), "rcvae.")
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(cfg, enc, rcvae, dev)

    def channel_uses(self, nt: int) -> int:
        """Channel uses per image on Nt streams: the data, plus Nt DMRS when precoded."""
        return self.n_symbols // nt + (nt if self.precoding != "none" else 0)

    def check(self, images: np.ndarray, h: np.ndarray | None, snr_db: np.ndarray) -> tuple[int, int]:
        s = self.image_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise InvalidInput(
                f"images must be uint8 [B, {s}, {s}, 3], got {images.dtype} {list(images.shape)}"
            )
        b = images.shape[0]
        snr = np.asarray(snr_db, np.float32)
        if snr.shape != (b,) or not np.all(np.isfinite(snr)):
            raise InvalidInput(f"snr_db must be {b} finite values, got {list(snr.shape)}")
        if h is None:
            if self.uses_csi:
                raise InvalidInput(
                    "this transmitter uses CSI: it needs H (csi mode feedback or perfect)"
                )
            return b, 0
        if h.shape[0] != b or h.ndim != 3 or h.shape[1] != h.shape[2] or h.shape[1] not in self.sizes:
            raise InvalidInput(f"H must be [B, N, N] with N in {list(self.sizes)}, got {list(h.shape)}")
        if not np.all(np.isfinite(h)):
            raise InvalidInput("H contains NaN or Inf")
        return b, h.shape[2]

    @torch.no_grad()
    def encode(
        self,
        images: np.ndarray,
        h: np.ndarray | None,
        snr_db: np.ndarray,
        nt: int | None = None,
        ratio: float | None = None,
    ) -> np.ndarray:
        """``images`` uint8 ``[B, S, S, 3]``, ``h`` complex ``[B, Nr, Nt]`` (None for the no-CSI
        baseline, which then needs ``nt``), ``snr_db [B]`` -> complex64 ``[B, Nt, L / Nt]``, or
        ``[B, Nt, Nt + L / Nt]`` when precoded (``W [I | S]``: DMRS first; shared.mimo).
        ``ratio`` fixes the mask ratio (the stable-ratio ablation) instead of the R-CVAE's."""
        b, n_t = self.check(np.asarray(images), None if h is None else np.asarray(h), snr_db)
        n_t = n_t or int(nt or 0)
        if n_t not in self.sizes:
            raise InvalidInput(f"Nt must be one of {list(self.sizes)}, got {n_t}")
        img = (
            torch.from_numpy(np.ascontiguousarray(images))
            .permute(0, 3, 1, 2)
            .float()
            .div(255.0)
            .to(self.device)
        )
        snr = torch.as_tensor(np.asarray(snr_db, np.float32), device=self.device)
        ht = None if h is None else torch.as_tensor(np.asarray(h, np.complex64), device=self.device)
        w = None
        if self.precoding != "none":
            assert ht is not None  # check() refuses a precoding transmitter without H
            w = mt.svd_precoder(ht)
            ht = ht @ w  # the networks see the streams' channel
        ht = ht if self.cfg.net_csi else None
        r = None
        if self.cfg.csi_masking:
            from models.lcfsc.mask import STABLE_RATIO

            stable = torch.full((b,), STABLE_RATIO, device=self.device)
            if ratio is not None:
                r = torch.full((b,), float(ratio), device=self.device)
            elif self.rcvae is not None:
                y_bar = mt.to_real(mt.normalize_power(mt.to_symbols(self.encoder(img, snr, ht, stable))))
                r, _ = self.rcvae(y_bar)
            else:
                r = stable
            self.last_ratio = r.cpu().numpy()
        z = self.encoder(img, snr, ht, r)
        s = mt.normalize_power(mt.to_symbols(z)).view(b, n_t, -1)
        if w is not None:
            s = mt.with_dmrs(w, s)
        return s.cpu().numpy().astype(np.complex64)
