"""Write the wire golden files (tests/golden/wire.json). Only when CSILINK_UPDATE_GOLDEN=1.

The numpy codecs in ``shared/wire.py`` are the reference: this records, for fixed latents,
the exact bitstreams (hex, MSB-first packing) and analog symbols they produce. The tests in
``tests/test_wire_golden.py`` check that both the numpy codecs and the torch twins
(``models/common/wire_torch.py``) still produce exactly these.

    CSILINK_UPDATE_GOLDEN=1 .venv/bin/python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.wire import AnalogCodec, MuLawCodec, UniformCodec  # noqa: E402

OUT = Path(__file__).with_name("wire.json")


def golden_latents() -> np.ndarray:
    """``[8, 16]`` float32: edges, cell boundaries, out-of-range values and seeded randoms."""
    rng = np.random.default_rng(20240611)
    edges = np.array(
        [-1.5, -1.0, -0.75, -0.5, -0.25, -1e-7, 0.0, 1e-7, 0.25, 0.5, 0.75, 0.999, 1.0, 1.5, -0.125, 0.125],
        np.float32,
    )
    rand = np.tanh(rng.normal(0, 1, (6, 16))).astype(np.float32)
    small = (rng.normal(0, 0.05, (1, 16))).astype(np.float32)  # where mu-law matters
    return np.concatenate([edges[None], rand, small]).astype(np.float32)


def cases() -> dict[str, dict]:
    z = golden_latents()
    out: dict[str, dict] = {"latents": {"values": z.tolist()}}
    for bits in (1, 2, 3, 4, 6, 8):
        c = UniformCodec(bits)
        out[f"uniform{bits}"] = {
            "spec": c.spec(),
            "reports": [c.encode(v).data.hex() for v in z],
            "n_bits": c.payload_size(z.shape[1]),
        }
    for bits in (4, 6):
        c = MuLawCodec(bits, mu=50.0)
        out[f"mulaw{bits}"] = {
            "spec": c.spec(),
            "reports": [c.encode(v).data.hex() for v in z],
            "n_bits": c.payload_size(z.shape[1]),
        }
    for k in (8, 4):
        c = AnalogCodec(k)
        syms = [c.encode(v) for v in z]
        out[f"analog{k}"] = {
            "spec": c.spec(),
            "re": [s.real.tolist() for s in syms],
            "im": [s.imag.tolist() for s in syms],
        }
    return out


if __name__ == "__main__":
    if os.environ.get("CSILINK_UPDATE_GOLDEN") != "1":
        sys.exit("refusing to overwrite golden files: set CSILINK_UPDATE_GOLDEN=1")
    OUT.write_text(json.dumps(cases(), indent=1) + "\n")
    print(f"wrote {OUT}")
