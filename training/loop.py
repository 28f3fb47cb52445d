"""Time-budgeted, resumable training of a learned family on a dataset file.

A run folder holds:

* ``config.json``: the full run config (family, model, train, seed) and the dataset path/id.
* ``last.pt``: resumable state (model, optimizer, samples seen, wall seconds used, RNG and
  epoch position), written atomically every ``ckpt_every_s`` and at the end.
* ``best.pt``: model weights at the best validation NMSE (what export ships).
* ``log.jsonl``: one JSON line per validation (wall seconds, samples seen, train/val NMSE dB, lr).
* ``run.json``: summary at the end (budget, samples seen, best/final val NMSE, normalization).

The budget is minutes of the training loop (validation included, data loading excluded) on
one of two clocks: ``wall`` (elapsed time) or ``cpu`` (this process's CPU time, which does not
grow when other jobs share the cores, so budgets stay comparable on a busy machine). Both
clocks are recorded either way. The learning rate follows a cosine over the budget, so a
resumed run continues the same schedule. Killing a run loses at most ``ckpt_every_s``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.common.learned import LearnedFamily
from models.registry import get_family
from shared.errors import InvalidInput
from shared.provenance import git_commit
from shared.transforms import complex_to_real
from training import data as ds

log = logging.getLogger(__name__)

TRAIN_DEFAULTS: dict[str, Any] = {
    "batch_size": 200,
    "lr": 2e-3,
    "lr_final": 2e-5,
    "warmup_frac": 0.02,
    "weight_decay": 0.0,
    "val_n": 2000,
    "val_every_s": 60.0,
    "ckpt_every_s": 60.0,
    "max_train": None,  # use at most this many training samples (None: all)
    # fine-tune from another run's checkpoint (e.g. quantization-aware fine-tuning with model.qat)
    "init_from": None,
    # also keep the model at these fractions of the budget (snap-050.pt for 0.5): budget studies
    "snapshots": None,
}


def load_config(path: str | Path | None, family: str | None = None) -> dict[str, Any]:
    """Run config from YAML/JSON (``family``, ``model``, ``train``, ``seed``) with defaults filled."""
    raw: dict[str, Any] = {}
    if path:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise InvalidInput(f"config file {p} does not exist")
        raw = yaml.safe_load(p.read_text()) or {}
        if not isinstance(raw, dict):
            raise InvalidInput(f"config {p}: expected a mapping")
    unknown = set(raw) - {"family", "model", "train", "seed", "model_id", "description"}
    if unknown:
        raise InvalidInput(f"config: unknown top-level key(s) {sorted(unknown)}")
    fam_name = family or raw.get("family")
    if not fam_name:
        raise InvalidInput("no family given (--family or 'family:' in the config)")
    if family and raw.get("family") and raw["family"] != family:
        raise InvalidInput(f"--family {family} disagrees with the config's family {raw['family']!r}")
    fam = get_family(fam_name)
    if not isinstance(fam, LearnedFamily):
        raise InvalidInput(f"family {fam_name!r} is not trainable")
    train = dict(TRAIN_DEFAULTS)
    bad = set(raw.get("train") or {}) - set(TRAIN_DEFAULTS)
    if bad:
        raise InvalidInput(f"config: unknown train key(s) {sorted(bad)}; known: {sorted(TRAIN_DEFAULTS)}")
    train.update(raw.get("train") or {})
    return {
        "family": fam_name,
        "model": fam.full_config(raw.get("model") or {}),
        "train": train,
        "seed": int(raw.get("seed", 0)),
        "model_id": raw.get("model_id"),
        "description": raw.get("description", ""),
    }


def _lr(cfg: dict[str, Any], frac: float) -> float:
    """Warmup then cosine from ``lr`` to ``lr_final`` over the fraction of budget used."""
    t = cfg["train"]
    lr0, lr1, wu = float(t["lr"]), float(t["lr_final"]), float(t["warmup_frac"])
    if frac < wu:
        return lr0 * max(frac / wu, 0.01)
    p = min(1.0, (frac - wu) / max(1e-9, 1 - wu))
    return lr1 + 0.5 * (lr0 - lr1) * (1 + math.cos(math.pi * p))


def _init_from(
    model: torch.nn.Module, path: str | None, fresh: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """Load weights of another run's checkpoint (``.../best.pt``) into a fresh model.

    Only fake-quantizer buffers (:class:`models.common.nets.ActQuant`) and parameters under the
    family's ``init_fresh`` prefixes (parts the base run does not have, e.g. RD-JSCC's
    denoiser on top of an autoencoder run) may be missing. Returns what the base run was (for
    the summary), None without ``path``.
    """
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"train.init_from: no checkpoint {p}")
    ck = torch.load(p, map_location="cpu", weights_only=True)
    try:
        missing, unexpected = model.load_state_dict(ck["model"], strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        raise InvalidInput(f"train.init_from {p} does not fit this model: {exc}") from None
    quant = (".lo", ".hi", ".seen")
    bad = [k for k in missing if not k.endswith(quant) and not (fresh and k.startswith(fresh))]
    if bad or unexpected:
        raise InvalidInput(
            f"train.init_from {p} does not fit this model: missing {bad}, unexpected {unexpected}"
        )
    base: dict[str, Any] = {"checkpoint": str(p), "samples_seen": ck.get("samples_seen")}
    run_json = p.parent / "run.json"
    if run_json.is_file():
        r = json.loads(run_json.read_text())
        base.update(
            {
                k: r.get(k)
                for k in (
                    "budget_minutes",
                    "budget_clock",
                    "wall_minutes",
                    "cpu_minutes",
                    "samples_seen",
                    "epochs",
                    "best_val_nmse_db",
                )
            }
        )
    return base


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def to_tensor(x_ad: np.ndarray, scale: float) -> torch.Tensor:
    """complex ``[N, Nt, T]`` -> normalized real ``float32 [N, 2, Nt, T]``."""
    return torch.from_numpy(complex_to_real(x_ad * np.float32(scale)))


@torch.no_grad()
def evaluate_nmse(
    fam: LearnedFamily, model: torch.nn.Module, x: torch.Tensor, batch: int = 500, seed: int = 1234
) -> float:
    """Validation NMSE (dB) with the training-time wire twin (fixed seed for analog noise),
    against the family's target (``fam.target(batch)``: x unless the family says otherwise)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    num = 0.0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        _, x_hat = fam.loss(model, xb, g)
        tb = fam.target(model, xb)
        e = ((tb - x_hat) ** 2).flatten(1).sum(1) / (tb**2).flatten(1).sum(1).clamp_min(1e-12)
        num += float(e.sum())
    model.train()
    return 10 * math.log10(max(num / max(len(x), 1), 1e-30))


