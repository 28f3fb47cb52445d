"""The codebook itself: the PMI of one report, the UE's choice of it, the BS's precoder. numpy only.

Conventions. The DL channel of subcarrier k is ``h_k`` (``H[:, k]``, 32 BS antennas, 1 UE
antenna), the UE receives ``h_k^T x``, so the ideal rank-1 precoder is ``conj(h_k)/||h_k||``.
The UE fits the codebook to ``T[:, t] = conj(g_t)``, ``g_t`` = the mean channel of PMI subband
``t``; the BS's channel estimate is the conjugate of what it rebuilds.

Precoder of subband t (TS 38.214 5.2.2.2.5, rank 1, one polarization):

    W[:, t] = sum_i b_i sum_f c_{i,f} exp(j 2 pi t n3_f / N3),   b_i = v_{O1 n1_i + q1} / sqrt(N1)

with ``v_m[n] = exp(j 2 pi m n / (O1 N1))``; ``c_{i,f} = p_{i,f} phi_{i,f}`` for the reported
coefficients (bitmap = 1), 0 otherwise; the strongest ``c`` is 1 and sits at ``n3 = 0`` after
the UE's remap of FD indices. The standard then normalizes each subband to unit norm; the
channel estimate keeps the unnormalized sum (its norm across subbands follows the channel's)
and, with the absolute reference, multiplies it by the reported complex gain and undoes the
remap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from models.type2.config import AMPLITUDES, PHASE_BITS, Type2Config
from shared.errors import InvalidInput

_AMP = np.asarray(AMPLITUDES)
_N_PHASE = 1 << PHASE_BITS
# A coefficient below half the smallest amplitude level costs less left out than sent.
DROP_BELOW = AMPLITUDES[0] / 2


@dataclass
class Pmi:
    """One rank-1 report, decoded to values (what the fields mean, not how they are packed).

    * ``q1``: rotation of the oversampled DFT grid, 0..O1-1.
    * ``beams``: int ``[L]``, ascending ``n1`` of the orthogonal beams.
    * ``m_init``: window start of the FD bases (0 when N3 <= 19), in ``-2Mv+1 .. 0``.
    * ``fd``: int ``[Mv]``, remapped FD indices; ``fd[0] == 0``.
    * ``amp``: int ``[L, Mv]``, amplitude index 0..7 (Table 5.2.2.2.5-3) or -1 for "not reported".
    * ``phase``: int ``[L, Mv]``, 16-PSK index 0..15.
    * ``strongest``: beam ``i*`` of the strongest coefficient (at ``f = 0``).
    * ``fd_offset``, ``ref_power``, ``ref_phase``: absolute reference (0 when not used).
    """

    q1: int
    beams: np.ndarray
    m_init: int
    fd: np.ndarray
    amp: np.ndarray
    phase: np.ndarray
    strongest: int
    fd_offset: int = 0
    ref_power: int = 0
    ref_phase: int = 0
    notes: list[str] = field(default_factory=list)  # repairs made while parsing a damaged report

    @property
    def k_nz(self) -> int:
        return int(np.sum(self.amp >= 0))

    def coefficients(self) -> np.ndarray:
        """Complex ``c_{i,f}`` ``[L, Mv]`` (0 where not reported)."""
        a = np.where(self.amp >= 0, _AMP[np.clip(self.amp, 0, len(_AMP) - 1)], 0.0)
        return a * np.exp(2j * np.pi * self.phase / _N_PHASE)


# ---------------------------------------------------------------------------- bases


@lru_cache(maxsize=64)
def beam_grid(cfg: Type2Config) -> np.ndarray:
    """Unit-norm DFT beams of the oversampled grid: complex128 ``[N1, O1 N1]``, column ``m = O1 k + q``.

    Cached per configuration (read-only).
    """
    n1, o1 = cfg.n1, cfg.o1
    n = np.arange(n1)[:, None]
    m = np.arange(o1 * n1)[None, :]
    g = np.exp(2j * np.pi * n * m / (o1 * n1)) / math.sqrt(n1)
    g.flags.writeable = False
    return g


@lru_cache(maxsize=64)
def subband_of_subcarrier(cfg: Type2Config) -> np.ndarray:
    """PMI subband of each subcarrier, int64 ``[Nc]`` (cached, read-only)."""
    idx = np.asarray(cfg.subcarrier_subband, dtype=np.int64)
    idx.flags.writeable = False
    return idx


def fd_basis(cfg: Type2Config, n3_idx: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """``y[t, f] = exp(j 2 pi t n3_f / N3)`` for subband positions ``t`` (default 0..N3-1): ``[T, F]``."""
    tt = np.arange(cfg.n3, dtype=np.float64) if t is None else np.asarray(t, dtype=np.float64)
    return np.exp(2j * np.pi * tt[:, None] * np.asarray(n3_idx, dtype=np.float64)[None, :] / cfg.n3)


def window(cfg: Type2Config, m_init: int) -> np.ndarray:
    """FD indices of the window that starts at ``m_init`` (N3 > 19), in window-relative order
    ``n' = 0 .. 2Mv-1``: ``[0 .. m_init+2Mv-1]`` then ``[N3+m_init .. N3-1]``."""
    mv, n3 = cfg.mv, cfg.n3
    return np.array([n if n <= m_init + 2 * mv - 1 else n + n3 - 2 * mv for n in range(2 * mv)])


