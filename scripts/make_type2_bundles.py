"""Write one bundle per type2 operating point: ``bundles/type2-<bits>b/manifest.json``.

The type2 family has no weights: a bundle is its manifest (the codebook configuration in
``ue.wire``, kind ``type2``). Usage::

    .venv/bin/python scripts/make_type2_bundles.py [--out bundles]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.type2.config import Type2Config  # noqa: E402
from models.type2.presets import PRESETS, bundle_name  # noqa: E402
from shared.bundle import Bundle, write_bundle  # noqa: E402

VERSION = "1.0.0"


def manifest(cfg: Type2Config) -> dict[str, Any]:
    """The manifest dict of one configuration."""
    name = bundle_name(cfg)
    s = cfg.summary()
    return {
        "model_id": name,
        "version": VERSION,
        "family": "type2",
        "description": (
            f"5G NR Rel-16 enhanced Type II codebook (TS 38.214 5.2.2.2.5), rank 1, single polarization: "
            f"L={cfg.L}, p_v={cfg.pv:g}, beta={cfg.beta:g}, subband {cfg.subband_size} RBs, R={cfg.r}, "
            f"N3={cfg.n3}, Mv={cfg.mv}, K0={cfg.k0}; {cfg.pmi_bits} PMI bits + "
            f"{cfg.payload_bits - cfg.pmi_bits} bits of absolute reference = {cfg.payload_bits} bits. "
            "Non-learned reference; see docs/type2.md."
        ),
        "rates": [{"name": f"b{cfg.payload_bits}", "bits": cfg.payload_bits}],
        "ue": {
            "encoder": None,
            "input": {"name": "x_ad", "shape": [-1, cfg.n_antennas, cfg.n_taps], "dtype": "complex64"},
            "output": {"name": "indices", "shape": [-1, cfg.latent_size], "dtype": "float32"},
            "wire": cfg.to_spec(),
            "config": {"codebook": s},
        },
        "bs": {"weights": [], "config": {"codebook": s}, "needs": []},
        "normalization": {"kind": "none"},
        "target": {"field": "x", "domain": "ad"},
        "input_shape": [cfg.n_antennas, cfg.n_taps],
        "latent_size": cfg.latent_size,
        "training": {"trained": False, "note": "non-learned codebook"},
    }


def write(cfg: Type2Config, out: Path) -> Bundle:
    path = out / bundle_name(cfg)
    path.mkdir(parents=True, exist_ok=True)
    return write_bundle(path, manifest(cfg))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bundles"), help="bundles root (default: bundles)")
    args = ap.parse_args(argv)
    for cfg in PRESETS:
        b = write(cfg, args.out)
        print(f"{b.path}: {cfg.name}, {cfg.payload_bits} bits ({cfg.pmi_bits} PMI), latent {cfg.latent_size}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
