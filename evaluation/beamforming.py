"""Beamforming gain of rank-1 precoders on true DL channels, and the Type II reference. numpy only.

Conventions (one for the whole module). Channels are spatial-frequency (SF) arrays
``h_sf[n, Nt, Nsc]`` (``h_k = h_sf[i, :, k]``). A precoder ``w_k`` is given **in the channel's
own direction convention**: the gain of ``w_k`` on ``h_k`` is ``|h_k^H w_k|^2``, so the ideal
(matched) precoder is ``w_k = h_k / ||h_k||``, as in ``shared.metrics.bf_gain``. (The Type II
code in ``models/type2`` models the UE receiving ``h^T x``, where the transmitted vector
``conj(w)`` is the same beam; :func:`type2_precoders` converts.) Precoders are normalized to
unit norm per column here (the transmit-power constraint), so their scale never matters.

Two gains, both 1 (0 dB) for the ideal precoder:

* :func:`bf_gain`, the normalized beamforming gain of the multi-modal CSI paper,
  ``rho = mean_k |h_k^H w_k|^2 / ||h_k||^2``: every subcarrier weighs the same; in [0, 1].
  With ``w = h^/||h^||`` it equals ``shared.metrics.bf_gain(h, h^)`` (= SGCS, one UE antenna).
* :func:`bf_gain_rel_db`, the received power relative to ideal beamforming,
  ``10 log10( sum_k |h_k^H w_k|^2 / sum_k ||h_k||^2 )``: power-weighted over subcarriers, the
  dB loss a link budget sees (<= 0 dB).

Per-subband precoders ``w[n, Nt, n_sb]`` are spread over subcarriers with a subcarrier ->
subband map (``Type2Config.subcarrier_subband`` for Type II).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from models.type2 import codebook
from models.type2.codebook import Pmi
from models.type2.config import PARAM_COMBINATIONS, Type2Config, subband_sizes_allowed
from shared import metrics
from shared.errors import InvalidInput

_EPS = 1e-300  # floor of norms and powers: RT channels reach 1e-17 per entry, far above it
_CHUNK = 256  # samples per complex128 block: bounds memory on large splits

__all__ = [
    "bf_gain",
    "bf_gain_rel_db",
    "expand_subbands",
    "ideal_precoders",
    "nmse_normalized_db",
    "precoders_from_estimate",
    "subband_ideal_precoders",
    "type2_configs_for_rt",
    "type2_estimates",
    "type2_near",
    "type2_pmis",
    "type2_precoders",
]


# ---------------------------------------------------------------------------- validation


def _check_sf(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as an array ``[n, Nt, N]`` of finite numbers, else :class:`InvalidInput` naming it."""
    a = np.asarray(x)
    if a.ndim != 3:
        raise InvalidInput(f"{name}: expected [n, Nt, Nsc] (3 dims), got shape {a.shape}")
    if a.shape[1] < 1 or a.shape[2] < 1:
        raise InvalidInput(f"{name}: empty antenna or subcarrier axis, shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.complexfloating) or np.issubdtype(a.dtype, np.floating)
            or np.issubdtype(a.dtype, np.integer)):
        raise InvalidInput(f"{name}: expected a numeric (complex) array, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.all(np.isfinite(a.reshape(len(a), -1)), axis=1))
        raise InvalidInput(f"{name}: NaN or Inf in sample(s) {bad[:8].tolist()}")
    return a


def _subband_map(subband_of: Sequence[int] | np.ndarray, n_sc: int, n_sb: int) -> np.ndarray:
    idx = np.asarray(subband_of)
    if idx.shape != (n_sc,):
        raise InvalidInput(f"subband_of: expected one subband index per subcarrier ({n_sc}), "
                           f"got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise InvalidInput(f"subband_of: expected integer subband indices, got dtype {idx.dtype}")
    if n_sc and (idx.min() < 0 or idx.max() >= n_sb):
        raise InvalidInput(f"subband_of: indices must be in 0..{n_sb - 1} (precoder has {n_sb} "
                           f"subbands), got {int(idx.min())}..{int(idx.max())}")
    return idx.astype(np.int64)


def expand_subbands(w: np.ndarray, n_sc: int, subband_of: Sequence[int] | np.ndarray | None = None
                    ) -> np.ndarray:
    """Per-subcarrier view ``[n, Nt, n_sc]`` of precoders ``w`` (``[n, Nt, n_sc]`` or ``[n, Nt, n_sb]``).

    ``w`` already per subcarrier (last axis ``n_sc``, no map) is returned as is; per-subband
    ``w`` needs ``subband_of`` (the subband of each subcarrier).
    """
    w = _check_sf(w, "w")
    if subband_of is None:
        if w.shape[2] != n_sc:
            raise InvalidInput(f"w: {w.shape[2]} precoder columns for {n_sc} subcarriers; "
                               "per-subband precoders need subband_of (subcarrier -> subband map)")
        return w
    return w[:, :, _subband_map(subband_of, n_sc, w.shape[2])]


def _pair(h_sf: np.ndarray, w: np.ndarray, subband_of: Sequence[int] | np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    h = _check_sf(h_sf, "h_sf")
    w = expand_subbands(w, h.shape[2], subband_of)
    if w.shape[:2] != h.shape[:2]:
        raise InvalidInput(f"w: shape {w.shape} (after subband expansion) does not match h_sf "
                           f"{h.shape} in samples/antennas")
    return h, w


def _received(h: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(|h_k^H w_k|^2 with unit-norm w_k, ||h_k||^2)``, float64 ``[n, Nsc]`` each, chunked."""
    g = np.empty(h.shape[0::2])
    p = np.empty(h.shape[0::2])
    for s in range(0, len(h), _CHUNK):
        hb = h[s : s + _CHUNK].astype(np.complex128)
        wb = w[s : s + _CHUNK].astype(np.complex128)
        wn = np.sqrt(np.sum(np.abs(wb) ** 2, axis=1))
        g[s : s + _CHUNK] = np.abs(np.sum(hb.conj() * wb, axis=1)) ** 2 / np.maximum(wn, _EPS) ** 2
        p[s : s + _CHUNK] = np.sum(np.abs(hb) ** 2, axis=1)
    return g, p


def _nonzero_samples(p: np.ndarray) -> None:
    dead = np.flatnonzero(~np.any(p > 0, axis=1))
    if dead.size:
        raise InvalidInput(f"h_sf: all-zero channel in sample(s) {dead[:8].tolist()}: "
                           "beamforming gain is undefined")


# ---------------------------------------------------------------------------- gains


def bf_gain(h_sf: np.ndarray, w: np.ndarray, subband_of: Sequence[int] | np.ndarray | None = None
            ) -> np.ndarray:
    """Normalized beamforming gain per sample, float64 ``[n]`` in [0, 1]:

        rho = mean_k |h_k^H w_k|^2 / (||h_k||^2 ||w_k||^2)

    over the subcarriers whose channel is nonzero (1 = ideal). ``w`` is ``[n, Nt, Nsc]`` or
    ``[n, Nt, n_sb]`` with ``subband_of`` (``[Nsc]`` subband of each subcarrier).
    """
    h, w = _pair(h_sf, w, subband_of)
    g, p = _received(h, w)
    _nonzero_samples(p)
    live = p > 0  # a subcarrier without channel has no achievable gain to normalize by
    ratio = np.where(live, g / np.maximum(p, _EPS), 0.0)
    return ratio.sum(axis=1) / live.sum(axis=1)


def bf_gain_rel_db(h_sf: np.ndarray, w: np.ndarray,
                   subband_of: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Received power relative to ideal beamforming per sample, dB ``[n]`` (<= 0; 0 = ideal):

        10 log10( sum_k |h_k^H w_k|^2 / ||w_k||^2  /  sum_k ||h_k||^2 )

    Unlike :func:`bf_gain` the strong subcarriers dominate (what the link actually receives).
    """
    h, w = _pair(h_sf, w, subband_of)
    g, p = _received(h, w)
    _nonzero_samples(p)
    return 10.0 * np.log10(np.maximum(g.sum(axis=1) / p.sum(axis=1), _EPS))


def ideal_precoders(h_sf: np.ndarray) -> np.ndarray:
    """Matched precoders ``w_k = h_k / ||h_k||``, complex128 ``[n, Nt, Nsc]`` (the bound: gain 1).

    A subcarrier with a zero channel gets a zero precoder.
    """
    h = _check_sf(h_sf, "h_sf").astype(np.complex128)
    return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), _EPS)


def precoders_from_estimate(h_hat_sf: np.ndarray) -> np.ndarray:
    """Precoders a BS builds from a reconstructed channel: ``w_k = h^_k / ||h^_k||`` per subcarrier,
    complex128 ``[n, Nt, Nsc]`` (only the direction of each ``h^_k`` matters)."""
    return ideal_precoders(_check_sf(h_hat_sf, "h_hat_sf"))


def subband_ideal_precoders(h_sf: np.ndarray, subband_of: Sequence[int] | np.ndarray) -> np.ndarray:
    """The best unquantized precoder held constant over each subband: complex128 ``[n, Nt, n_sb]``.

    Per subband the principal eigenvector of ``sum_k h_k h_k^H`` (it maximizes the received
    power ``sum_k |h_k^H w|^2``, the :func:`bf_gain_rel_db` criterion; :func:`bf_gain` weighs
    subcarriers equally, so it is a near-, not exact, bound there). The reference for any
    per-subband codebook with this subband layout (``n_sb = max(subband_of) + 1``).
    """
    h = _check_sf(h_sf, "h_sf").astype(np.complex128)
    idx = np.asarray(subband_of)
    n_sb = int(idx.max()) + 1 if idx.size and np.issubdtype(idx.dtype, np.integer) else 0
    idx = _subband_map(idx, h.shape[2], max(n_sb, 1))
    out = np.zeros((h.shape[0], h.shape[1], n_sb), np.complex128)
    for t in range(n_sb):
        hs = h[:, :, idx == t]
        if hs.shape[2] == 0:  # a subband without subcarriers: nothing to serve
            continue
        cov = hs @ hs.conj().transpose(0, 2, 1)  # [n, Nt, Nt]
        out[:, :, t] = np.linalg.eigh(cov)[1][:, :, -1]
    return out


def nmse_normalized_db(h: np.ndarray, h_hat: np.ndarray) -> float:
    """Scale-invariant NMSE of the multi-modal CSI paper (eq. 6), dB:

        10 log10 mean_i || h_i/||h_i|| - h^_i/||h^_i|| ||_F^2

    (mean over samples before the log; a common phase error still counts). Any ``[..., Nt, N]``
    shape; per-sample linear values: ``shared.metrics.nmse_normalized``.
    """
    per = metrics.nmse_normalized(h, h_hat)
    if per.size == 0:
        raise InvalidInput("nmse_normalized_db: no samples")
    return float(10.0 * np.log10(max(float(np.mean(per)), 1e-30)))


# ---------------------------------------------------------------------------- Type II


def _check_type2_input(h_sf: np.ndarray, cfg: Type2Config) -> np.ndarray:
    h = _check_sf(h_sf, "h_sf")
    if h.shape[1:] != (cfg.n_antennas, cfg.n_subcarriers):
        raise InvalidInput(f"h_sf: {cfg.name} expects [n, {cfg.n_antennas}, {cfg.n_subcarriers}], "
                           f"got {h.shape}")
    return h


def type2_pmis(h_sf: np.ndarray, cfg: Type2Config) -> list[Pmi]:
    """The UE's Type II report of each sample (``codebook.choose_pmi`` on the full SF channel,
    i.e. perfect CSI at the UE)."""
    h = _check_type2_input(h_sf, cfg)
    return [codebook.choose_pmi(x, cfg) for x in h]


def type2_precoders(h_sf: np.ndarray, cfg: Type2Config, pmis: Sequence[Pmi] | None = None
                    ) -> np.ndarray:
    """The BS's Type II precoders, per subcarrier: complex128 ``[n, Nt, Nsc]``, unit norm.

    ``codebook.precoder`` (unit norm per PMI subband, constant over its subcarriers) in this
    module's convention, i.e. conjugated: the codebook's transmitted vector ``W`` serves
    ``h`` with ``|h^T W|``, which is ``|h^H conj(W)|``. ``pmis`` reuses reports from
    :func:`type2_pmis` (else the UE runs here).
    """
    h = _check_type2_input(h_sf, cfg)
    pmis = type2_pmis(h, cfg) if pmis is None else pmis
    if len(pmis) != len(h):
        raise InvalidInput(f"pmis: {len(pmis)} reports for {len(h)} samples")
    sb = codebook.subband_of_subcarrier(cfg)
    out = np.empty(h.shape, np.complex128)
    for i, pmi in enumerate(pmis):
        out[i] = np.conj(codebook.precoder(pmi, cfg))[:, sb]
    return out


def type2_estimates(h_sf: np.ndarray, cfg: Type2Config, pmis: Sequence[Pmi] | None = None,
                    expand: str | None = None) -> np.ndarray:
    """The BS's Type II channel estimates ``codebook.channel_estimate``: complex64 ``[n, Nt, Nsc]``.

    Meaningful up to scale and phase only with ``cfg.absolute`` (the default; it carries the
    FD offset and common phase). ``expand`` overrides ``cfg.expand`` (``"subband"`` or
    ``"interp"``: a BS-side choice, same report). Note that the absolute power field covers
    -100..27 dB per entry: weaker RT channels get a clipped magnitude, which the
    scale-invariant :func:`nmse_normalized_db` ignores.
    """
    h = _check_type2_input(h_sf, cfg)
    pmis = type2_pmis(h, cfg) if pmis is None else pmis
    if len(pmis) != len(h):
        raise InvalidInput(f"pmis: {len(pmis)} reports for {len(h)} samples")
    bs_cfg = cfg if expand is None or expand == cfg.expand else replace(cfg, expand=expand)
    out = np.empty(h.shape, np.complex64)
    for i, pmi in enumerate(pmis):
        out[i] = codebook.channel_estimate(pmi, bs_cfg)
    return out


def type2_configs_for_rt(max_bits: int | None = 160, *, n_subcarriers: int = 576, n_antennas: int = 32,
                         absolute: bool = True, expand: str = "subband") -> list[Type2Config]:
    """Every Type II table configuration valid for the RT layout, by payload then name.

    paramCombination 1..8 x the subband sizes TS 38.214 allows for ``n_subcarriers // 12`` RBs
    (48 RBs: 4 and 8) x R in (1, 2); those whose ``payload_bits`` (PMI + absolute reference
    when ``absolute``) exceed ``max_bits`` are left out (``None``: keep all). Each config's
    ``payload_bits`` / ``pmi_bits`` give its size.
    """
    n_rb = n_subcarriers // 12
    out: list[Type2Config] = []
    for pc in PARAM_COMBINATIONS:
        for sb in subband_sizes_allowed(n_rb):
            for r in (1, 2):
                try:
                    cfg = Type2Config(param_combination=pc, subband_size=sb, r=r, n_antennas=n_antennas,
                                      n_subcarriers=n_subcarriers, absolute=absolute, expand=expand)
                except InvalidInput:  # e.g. Mv > N3 on a narrow band: not a valid report
                    continue
                if max_bits is None or cfg.payload_bits <= max_bits:
                    out.append(cfg)
    return sorted(out, key=lambda c: (c.payload_bits, c.name))


def type2_near(bits: float, configs: Sequence[Type2Config] | None = None, *,
               key: str = "payload_bits") -> Type2Config:
    """The config whose size is closest to ``bits`` without exceeding it; if every config is
    larger, the smallest. Ties: the first in ``configs`` (default :func:`type2_configs_for_rt`
    with no cap, sorted by payload then name). ``key``: ``"payload_bits"`` (with the absolute
    reference) or ``"pmi_bits"`` (the standard's report only, all a precoder needs).
    """
    if key not in ("payload_bits", "pmi_bits"):
        raise InvalidInput(f"key must be 'payload_bits' or 'pmi_bits', got {key!r}")
    if not math.isfinite(bits):
        raise InvalidInput(f"bits must be finite, got {bits}")
    cands = list(type2_configs_for_rt(None) if configs is None else configs)
    if not cands:
        raise InvalidInput("type2_near: no configurations to choose from")
    size = [getattr(c, key) for c in cands]
    below = [i for i, s in enumerate(size) if s <= bits]
    if below:
        best = max(size[i] for i in below)
        return cands[next(i for i in below if size[i] == best)]
    return cands[int(np.argmin(size))]
