"""vq-diffusion: VQ bitstream + conditional diffusion decoder with the BS's uplink CSI (real tiny bundle)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.registry import get_family, load_bs_decoder  # noqa: E402
from shared.bundle import Bundle  # noqa: E402
from shared.errors import InvalidInput  # noqa: E402
from shared.wire import VQCodec, from_spec  # noqa: E402

SMALL = {"dim": 8, "widths": [4, 8], "features": 4, "base": 4, "mults": [1, 2]}


@pytest.mark.parametrize(("nv", "bits"), [(2, 64), (4, 128), (8, 192)])
def test_rates_fields_and_target(nv: int, bits: int) -> None:
    fam = get_family("vq-diffusion")
    cfg = {**SMALL, "codebook_size": nv}
    assert fam.rates(cfg) == [{"name": f"b{bits}", "bits": bits}]
    assert fam.fields(cfg) == ("x_ad", "y_ad", "z_ad") and fam.target_field(cfg) == "z"
    assert fam.bs_needs(cfg) == ["y_ad"]
    rec = {**cfg, "task": "reconstruct", "side_info": False}
    assert fam.fields(rec) == ("x_ad",) and fam.target_field(rec) == "x" and fam.bs_needs(rec) == []
    with pytest.raises(InvalidInput, match="power of two"):
        fam.full_config({"codebook_size": 3})


def test_codebook_straight_through_and_dead_code_restart() -> None:
    fam = get_family("vq-diffusion")
    m = fam.build_model({**SMALL, "codebook_size": 4})
    x = torch.randn(6, 2, 32, 32)
    e = m.encoder(x)
    assert e.shape == (6, 64 * 8)
    m.codebook.embed.data[3] = 1e3  # far from everything: never picked
    m.codebook.usage[3] = 0.0301  # one more unused batch and it falls below 3%
    q, idx, vq = m.codebook(e)
    assert q.shape == e.shape and idx.shape == (6, 64) and float(vq.detach()) > 0
    assert float(m.codebook.embed.data[3].abs().max()) < 1e3  # restarted from a batch vector
    (q.sum() + vq).backward()
    assert m.encoder.net[0].weight.grad is not None  # gradient reached the encoder (straight-through)


def test_ddim_from_zeros_is_deterministic_and_uses_side_information() -> None:
    fam = get_family("vq-diffusion")
    m = fam.build_model({**SMALL, "codebook_size": 4}).eval()
    torch.nn.init.normal_(m.decoder.unet.out[-1].weight, std=0.1)  # the zero-init output would hide y
    q = torch.randn(3, 64 * 8)
    y = torch.randn(3, 2, 32, 32)
    with torch.no_grad():
        a, b = m.decoder(q, y), m.decoder(q, y)
        c = m.decoder(q, torch.zeros_like(y))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="uplink"):
        m.decoder(q, None)


@pytest.fixture(scope="module")
def vq_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    from training.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("vq"), "vq-diffusion", seconds=3.0)


def test_bundle_end_to_end(vq_bundle: Bundle) -> None:
    """UE int8 encoder -> VQ indices (the shipped codebook) -> BS decoder with its y_ad; the
    harness scores it against z."""
    from evaluation.harness import evaluate_bundle, load_truth
    from shared.ue_encoder import UeEncoder

    m = vq_bundle.manifest
    assert m.target.field == "z" and m.bs.needs == ["y_ad"] and "codebook.npy" in m.files
    codec = from_spec(m.ue.wire, vq_bundle.path)
    assert isinstance(codec, VQCodec) and codec.codebook.shape == (4, 8)
    data = vq_bundle.path.parent.parent / "tiny.h5"
    truth = load_truth(data, "test", 12, {"y_ad"})
    payloads = UeEncoder.from_bundle(vq_bundle, threads=1).encode(truth.x_ad, "b128")
    assert all(p.n_bits == 128 for p in payloads)
    dec = load_bs_decoder(vq_bundle, "cpu")
    lat = np.stack([codec.decode(p, m.latent_size) for p in payloads])
    h = dec.decode_batch(lat, {"y_ad": truth.side["y_ad"]}, None)
    assert h.shape == (12, 32, 32) and np.all(np.isfinite(h))
    with pytest.raises(InvalidInput, match="y_ad"):
        dec.decode_batch(lat, {}, None)
    with pytest.raises(InvalidInput, match="NaN"):
        dec.decode_batch(lat, {"y_ad": np.full_like(truth.side["y_ad"], np.nan)}, None)
    rows = evaluate_bundle(vq_bundle, truth, seed=0)
    assert len(rows) == 1 and rows[0].target == "z" and np.isfinite(rows[0].nmse_db_ad)


# -- the paper's baselines and references (same task / side-information interface)


@pytest.mark.parametrize("arch", ["csinet", "crnet"])
def test_baseline_rates_wire_and_side_information(arch: str) -> None:
    fam = get_family("si-baseline")
    cfg = {"arch": arch, "latent": 21, "bits": 6}
    assert fam.rates(cfg) == [{"name": "b126", "bits": 126}]
    assert fam.wire_spec(cfg) == {"kind": "uniform", "bits": 6, "lo": -1.0, "hi": 1.0}
    assert fam.fields(cfg) == ("x_ad", "y_ad", "z_ad") and fam.bs_needs(cfg) == ["y_ad"]
    m = fam.build_model(cfg).eval()
    x = torch.randn(4, 2, 32, 32)
    z = m.encoder(x)
    assert z.shape == (4, 21) and float(z.detach().abs().max()) <= 1.0  # tanh: the quantizer's range
    y = torch.randn(4, 2, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(m.decoder(z, y), m.decoder(z, torch.zeros_like(y)))
    with pytest.raises(ValueError, match="uplink"):
        m.decoder(z, None)
    with pytest.raises(InvalidInput, match="arch"):
        fam.full_config({"arch": "cllw"})


def test_baseline_bundle_end_to_end(tmp_path_factory: pytest.TempPathFactory) -> None:
    """6-bit uniform tanh latents through the real wire, decoded with the BS's y_ad, scored vs z."""
    from evaluation.harness import evaluate_bundle, load_truth
    from shared.ue_encoder import UeEncoder
    from training.testing import tiny_bundle

    b = tiny_bundle(tmp_path_factory.mktemp("si"), "si-baseline", seconds=2.0)
    m = b.manifest
    assert m.target.field == "z" and m.bs.needs == ["y_ad"] and m.ue.wire["kind"] == "uniform"
    truth = load_truth(b.path.parent.parent / "tiny.h5", "test", 10, {"y_ad"})
    payloads = UeEncoder.from_bundle(b, threads=1).encode(truth.x_ad, "b48")
    assert all(p.n_bits == 48 for p in payloads)
    codec = from_spec(m.ue.wire, b.path)
    lat = np.stack([codec.decode(p, m.latent_size) for p in payloads])
    h = load_bs_decoder(b, "cpu").decode_batch(lat, {"y_ad": truth.side["y_ad"]}, None)
    assert h.shape == (10, 32, 32) and np.all(np.isfinite(h))
    rows = evaluate_bundle(b, truth, seed=0)
    assert rows[0].target == "z" and rows[0].bits == 48 and np.isfinite(rows[0].nmse_db_ad)


