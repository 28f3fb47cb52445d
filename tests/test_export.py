"""training.export: ONNX fp32 == PyTorch encoder, int8 close to fp32, safetensors decoder, manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shared.bundle import Bundle  # noqa: E402
from shared.metrics import nmse_db  # noqa: E402
from shared.ue_encoder import UeEncoder  # noqa: E402

# fp32 ONNX vs PyTorch on the continuous latent: float32 re-association only.
ONNX_FP32_ATOL = 1e-4
# int8 encoder vs fp32 encoder, end to end through the wire and the decoder.
INT8_MAX_DB = 0.3


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    from training.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("export"), "csinet", seconds=3.0)


@pytest.fixture(scope="module")
def test_x(exported: Bundle) -> np.ndarray:
    from training.data import load_field

    return load_field(exported.path.parent.parent / "tiny.h5", "test", "x_ad")


def test_onnx_fp32_matches_pytorch(exported: Bundle, test_x: np.ndarray) -> None:
    from training.export import load_run

    _, _, model = load_run(exported.path.parent.parent / f"run-{exported.model_id}")
    enc = UeEncoder.from_bundle(exported, fp32=True)
    x = test_x * np.float32(exported.manifest.normalization["scale"])
    with torch.no_grad():
        want = model.encoder(torch.from_numpy(np.stack([x.real, x.imag], 1).astype(np.float32))).numpy()
    np.testing.assert_allclose(enc.latents(test_x), want, atol=ONNX_FP32_ATOL, rtol=0)


def test_int8_within_tolerance_of_fp32(exported: Bundle, test_x: np.ndarray) -> None:
    from models.registry import load_bs_decoder

    dec = load_bs_decoder(exported, "cpu")
    res = {}
    for fp32 in (True, False):
        enc = UeEncoder.from_bundle(exported, fp32=fp32)
        codec = enc.codec(None)
        lat = np.stack([codec.decode(r, exported.manifest.latent_size) for r in enc.encode(test_x)])
        res[fp32] = nmse_db(test_x, dec.decode_batch(lat, {}, None))
    assert abs(res[False] - res[True]) < INT8_MAX_DB, res


def test_int8_graph_is_quantized(exported: Bundle) -> None:
    import onnx

    g = onnx.load(str(exported.path / exported.manifest.ue.encoder)).graph
    ops = {n.op_type for n in g.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(i.data_type == onnx.TensorProto.INT8 for i in g.initializer)


def test_bundle_contents_and_manifest(exported: Bundle) -> None:
    m = exported.manifest
    files = sorted(p.name for p in exported.path.iterdir())
    assert files == ["decoder.safetensors", "encoder.fp32.onnx", "encoder.int8.onnx", "manifest.json"]
    raw = json.loads((exported.path / "manifest.json").read_text())
    assert raw["format"] == "csilink-bundle/1" and raw["family"] == "csinet"
    assert m.rates[0].bits == m.latent_size * m.ue.wire["bits"]
    assert m.normalization["scale"] > 0 and m.normalization["computed_on"] == "train"
    for key in ("dataset_id", "samples_seen", "budget_minutes", "seed", "git_commit_exported"):
        assert m.training.get(key) is not None, key
    from safetensors.numpy import load_file  # the decoder is plain tensors, loadable without torch

    tensors = load_file(str(exported.path / "decoder.safetensors"))
    assert all(v.dtype == np.float32 for k, v in tensors.items() if not k.endswith("num_batches_tracked"))


def test_export_refuses_to_overwrite(exported: Bundle) -> None:
    from shared.errors import InvalidInput
    from training.export import export_run

    with pytest.raises(InvalidInput, match="not empty"):
        export_run(exported.path.parent.parent / f"run-{exported.model_id}", exported.path)


def test_export_of_missing_run(tmp_path) -> None:  # noqa: ANN001
    from shared.errors import NotFound
    from training.export import export_run

    with pytest.raises(NotFound, match="not a training run"):
        export_run(tmp_path / "nope", tmp_path / "out")


def test_bs_decoder_refuses_bad_latents(exported: Bundle) -> None:
    from models.registry import load_bs_decoder
    from shared.errors import InvalidInput

    dec = load_bs_decoder(exported, "cpu")
    n = exported.manifest.latent_size
    out = dec.decode_batch(np.zeros((3, n), np.float32), {}, None)
    assert out.shape == (3, 32, 32) and out.dtype == np.complex64
    for bad, match in [
        (np.zeros((3, n + 1), np.float32), "latents must be"),
        (np.zeros(n, np.float32), "latents must be"),
        (np.full((2, n), np.nan, np.float32), "NaN"),
        (np.zeros((2, n), np.complex64), "real"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            dec.decode_batch(bad, {}, None)
