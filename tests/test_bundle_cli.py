"""Bundles on disk: `csilink bundle list/inspect/verify`, tampered / incomplete / unknown-family refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from csilink.cli import main
from shared.bundle import Bundle, write_bundle
from shared.errors import BundleError, NotFound


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    pytest.importorskip("torch")
    from training.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("bundle"), "csinet", seconds=1.0)


def _copy(b: Bundle, dst: Path) -> Path:
    shutil.copytree(b.path, dst)
    return dst


def test_verify_ok_and_list(good: Bundle, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "verify", str(good.path)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["bundle", "--root", str(good.path.parent), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["model_id"] == good.model_id and rows[0]["status"] == "ok"
    assert main(["bundle", "--root", str(good.path.parent), "inspect", good.model_id]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "csinet" and info["verified"] is True


def test_tampered_byte_is_refused(good: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _copy(good, tmp_path / "t")
    f = p / "decoder.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="decoder.safetensors fails its sha256"):
        Bundle.load(p)
    assert main(["bundle", "verify", str(p)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["bundle", "--root", str(tmp_path), "list"]) == 1  # list flags the broken one


def test_incomplete_bundle_is_refused(
    good: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _copy(good, tmp_path / "i")
    (p / "encoder.int8.onnx").unlink()
    with pytest.raises(BundleError, match="encoder.int8.onnx is missing"):
        Bundle.load(p)
    assert main(["bundle", "verify", str(p)]) == 1
    assert "missing" in capsys.readouterr().out


def test_inspect_unknown_id(good: Bundle, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "--root", str(good.path.parent), "inspect", "no-such-model"]) == 1
    assert "no bundle" in capsys.readouterr().err


def test_unknown_family_is_not_found(good: Bundle, tmp_path: Path) -> None:
    from models.registry import load_bs_decoder

    p = _copy(good, tmp_path / "u")
    m = json.loads((p / "manifest.json").read_text())
    m["family"] = "martian"
    b = write_bundle(p, m)
    with pytest.raises(NotFound, match="unknown model family 'martian'.*csinet"):
        load_bs_decoder(b, "cpu")


def test_decoder_weights_not_matching_config(good: Bundle, tmp_path: Path) -> None:
    from models.registry import load_bs_decoder

    p = _copy(good, tmp_path / "w")
    m = json.loads((p / "manifest.json").read_text())
    m["bs"]["config"]["model"]["latent"] = 99  # decoder FC no longer fits the weights
    b = write_bundle(p, m)
    with pytest.raises(BundleError, match="do not match"):
        load_bs_decoder(b, "cpu")
