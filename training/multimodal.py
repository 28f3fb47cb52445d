"""Training of the multi-modal variable-rate codec (``models/multimodal``) on ray-traced worlds.

Two stages, as in the paper:

* ``stage1``: encoder + thermometer quantizer + decoder on DL CSI only, the multi-rate loss
  over B = 48, 72, 96, 120, 144 (weights gamma^B); any dataset with ``x_sf`` (both the
  image-paired and the wireless-only set may be given: they are concatenated).
* ``stage2``: the codec frozen (weights of a stage-1 run), only the sensor extractor g_E and the
  refiner R train, on samples that have the sensor (``image`` rows with ``has_image``, or
  ``y_sf``), at ``ne`` = 4 or 32.

Budgets are CPU minutes of this process (``--clock cpu``, default) so two trainings side by
side stay comparable; ``last.pt`` is written every minute and a re-run resumes it with the same
cosine schedule. Partially generated datasets (``OUT.partial``) can be trained on: the rows
written so far are used, and when the val split is still empty the last 5% of the written
training rows are held out instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from shared.errors import InvalidInput
from shared.estimation import estimation_noise

log = logging.getLogger("csilink.train.multimodal")

RATES = (48, 72, 96, 120, 144)
EVAL_RATES = tuple(range(48, 145, 8))
RELOAD_S = 300.0  # budget seconds between re-reads of a dataset that is still being written


# --------------------------------------------------------------------------- data
def _rows(f: h5py.File, split: str) -> int:
    g = f[split]
    return int(g.attrs.get("n_written", g["sample_id"].shape[0]))


def load_split(path: str | Path, split: str, fields: tuple[str, ...], where: str | None = None,
               max_n: int | None = None) -> dict[str, np.ndarray]:
    """Rows written so far of ``split`` (``where``: a bool field that selects rows, e.g.
    ``has_image``). When ``split`` is val/test and still empty (a partial file), the last 5%
    of the training rows stand in for val (never for test)."""
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("n_taps", -1) != 0 or "x_sf" not in f["train"]:
            raise InvalidInput(f"{path}: not a spatial-frequency (ray-traced) world")
        n = _rows(f, split)
        sel = slice(0, n)
        if n == 0 and split == "val":
            nt = _rows(f, "train")
            split, sel = "train", slice(nt - max(1, nt // 20), nt)
        g = f[split]
        idx = np.arange(sel.start, sel.stop)
        if where is not None:
            idx = idx[g[where][sel.start:sel.stop].astype(bool)]
        if max_n is not None:
            idx = idx[:max_n]
        return {k: g[k][np.sort(idx)] if len(idx) else np.zeros((0, *g[k].shape[1:]), g[k].dtype)
                for k in (*fields, "sample_id")}


def train_rows(path: str | Path, fields: tuple[str, ...], where: str | None = None) -> dict[str, np.ndarray]:
    """Training rows, minus the tail held out as val when the file has no val rows yet."""
    with h5py.File(path, "r", locking=False) as f:
        nt, nv = _rows(f, "train"), _rows(f, "val")
    d = load_split(path, "train", fields, where)
    if nv == 0:
        cut = nt - max(1, nt // 20)
        keep = d["sample_id"] < (d["sample_id"][0] if len(d["sample_id"]) else 0) + cut
        d = {k: v[keep] for k, v in d.items()}
    return d


def to_real(h: np.ndarray) -> torch.Tensor:
    """complex ``[n, Nt, Nsc]`` -> float32 ``[n, 2, Nt, Nsc]``, each sample scaled to unit RMS
    (the loss compares norm-normalized channels, so the scale only conditions the nets)."""
    h = np.asarray(h, np.complex64)
    rms = np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2), keepdims=True))
    h = h / np.maximum(rms, 1e-30)
    return torch.from_numpy(np.stack([h.real, h.imag], axis=1).astype(np.float32))


def image_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 ``[n, H, W, 3]`` -> float32 ``[n, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(0, 3, 1, 2).float().div_(255.0)


def estimated(h: np.ndarray, snr_db: float | None, seed: int = 0) -> np.ndarray:
    """CSI-RS estimates at ``snr_db`` (keyed per row: the same rows see the same noise)."""
    if snr_db is None:
        return h
    return np.stack([estimation_noise(x, snr_db, (seed, i, 7)) for i, x in enumerate(h)])


# --------------------------------------------------------------------------- model
def build(fusion: str | None, ne: int) -> torch.nn.Module:
    from models.multimodal.nets import MultiModalCodec

    return MultiModalCodec(fusion=fusion, ne=ne)


class OnnxEncoder(torch.nn.Module):
    """A shipped bundle's fp32 ONNX encoder as a frozen module (stage 2 never trains the
    encoder, so the exported graph stands in for the stage-1 weights)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.sess.run(None, {self.name: x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(z).to(x.device)


def load_codec_from_bundle(model: torch.nn.Module, bundle_dir: str | Path) -> None:
    """Stage 2 from a shipped ``multimodal`` bundle instead of a stage-1 run: its decoder, its
    quantizer boundaries (``b1`` and the non-negative steps ``beta``) and its fp32 ONNX encoder."""
    from safetensors.torch import load_file

    from models.multimodal.export import BOUNDARIES, DECODER, ENCODER_FP32
    from shared.bundle import Bundle

    b = Bundle.load(bundle_dir)
    if b.family != "multimodal":
        raise InvalidInput(f"{bundle_dir} is a {b.family} bundle, not multimodal")
    model.decoder.load_state_dict(load_file(str(b.file(DECODER))))
    bounds = torch.from_numpy(np.load(b.file(BOUNDARIES)))
    with torch.no_grad():
        model.quantizer.b1.copy_(bounds[:, :1])
        model.quantizer.beta.copy_(torch.diff(bounds, dim=1))
    model.encoder = OnnxEncoder(b.file(ENCODER_FP32))


def load_codec_weights(model: torch.nn.Module, ckpt: str | Path) -> None:
    """Stage-1 encoder / quantizer / decoder weights into ``model`` (its fusion parts stay);
    ``ckpt`` a stage-1 run's ``best.pt`` or a shipped bundle's folder."""
    if Path(ckpt).is_dir():
        load_codec_from_bundle(model, ckpt)
        return
    state = torch.load(Path(ckpt), map_location="cpu", weights_only=True)["model"]
    own = model.state_dict()
    codec = {k: v for k, v in state.items() if k.split(".")[0] in ("encoder", "quantizer", "decoder")}
    missing = [k for k in own if k.split(".")[0] in ("encoder", "quantizer", "decoder") and k not in codec]
    if missing:
        raise InvalidInput(f"{ckpt}: stage-1 checkpoint lacks {missing[:3]}")
    model.load_state_dict(codec, strict=False)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, sensor: torch.Tensor | None = None,
             rates: tuple[int, ...] = EVAL_RATES, x_in: torch.Tensor | None = None,
             batch: int = 100) -> dict[int, float]:
    """NMSE (dB) of the reconstruction against the true ``x`` at each rate; ``x_in`` is what
    the encoder sees (an estimate), ``x`` by default."""
    from models.multimodal.nets import nmse

    model.eval()
    x_in = x if x_in is None else x_in
    out: dict[int, float] = {}
    for b in rates:
        tot = 0.0
        for i in range(0, len(x), batch):
            s = sensor[i:i + batch] if sensor is not None else None
            xh = model(x_in[i:i + batch], b, s)
            tot += float(nmse(x[i:i + batch], xh).sum())
        out[b] = 10 * math.log10(max(tot / max(len(x), 1), 1e-30))
    model.train()
    return out


# --------------------------------------------------------------------------- loop
def _cpu() -> float:
    return time.process_time()


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def run(stage: str, data: list[str], out: str | Path, minutes: float, fusion: str | None = None, ne: int = 4,
        init: str | None = None, batch: int = 64, lr: float | None = None, seed: int = 0,
        val_n: int = 400, clock: str = "cpu", device: str = "cpu", rates_per_step: int = len(RATES)
        ) -> dict[str, Any]:
    """Train (or resume) one stage until ``minutes`` of the chosen clock are used (on a GPU,
    ``device="cuda"``, use the wall clock: the CPU clock does not count GPU work)."""
    torch.set_num_threads(1)
    dev = torch.device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if stage not in ("stage1", "stage2"):
        raise InvalidInput(f"stage must be stage1 or stage2, got {stage!r}")
    if stage == "stage2" and (fusion not in ("image", "uplink", "box") or not init):
        raise InvalidInput("stage2 needs --fusion image|uplink|box and --init <stage-1 run>/best.pt "
                           "(or a shipped bundle's folder)")
    lr = lr if lr is not None else (1e-3 if stage == "stage1" else 3e-4)
    cfg = {"stage": stage, "data": data, "fusion": fusion, "ne": ne, "init": init, "batch": batch, "lr": lr,
           "seed": seed, "rates": list(RATES), "clock": clock, "minutes": minutes, "device": device,
           "rates_per_step": rates_per_step}
    if not 1 <= rates_per_step <= len(RATES):
        raise InvalidInput(f"rates_per_step must be in 1..{len(RATES)}, got {rates_per_step}")
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if {k: old.get(k) for k in ("stage", "fusion", "ne", "init", "batch", "lr", "seed")} != \
                {k: cfg[k] for k in ("stage", "fusion", "ne", "init", "batch", "lr", "seed")}:
            raise InvalidInput(f"{out} holds a different run; use another --out")
    cfg_path.write_text(json.dumps(cfg, indent=2))

    # data: sensor rows only in stage 2
    camera = fusion in ("image", "box")
    where = "has_image" if camera else None
    fields = ("x_sf",) + (("image",) if camera else ("y_sf",) if fusion == "uplink" else ())
    vparts = [load_split(p, "val", fields, where, max_n=val_n) for p in data]
    # the validation rows are fixed at the start; a growing (.partial) file is re-read for
    # training every RELOAD_S, always without those rows
    val_ids = [set(v["sample_id"].tolist()) for v in vparts]

    def load_train() -> list[dict[str, np.ndarray]]:
        out = []
        for p, ids in zip(data, val_ids, strict=True):
            q = p if Path(p).exists() or not p.endswith(".partial") else p[: -len(".partial")]
            d = load_split(q, "train", fields, where)
            keep = ~np.isin(d["sample_id"], list(ids))
            out.append({k: v[keep] for k, v in d.items()})
        return out

    growing = any(p.endswith(".partial") for p in data)
    parts = load_train()
    x = torch.cat([to_real(p["x_sf"]) for p in parts]).to(dev)
    xv = torch.cat([to_real(p["x_sf"]) for p in vparts])[:val_n].to(dev)

    def sensor_of(ps: list[dict[str, np.ndarray]]) -> torch.Tensor | None:
        if fusion == "image":
            return torch.from_numpy(np.concatenate([p["image"] for p in ps]))  # uint8, converted per batch
        if fusion == "box":  # the detector runs once per row: its output is fixed
            from shared.camera import car_box_batch

            return torch.from_numpy(np.concatenate([car_box_batch(p["image"]) for p in ps]))
        if fusion == "uplink":
            return torch.cat([to_real(p["y_sf"]) for p in ps])
        return None

    s_all, sv = sensor_of(parts), sensor_of(vparts)
    s_all = s_all.to(dev) if s_all is not None else None
    sv = sv[:val_n].to(dev) if sv is not None else None
    if len(x) == 0:
        raise InvalidInput(f"no training rows in {data} for {stage} {fusion or ''}")
    if len(xv) == 0:  # a tiny file (the committed sample): validate on training rows, say so
        log.warning("no validation rows with the needed fields: validating on %d training rows",
                    min(len(x), 64))
        xv = x[:64]
        sv = s_all[:64] if s_all is not None else None
    log.info("%s: %d training rows, %d val rows", stage, len(x), len(xv))

    def sensor_batch(s: torch.Tensor | None) -> torch.Tensor | None:
        if s is None or fusion != "image":
            return s
        return s.permute(0, 3, 1, 2).float().div(255.0)

    torch.manual_seed(seed)
    model = build(fusion if stage == "stage2" else None, ne)
    if stage == "stage2":
        from models.multimodal.nets import freeze_codec

        load_codec_weights(model, init)
        freeze_codec(model)
        if fusion == "box":
            model.extractor.set_standardization(s_all)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    state = {"used_s": 0.0, "wall_s": 0.0, "samples": 0, "step": 0, "best": float("inf")}
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        torch.set_rng_state(ck["rng"].cpu())
        log.info("resumed %s at %.0f s, %d samples", out, state["used_s"], state["samples"])
    budget = minutes * 60.0
    from models.multimodal.nets import multi_rate_loss

    rng = np.random.default_rng(seed + state["step"])
    clock_fn = _cpu if clock == "cpu" else time.time
    t_last, w_last, t_ckpt, t_val = clock_fn(), time.time(), 0.0, 0.0
    logf = (out / "log.jsonl").open("a")

    def validate() -> float:
        r = evaluate(model, xv, sensor_batch(sv), rates=RATES)
        row = {"used_s": round(state["used_s"], 1), "samples": state["samples"], "step": state["step"],
               **{f"val_{b}": round(v, 3) for b, v in r.items()}}
        logf.write(json.dumps(row) + "\n")
        logf.flush()
        log.info("%s", row)
        return float(np.mean(list(r.values())))

    t_reload = state["used_s"]
    while state["used_s"] < budget:
        if growing and state["used_s"] - t_reload > RELOAD_S:
            t_reload = state["used_s"]
            try:
                parts = load_train()
            except (OSError, KeyError) as exc:  # the writer mid-flush: keep the rows we have
                log.warning("could not re-read the growing data (%s); keeping %d rows", exc, len(x))
                continue
            x = torch.cat([to_real(p["x_sf"]) for p in parts]).to(dev)
            s_all = sensor_of(parts)
            s_all = s_all.to(dev) if s_all is not None else None
            log.info("reloaded growing data: %d training rows", len(x))
            t_last = clock_fn()  # reading is not charged to the budget
        frac = state["used_s"] / budget
        for g in opt.param_groups:  # cosine to lr/100 over the budget
            g["lr"] = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        idx = torch.from_numpy(rng.integers(0, len(x), size=batch)).to(dev)
        sb = sensor_batch(s_all[idx]) if s_all is not None else None
        if rates_per_step == len(RATES):
            loss, _ = multi_rate_loss(model, x[idx], sb, rates=RATES)
        else:  # an unbiased estimate of eq. (20): a random subset of the rates, reweighted
            pick = tuple(sorted(rng.choice(RATES, size=rates_per_step, replace=False).tolist()))
            loss, _ = multi_rate_loss(model, x[idx], sb, rates=pick, norm_rates=RATES)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["samples"] += batch
        state["step"] += 1
        now, wnow = clock_fn(), time.time()
        state["used_s"] += now - t_last
        state["wall_s"] += wnow - w_last
        t_last, w_last = now, wnow
        if state["used_s"] - t_val > 120 or state["used_s"] >= budget:
            t_val = state["used_s"]
            v = validate()
            t_last = clock_fn()  # validation is not charged to the budget
            if v < state["best"]:
                state["best"] = v
                _atomic_save({"model": {k: t.cpu() for k, t in model.state_dict().items()}, "config": cfg,
                              "state": dict(state)},
                             out / "best.pt")
        if state["used_s"] - t_ckpt > 60 or state["used_s"] >= budget:
            t_ckpt = state["used_s"]
            _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                          "rng": torch.get_rng_state()}, last)
    summary = {"stage": stage, "fusion": fusion, "ne": ne, "minutes": minutes, "clock": clock,
               "samples_seen": state["samples"], "steps": state["step"], "wall_s": round(state["wall_s"], 1),
               "best_mean_val_db": round(state["best"], 3), "train_rows": len(x), "val_rows": len(xv)}
    (out / "run.json").write_text(json.dumps(summary, indent=2))
    logf.close()
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.multimodal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["stage1", "stage2", "export", "add-branch"],
                   help="export: the bundle of a stage-1 run (--init) and stage-2 runs (--branch) to --out; "
                   "add-branch: stage-2 runs (--branch) into the exported bundle --out, in place")
    p.add_argument("--data", action="append", required=True, help="dataset .h5 (or .h5.partial); repeatable")
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, help="training budget (stage1 / stage2)")
    p.add_argument("--branch", action="append", default=[], metavar="SENSOR:NE:RUN",
                   help="export: a fusion branch, e.g. image:32:runs/mm/s2-image-ne32 (repeatable)")
    p.add_argument("--model-id", help="export: the bundle's model id (default: the --out folder name)")
    p.add_argument("--force", action="store_true", help="export: replace a non-empty --out")
    p.add_argument("--fusion", choices=["image", "uplink", "box"])
    p.add_argument("--ne", type=int, default=4, choices=[4, 32])
    p.add_argument("--init", help="stage 2: the stage-1 run's best.pt, or a shipped bundle's folder")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    p.add_argument("--device", default="cpu", help="torch device (cuda: use --clock wall)")
    p.add_argument("--rates-per-step", type=int, default=len(RATES),
                   help="decode this many of the 5 trained rates per step (a random subset, reweighted: "
                   "an unbiased estimate of the multi-rate loss at a fraction of the cost; default all)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.stage in ("export", "add-branch"):
        from models.multimodal.export import add_branches, export_bundle

        if a.stage == "export" and not a.init:
            p.error("export needs --init <stage-1 run>")
        branches = []
        for spec in a.branch:
            sensor, _, rest = spec.partition(":")
            ne, _, run_dir = rest.partition(":")
            if not (sensor and ne.isdigit() and run_dir):
                p.error(f"--branch {spec!r}: expected SENSOR:NE:RUN, e.g. image:32:runs/mm/s2-image-ne32")
            branches.append((sensor, int(ne), run_dir))
        if a.stage == "add-branch":
            if not branches:
                p.error("add-branch needs --branch SENSOR:NE:RUN")
            b = add_branches(a.out, branches)
        else:
            b = export_bundle(a.init, a.out, branches, a.data, model_id=a.model_id, force=a.force)
        print(json.dumps(b.summary()))
        return 0
    if a.minutes is None:
        p.error(f"{a.stage} needs --minutes")
    print(json.dumps(run(a.stage, a.data, a.out, a.minutes, a.fusion, a.ne, a.init, a.batch, a.lr, a.seed,
                         clock=a.clock, device=a.device, rates_per_step=a.rates_per_step)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
