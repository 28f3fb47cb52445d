"""The report on the wire: :class:`Pmi` <-> index fields <-> latent (float32) <-> bits. numpy only.

The "latent" of the type2 family is the report's index values in field order
(``Type2Config.fields``), one float32 each; a value wider than 16 bits (i_{1,2} for L >= 6
of 32 beams) is split over several entries, MSB part first, so every entry is an exact
integer in float32 (``Type2Config.latent_chunks``). The bits
are the same values, each written MSB first with its field's width (``shared.wire``'s bit
order), Part 1, Part 2, then the absolute reference. The frame has a fixed size: it is laid
out for ``K_NZ = K0`` and a report with fewer nonzero coefficients leaves the unused
amplitude/phase slots at 0.

Parsing is lenient by default, the way a receiver meets bit errors: a field value outside its
range is folded back into it, the bitmap is the authority on which coefficients exist, and
every repair is noted in ``Pmi.notes``. ``strict=True`` raises :class:`InvalidInput` instead.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from models.type2.codebook import Pmi, window
from models.type2.combinatorial import subset_from_index, subset_index
from models.type2.config import AMPLITUDES, Type2Config
from shared.errors import InvalidInput
from shared.wire import Bits, bits_to_ints, ints_to_bits

_TOP_AMP = len(AMPLITUDES) - 1


def _fd_values(pmi: Pmi, cfg: Type2Config) -> tuple[int, int]:
    """(i15, i16) of the FD basis subset."""
    mv = cfg.mv
    nz = [int(v) for v in pmi.fd[1:]]
    if not cfg.windowed:
        return 0, subset_index([v - 1 for v in nz], cfg.n3 - 1)
    win = list(window(cfg, pmi.m_init))
    rel = [win.index(v) for v in nz]
    i15 = pmi.m_init + 2 * mv if pmi.m_init != 0 else 0
    return i15, subset_index([v - 1 for v in rel], 2 * mv - 1)


def pmi_to_values(pmi: Pmi, cfg: Type2Config) -> np.ndarray:
    """Index values in field order, int64 ``[n_values]``."""
    L, mv, k0 = cfg.L, cfg.mv, cfg.k0
    nz = pmi.amp >= 0
    k_nz = int(nz.sum())
    if not 1 <= k_nz <= k0 or not nz[pmi.strongest, 0]:
        raise InvalidInput(f"type2: report has {k_nz} nonzero coefficients (1..{k0}, strongest included)")
    i15, i16 = _fd_values(pmi, cfg)
    sci = int(nz[: pmi.strongest + 1, 0].sum()) - 1
    bitmap = nz.reshape(-1).astype(np.int64)  # beam-major: i * Mv + f
    others = [(i, f) for i in range(L) for f in range(mv) if nz[i, f] and (i, f) != (pmi.strongest, 0)]
    amps = np.zeros(k0 - 1, np.int64)
    phases = np.zeros(k0 - 1, np.int64)
    for j, (i, f) in enumerate(others):
        amps[j], phases[j] = pmi.amp[i, f], pmi.phase[i, f]
    values = {
        "k_nz": [k_nz - 1], "i11": [pmi.q1], "i12": [subset_index(pmi.beams, cfg.n1)],
        "i15": [i15], "i16": [i16], "i18": [sci], "i17": bitmap, "i24": amps, "i25": phases,
        "fd_offset": [pmi.fd_offset], "ref_power": [pmi.ref_power], "ref_phase": [pmi.ref_phase],
    }
    return np.concatenate([np.asarray(values[f.name], np.int64) for f in cfg.fields])


def _split(values: np.ndarray, cfg: Type2Config) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    pos = 0
    for f in cfg.fields:
        out[f.name] = values[pos : pos + f.count]
        pos += f.count
    return out


def values_to_pmi(values: np.ndarray, cfg: Type2Config, strict: bool = False) -> Pmi:
    """Parse index values (int ``[n_values]``, each within its field's bit width) into a Pmi."""
    notes: list[str] = []

    def fold(name: str, v: int, n: int) -> int:
        if v < n:
            return v
        msg = f"{name}={v} outside 0..{n - 1}"
        if strict:
            raise InvalidInput(f"type2 report: {msg}")
        notes.append(msg)
        return v % n

    L, mv, k0 = cfg.L, cfg.mv, cfg.k0
    d = _split(np.asarray(values, np.int64), cfg)
    get = lambda name: int(d[name][0]) if name in d else 0  # noqa: E731 (0-bit fields are 0)
    q1 = fold("i11", get("i11"), cfg.o1)
    beams = np.asarray(subset_from_index(fold("i12", get("i12"), cfg.n_beam_combos), cfg.n1, L), np.int64)
    m_init = 0
    if cfg.windowed:
        i15 = fold("i15", get("i15"), 2 * mv)
        m_init = i15 - 2 * mv if i15 > 0 else 0
    rel = np.asarray(subset_from_index(fold("i16", get("i16"), cfg.n_fd_combos),
                                       (2 * mv - 1) if cfg.windowed else cfg.n3 - 1, mv - 1), np.int64) + 1
    fd = np.concatenate([[0], window(cfg, m_init)[rel] if cfg.windowed else rel]).astype(np.int64)

    nz = (d["i17"].reshape(L, mv) if "i17" in d else np.ones((L, mv), np.int64)).astype(bool)
    k_nz = get("k_nz") + 1
    if int(nz.sum()) != k_nz or k_nz > k0:
        msg = f"bitmap holds {int(nz.sum())} nonzero coefficients, K_NZ field says {k_nz} (K0={k0})"
        if strict:
            raise InvalidInput(f"type2 report: {msg}")
        notes.append(msg)
        flat = np.flatnonzero(nz.reshape(-1))[:k0]  # the bitmap wins, cut to K0
        nz = np.zeros(L * mv, bool)
        nz[flat] = True
        nz = nz.reshape(L, mv)
    col0 = np.flatnonzero(nz[:, 0])
    sci = get("i18")
    if sci < len(col0):
        strongest = int(col0[sci])
    else:
        msg = f"strongest coefficient indicator {sci} points past the {len(col0)} nonzero coefficients at f=0"
        if strict:
            raise InvalidInput(f"type2 report: {msg}")
        notes.append(msg)
        strongest = int(col0[0]) if len(col0) else 0
        nz[strongest, 0] = True
        if nz.sum() > k0:  # make room: drop the last other coefficient
            last = [j for j in np.flatnonzero(nz.reshape(-1)) if j != strongest * mv][-1]
            nz.reshape(-1)[last] = False

    amp = np.full((L, mv), -1, np.int64)
    phase = np.zeros((L, mv), np.int64)
    others = [(i, f) for i in range(L) for f in range(mv) if nz[i, f] and (i, f) != (strongest, 0)]
    amps = d.get("i24", np.zeros(0, np.int64))
    phases = d.get("i25", np.zeros(0, np.int64))
    for j, (i, f) in enumerate(others):
        amp[i, f], phase[i, f] = amps[j], phases[j]
    amp[strongest, 0], phase[strongest, 0] = _TOP_AMP, 0
    return Pmi(q1=q1, beams=beams, m_init=m_init, fd=fd, amp=amp, phase=phase, strongest=strongest,
               fd_offset=fold("fd_offset", get("fd_offset"), cfg.n3) if cfg.absolute else 0,
               ref_power=get("ref_power"), ref_phase=get("ref_phase"), notes=notes)


# ---------------------------------------------------------------------------- latent and bits


@lru_cache(maxsize=64)
def value_widths(cfg: Type2Config) -> np.ndarray:
    """Bit width of each index value, int64 ``[n_values]`` (cached, read-only)."""
    w = np.concatenate([np.full(f.count, f.bits, np.int64) for f in cfg.fields])
    w.flags.writeable = False
    return w


@lru_cache(maxsize=64)
def _chunk_plan(cfg: Type2Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per latent entry: owning value index, bit width, right shift within the value."""
    owner, width, shift = [], [], []
    for i, chunks in enumerate(cfg.latent_chunks):
        rest = sum(chunks)
        for c in chunks:
            rest -= c
            owner.append(i)
            width.append(c)
            shift.append(rest)
    plan = (np.array(owner, np.int64), np.array(width, np.int64), np.array(shift, np.int64))
    for a in plan:
        a.flags.writeable = False
    return plan


def values_to_latent(values: np.ndarray, cfg: Type2Config) -> np.ndarray:
    """Index values ``[n_values]`` -> latent float32 ``[latent_size]`` (wide values split MSB first)."""
    owner, width, shift = _chunk_plan(cfg)
    v = np.asarray(values, np.int64)[owner]
    return ((v >> shift) & ((1 << width) - 1)).astype(np.float32)


def latent_to_values(latent: np.ndarray, cfg: Type2Config) -> np.ndarray:
    """float latent ``[latent_size]`` -> int64 index values ``[n_values]``; every entry must be an
    integer that fits its bit width (:class:`InvalidInput` otherwise)."""
    z = np.asarray(latent, dtype=np.float64).ravel()
    if z.size != cfg.latent_size:
        raise InvalidInput(f"type2 latent has {z.size} values, this configuration has {cfg.latent_size}")
    if not np.all(np.isfinite(z)):
        raise InvalidInput("type2 latent contains NaN or Inf")
    v = np.rint(z)
    if np.any(np.abs(v - z) > 1e-3):
        raise InvalidInput("type2 latent values must be integers (codebook indices)")
    v = v.astype(np.int64)
    owner, width, shift = _chunk_plan(cfg)
    bad = np.flatnonzero((v < 0) | (v >= (1 << width)))
    if bad.size:
        raise InvalidInput(f"type2 latent entry {int(bad[0])} = {int(v[bad[0]])} does not fit its "
                           f"{int(width[bad[0]])}-bit field")
    out = np.zeros(cfg.n_values, np.int64)
    np.add.at(out, owner, v << shift)
    return out


def values_to_bits(values: np.ndarray, cfg: Type2Config) -> Bits:
    """Pack the values MSB first, each in its field's width: exactly ``payload_bits`` bits."""
    parts = []
    pos = 0
    for f in cfg.fields:
        parts.append(ints_to_bits(np.asarray(values[pos : pos + f.count]), f.bits))
        pos += f.count
    bits = Bits.from_array(np.concatenate(parts) if parts else np.zeros(0, np.uint8))
    assert bits.n_bits == cfg.payload_bits
    return bits


def bits_to_values(bits: Bits, cfg: Type2Config) -> np.ndarray:
    """Unpack a report; the bit count must be this configuration's ``payload_bits``."""
    if not isinstance(bits, Bits):
        raise InvalidInput(f"type2 expects a bitstream (shared.wire.Bits), got {type(bits).__name__}")
    if bits.n_bits != cfg.payload_bits:
        raise InvalidInput(f"type2 report has {bits.n_bits} bits, configuration {cfg.name} sends "
                           f"{cfg.payload_bits}")
    arr = bits.to_array()
    out = []
    pos = 0
    for f in cfg.fields:
        n = f.count * f.bits
        out.append(bits_to_ints(arr[pos : pos + n], f.bits))
        pos += n
    return np.concatenate(out).astype(np.int64)
