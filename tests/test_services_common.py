"""Server scaffolding (in-process): error mapping, limits, health, reflection, retries,
idempotence cache, dynamic batching, settings, hooks registry."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bs_service.batcher import DynamicBatcher, Job
from bs_service.config import BsSettings
from bs_service.hooks import Refiner, make_fusion, make_refiner, register_refiner
from bs_service.node import BsNode
from bs_service.servicer import BsServicer
from csilink.rpc import SERVICE_NAMES, bs_grpc, bs_pb, code_name, pb
from csilink.server_common import (
    ResultCache,
    RpcFailure,
    call_with_retry,
    create_server,
    load_settings,
    patch_settings,
)
from shared.errors import InvalidInput, NotFound


def _serve_bs(settings: BsSettings, port: int = 0, max_message_bytes: int = 1 << 20):
    servicer = BsServicer(BsNode(settings))
    hs = health.HealthServicer(experimental_non_blocking=True)
    server, bound = create_server(
        lambda s: bs_grpc.add_BsServiceServicer_to_server(servicer, s),
        [SERVICE_NAMES["bs"]],
        node="bs",
        port=port,
        max_message_bytes=max_message_bytes,
        health_servicer=hs,
    )
    return server, bound, servicer


@pytest.fixture()
def bs_server():
    server, port, servicer = _serve_bs(BsSettings(max_batch_reports=4, device="cpu"))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield bs_grpc.BsServiceStub(channel), channel
    channel.close()
    server.stop(0)
    servicer.close()


def _code(fn, *args) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, timeout=10)
    return ei.value.code(), ei.value.details()


def _healthy(channel: grpc.Channel) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    ok = [
        stub.Check(health_pb2.HealthCheckRequest(service=s), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
        for s in ("", SERVICE_NAMES["bs"])
    ]
    return all(ok)


def test_health_and_reflection(bs_server) -> None:
    _, channel = bs_server
    assert _healthy(channel)
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    resp = next(
        iter(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    )
    names = {s.name for s in resp.list_services_response.service}
    assert SERVICE_NAMES["bs"] in names and "grpc.health.v1.Health" in names


def test_request_level_errors_map_to_codes(bs_server) -> None:
    stub, channel = bs_server
    code, msg = _code(stub.LoadModel, pb.LoadModelRequest(path="/nonexistent/bundle"))
    assert code == grpc.StatusCode.NOT_FOUND and "/nonexistent/bundle" in msg
    code, msg = _code(stub.LoadModel, pb.LoadModelRequest(path=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = _code(stub.UnloadModel, pb.UnloadModelRequest(model_id="nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in msg
    code, msg = _code(stub.Configure, pb.ConfigureRequest(config_json="{bad json"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "JSON" in msg
    code, msg = _code(stub.Configure, pb.ConfigureRequest(config_json='{"max_batchh": 3}'))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "max_batchh" in msg
    code, msg = _code(stub.Configure, pb.ConfigureRequest(config_json='{"port": 1}'))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "port" in msg
    eff = json.loads(
        stub.Configure(pb.ConfigureRequest(config_json='{"max_batch": 8}'), timeout=5).effective_json
    )
    assert eff["max_batch"] == 8
    reports = [pb.CsiReport(ue_id=0, seq=i, model_id="m", model_version="1") for i in range(5)]
    code, msg = _code(stub.Decode, bs_pb.DecodeRequest(reports=reports))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 4" in msg
    assert _healthy(channel)


def test_oversize_message_is_resource_exhausted(bs_server) -> None:
    stub, channel = bs_server
    big = pb.CsiReport(ue_id=0, seq=0, model_id="m", model_version="1")
    big.bits.data = bytes(2 << 20)
    big.bits.n_bits = 8 * len(big.bits.data)
    code, _ = _code(stub.Decode, bs_pb.DecodeRequest(reports=[big]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _healthy(channel)


def test_unknown_model_is_per_report_failed_precondition(bs_server) -> None:
    stub, _ = bs_server
    r = pb.CsiReport(ue_id=0, seq=1, model_id="ghost", model_version="3", rate="b8")
    r.bits.data, r.bits.n_bits = b"\x00", 8
    res = stub.Decode(bs_pb.DecodeRequest(reports=[r]), timeout=5).results[0]
    assert code_name(res.status.code) == "FAILED_PRECONDITION" and res.status.stage == "bs"
    assert "'ghost' v3" in res.status.message and "has not loaded" in res.status.message


def test_tampered_bundle_refused(bs_server, tiny_bundles, tmp_path: Path) -> None:
    stub, channel = bs_server
    bad = tmp_path / "tampered"
    shutil.copytree(tiny_bundles.digital, bad)
    with open(bad / "decoder.safetensors", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    code, msg = _code(stub.LoadModel, pb.LoadModelRequest(path=str(bad)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "sha256" in msg
    assert _healthy(channel)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retry_gives_up_at_the_deadline_naming_the_hop() -> None:
    port = _free_port()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = bs_grpc.BsServiceStub(ch)
        t0 = time.monotonic()
        with pytest.raises(RpcFailure) as ei:
            call_with_retry(stub.ListModels, pb.ListModelsRequest(), timeout_s=0.6, what="test -> BS")
        dt = time.monotonic() - t0
    assert ei.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert "test -> BS" in str(ei.value)
    assert 0.3 < dt < 3.0


def test_retry_reaches_a_peer_that_starts_late() -> None:
    port = _free_port()
    holder = {}

    def start_later() -> None:
        time.sleep(0.4)
        holder["server"] = _serve_bs(BsSettings(device="cpu"), port=port)

    th = threading.Thread(target=start_later)
    th.start()
    try:
        with grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_reconnect_backoff_ms", 200)]
        ) as ch:
            resp = call_with_retry(
                bs_grpc.BsServiceStub(ch).ListModels, pb.ListModelsRequest(), timeout_s=10, what="test -> BS"
            )
        assert list(resp.models) == []
    finally:
        th.join()
        if "server" in holder:
            holder["server"][0].stop(0)


def test_result_cache() -> None:
    c = ResultCache(size=2)
    fp = ResultCache.fingerprint("a", b"payload")
    c.put((0, 1), fp, b"r1")
    assert c.get((0, 1), fp) == b"r1" and c.hits == 1
    assert c.get((0, 1), ResultCache.fingerprint("a", b"other")) is None  # same key, new report
    c.put((0, 2), fp, b"r2")
    c.put((0, 3), fp, b"r3")  # evicts (0, 1)
    assert c.get((0, 1), fp) is None and len(c) == 2


def test_batcher_merges_concurrent_requests_and_splits_at_max_batch() -> None:
    sizes: list[int] = []

    def run(jobs: list[Job]) -> None:
        sizes.append(len(jobs))
        for j in jobs:
            j.set_result(j.payload + 1)

    b = DynamicBatcher("t", run, max_batch=8, max_wait_s=0.3)
    try:
        a = [Job(i) for i in range(3)]
        c = [Job(10 + i) for i in range(3)]
        threads = [threading.Thread(target=b.submit, args=(jobs,)) for jobs in (a, c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [j.result(5) for j in a + c] == [1, 2, 3, 11, 12, 13]
        assert sizes == [6]  # two requests, one decoder batch
        assert all(j.timings == {} and j.started_ns >= j.enqueued_ns for j in a)
        big = [Job(i) for i in range(20)]
        b.submit(big)
        assert [j.result(5) for j in big] == list(range(1, 21))
        assert sizes[1:] == [8, 8, 4]
    finally:
        b.stop()


def test_greedy_batcher_runs_lone_requests_inline_and_merges_what_queued() -> None:
    """max_wait 0: a request that finds the decoder idle runs on its own thread (done when
    submit returns); requests arriving while a batch runs queue and form the next batch."""
    sizes: list[int] = []
    threads_seen: list[str] = []
    gate = threading.Event()

    def run(jobs: list[Job]) -> None:
        sizes.append(len(jobs))
        threads_seen.append(threading.current_thread().name)
        if jobs[0].payload == "hold":
            gate.wait(5)
        for j in jobs:
            j.set_result(j.payload)

    b = DynamicBatcher("t", run, max_batch=8, max_wait_s=0.0)
    try:
        lone = [Job("a")]
        b.submit(lone)
        assert lone[0].done() and lone[0].result(0) == "a"
        assert threads_seen == [threading.current_thread().name] and b.stats()["inline_batches"] == 1
        held = [Job("hold")]
        t = threading.Thread(target=b.submit, args=(held,), name="holder")
        t.start()
        while len(sizes) < 2:  # the holder's batch is running (inline, on its thread)
            time.sleep(0.01)
        later = [[Job(i) for i in range(2)], [Job(i) for i in range(3)]]
        for jobs in later:
            b.submit(jobs)  # decoder busy: queued, not run here
            assert not any(j.done() for j in jobs)
        gate.set()
        t.join(5)
        assert [j.result(5) for j in later[0] + later[1]] == [0, 1, 0, 1, 2]
        assert sizes == [1, 1, 5] and threads_seen[1] == "holder" and threads_seen[2].startswith("batcher")
    finally:
        gate.set()
        b.stop()


def test_batcher_errors_reach_every_job() -> None:
    def run(jobs: list[Job]) -> None:
        raise ValueError("decoder exploded")

    b = DynamicBatcher("t", run, max_batch=4, max_wait_s=0.0)
    jobs = [Job(i) for i in range(3)]
    b.submit(jobs)
    for j in jobs:
        with pytest.raises(ValueError, match="exploded"):
            j.result(5)
    b.stop()


def test_settings_from_yaml_section_and_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "node.yaml"
    cfg.write_text("bs:\n  max_batch: 32\n  max_wait_ms: 7\nue:\n  seed: 3\n")
    s = load_settings(BsSettings, cfg, "bs", {"max_wait_ms": 1.5, "device": None})
    assert (s.max_batch, s.max_wait_ms, s.device) == (32, 1.5, "auto")
    cfg.write_text("max_batch: [1\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_settings(BsSettings, cfg, "bs", {})
    with pytest.raises(InvalidInput, match="max_batch"):
        load_settings(BsSettings, None, "bs", {"max_batch": 0})
    with pytest.raises(InvalidInput, match="cannot change at run time"):
        patch_settings(BsSettings(), '{"host": "0.0.0.0"}', frozen=("host",))


def test_hooks_registry() -> None:
    @register_refiner("test-scale")
    class Scale(Refiner):
        def refine(self, h_ad, latents, side, snr_db):
            return h_ad * self.options.get("factor", 2.0)

    r = make_refiner({"name": "test-scale", "steps": 3, "factor": 0.5})
    assert r.steps == 3 and np.allclose(r.refine(np.ones(2, np.complex64), None, {}, None), 0.5)
    assert make_refiner(None).refine(np.ones(2), None, {}, None)[0] == 1  # no-op default
    assert make_fusion({"name": "none"}).fuse(np.zeros((1, 4)), {}, None).shape == (1, 4)
    with pytest.raises(NotFound, match="unknown refiner 'nope'; registered"):
        make_refiner({"name": "nope"})


def test_csilink_serve_runs_a_node_and_stops_gracefully(tmp_path: Path) -> None:
    """`csilink serve channel` binds port 0, writes its port, answers health, exits 0 on SIGTERM."""
    import signal
    import subprocess
    import sys

    port_file = tmp_path / "ch.port"
    cmd = [
        sys.executable,
        "-m",
        "csilink.cli",
        "serve",
        "channel",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--bs",
        "127.0.0.1:1",
        "--link",
        '{"mode": "rayleigh", "snr_db": 3}',
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not port_file.is_file():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.05)
        addr = f"127.0.0.1:{int(port_file.read_text())}"
        from csilink.client import LinkClient

        with LinkClient(None, addr) as c:
            c.wait_ready(30)
            eff = c.configure_channel()
            assert eff["default"]["mode"] == "rayleigh" and eff["default"]["snr_db"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopping" in out and "stopped" in out


def test_bad_flags_fail_at_start_naming_the_field() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "channel_emulator", "--port", "0", "--link", '{"snr_db": "loud"}'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "snr_db" in r.stderr


def test_settle_heap_collects_garbage_and_freezes_the_rest(link_dataset, tiny_bundles) -> None:
    """After a model load the long-lived heap is frozen (a full collection would walk it again
    on a request's thread), and garbage cycles present before are gone, not frozen with it."""
    import gc
    import weakref

    from csilink.server_common import settle_heap

    class Cyclic:
        pass

    gc.unfreeze()
    try:
        c = Cyclic()
        c.me = c
        ref = weakref.ref(c)
        del c
        settle_heap()
        assert ref() is None and gc.get_freeze_count() > 0
        gc.unfreeze()
        assert gc.get_freeze_count() == 0
        node = BsNode(BsSettings(datasets=[str(link_dataset)], device="cpu"))
        try:
            node.load_model(str(tiny_bundles.digital))
            assert gc.get_freeze_count() > 0  # the BS settles its heap after every load
        finally:
            node.close()
    finally:
        gc.unfreeze()
