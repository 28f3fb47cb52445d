"""Link faults during a scenario: the BS, then the channel emulator, is killed (SIGKILL) and
restarted on the same port while the runner is sending. The run must complete with every
report accounted for exactly once (ok + dropped + error == sent, no (ue, seq) twice), and since
retries reuse the seqs and the runner sets a restarted node up again (models, link config),
with the very same outcomes and reconstructions as a run without faults.

The stack here is this module's own (the session ``link`` must not be killed under other
tests): three processes started with tests/conftest.py's helpers; the BS starts with NO
bundle, so after a restart only the runner's set-up makes it decode again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from csilink.client import LinkClient
from csilink.runner import Runner
from csilink.scenario import ResolvedScenario, load_scenario
from tests.conftest import Node, start_node, stop_node


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, link_dataset: Path) -> Iterator[dict[str, Node]]:
    tmp = tmp_path_factory.mktemp("faults")
    bs = Node("bs", "bs_service", ["--dataset", str(link_dataset), "--device", "cpu", "--max-wait-ms", "1"],
              tmp / "bs.log", tmp / "bs.port")
    ch = Node("channel", "channel_emulator", [], tmp / "channel.log", tmp / "channel.port")
    ue = Node("ue", "ue_service", ["--dataset", str(link_dataset)], tmp / "ue.log", tmp / "ue.port")
    started: list[Node] = []
    try:
        started.append(start_node(bs))
        ch.args += ["--bs", bs.addr]
        started.append(start_node(ch))
        ue.args += ["--channel", ch.addr]
        started.append(start_node(ue))
        yield {"bs": bs, "channel": ch, "ue": ue}
    finally:
        for n in reversed(started):
            stop_node(n)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, link_dataset: Path,
             tiny_bundles: Any) -> ResolvedScenario:
    doc = {
        "name": "faults",
        "dataset": {"path": str(link_dataset), "split": "test"},
        "models": {"ue": str(tiny_bundles.digital)},
        "ues": 2, "reports": 96, "batch": 4, "seed": 11, "retry_s": 120,
        "channel": {"mode": "awgn", "snr_db": 9.5, "n_rx": 1, "crc": "crc11", "loss_prob": 0.05},
    }
    p = tmp_path_factory.mktemp("faults-scenario") / "faults.yaml"
    p.write_text(yaml.safe_dump(doc))
    rs = load_scenario(p)
    assert isinstance(rs, ResolvedScenario)
    return rs


def _client(stack: dict[str, Node]) -> LinkClient:
    c = LinkClient(stack["ue"].addr, stack["channel"].addr, stack["bs"].addr, timeout_s=20)
    c.wait_ready(60)
    return c


def _run(rs: ResolvedScenario, stack: dict[str, Node], kill: str | None = None) -> Any:
    """Run the scenario; with ``kill``, SIGKILL that node once a quarter of the reports are
    done and restart it on the same port."""
    done = [0]
    quarter = threading.Event()
    total = rs.scenario.reports * 2

    def progress(n: int) -> None:
        done[0] += n
        if done[0] >= total // 4:
            quarter.set()

    client = _client(stack)
    runner = Runner(rs, client, on_progress=progress, keep_reconstructions=True, retry_base_s=0.05)
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.setdefault("points", runner.run()), daemon=True)
    t.start()
    restarted_after = None
    if kill is not None:
        assert quarter.wait(120), "the run never got a quarter of the way"
        node = stack[kill]
        port = node.port
        node.proc.kill()
        node.proc.wait()
        t0 = time.monotonic()
        start_node(node, port=port)
        restarted_after = time.monotonic() - t0
        early = done[0] >= total
    t.join(300)
    assert not t.is_alive(), "the run did not finish"
    client.close()
    (pt,) = out["points"]
    if kill is not None:
        assert not early, f"the run finished before the node came back: {pt.row}, {pt.error_reasons}"
    return pt, restarted_after


@pytest.fixture(scope="module")
def reference(scenario: ResolvedScenario, stack: dict[str, Node]) -> Any:
    pt, _ = _run(scenario, stack)
    return pt


def _accounted(pt: Any, sent: int) -> None:
    row = pt.row
    assert row["sent"] == sent == len(pt.records)
    assert row["ok"] + row["dropped"] + row["errors"] == sent
    keys = [(r.ue_id, r.seq) for r in pt.records]
    assert len(set(keys)) == sent  # none counted twice
    assert all(r.status in ("ok", "dropped", "error") for r in pt.records)


@pytest.mark.parametrize("node", ["bs", "channel"])
def test_node_killed_and_restarted_mid_scenario(node: str, scenario: ResolvedScenario,
                                                stack: dict[str, Node], reference: Any) -> None:
    sent = scenario.scenario.reports * 2
    _accounted(reference, sent)
    assert reference.row["errors"] == 0 and 0 < reference.row["dropped"] < sent  # crc + loss drops
    pt, _ = _run(scenario, stack, kill=node)
    _accounted(pt, sent)
    assert pt.row["retries"] > 0  # the outage was seen and ridden out
    assert pt.row["errors"] == 0, pt.error_reasons
    # Same seqs on retry + link set up again = the same outcome for every report.
    got = [(r.ue_id, r.seq, r.sample_id, r.status, r.reason, r.bit_errors) for r in pt.records]
    want = [(r.ue_id, r.seq, r.sample_id, r.status, r.reason, r.bit_errors) for r in reference.records]
    assert got == want
    np.testing.assert_allclose(pt.h_ad, reference.h_ad, rtol=1e-5, atol=1e-6)
    assert pt.row["nmse_db_ad"] == pytest.approx(reference.row["nmse_db_ad"], abs=1e-6)
