"""cllwcsinet: CLLWCsiNet and its CsiNet / CRNet baselines (architecture, noise, a real tiny bundle)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from evaluation.complexity import bundle_complexity, model_complexity  # noqa: E402
from models.registry import get_family, load_bs_decoder  # noqa: E402
from shared.bundle import Bundle  # noqa: E402
from shared.errors import InvalidInput  # noqa: E402
from shared.wire import AnalogCodec, MuLawSymbolsCodec, UniformSymbolsCodec, from_spec  # noqa: E402

# the paper's Table III: total parameters per (arch, latent, CR)
PAPER_PARAMS = {
    ("cllw", "conv", 4): 70_260,
    ("cllw", "conv", 8): 66_700,
    ("cllw", "conv", 16): 42_600,
    ("csinet", "conv", 4): 17_900,
    ("csinet", "conv", 8): 10_710,
    ("csinet", "conv", 16): 7_120,
    ("crnet", "conv", 4): 17_620,
    ("crnet", "conv", 8): 10_430,
    ("crnet", "conv", 16): 6_840,
    ("csinet", "fc", 4): 2_103_000,
    ("csinet", "fc", 8): 1_054_000,
    ("csinet", "fc", 16): 530_000,
    ("crnet", "fc", 4): 2_103_000,
    ("crnet", "fc", 8): 1_054_000,
    ("crnet", "fc", 16): 530_000,
}


@pytest.mark.parametrize(("arch", "latent", "cr"), sorted(PAPER_PARAMS))
def test_parameter_counts_match_the_paper(arch: str, latent: str, cr: int) -> None:
    c = model_complexity("cllwcsinet", {"arch": arch, "latent": latent, "cr": cr})
    want = PAPER_PARAMS[(arch, latent, cr)]
    assert abs(c["params"] - want) / want < 0.15, (c["params"], want)
    assert c["encoder_macs"] > 0 and c["decoder_macs"] > 0


def test_cllw_is_fully_convolutional_and_lighter_at_the_ue() -> None:
    fam = get_family("cllwcsinet")
    for cr in (4, 8, 16):
        m = fam.build_model({"cr": cr})
        assert not any(isinstance(x, torch.nn.Linear) for x in m.modules())
        z = m.encoder(torch.randn(3, 2, 32, 32))
        assert z.shape == (3, 2048 // cr) == (3, fam.latent_size({"cr": cr}))
        assert m.decoder(z).shape == (3, 2, 32, 32)
    cllw = model_complexity("cllwcsinet", {"cr": 8})
    fc = model_complexity("cllwcsinet", {"arch": "crnet", "latent": "fc", "cr": 8})
    assert cllw["encoder_params"] * 20 < fc["encoder_params"]


def test_subtraction_denoiser_and_noise_in_training() -> None:
    from models.cllwcsinet.nets import Denoiser

    d = Denoiser(8, 16)
    s = torch.randn(2, 8, 1, 32)
    for p in d.g[-1].parameters():  # g = 0: the denoiser passes the codeword through
        torch.nn.init.zeros_(p)
    torch.testing.assert_close(d(s), s)
    fam = get_family("cllwcsinet")
    m = fam.build_model({"cr": 16}).eval()
    x = torch.randn(4, 2, 32, 32)
    g = torch.Generator().manual_seed(0)
    clean = m(x)
    noisy = m(x, torch.full((4,), -5.0), g)
    assert not torch.allclose(clean, noisy)
    quiet = m(x, torch.full((4,), 80.0), g)
    torch.testing.assert_close(quiet, clean, rtol=1e-3, atol=1e-3)
    loss, x_hat = fam.loss(m, x, g)
    assert x_hat.shape == x.shape and torch.isfinite(loss)


def test_rates_and_wire() -> None:
    fam = get_family("cllwcsinet")
    rates = fam.rates({"cr": 8, "digital_bits": [4]})
    assert [r["name"] for r in rates] == ["k128", "k128-u4"]
    assert rates[1]["bits"] == 128 * 2 * 4
    codec = from_spec(rates[1]["wire"])
    assert isinstance(codec, UniformSymbolsCodec) and codec.payload_size(256) == 1024
    mu = fam.rates({"cr": 8, "digital_bits": [4], "digital_quantizer": "mulaw"})[1]
    assert mu["name"] == "k128-mu4" and isinstance(from_spec(mu["wire"]), MuLawSymbolsCodec)
    assert isinstance(from_spec(fam.wire_spec({"cr": 4})), AnalogCodec)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"arch": "acrnet"}, "arch"),
        ({"cr": 8, "chans": [64, 32, 4]}, "channels"),
        ({"latent": "lstm"}, "latent"),
        ({"widht": 3}, "unknown"),
        ({"digital_quantizer": "vq"}, "digital_quantizer"),
    ],
)
def test_bad_configs_are_named(cfg: dict, match: str) -> None:
    fam = get_family("cllwcsinet")
    with pytest.raises((InvalidInput, ValueError), match=match):
        fam.build_model(cfg)


@pytest.fixture(scope="module")
def cllw_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    from training.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("cllw"), "cllwcsinet", seconds=2.0)


def test_bundle_round_trip_analog_and_digital(cllw_bundle: Bundle) -> None:
    """The int8 ONNX encoder's codeword through the analog and the digital wire into the torch
    decoder; the digital rate at 6 bits is close to the analog ideal, 3 bits further away."""
    from shared.ue_encoder import UeEncoder
    from training import data as ds

    m = cllw_bundle.manifest
    assert m.family == "cllwcsinet" and [r.name for r in m.rates] == ["k128", "k128-u3", "k128-u6"]
    assert m.ue.config["int8_check"]["recipe"]
    x = ds.load_field(cllw_bundle.path.parent.parent / "tiny.h5", "test", "x_ad", n=16)
    enc = UeEncoder.from_bundle(cllw_bundle, threads=1)
    dec = load_bs_decoder(cllw_bundle, "cpu")
    out = {}
    for rate in ("k128", "k128-u3", "k128-u6"):
        payloads = enc.encode(x, rate)
        codec = from_spec(m.rate(rate).wire or m.ue.wire)
        z = np.stack([codec.decode(p, m.latent_size) for p in payloads])
        out[rate] = dec.decode_batch(z, {}, None)
        assert out[rate].shape == (16, 32, 32) and np.all(np.isfinite(out[rate]))
    ref = out["k128"]

    def err(h: np.ndarray) -> float:
        return float(np.linalg.norm(h - ref) / np.linalg.norm(ref))

    assert err(out["k128-u6"]) < err(out["k128-u3"]) < 1.0
    with pytest.raises(InvalidInput, match="latents"):
        dec.decode_batch(np.zeros((2, 100), np.float32), {}, None)
    cx = bundle_complexity(cllw_bundle)
    assert cx["encoder_int8_bytes"] < cx["encoder_fp32_bytes"] and cx["decoder_bytes"] > 0