def train(
    config: dict[str, Any],
    dataset: str | Path,
    out: str | Path,
    minutes: float,
    threads: int = 1,
    progress: bool = True,
    clock: str = "wall",
) -> dict[str, Any]:
    """Train (or resume) ``config`` on ``dataset`` until ``minutes`` of wall time are used.

    Returns the run summary (also written to ``out/run.json``).
    """
    torch.set_num_threads(max(1, int(threads)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fam = get_family(config["family"])
    assert isinstance(fam, LearnedFamily)
    tcfg = config["train"]
    budget_s = float(minutes) * 60.0
    if clock not in ("wall", "cpu"):
        raise InvalidInput(f"clock must be 'wall' or 'cpu', got {clock!r}")
    if budget_s <= 0:
        raise InvalidInput(f"--minutes must be > 0, got {minutes}")

    meta = ds.info(dataset)
    cfg_path = out / "config.json"
    record = {**config, "dataset": str(dataset), "dataset_id": meta["dataset_id"], "clock": clock}
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        same = {k: old.get(k) for k in ("family", "model", "train", "seed", "dataset_id", "clock")}
        new = {k: record.get(k) for k in ("family", "model", "train", "seed", "dataset_id", "clock")}
        if same != new:
            raise InvalidInput(f"{out} holds a run with a different config or dataset; use another --out")
    cfg_path.write_text(json.dumps(record, indent=2) + "\n")

    t_load = time.time()
    x_tr = ds.load_field(dataset, "train", "x_ad", n=tcfg["max_train"])
    scale = ds.normalization_scale(x_tr)
    # families that learn from more than x (side information y, a future target z) get every
    # field they list, normalized by the same scale and stacked on the channel axis
    fields = list(fam.fields(config["model"]))
    if fields[0] != "x_ad":
        raise InvalidInput(f"family {fam.name!r}: training fields must start with x_ad, got {fields}")
    parts = [to_tensor(x_tr, scale)]
    del x_tr
    parts += [to_tensor(ds.load_field(dataset, "train", f, n=tcfg["max_train"]), scale) for f in fields[1:]]
    xt = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
    del parts
    xv = torch.cat(
        [to_tensor(ds.load_field(dataset, "val", f, n=int(tcfg["val_n"])), scale) for f in fields], 1
    )
    log.info(
        "loaded %d train / %d val samples in %.1fs (scale %.4g)",
        len(xt),
        len(xv),
        time.time() - t_load,
        scale,
    )

    torch.manual_seed(config["seed"])
    model = fam.build_model(config["model"])
    init = _init_from(model, tcfg.get("init_from"), tuple(getattr(fam, "init_fresh", ())))
    warm = None
    if init is None and not (out / "last.pt").is_file() and hasattr(fam, "warm_start"):
        warm = fam.warm_start(model, xt)
        if warm:
            log.info("warm start: %s", warm)
    if config["model"].get("qat"):
        from models.common.nets import set_qat

        n_q = set_qat(model, True)
        log.info("quantization-aware training: %d fake int8 activation quantizers", n_q)
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    state = {
        "samples_seen": 0,
        "steps": 0,
        "wall_s": 0.0,
        "cpu_s": 0.0,
        "epoch": 0,
        "pos": 0,
        "best_val_db": None,
        "scale": scale,
    }
    gen = torch.Generator().manual_seed(config["seed"] + 1)
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state.update(ck["state"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        log.info("resumed %s at %.1f min, %d samples seen", out, state["wall_s"] / 60, state["samples_seen"])

    bs = int(tcfg["batch_size"])
    n = len(xt)

    def perm(epoch: int) -> torch.Tensor:
        return torch.randperm(n, generator=torch.Generator().manual_seed(config["seed"] * 1000003 + epoch))

    order = perm(state["epoch"])
    running: list[float] = []
    t_start = time.time()
    wall0, cpu0, c_start = state["wall_s"], state.get("cpu_s", 0.0), time.process_time()

    def used() -> float:
        return state["wall_s"] if clock == "wall" else state["cpu_s"]

    next_val = used() + float(tcfg["val_every_s"])
    next_ck = used() + float(tcfg["ckpt_every_s"])
    logf = open(out / "log.jsonl", "a")  # noqa: SIM115 - kept open for the whole loop

    def checkpoint() -> None:
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "state": state,
                "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
            last,
        )

    def validate() -> float:
        v = evaluate_nmse(fam, model, xv)
        tr = 10 * math.log10(max(float(np.mean(running)), 1e-30)) if running else None
        rec = {
            "wall_s": round(state["wall_s"], 1),
            "cpu_s": round(state["cpu_s"], 1),
            "samples_seen": state["samples_seen"],
            "steps": state["steps"],
            "epoch": state["epoch"],
            "lr": opt.param_groups[0]["lr"],
            "train_nmse_db": tr,
            "val_nmse_db": v,
        }
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        running.clear()
        if state["best_val_db"] is None or v < state["best_val_db"]:
            state["best_val_db"] = v
            _atomic_save(
                {"model": model.state_dict(), "val_nmse_db": v, "samples_seen": state["samples_seen"]},
                out / "best.pt",
            )
        log.info(
            "%.1f/%.1f min  %d samples  train %s dB  val %.2f dB",
            used() / 60,
            minutes,
            state["samples_seen"],
            "-" if tr is None else f"{tr:.2f}",
            v,
        )
        return v

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not progress,
        transient=False,
    )
    model.train()
    val_db = None
    with prog:
        task = prog.add_task(f"train {config['family']}", total=budget_s, completed=used(), info="")
        while used() < budget_s:
            if state["pos"] >= n:
                state["epoch"] += 1
                state["pos"] = 0
                order = perm(state["epoch"])
            idx = order[state["pos"] : state["pos"] + bs]
            state["pos"] += len(idx)
            for g in opt.param_groups:
                g["lr"] = _lr(config, used() / budget_s)
            loss, _ = fam.loss(model, xt[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running.append(float(loss.detach()))
            state["samples_seen"] += len(idx)
            state["steps"] += 1
            state["wall_s"] = wall0 + (time.time() - t_start)
            state["cpu_s"] = cpu0 + (time.process_time() - c_start)
            if used() >= next_val:
                val_db = validate()
                next_val = used() + float(tcfg["val_every_s"])
            for frac in tcfg.get("snapshots") or ():
                # the model as it was at a fraction of the budget (budget studies); kept once
                snap = out / f"snap-{round(100 * float(frac)):03d}.pt"
                if used() >= float(frac) * budget_s and not snap.is_file():
                    _atomic_save({"model": model.state_dict(), "samples_seen": state["samples_seen"],
                                  "cpu_s": state["cpu_s"], "wall_s": state["wall_s"]}, snap)
            if used() >= next_ck:
                checkpoint()
                next_ck = used() + float(tcfg["ckpt_every_s"])
            if state["steps"] % 20 == 0:
                rate = (state["samples_seen"]) / max(state["wall_s"], 1e-9)
                prog.update(
                    task,
                    completed=min(used(), budget_s),
                    info=f"{state['samples_seen']} samples, {rate:.0f}/s, "
                    f"val {val_db if val_db is None else round(val_db, 2)} dB",
                )
        val_db = validate()
        checkpoint()
        prog.update(task, completed=budget_s)
    logf.close()

    summary = {
        "family": config["family"],
        "model": config["model"],
        "seed": config["seed"],
        "dataset": str(dataset),
        "dataset_id": meta["dataset_id"],
        "n_train": n,
        "budget_minutes": float(minutes),
        "budget_clock": clock,
        "wall_minutes": round(state["wall_s"] / 60, 2),
        "cpu_minutes": round(state["cpu_s"] / 60, 2),
        "samples_seen": int(state["samples_seen"]),
        "epochs": round(state["samples_seen"] / n, 2),
        "steps": int(state["steps"]),
        "threads": int(threads),
        "final_val_nmse_db": val_db,
        "best_val_nmse_db": state["best_val_db"],
        "normalization": {"scale": scale, "method": "global-rms", "computed_on": "train"},
        "git_commit": git_commit(),
        **({"init_from": init} if init else {}),
        **({"warm_start": warm} if warm else {}),
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
