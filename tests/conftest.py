"""Shared fixtures: a dataset, small real bundles, and the three link services as SEPARATE
PROCESSES on 127.0.0.1 (port 0 + ``--port-file``), health-checked, torn down with SIGTERM.

* ``link_dataset``: the committed sample (``data/sample/cdl-c-fdd-sample.h5``) when present,
  else a small synthetic file in the csilink schema (``training.synthetic``).
* ``tiny_bundles``: real bundles exported by ``training.export.export_run`` from tiny UNTRAINED
  models (csinet: 4-bit uniform bitstream; csinet-jscc: analog symbols, two rates), plus a
  csinet copy at version 2 and one under another model id, for the mismatch tests.
* ``link``: BS, channel emulator and UE processes (``python -m bs_service`` etc.) with those
  bundles and the dataset, plus a connected :class:`csilink.client.LinkClient`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import csilink  # noqa: F401 - first: sets GRPC_ENABLE_FORK_SUPPORT before any test imports grpc

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "cdl-c-fdd-sample.h5"


# --------------------------------------------------------------------------- data and bundles


@pytest.fixture(scope="session")
def link_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset file the services can read (the committed sample, else synthetic)."""
    if SAMPLE.is_file():
        return SAMPLE
    from training.synthetic import make_dataset

    return make_dataset(
        tmp_path_factory.mktemp("data") / "synthetic.h5", n_train=128, n_val=32, n_test=64, seed=3
    )


def build_tiny_bundle(
    family: str,
    model_cfg: dict[str, Any],
    dataset: Path,
    out: Path,
    model_id: str,
    version: str = "1",
    seed: int = 0,
) -> Path:
    """Export an untrained ``family`` model as a real bundle (ONNX int8 + safetensors)."""
    import torch

    from models.registry import get_family
    from training import data as ds
    from training.export import export_run
    from training.loop import TRAIN_DEFAULTS

    fam = get_family(family)
    mcfg = fam.full_config(model_cfg)
    run = out.parent / f"run-{model_id}-{version}"
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = fam.build_model(mcfg)
    torch.save({"model": model.state_dict()}, run / "best.pt")
    scale = ds.normalization_scale(ds.load_field(dataset, "train", "x_ad"))
    (run / "config.json").write_text(
        json.dumps(
            {
                "family": family,
                "model": mcfg,
                "train": TRAIN_DEFAULTS,
                "seed": seed,
                "model_id": model_id,
                "description": "tiny untrained test model",
                "dataset": str(dataset),
                "dataset_id": ds.info(dataset)["dataset_id"],
            }
        )
    )
    (run / "run.json").write_text(
        json.dumps(
            {
                "normalization": {"scale": scale, "method": "global-rms", "computed_on": "train"},
                "samples_seen": 0,
                "wall_minutes": 0.0,
            }
        )
    )
    export_run(run, out, model_id=model_id, version=version, calib_n=32, dataset=dataset)
    return out


def rewrite_bundle(src: Path, dst: Path, **changes: Any) -> Path:
    """Copy a bundle and change manifest fields (e.g. version, model_id); re-hashed."""
    from shared.bundle import write_bundle

    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest.update(changes)
    write_bundle(dst, manifest)
    return dst


@dataclass
class TinyBundles:
    digital: Path  # csinet-tiny v1
    analog: Path  # csinet-jscc-tiny v1, rates k16, k8
    digital_v2: Path  # csinet-tiny v2 (same weights)
    other: Path  # csinet-other v1 (another model id)


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory: pytest.TempPathFactory, link_dataset: Path) -> TinyBundles:
    root = tmp_path_factory.mktemp("bundles")
    digital = build_tiny_bundle(
        "csinet",
        {"latent": 32, "bits": 4, "width": 8, "blocks": 1},
        link_dataset,
        root / "csinet-tiny",
        "csinet-tiny",
    )
    analog = build_tiny_bundle(
        "csinet-jscc",
        {"symbols": 16, "prefixes": [8, 16], "width": 8, "blocks": 1},
        link_dataset,
        root / "csinet-jscc-tiny",
        "csinet-jscc-tiny",
    )
    v2 = rewrite_bundle(digital, root / "csinet-tiny-v2", version="2")
    other = rewrite_bundle(digital, root / "csinet-other", model_id="csinet-other")
    return TinyBundles(digital, analog, v2, other)


