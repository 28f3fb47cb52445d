"""training.loop: budgets, resumable checkpoints, logs, config checks (seconds of real training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from shared.errors import InvalidInput, NotFound  # noqa: E402
from training.loop import load_config, train  # noqa: E402
from training.testing import TINY_MODEL, tiny_dataset  # noqa: E402


def _cfg(family: str = "csinet") -> dict:
    cfg = load_config(None, family)
    cfg["model"].update(TINY_MODEL[family])
    cfg["train"].update({"batch_size": 32, "val_n": 32, "val_every_s": 0.3, "ckpt_every_s": 0.3})
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("train"))


def test_resume_continues_samples_optimizer_and_log(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    s1 = train(_cfg(), data, out, minutes=0.8 / 60, progress=False)
    ck1 = torch.load(out / "last.pt", weights_only=True)
    steps1 = ck1["state"]["steps"]
    assert s1["samples_seen"] == ck1["state"]["samples_seen"] > 0
    lines1 = (out / "log.jsonl").read_text().splitlines()
    # a second call with a larger budget resumes: more samples, same optimizer (Adam step count grows)
    budget2 = (ck1["state"]["wall_s"] + 0.5) / 60  # room for at least one more step, however slow
    s2 = train(_cfg(), data, out, minutes=budget2, progress=False)
    ck2 = torch.load(out / "last.pt", weights_only=True)
    assert s2["samples_seen"] > s1["samples_seen"]
    assert ck2["state"]["steps"] > steps1
    adam_step = next(iter(ck2["optimizer"]["state"].values()))["step"]
    assert int(adam_step) == ck2["state"]["steps"]
    lines2 = (out / "log.jsonl").read_text().splitlines()
    assert len(lines2) > len(lines1)
    rec = json.loads(lines2[-1])
    assert {"wall_s", "cpu_s", "samples_seen", "train_nmse_db", "val_nmse_db", "lr"} <= set(rec)
    assert (out / "best.pt").is_file()
    # a run whose budget is used up does not train further
    s3 = train(_cfg(), data, out, minutes=budget2, progress=False)
    assert s3["samples_seen"] == s2["samples_seen"]


def test_cpu_clock_budget_and_summary(data: Path, tmp_path: Path) -> None:
    s = train(_cfg("csinet-jscc"), data, tmp_path / "r", minutes=0.5 / 60, progress=False, clock="cpu")
    assert s["budget_clock"] == "cpu" and s["cpu_minutes"] >= 0.5 / 60
    assert s["normalization"]["scale"] > 0 and s["normalization"]["computed_on"] == "train"


def test_run_folder_refuses_other_config(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    train(_cfg(), data, out, minutes=0.3 / 60, progress=False)
    other = _cfg()
    other["model"]["latent"] = 6
    with pytest.raises(InvalidInput, match="different config"):
        train(other, data, out, minutes=0.3 / 60, progress=False)


def test_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: csinet\ntrain: {batch: 3}\n")
    with pytest.raises(InvalidInput, match="unknown train key"):
        load_config(bad)
    bad.write_text("family: csinet\nmodel: {latnt: 3}\n")
    with pytest.raises(InvalidInput, match="unknown model config"):
        load_config(bad)
    with pytest.raises(InvalidInput, match="disagrees"):
        load_config(bad, "csinet-jscc")
    with pytest.raises(NotFound, match="unknown model family"):
        load_config(None, "nope")


def test_missing_dataset(tmp_path: Path) -> None:
    from shared.errors import DatasetError

    with pytest.raises((DatasetError, NotFound)):
        train(_cfg(), tmp_path / "none.h5", tmp_path / "r", minutes=0.1, progress=False)


def test_qat_finetune_from_checkpoint(data: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    train(_cfg(), data, base, minutes=0.5 / 60, progress=False)
    cfg = _cfg()
    cfg["model"]["qat"] = True
    cfg["train"]["init_from"] = str(base / "best.pt")
    s = train(cfg, data, tmp_path / "qat", minutes=0.5 / 60, progress=False)
    assert s["init_from"]["checkpoint"].endswith("best.pt") and s["init_from"]["samples_seen"] > 0
    ck = torch.load(tmp_path / "qat" / "best.pt", weights_only=True)["model"]
    assert any(k.endswith(".hi") for k in ck)  # the fake quantizers tracked ranges
    bad = _cfg()
    bad["model"]["latent"] = 6
    bad["train"]["init_from"] = str(base / "best.pt")
    with pytest.raises(InvalidInput, match="does not fit"):
        train(bad, data, tmp_path / "bad", minutes=0.2 / 60, progress=False)
