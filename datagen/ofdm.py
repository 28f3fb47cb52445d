"""From per-cluster path coefficients to the OFDM channel (SF) and its cropped AD form.

``H[a, f] = sum_n h[n, a] exp(-j 2 pi f_i tau_n)`` over the baseband subcarrier frequencies
``f_i`` (Sionna's ``subcarrier_frequencies``: lowest first, DC at index ``Nc // 2``), which is
what Sionna's ``cir_to_ofdm_channel`` computes. The AD form is ``shared.transforms.sf_to_ad``
(unitary FFT over antennas, unitary IFFT over subcarriers, first ``n_taps`` taps), computed
here without building ``H``: the IFFT of one path is a Dirichlet kernel in closed form, so
the cost is ``N x Nt x n_taps`` per sample instead of ``N x Nt x Nc`` (+ FFTs).
"""

from __future__ import annotations

import math

import torch


def subcarrier_freqs(n_subcarriers: int, spacing: float) -> torch.Tensor:
    """Baseband subcarrier frequencies, float64 ``[Nc]`` (as Sionna's, in double)."""
    i0 = n_subcarriers // 2
    return (torch.arange(n_subcarriers, dtype=torch.float64) - i0) * spacing


def delay_kernel(tau: torch.Tensor, n_subcarriers: int, spacing: float, n_taps: int) -> torch.Tensor:
    """``W[b, n, k] = Nc^-1/2 sum_i exp(-j2pi f_i tau_n) exp(+j2pi i k / Nc)``, complex128.

    :input tau: float64 ``[B, N]`` path delays (s)
    :output: complex128 ``[B, N, n_taps]``
    """
    nc = n_subcarriers
    i0 = nc // 2
    k = torch.arange(n_taps, dtype=torch.float64)
    x = k / nc - spacing * tau[..., None]  # cycles per subcarrier step, [B, N, K]
    # sum_{i<Nc} exp(j2pi x i) = exp(j pi x (Nc-1)) sin(pi x Nc) / sin(pi x)
    s = torch.sin(math.pi * x)
    num = torch.sin(math.pi * x * nc)
    near = s.abs() < 1e-9
    # at integer x the ratio -> Nc * (-1)^(x (Nc-1)); handled by the limit below
    limit = nc * torch.cos(math.pi * torch.round(x) * (nc - 1))
    ratio = torch.where(near, limit, num / torch.where(near, 1.0, s))
    phase = math.pi * x * (nc - 1) + 2 * math.pi * i0 * spacing * tau[..., None]
    return torch.polar(ratio / math.sqrt(nc), phase)


def cluster_to_ad(h: torch.Tensor, tau: torch.Tensor, n_subcarriers: int, spacing: float,
                  n_taps: int) -> torch.Tensor:
    """Cropped angular-delay CSI from path coefficients.

    :input h: complex64 ``[B, ..., N, Nt]`` (any middle dims, e.g. time)
    :input tau: float64 ``[B, N]``
    :output: complex64 ``[B, ..., Nt, n_taps]`` equal to ``sf_to_ad(cluster_to_sf(...))``
    """
    w = delay_kernel(tau, n_subcarriers, spacing, n_taps).to(torch.complex64)  # [B, N, K]
    b = h.shape[0]
    mid = h.shape[1:-2]
    hf = h.reshape(b, -1, *h.shape[-2:])  # [B, T, N, Nt]
    d = torch.einsum("btna,bnk->btak", hf, w)
    a = torch.fft.fft(d, dim=-2, norm="ortho")
    return a.reshape(b, *mid, *a.shape[-2:])


def cluster_to_sf(h: torch.Tensor, tau: torch.Tensor, n_subcarriers: int, spacing: float) -> torch.Tensor:
    """Spatial-frequency CSI: complex64 ``[B, ..., Nt, Nc]`` from ``h`` ``[B, ..., N, Nt]``."""
    f = subcarrier_freqs(n_subcarriers, spacing)
    e = torch.exp(1j * (-2 * math.pi * tau[..., None] * f)).to(torch.complex64)  # [B, N, Nc]
    b = h.shape[0]
    mid = h.shape[1:-2]
    hf = h.reshape(b, -1, *h.shape[-2:])
    out = torch.einsum("btna,bnf->btaf", hf, e)
    return out.reshape(b, *mid, *out.shape[-2:])