# --------------------------------------------------------------------------- processes


@dataclass
class Node:
    name: str
    module: str
    args: list[str]
    log: Path
    port_file: Path
    proc: subprocess.Popen | None = None
    port: int = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_node(node: Node, port: int = 0, timeout_s: float = 120.0) -> Node:
    """Start ``python -m <module>`` on 127.0.0.1:``port`` and wait for its port file."""
    node.port_file.unlink(missing_ok=True)
    logf = open(node.log, "ab")  # noqa: SIM115 - handed to the child
    node.proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            node.module,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--port-file",
            str(node.port_file),
            *node.args,
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=_env(),
    )
    logf.close()
    deadline = time.monotonic() + timeout_s
    while not node.port_file.is_file():
        if node.proc.poll() is not None:
            raise RuntimeError(
                f"{node.name} exited with {node.proc.returncode}:\n{node.log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            stop_node(node)
            raise RuntimeError(f"{node.name} did not start in {timeout_s} s:\n{node.log.read_text()[-3000:]}")
        time.sleep(0.05)
    node.port = int(node.port_file.read_text())
    return node


def stop_node(node: Node, grace_s: float = 15.0) -> int | None:
    """SIGTERM, wait for the graceful stop; SIGKILL only when it hangs. Returns the exit code."""
    p = node.proc
    if p is None or p.poll() is not None:
        return None if p is None else p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(grace_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


@dataclass
class LinkStack:
    bs: Node
    channel: Node
    ue: Node
    client: Any
    bundles: TinyBundles
    dataset: Path
    dataset_id: str
    nodes: dict[str, Node] = field(default_factory=dict)

    def keys(self, n: int, split: str = "test", start: int = 0) -> list[tuple[str, str, int]]:
        """World keys of the first ``n`` samples of ``split`` (by the file's sample ids)."""
        import h5py

        with h5py.File(self.dataset, "r") as f:
            ids = f[split]["sample_id"][start : start + n]
        return [(self.dataset_id, split, int(i)) for i in ids]


@pytest.fixture(scope="session")
def link(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_bundles: TinyBundles,
    link_dataset: Path,
) -> Iterator[LinkStack]:
    """The three services as separate processes (BS -> channel -> UE), and a client."""
    from csilink.client import LinkClient
    from training import data as ds

    tmp = tmp_path_factory.mktemp("link")
    b = tiny_bundles
    bs = Node(
        "bs",
        "bs_service",
        [
            "--dataset",
            str(link_dataset),
            "--bundle",
            str(b.digital),
            "--bundle",
            str(b.analog),
            "--device",
            "cpu",
            "--max-wait-ms",
            "5",
        ],
        tmp / "bs.log",
        tmp / "bs.port",
    )
    ch = Node("channel", "channel_emulator", ["--ideal"], tmp / "channel.log", tmp / "channel.port")
    ue = Node(
        "ue",
        "ue_service",
        ["--dataset", str(link_dataset), "--bundle", str(b.digital), "--bundle", str(b.analog)],
        tmp / "ue.log",
        tmp / "ue.port",
    )
    started: list[Node] = []
    try:
        started.append(start_node(bs))
        ch.args += ["--bs", bs.addr]
        started.append(start_node(ch))
        ue.args += ["--channel", ch.addr]
        started.append(start_node(ue))
        client = LinkClient(ue.addr, ch.addr, bs.addr, timeout_s=60)
        client.wait_ready(60)
        stack = LinkStack(
            bs,
            ch,
            ue,
            client,
            b,
            link_dataset,
            str(ds.info(link_dataset)["dataset_id"]),
            {"bs": bs, "channel": ch, "ue": ue},
        )
        yield stack
        client.close()
    finally:
        codes = {n.name: stop_node(n) for n in reversed(started)}
        bad = {k: v for k, v in codes.items() if v not in (0, None)}
        if bad:
            logs = "\n".join(f"--- {n.name}\n{n.log.read_text()[-2000:]}" for n in started)
            raise RuntimeError(f"services did not stop cleanly: {bad}\n{logs}")