# ---------------------------------------------------------------------------- UE side


@lru_cache(maxsize=64)
def _averaging(cfg: Type2Config) -> np.ndarray:
    """``A[k, t] = 1/|S_t|`` for subcarrier k in PMI subband t: float64 ``[Nc, N3]`` (cached)."""
    idx = subband_of_subcarrier(cfg)
    a = np.zeros((cfg.n_subcarriers, cfg.n3))
    a[np.arange(cfg.n_subcarriers), idx] = 1.0
    a /= a.sum(axis=0, keepdims=True)
    a.flags.writeable = False
    return a


@lru_cache(maxsize=64)
def _delay_to_subband(cfg: Type2Config) -> np.ndarray:
    """``M = D A``, complex128 ``[taps, N3]``: ``ifft_ant(x_ad) @ M`` = subband means of ``ad_to_sf(x_ad)``.

    ``D[tau, k] = exp(-j 2 pi k tau / Nc) / sqrt(Nc)`` is the delay->subcarrier half of
    ``shared.transforms.ad_to_sf`` (zero-padded taps, unitary FFT); the antenna half is a
    unitary IFFT, which commutes with it.
    """
    tau = np.arange(cfg.n_taps)[:, None]
    k = np.arange(cfg.n_subcarriers)[None, :]
    d = np.exp(-2j * np.pi * tau * k / cfg.n_subcarriers) / math.sqrt(cfg.n_subcarriers)
    m = d @ _averaging(cfg)
    m.flags.writeable = False
    return m


@lru_cache(maxsize=64)
def _subcarrier_to_delay(cfg: Type2Config) -> np.ndarray:
    """``E[k, tau] = exp(+j 2 pi k tau / Nc) / sqrt(Nc)``: complex128 ``[Nc, taps]``, the kept taps
    of the unitary IFFT over subcarriers in ``shared.transforms.sf_to_ad`` (cached)."""
    k = np.arange(cfg.n_subcarriers)[:, None]
    tau = np.arange(cfg.n_taps)[None, :]
    e = np.exp(2j * np.pi * k * tau / cfg.n_subcarriers) / math.sqrt(cfg.n_subcarriers)
    e.flags.writeable = False
    return e


@lru_cache(maxsize=64)
def _subband_to_delay(cfg: Type2Config) -> np.ndarray:
    """``[N3, taps]``: a per-subband constant spread over its subcarriers, then to delay taps."""
    idx = subband_of_subcarrier(cfg)
    e = np.zeros((cfg.n3, cfg.n_taps), np.complex128)
    np.add.at(e, idx, _subcarrier_to_delay(cfg))
    e.flags.writeable = False
    return e


