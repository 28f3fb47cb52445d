"""End to end through three separate processes: runner -> UE -> channel emulator -> BS.

Uses the session fixture ``link`` (tests/conftest.py): tiny real bundles (untrained csinet
and csinet-jscc, exported to ONNX int8 + safetensors), the sample (or synthetic) dataset, the
default link ideal (noiseless passthrough).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from csilink.client import LinkError
from shared.errors import InvalidInput

DIGITAL, ANALOG = "csinet-tiny", "csinet-jscc-tiny"


def _in_process(bundle_path, x_ad: np.ndarray, rate: str, side: dict | None = None):
    """What the UE and BS compute for ``x_ad``, in this process (no gRPC, no channel), the
    bundle's own BS refinement included; ``side``: the BS's side information by field."""
    from bs_service.hooks import make_refiner
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle
    from shared.ue_encoder import UeEncoder
    from shared.wire import from_spec

    b = Bundle.load(bundle_path)
    payloads = UeEncoder.from_bundle(b, threads=1).encode(x_ad, rate)
    m = b.manifest
    decoder = load_bs_decoder(b, "cpu")
    try:
        codec = from_spec(m.rate(rate).wire or m.ue.wire, b.path)
        z = np.stack([codec.decode(p, m.latent_size) for p in payloads])
    except InvalidInput:  # a wire kind only its family knows (type2): the decoder unpacks it
        z = np.stack([decoder.unpack(p) for p in payloads])
    side = {k: v for k, v in (side or {}).items() if k in m.bs.needs}
    h = decoder.decode_batch(z, side, None)
    return payloads, make_refiner(m.bs.refinement, b, decoder).refine(h, z, side, None)


def _truth(link, keys, field: str = "x_ad") -> np.ndarray:
    from shared.dataset import open_dataset

    with open_dataset(link.dataset) as ds:
        view = ds.bs_view() if field.startswith("y_") else ds.truth_view()
        sp = view.split(keys[0][1])
        return sp.read(field, np.array([sp.index_of(k[2]) for k in keys]))


def test_ue_module_never_imports_torch() -> None:
    code = (
        "import sys, ue_service, ue_service.node, ue_service.servicer, ue_service.__main__, csilink.client;"
        "bad = [m for m in ('torch', 'safetensors') if m in sys.modules];"
        "sys.exit(f'UE imported {bad}' if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_bitstream_path_equals_in_process_encoder_and_decoder(link) -> None:
    keys = link.keys(16)
    out = link.client.send(keys, model_id=DIGITAL, rate="b128", ue_id=1, seqs=range(100, 116))
    assert [o.code for o in out] == ["OK"] * 16, [o.message for o in out if not o.ok]
    o = out[0]
    assert (o.model_id, o.model_version, o.rate, o.payload_bits, o.target) == (
        DIGITAL,
        "1",
        "b128",
        128,
        "x/ad",
    )
    assert o.channel.applied and o.channel.mode == "ideal" and not o.channel.dropped
    assert [x.key[2] for x in out] == [k[2] for k in keys] and [x.seq for x in out] == list(range(100, 116))
    assert o.timings["bs_batch_size"] >= 1 and o.timings["bs_decode_ns"] > 0 and o.timings["ue_encode_ns"] > 0
    assert o.timestamps["ue_received_ns"] <= o.timestamps["bs_received_ns"] <= o.timestamps["bs_done_ns"]

    x = _truth(link, keys)
    payloads, h_ref = _in_process(link.bundles.digital, x, "b128")
    # The UE's bits are exactly the in-process int8 encoder's bits.
    measured = link.client.measure(keys, model_id=DIGITAL, rate="b128", ue_id=1, seqs=range(100, 116))
    assert [bytes(m.report.bits.data) for m in measured] == [p.data for p in payloads]
    h = np.stack([o.h_ad for o in out])
    assert h.shape == (16, 32, 32) and h.dtype == np.complex64
    rel = np.linalg.norm(h - h_ref) / np.linalg.norm(h_ref)
    assert rel < 1e-5, rel


@pytest.mark.parametrize("rate", ["k16", "k8"])
def test_analog_path_equals_in_process(link, rate: str) -> None:
    keys = link.keys(8, start=8)
    out = link.client.send(keys, model_id=ANALOG, rate=rate, ue_id=2, seqs=range(8))
    assert all(o.ok for o in out), [o.message for o in out]
    k = int(rate[1:])
    assert out[0].payload_symbols == k and out[0].payload_bits == 0 and out[0].channel.n_symbols_on_air == k
    assert np.isinf(out[0].channel.effective_snr_db)  # ideal link
    _, h_ref = _in_process(link.bundles.analog, _truth(link, keys), rate)
    h = np.stack([o.h_ad for o in out])
    assert np.linalg.norm(h - h_ref) / np.linalg.norm(h_ref) < 1e-5


def test_analog_over_awgn_reports_effective_snr(link) -> None:
    c = link.client
    c.configure_channel({"ideal": False, "mode": "awgn", "snr_db": 0.0, "n_rx": 4, "seed": 5}, ue_ids=[3])
    try:
        keys = link.keys(8)
        noisy = c.send(keys, model_id=ANALOG, rate="k16", ue_id=3, seqs=range(8))
        clean = c.send(keys, model_id=ANALOG, rate="k16", ue_id=2, seqs=range(8))  # UE 2: default (ideal)
        assert all(o.ok for o in noisy + clean)
        snr = np.array([o.channel.effective_snr_db for o in noisy])
        assert np.all(np.isfinite(snr)) and 0.0 < snr.mean() < 12.0  # ~6 dB MRC gain over 4 antennas
        assert all(o.channel.mode == "awgn" for o in noisy)
        assert not np.allclose(noisy[0].h_ad, clean[0].h_ad)
    finally:
        c.configure_channel(reset_links=True)


def test_crc_failures_are_dropped_counted_and_reported(link) -> None:
    c = link.client
    c.configure_channel(
        {"ideal": False, "mode": "awgn", "snr_db": 2.0, "n_rx": 1, "crc": "crc16", "seed": 1}, ue_ids=[7]
    )
    try:
        keys = link.keys(24)
        before = c.stats()["channel"]["detail"]["per_ue"].get("7", {}).get("counters", {})
        out = c.send(keys, model_id=DIGITAL, rate="b128", ue_id=7, seqs=range(24))
        assert len(out) == 24  # nothing silently lost
        dropped = [o for o in out if o.dropped]
        assert dropped, "at 2 dB on one antenna a 144-bit QPSK report should fail its CRC"
        for o in dropped:
            assert o.code == "DATA_LOSS" and o.stage == "channel" and o.channel.drop_reason == "crc"
            assert "dropped on the air: crc" in o.message and o.h_ad is None and o.channel.bit_errors > 0
        ok = [o for o in out if o.ok]
        assert all(o.channel.crc_ok and o.channel.n_bits_on_air == 144 for o in ok)
        assert len(ok) + len(dropped) == 24
        # A retry of the same reports is answered from the emulator's cache: same outcome, not
        # counted twice.
        again = c.send(keys, model_id=DIGITAL, rate="b128", ue_id=7, seqs=range(24))
        assert [o.code for o in again] == [o.code for o in out]
        assert [o.channel.bit_errors for o in again] == [o.channel.bit_errors for o in out]
        st = c.stats()["channel"]
        counters = st["detail"]["per_ue"]["7"]["counters"]
        assert counters["reports_digital"] - before.get("reports_digital", 0) == 24
        assert counters.get("dropped_crc", 0) - before.get("dropped_crc", 0) == len(dropped)
        assert st["counters"]["retries"] >= 24
    finally:
        c.configure_channel(reset_links=True)


def test_csi_rs_estimation_noise_is_keyed(link) -> None:
    c = link.client
    keys = link.keys(4)
    clean = c.measure(keys, model_id=ANALOG, ue_id=1, seqs=range(4))
    n1 = c.measure(keys, model_id=ANALOG, ue_id=1, seqs=range(4), csi_rs_snr_db=-5.0)
    n2 = c.measure(keys, model_id=ANALOG, ue_id=1, seqs=range(4), csi_rs_snr_db=-5.0)
    n3 = c.measure(keys, model_id=ANALOG, ue_id=1, seqs=range(10, 14), csi_rs_snr_db=-5.0)

    def sym(ms):
        return [np.array(m.report.analog.re) for m in ms]

    assert all(np.array_equal(a, b) for a, b in zip(sym(n1), sym(n2), strict=True))  # same key, same draw
    assert not np.allclose(sym(n1)[0], sym(clean)[0]) and not np.allclose(sym(n1)[0], sym(n3)[0])
    assert n1[0].report.csi_rs_snr_db == -5.0 and not clean[0].report.HasField("csi_rs_snr_db")


def test_model_swap_at_run_time(link) -> None:
    c = link.client
    keys = link.keys(4)
    info = c.swap_model(ANALOG)
    try:
        assert info.model_id == ANALOG and info.is_default
        out = c.send(keys, ue_id=4)  # no model named: the UE's default
        assert all(o.ok and o.model_id == ANALOG and o.payload_symbols == 16 for o in out)
        ue_models = {m.model_id: m for m in c.list_models("ue")}
        assert ue_models[ANALOG].is_default and not ue_models[DIGITAL].is_default
    finally:
        c.swap_model(DIGITAL)
    assert all(o.model_id == DIGITAL for o in c.send(keys, ue_id=4))


def test_streaming_batches_in_order(link) -> None:
    batches = [
        {"keys": link.keys(4, start=4 * i), "model_id": DIGITAL, "ue_id": 5, "seqs": range(4 * i, 4 * i + 4)}
        for i in range(3)
    ]
    got = list(link.client.send_stream(batches))
    assert len(got) == 3
    for i, res in enumerate(got):
        assert [o.seq for o in res] == list(range(4 * i, 4 * i + 4)) and all(o.ok for o in res)


def test_unknown_sample_fails_alone(link) -> None:
    keys = link.keys(3)
    keys.insert(1, (link.dataset_id, "test", 10**9))
    out = link.client.send(keys, model_id=DIGITAL, ue_id=6)
    assert [o.code for o in out] == ["OK", "NOT_FOUND", "OK", "OK"]
    assert out[1].stage == "ue" and str(10**9) in out[1].message


def test_nodes_report_stats_and_the_ue_has_no_torch(link) -> None:
    st = link.client.stats()
    assert set(st) == {"ue", "channel", "bs"}
    assert st["ue"]["counters"]["reports_ok"] > 0 and st["bs"]["counters"]["reports_ok"] > 0
    assert st["ue"]["detail"]["torch_loaded"] is False  # after encoding many reports
    assert st["channel"]["detail"]["torch_loaded"] is False
    assert st["bs"]["detail"]["models"][DIGITAL]["batcher"]["batches"] > 0
    assert "SendReports" in st["ue"]["detail"]["rpc"]


def test_bs_restart_is_survived_by_retries(link) -> None:
    """SIGTERM the BS (graceful: exit 0), start it again on the same port; a request sent while
    it is down succeeds once it is back (UNAVAILABLE retried with backoff within the deadline)."""
    from conftest import start_node, stop_node

    c = link.client
    keys = link.keys(4)
    assert stop_node(link.bs) == 0
    result: dict = {}

    def send() -> None:
        try:
            result["out"] = c.send(keys, model_id=DIGITAL, ue_id=8, timeout_s=90)
        except LinkError as exc:
            result["err"] = exc

    th = threading.Thread(target=send)
    th.start()
    time.sleep(0.5)
    start_node(link.bs, port=link.bs.port)
    th.join(120)
    assert "err" not in result, result.get("err")
    assert [o.code for o in result["out"]] == ["OK"] * 4
    assert set(c.health().values()) == {"SERVING"}


def _trained_bundles() -> list:
    """Shipped bundles (bundles/) and the models engineer's dev bundles (runs/dev-bundles/)."""
    from pathlib import Path

    from shared.bundle import Bundle, find_bundles

    root = Path(__file__).resolve().parents[1]
    out = []
    for p in [*find_bundles(root / "bundles"), *find_bundles(root / "runs" / "dev-bundles")]:
        try:
            b = Bundle.load(p)
        except Exception:  # a bundle being written right now: not this test's business
            continue
        out.append(b)
    # One bundle per family is enough to prove the path; keep the test fast.
    return list({b.family: b for b in reversed(out)}.values())


