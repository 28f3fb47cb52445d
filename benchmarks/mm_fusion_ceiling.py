"""How much can BS-side fusion add to the shipped multi-modal codec? Sensor ablation at equal budget.

The fusion goal (docs/multimodal.md: +2 dB from the camera at B = 48) is missed with the learned
image extractor. This benchmark asks where the limit is, with the shipped codec frozen exactly
as stage 2 freezes it (``bundles/mm-swin``: its fp32 ONNX encoder computes ``z`` once, its
boundaries quantize it at the trained rates, its decoder is the frozen body), by training the
same refiner ``R`` (Ne = 32, after the decoder's first projection) with sensors that carry more
and more information, each for the same CPU budget on the same camera-paired rows:

* ``redbox``: what a simple detector reads off the camera image: the red UE car's pixel
  centroid and bounding box, its pixel count and a "visible" flag (``shared.camera``, the check
  of docs/rt_world.md) -> 8 numbers -> a small MLP -> 8 tokens;
* ``position``: the UE's true position and heading (5 numbers, an oracle of perfect image
  understanding) -> the same MLP;
* ``uplink``: the BS's uplink CSI (the shipped uplink extractor's architecture, from scratch);
* ``dl``: the true DL CSI itself through the same extractor: an oracle that bounds what any
  sensor can add through this frozen decoder at this budget.

    .venv/bin/python benchmarks/mm_fusion_ceiling.py --minutes 12   # 4 x 12 CPU-min, 2 at a time
    .venv/bin/python benchmarks/mm_fusion_ceiling.py --minutes 24 --sensors redbox,position
    .venv/bin/python benchmarks/mm_fusion_ceiling.py --minutes 1 --sensors redbox --no-doc

Runs of other (sensor, budget) pairs already in docs/bench/mm_ceiling.json are kept, so the
table shows how each gain moves with budget.

Needs ``data/generated/rt-street-image.h5`` (``csilink dataset generate-rt --profile
rt-street-image``, ~13 min on 2 cores). Writes docs/bench/mm_ceiling.json and a section of
docs/multimodal.md. Scores: normalized NMSE (eq. 6) on the val split, with and without fusion.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "data/generated/rt-street-image.h5"
BUNDLE = ROOT / "bundles/mm-swin"
OUT = ROOT / "docs/bench/mm_ceiling.json"
DOC = ROOT / "docs/multimodal.md"
RATES = (48, 72, 96, 120, 144)
SENSORS = ("redbox", "position", "uplink", "dl")
_SECTION = ("<!-- mm_ceiling:start -->", "<!-- mm_ceiling:end -->")


def _load(path: Path, split: str, sensor: str) -> dict[str, Any]:
    """Camera-paired rows of a split: real x, the sensor input, and ``z(s) / K`` per rate."""
    import h5py
    import onnxruntime as ort
    import torch

    from models.multimodal.bs import sf_to_real
    from shared.camera import car_box_batch
    from shared.thermometer import allocate_bits, levels_from_features, thermometer_from_levels

    with h5py.File(path, "r") as f:
        g = f[split]
        m = g["has_image"][:]
        x = sf_to_real(g["x_sf"][:][m])
        if sensor == "uplink":
            s = sf_to_real(g["y_sf"][:][m])
        elif sensor == "dl":
            s = x
        elif sensor == "position":
            pos, yaw = g["position"][:][m].astype(np.float32), g["yaw"][:][m].astype(np.float32)
            s = torch.from_numpy(np.concatenate([pos, np.sin(yaw)[:, None], np.cos(yaw)[:, None]], 1))
        else:
            s = torch.from_numpy(car_box_batch(g["image"][:][m]))
    sess = ort.InferenceSession(str(BUNDLE / "encoder.fp32.onnx"), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    z = np.concatenate([sess.run(None, {name: x[i:i + 64].numpy()})[0] for i in range(0, len(x), 64)])
    bounds = np.load(BUNDLE / "boundaries.npy")
    zq = {}
    for b in RATES:
        bits = allocate_bits(b)
        th = thermometer_from_levels(levels_from_features(z, bounds, bits), bits)
        zq[b] = torch.from_numpy(th.sum(-1) / th.shape[-1])
    return {"x": x, "s": s, "zq": zq}


def run_one(sensor: str, minutes: float, data: Path, seed: int = 0, val_split: str = "val") -> dict[str, Any]:
    """Train ``g_E`` + ``R`` (Ne = 32) for ``minutes`` of CPU time, one torch thread."""
    import torch
    from torch import nn

    from models.multimodal.bs import MultiModalBsDecoder
    from models.multimodal.nets import FusionRefiner, MultiModalCodec, nmse
    from shared.bundle import Bundle

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    tr, va = _load(data, "train", sensor), _load(data, val_split, sensor)
    ne = 32
    model = MultiModalCodec(fusion="uplink", ne=ne)  # the uplink extractor for CSI-shaped sensors
    model.decoder = MultiModalBsDecoder.from_bundle(Bundle.load(BUNDLE), "cpu").codec.decoder
    model.decoder.requires_grad_(False)
    if sensor in ("redbox", "position"):
        mu, sd = tr["s"].mean(0), tr["s"].std(0) + 1e-6
        tr["s"], va["s"] = (tr["s"] - mu) / sd, (va["s"] - mu) / sd
        model.extractor = nn.Sequential(  # n numbers -> 8 tokens of Ne
            nn.Linear(tr["s"].shape[1], 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(),
            nn.Linear(128, 8 * ne), nn.Unflatten(1, (8, ne)))
        model.refiner = FusionRefiner(ne, 8, model.decoder.n_tokens)
    params = [*model.extractor.parameters(), *model.refiner.parameters()]
    opt = torch.optim.Adam(params, lr=3e-4)
    gamma = 2 ** (1 / 96)  # eq. 20's weights, as stage 2 trains
    w = {b: gamma ** (b - max(RATES)) for b in RATES}
    wn = sum(w.values())

    @torch.no_grad()
    def score(fuse: bool) -> dict[int, float]:
        out = {}
        for b in RATES:
            tot = 0.0
            for i in range(0, len(va["x"]), 100):
                f = model.extract(va["s"][i:i + 100]) if fuse else None
                xh = model.decode(va["zq"][b][i:i + 100], sensor_feats=f)
                tot += float(nmse(va["x"][i:i + 100], xh).sum())
            out[b] = 10 * math.log10(tot / len(va["x"]))
        return out

    base = score(False)
    t0, seen, curve = time.process_time(), 0, []
    n = len(tr["x"])
    while time.process_time() - t0 < minutes * 60:
        idx = torch.randint(0, n, (64,))
        feats = model.extract(tr["s"][idx])
        loss = sum(w[b] * nmse(tr["x"][idx], model.decode(tr["zq"][b][idx], sensor_feats=feats)).mean()
                   for b in RATES) / wn
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(idx)
        if seen % (64 * 400) == 0:
            curve.append({"cpu_min": round((time.process_time() - t0) / 60, 2), "samples": seen,
                          "nmse_db_48": round(score(True)[48], 3)})
    fused = score(True)
    return {"sensor": sensor, "ne": ne, "cpu_minutes": minutes, "samples": seen, "train_rows": n,
            "val_rows": len(va["x"]), "params": sum(p.numel() for p in params),
            "no_fusion_db": {str(b): v for b, v in base.items()},
            "fusion_db": {str(b): v for b, v in fused.items()},
            "gain_db": {str(b): base[b] - fused[b] for b in RATES}, "curve": curve}


def render(doc: dict[str, Any]) -> str:
    names = {"redbox": "camera: red-car box from the image (detector, 8 numbers)",
             "position": "oracle: the UE's true position and heading",
             "uplink": "uplink CSI (the uplink extractor, from scratch)",
             "dl": "oracle: the true DL CSI itself"}
    runs = sorted(doc["runs"], key=lambda r: (SENSORS.index(r["sensor"]), r["cpu_minutes"]))
    any_r = runs[0]
    lines = [_SECTION[0], "### Where fusion is limited: sensors of growing information, same budget", "",
             f"_`python benchmarks/mm_fusion_ceiling.py` at {doc['provenance']['git_commit'][:7]}, "
             f"{doc['provenance']['created'][:16]}; one torch thread per run, all five trained rates "
             f"decoded per step (the shipped branches: two), {any_r['train_rows']} "
             f"camera-paired training rows, scored on the {any_r['val_rows']} {doc['val_split']} rows; the "
             "shipped codec frozen, R at Ne = 32._", "",
             "| sensor at the BS | CPU-min | R + g_E params | samples seen | "
             + " | ".join(f"gain B={b}" for b in RATES) + " |", "|---|---:|---:|---:|" + "---:|" * len(RATES)]
    for r in runs:
        lines.append(f"| {names[r['sensor']]} | {r['cpu_minutes']:g} | {r['params']:,} | {r['samples']:,} | "
                     + " | ".join(f"{r['gain_db'][str(b)]:+.2f}" for b in RATES) + " |")
    base = any_r["no_fusion_db"]
    lines += ["", "CSI only (no fusion), same rows: " + ", ".join(
        f"{base[str(b)]:.2f} dB at {b}" for b in RATES) + ".", _SECTION[1]]
    return "\n".join(lines)


def write_doc(doc: dict[str, Any]) -> None:
    text = DOC.read_text()
    sec = render(doc)
    if _SECTION[0] in text:
        a, b = text.index(_SECTION[0]), text.index(_SECTION[1]) + len(_SECTION[1])
        text = text[:a] + sec + text[b:]
    else:
        text = text.rstrip() + "\n\n" + sec + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--minutes", type=float, default=8.0, help="CPU minutes per sensor")
    p.add_argument("--sensors", default=",".join(SENSORS))
    p.add_argument("--val-split", default="val", help="split scored (the committed sample has only test)")
    p.add_argument("--jobs", type=int, default=2, help="sensors trained at once (one core each)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # worker mode: one sensor, JSON on stdout
    p.add_argument("--no-doc", action="store_true", help="write nothing under docs/")
    p.add_argument("--render-only", action="store_true", help="rewrite the docs section from the JSON")
    a = p.parse_args(argv)
    if a.render_only:
        write_doc(json.loads(OUT.read_text()))
        print(f"wrote {DOC} from {OUT}", file=sys.stderr)
        return 0
    if not a.data.is_file():
        print(f"no {a.data}: generate it with `csilink dataset generate-rt --profile rt-street-image "
              f"-o {a.data}`", file=sys.stderr)
        return 2
    if a.one:
        print(json.dumps(run_one(a.one, a.minutes, a.data, val_split=a.val_split)))
        return 0
    sensors = [s for s in a.sensors.split(",") if s]
    bad = [s for s in sensors if s not in SENSORS]
    if bad:
        p.error(f"unknown sensor(s) {bad}; choose from {SENSORS}")
    runs, todo, live = [], list(sensors), []
    while todo or live:
        while todo and len(live) < a.jobs:
            s = todo.pop(0)
            cmd = [sys.executable, __file__, "--one", s, "--minutes", str(a.minutes), "--data", str(a.data),
                   "--val-split", a.val_split]
            live.append((s, subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)))
        s, proc = live.pop(0)
        out, _ = proc.communicate()
        if proc.returncode != 0:
            print(f"{s}: worker failed with status {proc.returncode}", file=sys.stderr)
            return 1
        runs.append(json.loads(out.strip().splitlines()[-1]))
        r = runs[-1]
        print(f"{s}: gain at B=48 {r['gain_db']['48']:+.2f} dB, at 144 {r['gain_db']['144']:+.2f} dB "
              f"({r['samples']:,} samples)", file=sys.stderr)
    from shared.provenance import provenance

    # runs of other (sensor, budget) pairs already in the file stay: one table over budgets
    old = json.loads(OUT.read_text()).get("runs", []) if OUT.is_file() and not a.no_doc else []
    new = {(r["sensor"], r["cpu_minutes"]) for r in runs}
    runs = [r for r in old if (r["sensor"], r["cpu_minutes"]) not in new] + runs
    doc = {"schema": "csilink-mm-ceiling/1", "provenance": provenance(), "data": str(a.data),
           "bundle": str(BUNDLE.relative_to(ROOT)), "val_split": a.val_split, "runs": runs}
    if not a.no_doc:
        OUT.write_text(json.dumps(doc, indent=1))
        write_doc(doc)
        print(f"wrote {OUT} and {DOC}", file=sys.stderr)
    else:
        print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
