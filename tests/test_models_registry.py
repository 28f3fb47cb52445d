"""models.registry: discovery, lookup errors, torch-free import, the BS decoder contract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models import registry
from shared.errors import InvalidInput, NotFound


def test_learned_families_registered() -> None:
    names = registry.families()
    assert {"csinet", "csinet-jscc"} <= set(names)
    assert registry.get_family("csinet").name == "csinet"


def test_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(NotFound) as exc:
        registry.get_family("no-such-family")
    msg = str(exc.value)
    assert "no-such-family" in msg and "csinet" in msg


def test_registry_import_is_torch_free() -> None:
    code = (
        "import sys; import models.registry as r; r.families(); import shared.ue_encoder; "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_register_requires_family_subclass_and_unique_name() -> None:
    with pytest.raises(TypeError):
        registry.register_family("bogus")(object)  # type: ignore[arg-type]

    class Other(registry.Family):
        pass

    with pytest.raises(ValueError, match="registered twice"):
        registry.register_family("csinet")(Other)


def test_numpy_only_family_can_register_a_bs_decoder() -> None:
    class Echo:
        latent_size = 4
        needs: list[str] = []

        def decode_batch(self, latents, side, snr_db):  # noqa: ANN001, ANN201
            return np.zeros((len(latents), 32, 32), np.complex64)

    @registry.register_family("test-echo")
    class EchoFamily(registry.Family):
        def load_bs_decoder(self, bundle, device="auto"):  # noqa: ANN001, ANN201
            return Echo()

    try:
        dec = registry.get_family("test-echo").load_bs_decoder(None)  # type: ignore[arg-type]
        assert isinstance(dec, registry.BsDecoder)
        assert dec.decode_batch(np.zeros((3, 4), np.float32), {}, None).shape == (3, 32, 32)
        with pytest.raises(InvalidInput, match="test-echo"):
            registry.get_family("test-echo").build_model({})
    finally:
        registry._FAMILIES.pop("test-echo", None)


def test_config_keys_checked() -> None:
    fam = registry.get_family("csinet")
    with pytest.raises(InvalidInput, match="unknown model config"):
        fam.full_config({"latentt": 3})
    assert fam.rates({"latent": 16, "bits": 4}) == [{"name": "b64", "bits": 64}]
    jscc = registry.get_family("csinet-jscc")
    assert [r["symbols"] for r in jscc.rates({"symbols": 32, "prefixes": [8, 16]})] == [32, 16, 8]
