"""Torch twin of :mod:`shared.mimo` for training (same conventions; a test keeps them equal)."""

from __future__ import annotations

import torch


def noise_var(snr_db: torch.Tensor) -> torch.Tensor:
    return torch.pow(10.0, -snr_db / 10.0)


def to_symbols(z: torch.Tensor) -> torch.Tensor:
    """Real ``[B, 2L]`` -> complex ``[B, L]`` (adjacent pairs)."""
    return torch.view_as_complex(z.reshape(z.shape[0], -1, 2).contiguous())


def to_real(s: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(s).reshape(s.shape[0], -1)


def normalize_power(s: torch.Tensor) -> torch.Tensor:
    p = s.abs().pow(2).mean(-1, keepdim=True)
    return s / p.clamp_min(1e-12).sqrt()


def propagate(h: torch.Tensor, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """``y = H x + w``: ``h [B, Nr, Nt]``, ``x [B, Nt, n]``."""
    var = noise_var(snr_db)[:, None, None]
    w = torch.randn(h.shape[0], h.shape[1], x.shape[2], dtype=torch.complex64, device=h.device)
    return h @ x + (var.sqrt() * w)  # randn complex has unit variance (1/2 per part)


def ls_with_noise(h: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """The LS estimate from identity pilots: ``H + W``."""
    var = noise_var(snr_db)[:, None, None]
    return h + var.sqrt() * torch.randn_like(h)


def mmse(h_e: torch.Tensor, y: torch.Tensor, snr_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_hat [B, Nt, n], sinr_db [B, Nt])`` as :func:`shared.mimo.mmse`."""
    nt = h_e.shape[2]
    var = noise_var(snr_db)[:, None, None]
    hh = h_e.conj().transpose(1, 2)
    eye = torch.eye(nt, dtype=h_e.dtype, device=h_e.device)
    inv = torch.linalg.inv(hh @ h_e + var * eye)
    x_hat = inv @ (hh @ y)
    diag = torch.diagonal(inv, dim1=1, dim2=2).real
    sinr = (1.0 / (var[:, :, 0] * diag).clamp_min(1e-12) - 1.0).clamp_min(1e-6)
    return x_hat, 10 * torch.log10(sinr)


def stream_sinr_db(h: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """Post-MMSE SINR per stream ``[B, Nt]`` that channel ``h`` gives at ``snr_db``: what a
    transmitter that knows H can predict about each stream."""
    nt = h.shape[2]
    var = noise_var(snr_db)[:, None, None]
    inv = torch.linalg.inv(h.conj().transpose(1, 2) @ h + var * torch.eye(nt, dtype=h.dtype, device=h.device))
    diag = torch.diagonal(inv, dim1=1, dim2=2).real
    return 10 * torch.log10((1.0 / (var[:, :, 0] * diag).clamp_min(1e-12) - 1.0).clamp_min(1e-6))


def quantize_h(h: torch.Tensor, bits: int) -> torch.Tensor:
    """What :func:`shared.mimo.quantize_h` + ``dequantize_h`` return (float16 scale, uniform)."""
    r = torch.view_as_real(h).reshape(h.shape[0], -1)
    a = r.abs().amax(1, keepdim=True).clamp_min(1e-6).half().float()
    levels = 2**bits - 1
    q = torch.round((r / a + 1.0) / 2.0 * levels).clamp(0, levels)
    rq = (q / levels * 2.0 - 1.0) * a
    return torch.view_as_complex(rq.reshape(*h.shape, 2).contiguous())


def pad_h(h: torch.Tensor, n: int = 8) -> torch.Tensor:
    """``[B, Nr, Nt]`` complex -> ``[B, 3, n, n]`` (real, imaginary, valid mask) for the CNNs
    that serve every MIMO size up to ``n``."""
    b, nr, nt = h.shape
    out = torch.zeros(b, 3, n, n, device=h.device)
    out[:, 0, :nr, :nt] = h.real
    out[:, 1, :nr, :nt] = h.imag
    out[:, 2, :nr, :nt] = 1.0
    return out


def svd_precoder(h: torch.Tensor) -> torch.Tensor:
    """Unitary precoder ``[B, Nt, Nt]`` for transmit CSI ``h [B, Nr, Nt]``: the right singular
    vectors by descending singular value, so stream 0 rides the strongest eigenmode; each
    column's phase fixed (first entry real, >= 0) as :func:`shared.mimo.svd_precoder`."""
    _, _, vh = torch.linalg.svd(h)
    w = vh.conj().transpose(1, 2)
    a = w[:, :1, :].abs()
    ph = torch.where(a > 1e-12, w[:, :1, :] / a.clamp_min(1e-12), torch.ones_like(w[:, :1, :]))
    return w * ph.conj()


def with_dmrs(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Precoded block ``W [I | S]`` ``[B, Nt, Nt + n]``: Nt precoded pilots, then the data."""
    eye = torch.eye(w.shape[2], dtype=s.dtype, device=s.device).expand(s.shape[0], -1, -1)
    return w @ torch.cat([eye, s], 2)


def procrustes(h_e: torch.Tensor, g_ls: torch.Tensor) -> torch.Tensor:
    """The streams' channel ``H W`` from the UE's own estimate of H and the precoded pilots'
    LS estimate: ``W`` is unitary, so fit the nearest unitary to ``h_e^H g_ls`` (orthogonal
    Procrustes) and return ``h_e W_fit``. Better than ``g_ls`` alone at every SNR measured."""
    u, _, vh = torch.linalg.svd(h_e.conj().transpose(1, 2) @ g_ls)
    return h_e @ (u @ vh)


def ls_estimate(y_p: torch.Tensor) -> torch.Tensor:
    """LS from received identity (or precoded identity) pilots: ``Y_p``."""
    return y_p
