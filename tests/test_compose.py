"""Opt-in: build the images and run docker-compose.yml in a real Docker engine.

Runs only with ``CSILINK_COMPOSE_TEST=1`` (``make compose-test``) and a Docker engine with the
Compose plugin (``deploy/docker-engine.sh`` sets one up); otherwise every test here is
skipped with the reason, at no cost to ``make test``. Containers use host networking
(``deploy/compose.host.yml``): the nodes listen on the host's 50051-50053, which must be free.

What it proves: the images build (CPU torch from the staged wheel, no torch in the UE and
channel images), the nodes become healthy under Docker's own health checks, stop gracefully on
SIGTERM as PID 1 (exit 0), and the one-shot runner prints the same results table under
``docker compose up`` as under the native ``csilink up --run``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAG = "CSILINK_COMPOSE_TEST"
PROJECT = "csilink-compose-test"
COMPOSE = ["docker", "compose", "-p", PROJECT, "-f", "docker-compose.yml", "-f", "deploy/compose.host.yml"]
NODES = {"ue": 50051, "channel": 50052, "bs": 50053}


def _skip_reason() -> str | None:
    if os.environ.get(FLAG) != "1":
        return f"opt-in: set {FLAG}=1 (make compose-test) to build the images and run docker compose"
    if shutil.which("docker") is None:
        return "no docker CLI (deploy/docker-engine.sh installs an engine and Compose)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers (start one: deploy/docker-engine.sh)"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "no docker compose plugin (deploy/docker-engine.sh installs it)"
    return None


_REASON = _skip_reason()
pytestmark = [pytest.mark.compose, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


def _run(cmd: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(_failure(cmd, proc))
    return proc


def _failure(cmd: list[str], proc: subprocess.CompletedProcess[str]) -> str:
    return f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def images() -> None:
    """Stage the CPU torch wheel and build the images (cached layers make reruns quick)."""
    _run(["bash", "deploy/stage-wheels.sh"], timeout=600)
    _run([*COMPOSE, "build"], timeout=3600)


@pytest.fixture()
def free_node_ports() -> None:
    busy = [f"{n}:{p}" for n, p in NODES.items() if _port_in_use(p)]
    if busy:
        pytest.fail(f"host ports in use, the host-network containers cannot bind them: {', '.join(busy)}")
    yield
    _run([*COMPOSE, "down", "--timeout", "20"], timeout=120, check=False)


def _docker_run(image: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return _run(["docker", "run", "--rm", "--network", "none", image, *cmd], timeout=120, check=False)


def test_images_split_torch(images: None) -> None:
    for node in ("ue", "channel"):
        proc = _docker_run(f"csilink-{node}:latest", "python", "-c", "import torch")
        assert proc.returncode != 0 and "No module named 'torch'" in proc.stderr, node
    proc = _docker_run("csilink-bs:latest", "python", "-c", "import torch; print(torch.__version__)")
    assert proc.stdout.strip() == "2.13.0+cpu", proc.stderr
    for node in NODES:
        proc = _docker_run(f"csilink-{node}:latest", "sh", "-c", "id -u && csilink --help")
        assert proc.returncode == 0 and proc.stdout.startswith("10001\n"), proc.stderr
        assert "serve" in proc.stdout and "up" in proc.stdout


def test_nodes_become_healthy_and_stop_gracefully(images: None, free_node_ports: None) -> None:
    from csilink.healthcheck import check

    _run([*COMPOSE, "up", "--detach", "--no-build", "--wait", "--wait-timeout", "240", *NODES], timeout=300)
    for node, port in NODES.items():
        assert check(f"127.0.0.1:{port}").ok, node
    _run([*COMPOSE, "stop", "--timeout", "20"], timeout=120)
    ps = _run([*COMPOSE, "ps", "--all", "--format", "json"], timeout=60).stdout
    rows = [json.loads(line) for line in ps.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):  # older Compose prints one JSON array
        rows = rows[0]
    codes = {r["Service"]: r["ExitCode"] for r in rows}
    assert codes == dict.fromkeys(NODES, 0), codes  # SIGTERM handled as PID 1: graceful exit 0


def results_table(text: str) -> list[list[str]]:
    """The rows of the runner's results table(s), minus columns that measure time.

    A row is a line of ``|``- or box-separated cells (rich and markdown tables both). Cells of
    columns whose header names a duration or a rate (latency, ms, s, /s, throughput, time)
    differ run to run and are dropped; everything else (NMSE, SGCS, BER, counts) is seeded and
    must match exactly.
    """
    rows = []
    for line in text.splitlines():
        if not re.search(r"[|│┃]", line):
            continue
        cells = [c.strip() for c in re.split(r"[|│┃]", line.strip().strip("|│┃"))]
        if all(re.fullmatch(r"[-:=━─╇╈┿ ]*", c) for c in cells):
            continue  # separator line
        rows.append(cells)
    if not rows:
        return rows
    timed = re.compile(r"(latenc|\bms\b|/s\b|\(s\)|throughput|time|wall|p50|p99|rps)", re.I)
    keep = [i for i, h in enumerate(rows[0]) if not timed.search(h)]
    return [[r[i] for i in keep if i < len(r)] for r in rows]


def test_runner_table_matches_native_launcher(images: None, free_node_ports: None, tmp_path: Path) -> None:
    # Only the runner's output, unprefixed: its stdout is the table, as `csilink up --run` prints it.
    cmd = [*COMPOSE, "up", "--no-build", "--attach", "runner", "--no-log-prefix",
           "--exit-code-from", "runner"]
    proc = _run(cmd, timeout=900, check=False)
    assert proc.returncode == 0, _failure(cmd, proc)
    in_docker = results_table(proc.stdout)
    assert len(in_docker) >= 2, f"no results table in the runner's output:\n{proc.stdout}"
    native = _run([sys.executable, "-m", "csilink.cli", "up", "--run", "--run-dir", str(tmp_path / "run")],
                  timeout=900)
    assert results_table(native.stdout) == in_docker
