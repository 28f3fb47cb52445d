"""Configuration of the Rel-16 enhanced Type II codebook (TS 38.214 5.2.2.2.5), rank 1, and the
exact layout of its report. numpy only (the UE imports this).

Adaptation to this project's array (documented in docs/type2.md):

* The standard's ports are dual-polarized, ``P = 2 N1 N2`` with ``N1 N2 <= 16``. Here the BS
  has ``Nt = 32`` single-polarized elements on a ULA: ``N1 = Nt``, ``N2 = 1``, one
  polarization. Every "2L" of the standard becomes ``L`` (one polarization's half): ``L Mv``
  coefficients, an ``L Mv`` bitmap, ``K0 = ceil(beta L Mv)``, and no reference amplitude of a
  weaker polarization (``i_{2,3}``: 0 bits).
* Frequency: ``Nc`` subcarriers form ``N_RB = Nc // 12`` resource blocks from RB 0; the
  ``Nc mod 12`` left-over subcarriers (7 for 667) belong to the last PMI subband.
* Beyond the standard (the PMI is a precoder: a direction per subband), an optional
  "absolute reference" lets the BS turn it into a channel estimate for NMSE: the FD offset
  of the strongest coefficient (the standard remaps it to 0), and the complex gain of the
  estimate (power in dB, phase). Its bits are counted in the payload.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from shared.errors import InvalidInput

RB = 12  # subcarriers per resource block

# TS 38.214 Table 5.2.2.2.5-1: paramCombination-r16 -> (L, p_v for rank 1-2, beta).
PARAM_COMBINATIONS: dict[int, tuple[int, float, float]] = {
    1: (2, 1 / 4, 1 / 4),
    2: (2, 1 / 4, 1 / 2),
    3: (4, 1 / 4, 1 / 4),
    4: (4, 1 / 4, 1 / 2),
    5: (4, 1 / 4, 3 / 4),
    6: (4, 1 / 2, 1 / 2),
    7: (6, 1 / 4, 1 / 2),
    8: (6, 1 / 4, 3 / 4),
}

# TS 38.214 Table 5.2.1.4-2: BWP size (PRBs) -> allowed subband sizes (PRBs).
SUBBAND_SIZES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (24, 72, (4, 8)),
    (73, 144, (8, 16)),
    (145, 275, (16, 32)),
)

# TS 38.214 Table 5.2.2.2.5-3: 3-bit amplitude p^(2) of each reported coefficient.
AMPLITUDES: tuple[float, ...] = (
    1 / (8 * math.sqrt(2)), 1 / 8, 1 / (4 * math.sqrt(2)), 1 / 4,
    1 / (2 * math.sqrt(2)), 1 / 2, 1 / math.sqrt(2), 1.0,
)
AMP_BITS = 3
LATENT_CHUNK_BITS = 16  # widest integer one latent (float32) entry carries
PHASE_BITS = 4  # 16-PSK: phi = exp(j 2 pi c / 16)


def bits_for(n: int) -> int:
    """``ceil(log2 n)`` for ``n >= 1`` (0 bits when there is one choice)."""
    if n < 1:
        raise InvalidInput(f"cannot index an empty set (n={n})")
    return (n - 1).bit_length()


def subband_sizes_allowed(n_rb: int) -> tuple[int, ...]:
    for lo, hi, sizes in SUBBAND_SIZES:
        if lo <= n_rb <= hi:
            return sizes
    raise InvalidInput(f"a bandwidth part of {n_rb} RBs has no subband sizes in TS 38.214 Table 5.2.1.4-2 "
                       "(needs 24..275 RBs)")


@dataclass(frozen=True)
class Field:
    """One index field of the report: ``count`` values of ``bits`` bits each, MSB first."""

    name: str
    count: int
    bits: int
    group: str  # "part1", "part2" (standard PMI) or "ext" (absolute reference, not in 38.214)


@dataclass(frozen=True)
class Type2Config:
    """One operating point of the codebook (rank 1, single polarization).

    ``param_combination`` (1..8) picks ``(L, p_v, beta)`` from Table 5.2.2.2.5-1; 0 takes
    them from ``custom`` = ``(L, p_v, beta)`` instead (operating points beyond the table);
    ``subband_size`` is N_PRB^SB (PRBs per CQI subband); ``r`` is
    numberOfPMI-SubbandsPerCQI-Subband (1 or 2). ``absolute`` adds the absolute reference
    fields (``ref_power_bits`` dB steps of ``ref_power_step_db`` from ``ref_power_min_db``,
    ``ref_phase_bits`` uniform phase). ``expand`` says how the BS spreads a subband's
    estimate over its subcarriers: ``"subband"`` (constant per PMI subband, the way a
    precoder is applied) or ``"interp"`` (the FD DFT basis evaluated at each subcarrier).
    """

    param_combination: int = 1
    custom: tuple[int, float, float] | None = None
    subband_size: int = 4
    r: int = 1
    n_antennas: int = 32
    n_subcarriers: int = 667
    o1: int = 4
    absolute: bool = True
    ref_power_bits: int = 7
    ref_power_min_db: float = -100.0
    ref_power_step_db: float = 1.0
    ref_phase_bits: int = 5
    expand: str = "subband"
    n_taps: int = 32

    def __post_init__(self) -> None:
        if self.param_combination == 0:
            if self.custom is None or len(self.custom) != 3:
                raise InvalidInput("param_combination 0 needs custom = [L, p_v, beta]")
            object.__setattr__(self, "custom", (int(self.custom[0]), float(self.custom[1]),
                                                float(self.custom[2])))
            l_, pv, beta = self.custom
            if l_ < 1 or not 0 < pv <= 1 or not 0 < beta <= 1:
                raise InvalidInput(f"custom (L, p_v, beta) needs L >= 1, 0 < p_v <= 1, 0 < beta <= 1; "
                                   f"got {self.custom}")
        elif self.param_combination not in PARAM_COMBINATIONS:
            raise InvalidInput(f"param_combination must be 0 (custom) or one of "
                               f"{sorted(PARAM_COMBINATIONS)}, got {self.param_combination}")
        elif self.custom is not None:
            raise InvalidInput("custom (L, p_v, beta) is only read with param_combination 0")
        if self.r not in (1, 2):
            raise InvalidInput(f"r (PMI subbands per CQI subband) must be 1 or 2, got {self.r}")
        if self.n_antennas < 2:
            raise InvalidInput(f"n_antennas must be >= 2, got {self.n_antennas}")
        if self.o1 < 1:
            raise InvalidInput(f"o1 must be >= 1, got {self.o1}")
        if self.n_antennas < self.L:
            raise InvalidInput(f"L={self.L} beams exceed the {self.n_antennas} orthogonal beams")
        allowed = subband_sizes_allowed(self.n_rb)
        if self.subband_size not in allowed:
            raise InvalidInput(f"subband_size {self.subband_size} not allowed for {self.n_rb} RBs; "
                               f"TS 38.214 Table 5.2.1.4-2 allows {list(allowed)}")
        if self.expand not in ("subband", "interp"):
            raise InvalidInput(f"expand must be 'subband' or 'interp', got {self.expand!r}")
        if not 1 <= self.ref_power_bits <= 16 or not 1 <= self.ref_phase_bits <= 16:
            raise InvalidInput("ref_power_bits and ref_phase_bits must be in 1..16")
        if not self.ref_power_step_db > 0:
            raise InvalidInput(f"ref_power_step_db must be > 0, got {self.ref_power_step_db}")
        if not 1 <= self.n_taps <= self.n_subcarriers:
            raise InvalidInput(f"n_taps must be in 1..{self.n_subcarriers}, got {self.n_taps}")
        if self.mv > self.n3:
            raise InvalidInput(f"Mv={self.mv} exceeds N3={self.n3} PMI subbands")

    # ------------------------------------------------------------------ table values
    @property
    def _lpb(self) -> tuple[int, float, float]:
        return self.custom if self.param_combination == 0 else PARAM_COMBINATIONS[self.param_combination]

    @property
    def L(self) -> int:  # noqa: N802 (the standard's name)
        return int(self._lpb[0])

    @property
    def pv(self) -> float:
        return float(self._lpb[1])

    @property
    def beta(self) -> float:
        return float(self._lpb[2])

    @property
    def n1(self) -> int:
        return self.n_antennas

    # ------------------------------------------------------------------ frequency layout
    @property
    def n_rb(self) -> int:
        n = self.n_subcarriers // RB
        if n < 1:
            raise InvalidInput(f"{self.n_subcarriers} subcarriers hold no resource block")
        return n

    @cached_property
    def cqi_subbands(self) -> tuple[tuple[int, int], ...]:
        """CQI subbands as ``(first RB, number of RBs)``; BWP starts at RB 0."""
        s, n = self.subband_size, self.n_rb
        return tuple((a, min(s, n - a)) for a in range(0, n, s))

    @cached_property
    def pmi_subbands(self) -> tuple[tuple[int, int], ...]:
        """PMI subbands as ``(first RB, number of RBs)``.

        R = 1: the CQI subbands. R = 2 (38.214 5.2.2.2.5): each CQI subband holds two PMI
        subbands of ``N_PRB^SB / 2`` RBs, except that a first CQI subband starting at or past
        its midpoint, or a last one of at most ``N_PRB^SB / 2`` RBs, holds one. With the BWP
        at RB 0 only the last can be short.
        """
        if self.r == 1:
            return self.cqi_subbands
        half = self.subband_size // 2
        out: list[tuple[int, int]] = []
        for a, n in self.cqi_subbands:
            if n <= half:
                out.append((a, n))
            else:
                out.extend([(a, half), (a + half, n - half)])
        return tuple(out)

    @cached_property
    def n3(self) -> int:
        return len(self.pmi_subbands)

    @cached_property
    def subcarrier_subband(self) -> tuple[int, ...]:
        """PMI subband of each subcarrier (length Nc); left-over subcarriers go to the last."""
        out: list[int] = []
        for t, (_, n) in enumerate(self.pmi_subbands):
            out.extend([t] * (n * RB))
        out.extend([self.n3 - 1] * (self.n_subcarriers - len(out)))
        return tuple(out)

    # ------------------------------------------------------------------ codebook sizes
    @cached_property
    def mv(self) -> int:
        """``Mv = ceil(p_v N3 / R)`` FD basis vectors."""
        return math.ceil(self.pv * self.n3 / self.r - 1e-12)

    @cached_property
    def k0(self) -> int:
        """Most nonzero coefficients: ``ceil(beta L Mv)`` (the standard's ``ceil(beta 2L Mv)``, one pol)."""
        return math.ceil(self.beta * self.L * self.mv - 1e-12)

    @property
    def windowed(self) -> bool:
        """N3 > 19: FD bases come from a window of 2 Mv indices (i_{1,5} gives its start)."""
        return self.n3 > 19

    @property
    def n_beam_combos(self) -> int:
        return math.comb(self.n1, self.L)

    @property
    def n_fd_combos(self) -> int:
        pool = 2 * self.mv - 1 if self.windowed else self.n3 - 1
        return math.comb(pool, self.mv - 1)

    @cached_property
    def fields(self) -> tuple[Field, ...]:
        """The report, field by field, in wire order; fields of 0 bits are left out.

        The frame has a fixed size: Part 2 is laid out for ``K_NZ = K0`` and a report with
        fewer nonzero coefficients leaves the unused amplitude/phase slots at zero.
        """
        k0 = self.k0
        f = [
            Field("k_nz", 1, bits_for(k0), "part1"),  # number of nonzero coefficients - 1
            Field("i11", 1, bits_for(self.o1), "part2"),  # rotation q1 (O2 = 1: no q2)
            Field("i12", 1, bits_for(self.n_beam_combos), "part2"),  # L orthogonal beams
            Field("i15", 1, bits_for(2 * self.mv) if self.windowed else 0, "part2"),  # window start
            Field("i16", 1, bits_for(self.n_fd_combos), "part2"),  # FD basis subset
            Field("i18", 1, bits_for(k0), "part2"),  # strongest coefficient indicator
            Field("i17", self.L * self.mv, 1, "part2"),  # bitmap, beam-major
            Field("i24", k0 - 1, AMP_BITS, "part2"),  # amplitudes (strongest is 1)
            Field("i25", k0 - 1, PHASE_BITS, "part2"),  # phases (strongest is 0)
        ]
        if self.absolute:
            f += [
                Field("fd_offset", 1, bits_for(self.n3), "ext"),  # FD index of the strongest
                Field("ref_power", 1, self.ref_power_bits, "ext"),
                Field("ref_phase", 1, self.ref_phase_bits, "ext"),
            ]
        return tuple(x for x in f if x.count > 0 and x.bits > 0)

    @cached_property
    def n_values(self) -> int:
        """Index values per report (sum of the fields' counts)."""
        return sum(x.count for x in self.fields)

    @cached_property
    def latent_chunks(self) -> tuple[tuple[int, ...], ...]:
        """Per index value, the bit widths of its latent entries, MSB part first.

        A float32 holds integers exactly only up to 2^24, so a value wider than
        ``LATENT_CHUNK_BITS`` (e.g. i_{1,2} for L = 6 of 32 beams: 20 bits) takes several
        latent entries of at most that many bits; the bits on the wire are the same.
        """
        out: list[tuple[int, ...]] = []
        for f in self.fields:
            n = -(-f.bits // LATENT_CHUNK_BITS)
            first = f.bits - LATENT_CHUNK_BITS * (n - 1)
            out.extend([(first,) + (LATENT_CHUNK_BITS,) * (n - 1)] * f.count)
        return tuple(out)

    @cached_property
    def latent_size(self) -> int:
        """Latent entries per report: one float32 per index value (two or more for values
        wider than ``LATENT_CHUNK_BITS``)."""
        return sum(len(c) for c in self.latent_chunks)

    @cached_property
    def payload_bits(self) -> int:
        return sum(x.count * x.bits for x in self.fields)

    @cached_property
    def pmi_bits(self) -> int:
        """Bits of the standard's report (Part 1 + Part 2), without the absolute reference."""
        return sum(x.count * x.bits for x in self.fields if x.group != "ext")

    def breakdown(self) -> dict[str, int]:
        """Bits per field name (all fields, 0-bit ones included, in wire order)."""
        full = {"k_nz": 0, "i11": 0, "i12": 0, "i15": 0, "i16": 0, "i18": 0, "i17": 0, "i23": 0,
                "i24": 0, "i25": 0}
        if self.absolute:
            full |= {"fd_offset": 0, "ref_power": 0, "ref_phase": 0}
        for x in self.fields:
            full[x.name] = x.count * x.bits
        return full

    @property
    def name(self) -> str:
        pc = (f"L{self.L}-pv{self.pv:g}-b{self.beta:g}" if self.param_combination == 0
              else f"pc{self.param_combination}")
        return f"type2-{pc}-sb{self.subband_size}-r{self.r}"

    # ------------------------------------------------------------------ (de)serialization
    def to_spec(self) -> dict[str, Any]:
        """The manifest's ``ue.wire`` dict (``kind`` = ``"type2"``)."""
        d = asdict(self)
        if d["custom"] is not None:
            d["custom"] = list(d["custom"])
        return {"kind": "type2", **d}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Type2Config:
        d = dict(spec)
        kind = d.pop("kind", "type2")
        if kind != "type2":
            raise InvalidInput(f"not a type2 wire spec (kind {kind!r})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInput(f"type2 wire spec has unknown field(s) {unknown}")
        return cls(**d)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name, "L": self.L, "pv": self.pv, "beta": self.beta, "N3": self.n3,
            "Mv": self.mv, "K0": self.k0, "R": self.r, "subband_size": self.subband_size,
            "pmi_bits": self.pmi_bits, "payload_bits": self.payload_bits, "breakdown": self.breakdown(),
        }
