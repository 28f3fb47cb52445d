"""The RESULTS.md section of bundles that reconstruct in the spatial-frequency domain
(``target.domain == "sf"``: the ray-traced world's ``x_sf [32, 576]``), next to the Type II
codebook on the same samples.

The UE half runs as on the UE node (int8 ONNX encoder + numpy wire), the BS half through
``models.registry.load_bs_decoder``; every fusion choice a bundle declares
(``bs.config.fusion_choices``: BS fusion hook specs, with the dataset field each reads) runs
through ``bs_service.hooks.make_fusion`` as on the BS node. Scale-free codecs: normalized NMSE
(``shared.metrics.nmse_normalized``) and SGCS (= the beamforming gain of precoding with the
reconstruction). Nothing here names a family.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from shared.bundle import Bundle
from shared.errors import InvalidInput

RT_DATASETS = (Path("data/generated/rt-street-image.h5"), Path("data/sample/rt-street-sample.h5"))
RATES = (48, 96, 144)


def sf_bundles(bundles: list[Bundle]) -> list[Bundle]:
    return [b for b in bundles if b.manifest.target.domain == "sf"]


def rt_dataset() -> Path | None:
    return next((p for p in RT_DATASETS if p.is_file()), None)


def _nmse_db(h: np.ndarray, h_hat: np.ndarray) -> float:
    from shared import metrics

    return float(10 * math.log10(max(float(np.mean(metrics.nmse_normalized(h, h_hat))), 1e-30)))


def evaluate_sf(
    bundle: Bundle, dataset: Path, split: str = "test", n: int | None = None
) -> list[dict[str, Any]]:
    """Rows ``{model, rate, bits, bs_input, nmse_db_sf, sgcs}`` at the bundle's rates in RATES."""
    import h5py

    from bs_service.hooks import make_fusion
    from models.registry import load_bs_decoder
    from shared import metrics
    from shared.ue_encoder import UeEncoder
    from shared.wire import from_spec

    m = bundle.manifest
    choices = m.bs.config.get("fusion_choices", [])
    with h5py.File(dataset, "r") as f:
        g = f[split]
        k = g["sample_id"].shape[0] if n is None else min(n, g["sample_id"].shape[0])
        x = g["x_sf"][:k]
        fields = {c["field"] for c in choices} | ({"has_image"} if "has_image" in g else set())
        side_all = {name: g[name][:k] for name in fields if name in g}
    if x.shape[1:] != tuple(m.input_shape):
        raise InvalidInput(
            f"{dataset}: x_sf is {list(x.shape[1:])}, bundle {m.model_id} takes {m.input_shape}"
        )
    ue = UeEncoder.from_bundle(bundle)
    dec = load_bs_decoder(bundle, "cpu")
    rows = []
    for r in m.rates:
        if r.bits not in RATES:
            continue
        codec = from_spec(r.wire or m.ue.wire, bundle.path)
        lat = np.stack([codec.decode(p, m.latent_size) for p in ue.encode(x, r.name)]).astype(np.float32)
        for c in [{"name": "none", "label": "report only", "needs": []}, *choices]:
            spec = {k: v for k, v in c.items() if k not in ("label", "field", "needs")}
            hook = make_fusion(spec, bundle, dec)
            side = {name: side_all[name] for name in hook.needs if name in side_all}
            if len(side) != len(hook.needs):
                continue  # the dataset lacks this sensor
            h = dec.decode_batch(hook.fuse(lat, side, None), side, None)
            rows.append(
                {
                    "model": m.model_id,
                    "rate": r.name,
                    "bits": r.bits,
                    "bs_input": c["label"],
                    "nmse_db_sf": _nmse_db(x, h),
                    "sgcs": float(np.mean(metrics.sgcs(x, h))),
                }
            )
    return rows


def type2_rows(dataset: Path, split: str = "test", n: int | None = None) -> list[dict[str, Any]]:
    """The Type II codebook nearest to each of RATES in PMI bits, on the same samples."""
    import h5py

    from evaluation import beamforming as bf
    from shared import metrics

    with h5py.File(dataset, "r") as f:
        g = f[split]
        k = g["sample_id"].shape[0] if n is None else min(n, g["sample_id"].shape[0])
        x = g["x_sf"][:k]
    rows = []
    for b in RATES:
        cfg = bf.type2_near(b, key="pmi_bits")
        pmis = bf.type2_pmis(x, cfg)
        est = bf.type2_estimates(x, cfg, pmis, expand="interp")
        rows.append(
            {
                "model": "Type II (TS 38.214, rank 1)",
                "rate": f"L={cfg.L}, sb{cfg.subband_size}",
                "bits": cfg.pmi_bits,
                "bs_input": "report only",
                "nmse_db_sf": _nmse_db(x, est),
                "sgcs": float(np.mean(metrics.sgcs(x, est))),
            }
        )
    return rows


def render_sf(rows: list[dict[str, Any]], dataset: Path, n: int) -> list[str]:
    lines = [
        "## Multi-modal feedback on the ray-traced world (SF domain, target x)",
        "",
        f"Bundles that reconstruct `x_sf` [32 antennas x 576 subcarriers], on the first {n} test samples of "
        f"`{dataset}` (the UE car in the BS camera's view). NMSE is normalized (eq. 6 of the multi-modal "
        "paper; the codec is scale-free), SGCS equals the beamforming gain of precoding with the "
        "reconstruction. Type II: the codebook with the nearest PMI payload, in-process. "
        "Link-level figures (fusion at CSI-RS -15 / -5 dB, BF-gain CDFs): docs/multimodal.md.",
        "",
        "| model | rate | bits | BS input | NMSE (dB) | SGCS |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['model']}` | {r['rate']} | {r['bits']} | {r['bs_input']} | {r['nmse_db_sf']:.2f} | "
            f"{r['sgcs']:.3f} |"
        )
    return [*lines, ""]


def section(bundles: list[Bundle], n: int | None = 200) -> str:
    """The whole section, or "" when there is no SF bundle or no ray-traced dataset here."""
    group = sf_bundles(bundles)
    ds = rt_dataset()
    if not group or ds is None:
        return ""
    rows = [r for b in group for r in evaluate_sf(b, ds, n=n)] + type2_rows(ds, n=n)
    import h5py

    with h5py.File(ds, "r") as f:
        k = f["test"]["sample_id"].shape[0] if n is None else min(n, f["test"]["sample_id"].shape[0])
    return "\n".join(render_sf(rows, ds, k))
