"""Channel-estimation noise, one definition for the UE (CSI-RS) and the BS (SRS).

``x + n`` with ``n ~ CN(0, P / snr)``, ``P = mean |x|^2`` of the sample: an estimate whose
error is white at ``snr_db`` relative to the sample's own power. Draws are keyed: the same key
gives the same noise (retries and re-runs see the same estimate).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

#: Last word of the SeedSequence key of the UE's CSI-RS estimation noise (the channel
#: emulator's streams use 0..3 with the same (seed, ue_id, seq) prefix).
CSI_RS_STREAM = 1000
#: The BS's SRS estimate of the uplink CSI (keyed by the world sample, not the report).
SRS_STREAM = 1001


def estimation_noise(x: np.ndarray, snr_db: float, key: Sequence[int]) -> np.ndarray:
    """:input x: complex array of one sample (any shape). :output: same shape, complex64."""
    rng = np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))
    p = float(np.mean(np.abs(x) ** 2))
    sigma = np.sqrt(p * 10.0 ** (-float(snr_db) / 10.0) / 2.0)
    n = rng.standard_normal(x.shape + (2,)).astype(np.float32) * np.float32(sigma)
    return (x + (n[..., 0] + 1j * n[..., 1])).astype(np.complex64)


def srs_key(seed: int, dataset_id: str, split: str, sample_id: int, field: str) -> list[int]:
    """The SRS noise key of one world sample's uplink field."""
    tag = zlib.crc32(f"{dataset_id}/{split}/{field}".encode())
    return [int(seed), tag, int(sample_id), SRS_STREAM]
