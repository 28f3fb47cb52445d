"""Bad input against the running services (separate processes): every case gets a clear
status and message, the rest of its batch is unharmed, and every node still answers its
health check afterwards."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from csilink.client import LinkError
from csilink.rpc import pb, set_payload, ue_pb
from shared.wire import Bits

DIGITAL, ANALOG = "csinet-tiny", "csinet-jscc-tiny"


def _report(
    link, seq: int, model: str = DIGITAL, version: str = "1", rate: str = "b128", payload=None
) -> object:
    r = pb.CsiReport(ue_id=9, seq=seq, model_id=model, model_version=version, rate=rate)
    r.world_key.CopyFrom(pb.WorldKey(dataset_id=link.dataset_id, split="test", sample_id=link.keys(1)[0][2]))
    if payload is not None:
        set_payload(r, payload)
    return r


def _good(link, seq: int) -> object:
    return link.client.measure(link.keys(1), model_id=DIGITAL, ue_id=9, seqs=[seq])[0].report


@pytest.fixture(autouse=True)
def _still_healthy(link):
    yield
    assert set(link.client.health().values()) == {"SERVING"}


@pytest.mark.parametrize("node", ["channel", "bs"])
def test_malformed_payloads_get_per_report_statuses(link, node: str) -> None:
    truncated = _report(link, 1)
    truncated.bits.data, truncated.bits.n_bits = bytes(10), 128  # 10 of 16 bytes
    padding = _report(link, 2)
    padding.bits.data, padding.bits.n_bits = b"\x00" * 15 + b"\x01", 127  # a stray padding bit
    nan = _report(link, 3, ANALOG, rate="k16", payload=np.full(16, np.nan + 0j, np.complex64))
    inf = _report(link, 4, ANALOG, rate="k16")
    inf.analog.re.extend([np.inf] * 16)
    inf.analog.im.extend([0.0] * 16)
    empty = _report(link, 5)  # no payload at all
    shape = _report(link, 6, ANALOG, rate="k16")
    shape.analog.re.extend([1.0] * 16)
    shape.analog.im.extend([0.0] * 16)
    shape.analog.shape.extend([4, 5])
    good = _good(link, 7)
    reports = [truncated, padding, nan, inf, empty, shape, good]
    call = link.client.transmit if node == "channel" else link.client.decode
    out = call(reports)
    want = [
        ("INVALID_ARGUMENT", "truncated or padded bitstream"),
        ("INVALID_ARGUMENT", "padding bits"),
        ("INVALID_ARGUMENT", "NaN or Inf"),
        ("INVALID_ARGUMENT", "NaN or Inf"),
        ("INVALID_ARGUMENT", "no payload"),
        ("INVALID_ARGUMENT", "does not match"),
        ("OK", ""),
    ]
    for o, (code, text) in zip(out, want, strict=True):
        assert o.code == code and text in o.message, (o.code, o.message)
    assert out[0].stage == node and out[-1].h_ad is not None


def test_payload_that_does_not_fit_the_model(link) -> None:
    wrong_bits = _report(link, 11, payload=Bits.from_array(np.zeros(120, np.uint8)))
    bits_to_analog = _report(link, 12, ANALOG, rate="k16", payload=Bits.from_array(np.zeros(32, np.uint8)))
    symbols_to_digital = _report(link, 13, payload=np.ones(64, np.complex64))
    wrong_k = _report(link, 14, ANALOG, rate="k16", payload=np.ones(8, np.complex64))
    bad_rate = _report(link, 15, rate="b999", payload=Bits.from_array(np.zeros(128, np.uint8)))
    out = link.client.decode([wrong_bits, bits_to_analog, symbols_to_digital, wrong_k, bad_rate])
    assert [o.code for o in out] == ["INVALID_ARGUMENT"] * 4 + ["NOT_FOUND"]
    assert "120 bits, model csinet-tiny sends 128" in out[0].message
    assert "sends analog symbols, got a bitstream" in out[1].message
    assert "sends a bitstream, got analog symbols" in out[2].message
    assert "8 symbols, model csinet-jscc-tiny sends 16" in out[3].message
    assert "no rate 'b999'" in out[4].message


def test_oversize_payload_is_resource_exhausted(link) -> None:
    big = _report(link, 21, payload=Bits.from_array(np.zeros((1 << 20) + 8, np.uint8)))  # over max_bits
    out = link.client.transmit([big, _good(link, 22)])
    assert out[0].code == "RESOURCE_EXHAUSTED" and "exceeds" in out[0].message
    assert out[1].ok


def test_request_level_errors(link) -> None:
    c = link.client
    with pytest.raises(LinkError) as ei:
        c.send(link.keys(2), model_id="no-such-model")
    assert ei.value.code == grpc.StatusCode.NOT_FOUND and "no-such-model" in str(ei.value)
    with pytest.raises(LinkError) as ei:
        c.send(link.keys(2), model_id=DIGITAL, rate="b7")
    assert ei.value.code == grpc.StatusCode.NOT_FOUND and "'b7'" in str(ei.value)
    req = ue_pb.SendReportsRequest(model_id=DIGITAL)
    for i in range(4097):
        req.items.add(world_key=pb.WorldKey(split="test", sample_id=0), ue_id=0, seq=i)
    with pytest.raises(LinkError) as ei:
        c._call("ue", "SendReports", req)
    assert ei.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "4096" in str(ei.value)
    with pytest.raises(LinkError) as ei:
        c.configure_channel({"mode": "warp-drive"})
    assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT and "mode" in str(ei.value)
    with pytest.raises(LinkError) as ei:
        c.load_model("/does/not/exist", nodes=("bs",))
    assert ei.value.code == grpc.StatusCode.NOT_FOUND
    for node in ("ue", "bs"):  # a bad dataset path fails the call and changes nothing
        with pytest.raises(LinkError) as ei:
            c.configure(node, {"datasets": ["/no/such/file.h5"]})
        assert ei.value.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
        assert "/no/such/file.h5" in str(ei.value)
    assert all(o.ok for o in c.send(link.keys(2), model_id=DIGITAL, ue_id=9))


def test_ue_bs_model_mismatch(link) -> None:
    """The UE runs csinet-tiny v2 (or a model the BS never loaded): the BS refuses each report
    with FAILED_PRECONDITION naming both sides, and nothing else breaks."""
    c = link.client
    keys = link.keys(3)
    c.load_model(str(link.bundles.digital_v2), nodes=("ue",))  # replaces v1 on the UE only
    try:
        out = c.send(keys, model_id=DIGITAL, ue_id=9)
        assert [o.code for o in out] == ["FAILED_PRECONDITION"] * 3 and out[0].stage == "bs"
        assert "'csinet-tiny' v2" in out[0].message and "'csinet-tiny' v1 loaded" in out[0].message
    finally:
        c.load_model(str(link.bundles.digital), nodes=("ue",))
    c.load_model(str(link.bundles.other), nodes=("ue",), make_default=False)
    try:
        out = c.send(keys, model_id="csinet-other", ue_id=9)
        assert {o.code for o in out} == {"FAILED_PRECONDITION"}
        assert "'csinet-other' v1, which the BS has not loaded" in out[0].message
        assert "csinet-tiny v1" in out[0].message  # says what it has
    finally:
        c.unload_model("csinet-other", "ue")
    assert all(o.ok for o in c.send(keys, model_id=DIGITAL, ue_id=9))