def subband_target(h_sf: np.ndarray, cfg: Type2Config) -> np.ndarray:
    """Per-PMI-subband mean of the channel: ``[Nt, Nc]`` -> complex128 ``[Nt, N3]``."""
    return np.asarray(h_sf, dtype=np.complex128) @ _averaging(cfg)


def subband_target_from_ad(x_ad: np.ndarray, cfg: Type2Config) -> np.ndarray:
    """Same as ``subband_target(ad_to_sf(x_ad, Nc))`` without building the SF matrix:
    ``[Nt, taps]`` -> complex128 ``[Nt, N3]``."""
    x = np.fft.ifft(np.asarray(x_ad, dtype=np.complex128), axis=0, norm="ortho")
    return x @ _delay_to_subband(cfg)


def subband_weights(cfg: Type2Config) -> np.ndarray:
    """Subcarriers per PMI subband, float64 ``[N3]`` (weights of the per-subcarrier error)."""
    return np.bincount(subband_of_subcarrier(cfg), minlength=cfg.n3).astype(np.float64)


def choose_pmi(h_sf: np.ndarray, cfg: Type2Config) -> Pmi:
    """The UE's report for one SF channel ``[Nt, Nc]`` (complex); see :func:`choose_pmi_subband`."""
    h = np.asarray(h_sf)
    if h.shape != (cfg.n_antennas, cfg.n_subcarriers):
        raise InvalidInput(f"type2: expected SF channel [{cfg.n_antennas}, {cfg.n_subcarriers}], "
                           f"got {h.shape}")
    if not np.all(np.isfinite(h)):
        raise InvalidInput("type2: channel contains NaN or Inf")
    return choose_pmi_subband(subband_target(h, cfg), cfg)


def choose_pmi_subband(g: np.ndarray, cfg: Type2Config) -> Pmi:
    """The UE's report from the per-subband channel ``g`` (complex ``[Nt, N3]``). Deterministic.

    1. Beams: for each rotation q1 the L strongest of the N1 orthogonal beams (power summed
       over subbands, weighted by subband size); the q1 with the most captured power.
    2. Per-beam subband coefficients -> DFT over the N3 subbands; the strongest coefficient's
       FD index becomes 0 (the remap; its original index is ``fd_offset``).
    3. FD bases: index 0 and the Mv-1 strongest others (N3 > 19: inside the best window of
       2Mv indices that holds 0).
    4. Nonzero coefficients: the K0 strongest, minus those under half the smallest amplitude
       level; amplitudes (nearest level, linear) and phases (nearest of 16) relative to the
       strongest.
    """
    target = np.conj(np.asarray(g, dtype=np.complex128))  # [N1, N3]
    w = subband_weights(cfg)
    n1, o1, L, n3, mv = cfg.n1, cfg.o1, cfg.L, cfg.n3, cfg.mv

    # 1. spatial beams
    proj = beam_grid(cfg).conj().T @ target  # [O1 N1, N3]
    power = (np.abs(proj) ** 2 @ w).reshape(n1, o1)  # [k, q]
    top = np.sort(power, axis=0)[::-1][:L].sum(axis=0)  # [q]
    q1 = int(np.argmax(top))
    order = np.argsort(-power[:, q1], kind="stable")[:L]
    beams = np.sort(order)
    coef_sb = proj[beams * o1 + q1]  # [L, N3]

    # 2. FD transform and remap
    dft = np.fft.fft(coef_sb, axis=1) / n3  # coef_sb[:, t] = sum_n dft[:, n] e^{j2pi t n/N3}
    i_star, n_star = np.unravel_index(int(np.argmax(np.abs(dft))), dft.shape)
    shifted = np.roll(dft, -int(n_star), axis=1)  # shifted[:, n] = dft[:, n + n*]
    energy = np.sum(np.abs(shifted) ** 2, axis=0)

    # 3. FD basis subset
    m_init = 0
    if cfg.windowed:
        best = -1.0
        for m in range(-2 * mv + 1, 1):
            cand = window(cfg, m)[1:]
            e = np.sort(energy[cand])[::-1][: mv - 1].sum()
            if e > best + 1e-300:
                best, m_init = e, m
        win = window(cfg, m_init)
        rel = np.argsort(-energy[win[1:]], kind="stable")[: mv - 1] + 1  # window-relative n'
        fd = win[np.concatenate([[0], np.sort(rel)])]
    else:
        rest = np.argsort(-energy[1:], kind="stable")[: mv - 1] + 1
        fd = np.concatenate([[0], np.sort(rest)])
    x = shifted[:, fd]  # [L, Mv]; x[i*, 0] is the largest

    # 4. nonzero coefficients and quantization
    ref = x[i_star, 0]
    if ref == 0:  # an all-zero channel: only the reference coefficient, at the lowest power
        rel_c = np.zeros_like(x)
        rel_c[i_star, 0] = 1.0
    else:
        rel_c = x / ref
    mag = np.abs(rel_c)
    keep = np.zeros(x.shape, dtype=bool)
    flat_order = np.argsort(-mag, axis=None, kind="stable")[: cfg.k0]
    keep.flat[flat_order] = True
    keep &= mag >= DROP_BELOW
    keep[i_star, 0] = True
    amp = np.where(keep, np.argmin(np.abs(mag[..., None] - _AMP), axis=-1), -1)
    phase = np.where(keep, np.round(np.angle(rel_c) / (2 * np.pi / _N_PHASE)).astype(int) % _N_PHASE, 0)
    amp[i_star, 0], phase[i_star, 0] = len(_AMP) - 1, 0
    pmi = Pmi(q1=q1, beams=beams, m_init=m_init, fd=fd.astype(np.int64), amp=amp.astype(np.int64),
              phase=phase.astype(np.int64), strongest=int(i_star), fd_offset=int(n_star))
    if cfg.absolute:
        _choose_reference(pmi, target, w, cfg)
    return pmi


