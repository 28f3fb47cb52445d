"""The BS half of the side-information families: wire-decoded latents + the BS's own uplink CSI."""

from __future__ import annotations

import numpy as np
import torch

from models.common.bs_torch import TorchBsDecoder, check_latents
from shared.errors import InvalidInput
from shared.transforms import complex_to_real, real_to_complex


class SideInfoBsDecoder(TorchBsDecoder):
    """``decode_batch(codewords [B, 64 D], {"y_ad": complex [B, Nt, T]}, snr) -> [B, Nt, T]``.

    ``y_ad`` is unnormalized (as the BS reads it from the world); it is scaled by the bundle's
    normalization like the training data. Output unnormalized."""

    def decode_batch(
        self, latents: np.ndarray, side: dict[str, np.ndarray] | None = None, snr_db: np.ndarray | None = None
    ) -> np.ndarray:
        z = check_latents(latents, self.latent_size)
        y_t = None
        if "y_ad" in self.needs:
            y = (side or {}).get("y_ad")
            if y is None:
                raise InvalidInput("this model needs the uplink CSI y_ad as side information")
            y = np.asarray(y)
            if y.shape[0] != len(z) or y.ndim != 3:
                raise InvalidInput(f"y_ad must be [{len(z)}, Nt, T], got {y.shape}")
            if not np.all(np.isfinite(y)):
                raise InvalidInput("y_ad contains NaN or Inf")
            y_t = torch.from_numpy(complex_to_real(y.astype(np.complex64) * np.float32(self.scale))).to(
                self.device
            )
        with torch.inference_mode():
            x = self.decoder(torch.from_numpy(np.ascontiguousarray(z)).to(self.device), y_t)
        return (real_to_complex(x.float().cpu().numpy()) / np.float32(self.scale)).astype(np.complex64)