def test_trained_bundles_through_the_link(link) -> None:
    """Each shipped (or dev) bundle loaded at run time over LoadModel on the UE and the BS,
    then one batch through the link, equal to the in-process UE + BS on the same samples."""
    bundles = _trained_bundles()
    if not bundles:
        pytest.skip(
            "no trained bundle yet: nothing in bundles/ or runs/dev-bundles/ (tiny bundles cover the link)"
        )
    c = link.client
    keys = link.keys(8)
    x, y = _truth(link, keys), _truth(link, keys, "y_ad")
    # A bundle for another world (e.g. the ray-traced SF codec) cannot read this dataset; its
    # family's own tests run it through the link on its sample.
    bundles = [b for b in bundles if list(b.manifest.input_shape) == list(x.shape[1:])]
    assert bundles, "no shipped bundle takes this dataset's AD shape"
    for b in bundles:
        loaded = c.load_model(str(b.path), make_default=False)
        assert loaded["ue"].version == loaded["bs"].version == b.version
        try:
            rate = b.manifest.rates[0].name
            out = c.send(keys, model_id=b.model_id, rate=rate, ue_id=11, seqs=range(8))
            assert all(o.ok for o in out), [o.message for o in out]
            _, h_ref = _in_process(b.path, x, rate, {"y_ad": y})
            h = np.stack([o.h_ad for o in out])
            assert np.linalg.norm(h - h_ref) / np.linalg.norm(h_ref) < 1e-4, b.model_id
        finally:
            for node in ("ue", "bs"):
                c.unload_model(b.model_id, node)


def test_client_assigns_fresh_sequence_numbers(link) -> None:
    a = link.client.send(link.keys(2), model_id=DIGITAL, ue_id=12)
    b = link.client.send(link.keys(2), model_id=DIGITAL, ue_id=12)
    assert [o.seq for o in a + b] == [a[0].seq + i for i in range(4)]