def _choose_reference(pmi: Pmi, target: np.ndarray, w: np.ndarray, cfg: Type2Config) -> None:
    """Least-squares complex gain of the rebuilt ``u`` against the target, quantized (in place)."""
    u = unnormalized_precoder(pmi, cfg)  # [N1, N3], fd_offset undone
    uu = float(np.sum(np.abs(u) ** 2 @ w))
    alpha = np.sum((u.conj() * target) @ w) / max(uu, 1e-300)
    p_db = 10 * math.log10(max(abs(alpha) ** 2 * uu / (cfg.n_antennas * cfg.n_subcarriers), 1e-300))
    levels = 1 << cfg.ref_power_bits
    step = np.round((p_db - cfg.ref_power_min_db) / cfg.ref_power_step_db)
    pmi.ref_power = int(np.clip(step, 0, levels - 1))
    n_ph = 1 << cfg.ref_phase_bits
    pmi.ref_phase = int(np.round(np.angle(alpha) / (2 * np.pi / n_ph))) % n_ph


# ---------------------------------------------------------------------------- BS side


def unnormalized_precoder(pmi: Pmi, cfg: Type2Config, t: np.ndarray | None = None) -> np.ndarray:
    """``u[:, t] = sum_i b_i sum_f c_{i,f} y_f(t)``, complex128 ``[N1, T]`` (T = N3 by default).

    With the absolute reference the remap is undone (FD index ``n3_f + fd_offset``); ``t`` may
    be fractional subband positions (the ``interp`` expansion).
    """
    grid = beam_grid(cfg)
    b = grid[:, pmi.beams * cfg.o1 + pmi.q1]  # [N1, L]
    n3_idx = pmi.fd + (pmi.fd_offset if cfg.absolute else 0)
    if t is not None:
        # a fractional position needs the FD index as a delay: map into [-N3/4, 3 N3/4)
        n3_idx = (n3_idx + cfg.n3 // 4) % cfg.n3 - cfg.n3 // 4
    y = fd_basis(cfg, n3_idx, t)  # [T, Mv]
    return b @ pmi.coefficients() @ y.T


def precoder(pmi: Pmi, cfg: Type2Config) -> np.ndarray:
    """The standard's rank-1 precoder: unit norm per PMI subband, complex128 ``[N1, N3]``."""
    u = unnormalized_precoder(pmi, cfg)
    return u / np.maximum(np.linalg.norm(u, axis=0, keepdims=True), 1e-300)


def reference_gain(pmi: Pmi, cfg: Type2Config, u: np.ndarray) -> complex:
    """Complex gain ``alpha`` of the estimate ``alpha u`` from the reported power and phase."""
    if not cfg.absolute:
        return 1.0 + 0j
    w = subband_weights(cfg)
    uu = float(np.sum(np.abs(u) ** 2 @ w))
    p_db = cfg.ref_power_min_db + pmi.ref_power * cfg.ref_power_step_db
    mag = math.sqrt(10 ** (p_db / 10) * cfg.n_antennas * cfg.n_subcarriers / max(uu, 1e-300))
    return mag * complex(np.exp(2j * np.pi * pmi.ref_phase / (1 << cfg.ref_phase_bits)))


@lru_cache(maxsize=64)
def subcarrier_positions(cfg: Type2Config) -> np.ndarray:
    """Fractional PMI-subband position of each subcarrier, float64 ``[Nc]``: subband centres
    map to 0, 1, ..., N3-1 and positions between them are linear (extrapolated at the ends)."""
    idx = subband_of_subcarrier(cfg)
    k = np.arange(cfg.n_subcarriers, dtype=np.float64)
    centres = np.bincount(idx, weights=k, minlength=cfg.n3) / np.bincount(idx, minlength=cfg.n3)
    pos = np.interp(k, centres, np.arange(cfg.n3, dtype=np.float64))
    lo, hi = k < centres[0], k > centres[-1]
    if cfg.n3 > 1:
        pos[lo] = (k[lo] - centres[0]) / (centres[1] - centres[0])
        pos[hi] = cfg.n3 - 1 + (k[hi] - centres[-1]) / (centres[-1] - centres[-2])
    pos.flags.writeable = False
    return pos


def channel_estimate_ad(pmi: Pmi, cfg: Type2Config) -> np.ndarray:
    """``sf_to_ad(channel_estimate(pmi, cfg), taps)`` without building the SF matrix (the same
    transform as matrix products): complex64 ``[Nt, taps]``."""
    u = unnormalized_precoder(pmi, cfg)
    alpha = reference_gain(pmi, cfg, u)
    if cfg.expand == "subband":
        delay = np.conj(alpha * u) @ _subband_to_delay(cfg)
    else:
        full = unnormalized_precoder(pmi, cfg, subcarrier_positions(cfg))
        delay = np.conj(alpha * full) @ _subcarrier_to_delay(cfg)
    return np.fft.fft(delay, axis=0, norm="ortho").astype(np.complex64)


def channel_estimate(pmi: Pmi, cfg: Type2Config) -> np.ndarray:
    """The BS's SF channel estimate, complex64 ``[Nt, Nc]``.

    ``conj(alpha u)`` spread over subcarriers: constant over each PMI subband (``subband``;
    the left-over subcarriers take the last subband's) or the FD bases evaluated at each
    subcarrier's fractional subband position (``interp``). Without the absolute reference
    ``alpha`` is 1 and only the direction (and relative gain across subbands) is meaningful.
    """
    u = unnormalized_precoder(pmi, cfg)
    alpha = reference_gain(pmi, cfg, u)
    if cfg.expand == "subband":
        full = u[:, subband_of_subcarrier(cfg)]
    else:
        full = unnormalized_precoder(pmi, cfg, subcarrier_positions(cfg))
    return np.conj(alpha * full).astype(np.complex64)