def test_reference_predictor_inputs_and_no_export(tmp_path: pytest.TempPathFactory) -> None:
    fam = get_family("si-reference")
    small = {"base": 4, "mults": [1, 2]}
    xy = fam.build_model({**small, "inputs": "xy"})
    batch = torch.randn(3, 6, 32, 32)
    assert fam.inputs(xy, batch).shape == (3, 4, 32, 32)
    torch.testing.assert_close(fam.target(xy, batch), batch[:, 4:6])
    with torch.no_grad():  # zero-initialized output layer: the x-fed predictor starts at x
        torch.testing.assert_close(xy(fam.inputs(xy, batch)), batch[:, 0:2])
    y_only = fam.build_model({**small, "inputs": "y"})
    assert fam.inputs(y_only, batch).shape == (3, 2, 32, 32)
    torch.testing.assert_close(fam.inputs(y_only, batch), batch[:, 2:4])
    with pytest.raises(InvalidInput, match="inputs"):
        fam.full_config({"inputs": "z"})
    with pytest.raises(InvalidInput, match="not exported"):
        fam.export(tmp_path, tmp_path)


def test_sampler_inputs_are_the_bs_ddim_states() -> None:
    """train_inputs: sampler trains each step on the state the BS's DDIM run from zeros is in."""
    from models.diffusion.sampler import ddim_x0

    fam = get_family("vq-diffusion")
    m = fam.build_model({**SMALL, "train_inputs": "sampler", "loss_w_min": 1.0, "loss_w_max": 1.0}).eval()
    torch.nn.init.normal_(m.decoder.unet.out[-1].weight, std=0.1)
    dec = m.decoder
    cond = dec.condition(torch.randn(8, 64 * 8), torch.randn(8, 2, 32, 32)).detach()
    t, z_t = m._sampler_inputs(cond, 8, torch.Generator().manual_seed(0))
    times = dec.sched.steps(dec.steps)
    assert set(t.tolist()) <= set(times)
    for i in range(8):  # the state at step t_i: DDIM from zeros run down to t_i
        k = times.index(int(t[i]))
        seen: list[torch.Tensor] = []

        def probe(z, tt, i=i, seen=seen):
            seen.append(z[i].clone())
            return dec.unet(z, cond, tt)

        ddim_x0(probe, torch.zeros(8, 2, 32, 32), dec.sched, times)
        torch.testing.assert_close(z_t[i], seen[k], atol=1e-5, rtol=1e-5)
    with pytest.raises(InvalidInput, match="train_inputs"):
        fam.full_config({"train_inputs": "teacher"})
