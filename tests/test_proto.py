"""The csilink.v1 protocol: generated code, converters, bit order, status codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from csilink.rpc import (
    SERVICE_NAMES,
    bits_from_pb,
    bits_to_pb,
    code_name,
    complex_from_pb,
    complex_to_pb,
    copy_report_header,
    key_to_pb,
    payload_of,
    pb,
    set_payload,
    status_of,
    symbols_from_pb,
    symbols_to_pb,
    ue_pb,
)
from csilink.server_common import RpcFailure, status_for
from shared.errors import BundleError, DatasetError, InvalidInput, ModelMismatch, NotFound, TooLarge
from shared.wire import Bits, UniformCodec

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_is_current() -> None:
    r = subprocess.run(
        [sys.executable, "scripts/gen_proto.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_services_and_methods_exist() -> None:
    from csilink.rpc import bs_pb, ch_pb

    methods = {
        "UeService": {
            "Configure",
            "LoadModel",
            "SwapModel",
            "UnloadModel",
            "ListModels",
            "Measure",
            "SendReports",
            "SendReportStream",
            "GetStats",
            "AcquireMimoCsi",
            "ReceiveImage",
        },
        "ChannelEmulator": {"Configure", "Transmit", "GetStats", "ResetStats", "SoundMimo", "TransmitMimo"},
        "BsService": {
            "Configure", "LoadModel", "UnloadModel", "ListModels", "Decode", "GetStats", "SendImage"
        },
    }
    files = {"UeService": ue_pb, "ChannelEmulator": ch_pb, "BsService": bs_pb}
    for svc, names in methods.items():
        desc = files[svc].DESCRIPTOR.services_by_name[svc]
        assert {m.name for m in desc.methods} == names
        assert desc.full_name in SERVICE_NAMES.values()
    stream = ue_pb.DESCRIPTOR.services_by_name["UeService"].methods_by_name["SendReportStream"]
    assert stream.client_streaming and stream.server_streaming


def test_report_status_codes_match_grpc() -> None:
    for code in grpc.StatusCode:
        assert code_name(code.value[0]) == code.name
    assert status_of(grpc.StatusCode.FAILED_PRECONDITION, "m", "bs").code == 9


def test_bit_order_msb_first_on_the_wire() -> None:
    # 2-bit midrise levels 0,1,2,3 -> bits 00 01 10 11 -> one byte 0b00011011.
    bits = UniformCodec(bits=2).encode(np.array([-1.0, -0.2, 0.3, 1.0], np.float32))
    msg = bits_to_pb(bits)
    assert msg.data == bytes([0b00011011]) and msg.n_bits == 8
    # 3 values of 3 bits: 9 bits, the last byte zero-padded.
    bits = UniformCodec(bits=3).encode(np.array([1.0, -1.0, 1.0], np.float32))  # 111 000 111
    msg = bits_to_pb(bits)
    assert msg.n_bits == 9 and msg.data == bytes([0b11100011, 0b10000000])
    assert bits_from_pb(msg) == bits


def test_bitstream_validation() -> None:
    with pytest.raises(InvalidInput, match="needs 2 bytes, got 1"):
        bits_from_pb(pb.Bitstream(data=b"\x00", n_bits=9))
    with pytest.raises(InvalidInput, match="needs 1 bytes, got 2"):
        bits_from_pb(pb.Bitstream(data=b"\x00\x00", n_bits=5))
    with pytest.raises(InvalidInput, match="padding bits"):
        bits_from_pb(pb.Bitstream(data=b"\x01", n_bits=7))
    with pytest.raises(TooLarge, match="exceeds the limit of 8"):
        bits_from_pb(pb.Bitstream(data=b"\x00\x00", n_bits=16), max_bits=8)
    assert bits_from_pb(pb.Bitstream(data=b"\xfe", n_bits=7)) == Bits(b"\xfe", 7)


def test_symbols_roundtrip_and_validation() -> None:
    s = (np.arange(6) + 1j * np.arange(6)[::-1]).astype(np.complex64)
    back = symbols_from_pb(symbols_to_pb(s))
    assert back.dtype == np.complex64 and np.array_equal(back, s)
    with pytest.raises(InvalidInput, match="NaN or Inf"):
        symbols_from_pb(pb.AnalogLatent(re=[1.0, float("inf")], im=[0.0, 0.0]))
    with pytest.raises(InvalidInput, match="2 real parts but 1 imaginary"):
        symbols_from_pb(pb.AnalogLatent(re=[1.0, 2.0], im=[0.0]))
    with pytest.raises(InvalidInput, match="shape \\[3\\] does not match"):
        symbols_from_pb(pb.AnalogLatent(re=[1.0, 2.0], im=[0.0, 0.0], shape=[3]))
    with pytest.raises(InvalidInput, match="empty"):
        symbols_from_pb(pb.AnalogLatent())
    with pytest.raises(TooLarge):
        symbols_from_pb(symbols_to_pb(s), max_symbols=4)


def test_payload_oneof_and_header_copy() -> None:
    r = pb.CsiReport(ue_id=3, seq=7, model_id="m", model_version="2", rate="b64")
    with pytest.raises(InvalidInput, match="no payload"):
        payload_of(r)
    set_payload(r, Bits.from_array(np.ones(10, np.uint8)))
    assert r.WhichOneof("payload") == "bits" and payload_of(r).n_bits == 10
    set_payload(r, np.ones(4, np.complex64))
    assert r.WhichOneof("payload") == "analog" and payload_of(r).shape == (4,)
    r.world_key.CopyFrom(key_to_pb(("ds", "test", 42)))
    res = pb.ReportResult()
    copy_report_header(r, res)
    assert (res.ue_id, res.seq, res.model_version, res.payload_symbols, res.world_key.sample_id) == (
        3,
        7,
        "2",
        4,
        42,
    )


def test_complex_tensor_roundtrip() -> None:
    rng = np.random.default_rng(0)
    h = (rng.standard_normal((32, 32)) + 1j * rng.standard_normal((32, 32))).astype(np.complex64)
    msg = pb.ComplexTensor.FromString(complex_to_pb(h).SerializeToString())
    assert np.array_equal(complex_from_pb(msg), h)
    with pytest.raises(InvalidInput):
        complex_from_pb(pb.ComplexTensor(shape=[2, 2], data=bytes(8)))


def test_world_key_forms() -> None:
    assert key_to_pb(("d", "val", 5)).sample_id == 5
    assert key_to_pb(("d", "val", 5, 0)).split == "val"
    assert key_to_pb({"dataset_id": "d", "split": "test", "sample_id": 1}).dataset_id == "d"
    with pytest.raises(InvalidInput, match="world key"):
        key_to_pb(5)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (ModelMismatch("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (BundleError("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (DatasetError("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (TooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (RpcFailure(grpc.StatusCode.UNAVAILABLE, "x"), grpc.StatusCode.UNAVAILABLE),
        (ZeroDivisionError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_error_mapping(exc: BaseException, code: grpc.StatusCode) -> None:
    got, msg = status_for(exc)
    assert got == code and "x" in msg
