"""shared.ue_encoder on a real (tiny) exported bundle: shapes, bad input, wire, family hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.bundle import Bundle
from shared.errors import BundleError, InvalidInput
from shared.ue_encoder import UeEncoder
from shared.wire import Bits


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    pytest.importorskip("torch")
    from training.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("ue"), "csinet", seconds=1.0)


@pytest.fixture(scope="module")
def x_ad(bundle: Bundle) -> np.ndarray:
    from training.data import load_field

    return load_field(bundle.path.parent.parent / "tiny.h5", "test", "x_ad", n=10)


def test_latents_shape_dtype_and_range(bundle: Bundle, x_ad: np.ndarray) -> None:
    enc = UeEncoder.from_bundle(bundle)
    z = enc.latents(x_ad)
    assert z.shape == (10, bundle.manifest.latent_size) and z.dtype == np.float32
    assert np.all(np.abs(z) <= 1.0 + 1e-3)  # tanh latent (int8 output grid stays inside)
    assert enc.latents(x_ad[0]).shape == (1, bundle.manifest.latent_size)  # single matrix -> B=1


def test_encode_gives_exact_bit_reports(bundle: Bundle, x_ad: np.ndarray) -> None:
    enc = UeEncoder.from_bundle(bundle)
    reports = enc.encode(x_ad, None)
    assert len(reports) == 10
    bits = bundle.manifest.rates[0].bits
    assert all(isinstance(r, Bits) and r.n_bits == bits for r in reports)
    # the wire step is exactly the codec applied to the latent
    codec = enc.codec(None)
    z = enc.latents(x_ad)
    assert reports[3] == codec.encode(z[3])


def test_normalization_is_applied(bundle: Bundle, x_ad: np.ndarray) -> None:
    enc = UeEncoder.from_bundle(bundle, fp32=True)
    manual = x_ad * np.float32(bundle.manifest.normalization["scale"])
    real = np.stack([manual.real, manual.imag], 1).astype(np.float32)
    want = enc.session.run(None, {"x": real})[0]
    np.testing.assert_allclose(enc.latents(x_ad), want, atol=1e-6)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 32, 31), np.complex64), "shape"),
        (np.zeros((2, 2, 32, 32), np.complex64), "shape"),
        (np.zeros((2, 32, 32), np.float32), "complex"),
        (np.zeros((0, 32, 32), np.complex64), "empty"),
    ],
)
def test_bad_shapes_and_dtypes(bundle: Bundle, bad: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        UeEncoder.from_bundle(bundle).latents(bad)


def test_nan_input_refused(bundle: Bundle, x_ad: np.ndarray) -> None:
    x = x_ad.copy()
    x[1, 3, 4] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        UeEncoder.from_bundle(bundle).encode(x)


def test_unknown_rate(bundle: Bundle, x_ad: np.ndarray) -> None:
    from shared.errors import NotFound

    with pytest.raises(NotFound, match="no rate"):
        UeEncoder.from_bundle(bundle).encode(x_ad, "b9999")


def test_family_hook_for_bundles_without_onnx(bundle: Bundle, tmp_path: Path) -> None:
    # a bundle with ue.encoder = null and a family that has no models/<pkg>/ue.py -> clear error
    import json
    import shutil

    dst = tmp_path / "noonnx"
    shutil.copytree(bundle.path, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m["ue"]["encoder"] = None
    m["ue"]["encoder_fp32"] = None
    m["family"] = "no-such-family"
    from shared.bundle import write_bundle

    m["files"] = {}
    (dst / "encoder.int8.onnx").unlink()
    (dst / "encoder.fp32.onnx").unlink()
    b = write_bundle(dst, m)
    with pytest.raises(BundleError, match="models.no_such_family.ue"):
        UeEncoder.from_bundle(b)


def test_ue_encoder_never_imports_torch(bundle: Bundle) -> None:
    code = (
        f"import sys; from shared.bundle import Bundle; from shared.ue_encoder import UeEncoder; "
        f"import numpy as np; e = UeEncoder.from_bundle(Bundle.load({str(bundle.path)!r})); "
        f"e.encode(np.ones((2, 32, 32), np.complex64)); assert 'torch' not in sys.modules; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
