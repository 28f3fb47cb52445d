"""The scenario runner over the real services (tests/conftest.py ``link``: three processes).

Each test leaves the shared services as it found them (``clean_link`` restores the channel's
default link, the UE/BS settings and the UE's default model).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from csilink.runner import Runner, run_scenario
from csilink.scenario import ResolvedScenario, load_scenario


@pytest.fixture
def clean_link(link: Any) -> Any:
    c = link.client
    ch = c.configure_channel({})
    ue, bs = c.configure("ue", {}), c.configure("bs", {})
    default = next((m.model_id for m in c.list_models("ue") if m.is_default), None)
    bs_models = {m.model_id: m.path for m in c.list_models("bs")}
    yield link
    now = {m.model_id: m.version for m in c.list_models("bs")}
    for path in bs_models.values():
        c.load_model(path, nodes=("bs",))  # reload: a test may have unloaded or replaced it
    for mid in set(now) - set(bs_models):
        c.unload_model(mid, "bs")
    c.configure_channel(ch["default"], reset_links=True)
    c.configure("ue", {"seed": ue["seed"], "datasets": ue["datasets"]})
    c.configure("bs", {"datasets": bs["datasets"]})
    if default:
        c.swap_model(default)


def _scenario(tmp_path: Path, link: Any, name: str = "t", **fields: Any) -> ResolvedScenario:
    doc = {
        "name": name,
        "dataset": {"path": str(link.dataset), "split": "test"},
        "models": {"ue": str(link.bundles.digital)},
        "reports": 24,
        "batch": 8,
        "seed": 3,
        "channel": {"ideal": True},
        "output": str(tmp_path / "out"),
        **fields,
    }
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    rs = load_scenario(p)
    assert isinstance(rs, ResolvedScenario)
    return rs


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _addrs(link: Any) -> dict[str, str]:
    return {"ue": link.ue.addr, "channel": link.channel.addr, "bs": link.bs.addr}


def _offline(bundle: Path, dataset: Path, sample_ids: np.ndarray, rate: str) -> tuple[np.ndarray, np.ndarray]:
    """The same bundle evaluated in this process (ONNX int8 encoder + wire + torch decoder)."""
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle
    from shared.dataset import open_dataset
    from shared.ue_encoder import UeEncoder
    from shared.wire import from_spec

    with open_dataset(dataset) as ds:
        sp = ds.truth_view().split("test")
        x = sp.read("x_ad", np.array([sp.index_of(int(s)) for s in sample_ids]))
    b = Bundle.load(bundle)
    m = b.manifest
    payloads = UeEncoder.from_bundle(b, threads=1).encode(x, rate)
    codec = from_spec(m.rate(rate).wire or m.ue.wire, b.path)
    z = np.stack([codec.decode(p, m.latent_size) for p in payloads])
    return x, load_bs_decoder(b, "cpu").decode_batch(z, {}, None)


def test_noiseless_link_equals_offline_evaluation(clean_link: Any, tmp_path: Path) -> None:
    """The split link over an ideal channel scores like ``csilink eval`` on the same samples."""
    from evaluation.harness import evaluate

    link = clean_link
    rs = _scenario(tmp_path, link, reports=40, batch=16)
    res = run_scenario(rs, **_addrs(link), write=False, keep_reconstructions=True)
    (pt,) = res.points
    assert pt.row["ok"] == pt.row["sent"] == 40 and pt.row["dropped"] == pt.row["errors"] == 0
    with h5py.File(link.dataset) as f:  # the first 40 samples of the split, in file order
        assert list(pt.sample_ids) == list(f["test"]["sample_id"][:40])
    (ev,), _ = evaluate([str(link.bundles.digital)], link.dataset, "test", n=40)
    assert abs(pt.row["nmse_db_ad"] - ev.nmse_db_ad) < 0.01
    assert pt.row["sgcs"] == pytest.approx(ev.sgcs, abs=1e-3)
    assert pt.row["rho"] == pytest.approx(ev.rho, abs=1e-3)
    assert (pt.row["sf_truth"], pt.row["n_sf"]) == (ev.sf_truth, ev.n_sf)
    if ev.nmse_db_sf is not None:
        assert abs(pt.row["nmse_db_sf"] - ev.nmse_db_sf) < 0.01
    # Report by report: the same reconstructions as the in-process UE encoder + BS decoder.
    x, h_ref = _offline(link.bundles.digital, link.dataset, pt.sample_ids, "b128")
    np.testing.assert_allclose(pt.h_ad, h_ref, rtol=0, atol=1e-5 * np.abs(h_ref).max())


def test_same_seed_same_numbers_whatever_the_interleaving(clean_link: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """3 UEs over a noisy link: concurrent threads vs one UE after the other."""
    link = clean_link
    rs = _scenario(tmp_path, link, ues=3, reports=20, batch=6,
                   channel={"mode": "rayleigh", "snr_db": 2.0, "n_rx": 2, "crc": "crc6", "loss_prob": 0.1})

    def run(threads: bool) -> Any:
        if not threads:
            import csilink.runner as R

            monkeypatch.setattr(R, "ThreadPoolExecutor", _Sequential)
        return run_scenario(rs, **_addrs(link), write=False, keep_reconstructions=True)

    a, b = run(True), run(False)
    ra, rb = a.points[0], b.points[0]
    key = [(r.ue_id, r.seq, r.sample_id, r.status, r.reason, r.bit_errors) for r in ra.records]
    assert key == [(r.ue_id, r.seq, r.sample_id, r.status, r.reason, r.bit_errors) for r in rb.records]
    assert ra.row["dropped"] > 0 and ra.row["bit_errors"] > 0  # the link really was noisy
    np.testing.assert_allclose(ra.h_ad, rb.h_ad, rtol=1e-5, atol=1e-6)
    for k in ("nmse_db_ad", "sgcs", "ber", "ok", "dropped"):
        assert ra.row[k] == pytest.approx(rb.row[k], abs=1e-6), k


class _Sequential:
    """A stand-in for ThreadPoolExecutor that runs each UE's reports to the end in turn."""

    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def __enter__(self) -> _Sequential:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def map(self, fn: Any, items: Any) -> list[Any]:
        return [fn(i) for i in items]


