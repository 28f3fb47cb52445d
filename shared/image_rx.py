"""The UE half of an ``lcfsc`` bundle: channel estimation and image decoding. numpy + ONNX
Runtime ONLY (no torch).

>>> rx = ImageReceiver.from_bundle(Bundle.load("bundles/lcfsc-mse"))      # doctest: +SKIP
>>> h_e = rx.estimate(y_pilots, snr_db)          # LS + NPN: complex64 [B, Nr, Nt]
>>> img = rx.decode(y, h_e, snr_db)              # MMSE + Swin decoder: uint8 [B, S, S, 3]

A bundle with ``precoding: svd`` is sent ``W [I | S]``: the first Nt channel uses of each image
are precoded pilots (DMRS); the receiver fits the streams' channel ``H W`` from them and its own
estimate of H (:func:`shared.mimo.procrustes`) and equalises with that.
"""

from __future__ import annotations

import numpy as np

from shared import mimo
from shared.bundle import Bundle
from shared.errors import BundleError, InvalidInput

PAD = 8  # the NPN sees every MIMO size padded to 8 x 8


def _session(path: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class ImageReceiver:
    def __init__(self, bundle: Bundle, fp32: bool = False) -> None:
        m = bundle.manifest
        if m.family != "lcfsc":
            raise BundleError(f"{m.model_id} is a {m.family} bundle, not lcfsc")
        cfg = m.ue.config
        self.model_id, self.version = m.model_id, m.version
        self.image_size = int(cfg["image_size"])
        self.n_symbols = int(cfg["n_symbols"])
        self.n_tokens = int(cfg["n_tokens"])
        self.sizes = tuple(int(n) for n in cfg["sizes"])
        self.precoding = str(cfg.get("precoding", "none"))
        if self.precoding not in mimo.PRECODINGS:
            raise BundleError(
                f"{m.model_id}: precoding {self.precoding!r} is not one of {', '.join(mimo.PRECODINGS)}"
            )
        self.decoder = _session(str(bundle.file(m.ue.encoder_fp32 if fp32 else m.ue.encoder)))  # type: ignore[arg-type]
        self.npn = _session(str(bundle.file(cfg["npn"])))

    @classmethod
    def from_bundle(cls, bundle: Bundle, fp32: bool = False) -> ImageReceiver:
        return cls(bundle, fp32)

    def _snr(self, snr_db: np.ndarray | float, b: int) -> np.ndarray:
        s = np.broadcast_to(np.asarray(snr_db, np.float32), (b,)).copy()
        if not np.all(np.isfinite(s)):
            raise InvalidInput("snr_db must be finite")
        return s

    def _size(self, h: np.ndarray) -> int:
        if h.shape[1] != h.shape[2] or h.shape[1] not in self.sizes:
            raise InvalidInput(
                f"{self.model_id} serves MIMO sizes {list(self.sizes)} (square), got "
                f"{h.shape[1]}x{h.shape[2]}"
            )
        return int(h.shape[1])

    def channel_uses(self, nt: int) -> int:
        """Received channel uses per image on ``nt`` streams (data, plus Nt DMRS when precoded)."""
        return self.n_symbols // nt + (nt if self.precoding != "none" else 0)

    def estimate(self, y_p: np.ndarray, snr_db: np.ndarray | float, refine: bool = True) -> np.ndarray:
        """Received identity pilots ``[B, Nr, Nt]`` -> channel estimate ``[B, Nr, Nt]``: LS,
        then the NPN denoiser unless ``refine`` is False."""
        h_ls = mimo.ls_estimate(y_p)
        n = self._size(h_ls)
        if not refine:
            return h_ls
        b = h_ls.shape[0]
        hp = np.zeros((b, 3, PAD, PAD), np.float32)
        hp[:, 0, :n, :n], hp[:, 1, :n, :n], hp[:, 2, :n, :n] = h_ls.real, h_ls.imag, 1.0
        out = self.npn.run(None, {"hp": hp, "snr_db": self._snr(snr_db, b)})[0]
        return (out[:, 0, :n, :n] + 1j * out[:, 1, :n, :n]).astype(np.complex64)

    def decode(self, y: np.ndarray, h_e: np.ndarray, snr_db: np.ndarray | float) -> np.ndarray:
        """Received symbols ``[B, Nr, channel_uses(Nt)]`` + the UE's own estimate of H -> uint8
        images."""
        h_e = mimo.check_h(h_e)
        n = self._size(h_e)
        y = np.asarray(y)
        if y.ndim != 3 or y.shape[0] != h_e.shape[0] or y.shape[1] != n or y.shape[2] != self.channel_uses(n):
            raise InvalidInput(
                f"received symbols must be [B, {n}, {self.channel_uses(n)}] for {n}x{n}, got {list(y.shape)}"
            )
        if not np.all(np.isfinite(y)):
            raise InvalidInput("received symbols contain NaN or Inf")
        b = y.shape[0]
        snr = self._snr(snr_db, b)
        if self.precoding != "none":  # DMRS first: equalise with the fitted H W
            h_e, y = mimo.procrustes(h_e, mimo.ls_estimate(y[:, :, :n])), y[:, :, n:]
        x_hat, sinr = mimo.mmse(h_e, y, snr)
        z = mimo.to_real(x_hat.reshape(b, -1))
        tok = sinr[:, np.arange(self.n_tokens) // (self.n_tokens // n)]
        img = self.decoder.run(
            None, {"z": z.astype(np.float32), "token_sinr": tok.astype(np.float32), "snr_db": snr}
        )[0]
        return np.clip(np.round(img.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8)
