"""RD-JSCC: the shared diffusion core, the rd-jscc family and its BS refiner (real tiny bundle)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.diffusion.sampler import ddim_x0, forward_noise, initial_state, residual_lambda  # noqa: E402
from models.diffusion.schedule import Schedule  # noqa: E402
from shared.bundle import Bundle  # noqa: E402
from shared.errors import InvalidInput  # noqa: E402
from shared.wire import Bits, MuLawSymbolsCodec, from_spec  # noqa: E402


def test_cosine_schedule_and_sampling_times() -> None:
    s = Schedule.cosine(20)
    assert s.T == 20 and float(s.abar[0]) == 1.0
    assert bool(torch.all(s.abar[1:] < s.abar[:-1])) and 0 <= float(s.abar[20]) < 1e-3
    assert s.steps(2) == [20, 10] and s.steps(20) == list(range(20, 0, -1)) and s.steps(1, 12) == [12]
    with pytest.raises(ValueError):
        s.steps(3, 2)


def test_residual_forward_process_starts_from_the_estimate() -> None:
    """At t = N the residual forward process is exactly the sampler's initial state, and the
    Gaussian one (no estimate) is noise; with an oracle x0 predictor DDIM returns x0."""
    s = Schedule.cosine(20)
    g = torch.Generator().manual_seed(0)
    x0, h, eps = (torch.randn(3, 2, 4, 4, generator=g) for _ in range(3))
    t = torch.full((3,), 14)
    z = forward_noise(s, x0, t, eps, h, start=14)
    torch.testing.assert_close(z, initial_state(s, 14, eps, h))
    lam = residual_lambda(s, 14)
    a = float(s.abar[14])
    torch.testing.assert_close(z, a**0.5 * x0 + (1 - a) ** 0.5 * (lam * (h - x0) + eps))
    for steps in (1, 2, 20):
        out = ddim_x0(lambda zt, tt: x0, initial_state(s, 20, eps, h), s, s.steps(steps))
        torch.testing.assert_close(out, x0)


def test_mulaw_symbols_codec() -> None:
    c = from_spec({"kind": "mulaw-symbols", "symbols": 16, "bits": 6})
    assert isinstance(c, MuLawSymbolsCodec) and c.payload_size(64) == 16 * 2 * 6
    z = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    bits = c.encode(z)
    assert bits.n_bits == 192
    back = c.decode(bits, 64)
    assert back.shape == (64,) and np.all(back[32:] == 0)
    s = z[:32:2] + 1j * z[1:32:2]
    ref = s / np.sqrt(np.mean(np.abs(s) ** 2))
    got = back[:32:2] + 1j * back[1:32:2]
    assert 10 * np.log10(np.sum(np.abs(got - ref) ** 2) / np.sum(np.abs(ref) ** 2)) < -25
    errs = {b: 0.0 for b in (2, 4, 6)}
    for b in errs:
        cb = MuLawSymbolsCodec(16, b)
        g2 = cb.decode(cb.encode(z), 64)
        errs[b] = float(np.sum((g2[:32] - back[:32]) ** 2))
    assert errs[2] > errs[4] > errs[6]  # more bits, less distortion
    with pytest.raises(InvalidInput, match="bits"):
        c.decode(Bits.from_array(np.zeros(191, np.uint8)), 64)
    with pytest.raises(InvalidInput, match="bitstream"):
        c.decode(np.ones(16, np.complex64), 64)
    with pytest.raises(InvalidInput, match="NaN|finite"):
        c.encode(np.full(64, np.nan, np.float32))


@pytest.fixture(scope="module")
def rd_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    from training.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("rd"), "rd-jscc", seconds=3.0)


def test_rd_bundle_has_its_refinement(rd_bundle: Bundle) -> None:
    m = rd_bundle.manifest
    assert m.family == "rd-jscc" and m.bs.refinement and m.bs.refinement["name"] == "rd-ddim"
    assert "denoiser.safetensors" in m.files and m.bs.refinement["weights"] == "denoiser.safetensors"
    names = [r.name for r in m.rates]
    assert names[:2] == ["k8", "k4"] and "k4-mu4" in names
    assert m.rate("k4-mu4").bits == 4 * 2 * 4


def _bs(rd_bundle: Bundle, hooks: dict | None = None):  # noqa: ANN202
    from bs_service.config import BsSettings
    from bs_service.node import BsNode

    node = BsNode(
        BsSettings(
            bundle_roots=[str(rd_bundle.path.parent)],
            device="cpu",
            max_wait_ms=0.0,
            hooks={rd_bundle.model_id: {"refiner": hooks}} if hooks else {},
        )
    )
    node.load_model(str(rd_bundle.path))
    return node


def test_refiner_is_keyed_by_report_not_by_batch(rd_bundle: Bundle) -> None:
    """A report's refined CSI is the same alone or inside a batch; 0 steps = the autoencoder;
    the SNR threshold skips refinement exactly for the reports at or above it."""
    from bs_service.hooks import make_refiner
    from models.registry import load_bs_decoder

    dec = load_bs_decoder(rd_bundle, "cpu")
    ref = make_refiner(rd_bundle.manifest.bs.refinement, rd_bundle, dec)
    rng = np.random.default_rng(1)
    lat = rng.standard_normal((5, rd_bundle.manifest.latent_size)).astype(np.float32)
    lat[:, 8:] = 0  # k = 4 symbols sent
    snr = np.array([-5.0, 0.0, 5.0, 10.0, 15.0], np.float32)
    h = dec.decode_batch(lat, {}, snr)
    out = ref.refine(h, lat, {}, snr)
    assert out.shape == h.shape and out.dtype == np.complex64 and not np.allclose(out, h)
    one = ref.refine(h[2:3], lat[2:3], {}, snr[2:3])
    np.testing.assert_allclose(one[0], out[2], rtol=1e-4, atol=1e-5 * np.abs(out[2]).max())
    skip = make_refiner({**rd_bundle.manifest.bs.refinement, "skip_above_snr_db": 5.0}, rd_bundle, dec)
    part = skip.refine(h, lat, {}, snr)
    np.testing.assert_array_equal(part[2:], h[2:])
    np.testing.assert_allclose(part[:2], out[:2], rtol=1e-4, atol=1e-5 * np.abs(out[:2]).max())
    low = make_refiner({**rd_bundle.manifest.bs.refinement, "skip_below_snr_db": 5.0}, rd_bundle, dec)
    part = low.refine(h, lat, {}, snr)
    np.testing.assert_array_equal(part[:2], h[:2])
    np.testing.assert_allclose(part[2:], out[2:], rtol=1e-4, atol=1e-5 * np.abs(out[2:]).max())
    none = make_refiner({**rd_bundle.manifest.bs.refinement, "steps": 0}, rd_bundle, dec)
    np.testing.assert_array_equal(none.refine(h, lat, {}, snr), h)
    with pytest.raises(InvalidInput, match="steps"):
        make_refiner({**rd_bundle.manifest.bs.refinement, "steps": 99}, rd_bundle, dec)


def test_latency_budget_cuts_steps(rd_bundle: Bundle) -> None:
    from bs_service.hooks import make_refiner
    from models.registry import load_bs_decoder

    dec = load_bs_decoder(rd_bundle, "cpu")
    ref = make_refiner(
        {**rd_bundle.manifest.bs.refinement, "steps": 4, "latency_budget_ms": 1e-6}, rd_bundle, dec
    )
    assert ref.plan(10) == 4  # nothing measured yet: as configured
    lat = np.random.default_rng(2).standard_normal((3, rd_bundle.manifest.latent_size)).astype(np.float32)
    h = dec.decode_batch(lat, {}, None)
    ref.refine(h, lat, {}, None)  # measures the cost
    assert ref.ms_per_eval and ref.plan(10) == 0
    np.testing.assert_array_equal(ref.refine(h, lat, {}, None), h)  # over budget: autoencoder only