def test_sweep_writes_outputs_and_accounts_every_report(clean_link: Any, tmp_path: Path) -> None:
    from csilink.cli import main

    link = clean_link
    scen = {
        "name": "sweep",
        "dataset": {"path": str(link.dataset), "split": "test"},
        "models": [{"ue": str(link.bundles.digital)},
                   {"ue": str(link.bundles.digital), "bs": str(link.bundles.other), "label": "mismatch"}],
        "reports": 10, "batch": 4, "ues": [1, 2], "seed": 1,
        "channel": {"mode": "awgn", "snr_db": [-4.0, 20.0], "n_rx": 1, "crc": "crc11"},
    }
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(scen))
    out = tmp_path / "out"
    a = _addrs(link)
    rc = main(["run", str(p), "--ue", a["ue"], "--channel", a["channel"], "--bs", a["bs"], "--out", str(out)])
    assert rc == 0
    rows = _csv(out / "results.csv")
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        assert int(r["ok"]) + int(r["dropped"]) + int(r["errors"]) == int(r["sent"]) == 10 * int(r["ues"])
    good = [r for r in rows if r["models"] != "mismatch"]
    bad = [r for r in rows if r["models"] == "mismatch"]
    # The BS has csinet-other loaded, not csinet-tiny: no report of the mismatched pair decodes
    # (at -4 dB most never reach the BS: the CRC drops them first).
    assert all(int(r["ok"]) == 0 and int(r["errors"]) + int(r["dropped"]) == int(r["sent"]) for r in bad)
    assert all(int(r["errors"]) == int(r["sent"]) for r in bad if float(r["snr_db"]) == 20.0)
    hi = [r for r in good if float(r["snr_db"]) == 20.0]
    lo = [r for r in good if float(r["snr_db"]) == -4.0]
    assert all(int(r["ok"]) == int(r["sent"]) and float(r["ber"]) == 0.0 for r in hi)
    assert all(int(r["dropped"]) > 0 and float(r["ber"]) > 0.01 for r in lo)
    reports = _csv(out / "reports.csv")
    assert len(reports) == sum(int(r["sent"]) for r in rows)
    assert len({(r["point"], r["ue_id"], r["seq"]) for r in reports}) == len(reports)
    doc = json.loads((out / "results.json").read_text())
    prov = doc["provenance"]
    assert prov["seed"] == 1 and prov["git_commit"] and "numpy" in prov["packages"]
    assert {b["model_id"] for b in prov["bundles"].values()} == {"csinet-tiny", "csinet-other"}
    errs = doc["points"][5]["error_reasons"]
    assert any("FAILED_PRECONDITION" in k and "csinet-tiny" in k for k in errs), errs
    for png in ("nmse_vs_snr.png", "nmse_vs_bits.png", "latency_cdf.png"):
        assert (out / png).stat().st_size > 1000


def test_analog_rates_and_drops_by_loss(clean_link: Any, tmp_path: Path) -> None:
    link = clean_link
    rs = _scenario(tmp_path, link, models=str(link.bundles.analog), rate=["k8", 16], reports=16,
                   channel={"mode": "rayleigh", "snr_db": 10.0, "n_rx": 4, "loss_prob": 0.25})
    res = run_scenario(rs, **_addrs(link), write=False)
    assert [r["rate"] for r in res.rows] == ["k8", "k16"]
    assert [r["payload"] for r in res.rows] == [8, 16]
    for pr in res.points:
        assert pr.row["dropped"] > 0 and set(pr.drop_reasons) == {"loss"}
        assert pr.row["ok"] + pr.row["dropped"] == 16 and np.isfinite(pr.row["effective_snr_db"])
        assert np.isnan(pr.row["ber"])  # analog: no bits on the air


def test_runner_assigns_unique_seqs_and_samples(link: Any, tmp_path: Path) -> None:
    rs = _scenario(tmp_path, link, ues=[2, 3], reports=5,
                   dataset={"path": str(link.dataset), "shuffle": True})
    r = Runner(rs, client=None)
    try:
        seen: set[tuple[int, int]] = set()
        for pt in rs.scenario.points():
            plan = r._plan(pt)
            assert sorted(plan) == list(range(pt.ues))
            for recs in plan.values():
                for rec in recs:
                    assert (rec.ue_id, rec.seq) not in seen
                    seen.add((rec.ue_id, rec.seq))
            ids = [rec.sample_id for u in plan for rec in plan[u]]
            assert len(set(ids)) == len(ids)  # enough samples: no UE repeats another's
        assert r._plan(rs.scenario.points()[0])[1][0].sample_id == r.ids[5]
    finally:
        r.truth.close()


def test_runner_never_imports_torch() -> None:
    """The compose runner runs in the UE image: no torch, no matplotlib there."""
    import subprocess
    import sys

    code = (
        "import sys; from csilink.scenario import load_scenario; import csilink.runner as R;"
        "import csilink.commands.run;"
        "rs = load_scenario('scenarios/default.yaml', check=False);"
        "bad = [m for m in ('torch', 'matplotlib', 'onnxruntime') if m in sys.modules];"
        "sys.exit(f'runner imported {bad}' if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stdout + r.stderr
