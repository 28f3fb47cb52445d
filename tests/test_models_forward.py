"""Shapes, gradients and the wire inside the learned families' training graphs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from models.registry import get_family  # noqa: E402


def test_csinet_shapes_and_quantized_latent() -> None:
    fam = get_family("csinet")
    m = fam.build_model({"latent": 16, "bits": 4, "width": 4, "blocks": 1})
    x = torch.randn(5, 2, 32, 32)
    z = m.encoder(x)
    assert z.shape == (5, 16) and float(z.detach().abs().max()) <= 1.0
    zq = m.quantize(z)
    levels = (zq + 1) / 2 * 16 - 0.5  # cell centres of a 4-bit midrise quantizer
    assert torch.allclose(levels, levels.round(), atol=1e-5)
    loss, x_hat = fam.loss(m, x)
    assert x_hat.shape == x.shape
    loss.backward()
    assert m.encoder.fc.weight.grad is not None and float(m.encoder.fc.weight.grad.abs().sum()) > 0


def test_jscc_decoder_sees_snr_and_prefix() -> None:
    fam = get_family("csinet-jscc")
    m = fam.build_model({"symbols": 8, "prefixes": [4, 8], "width": 4, "blocks": 1}).eval()
    x = torch.randn(3, 2, 32, 32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        a = m(x, torch.full((3,), 30.0), 8, torch.Generator().manual_seed(1))
        b = m(x, torch.full((3,), -10.0), 8, torch.Generator().manual_seed(1))
        c = m(x, torch.full((3,), 30.0), 4, torch.Generator().manual_seed(1))
    assert a.shape == x.shape
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
    loss, _ = fam.loss(m, x, g)
    loss.backward()
    assert m.decoder.blocks[0].scale is not None
    with pytest.raises(ValueError, match="snr_db"):
        m.decoder(torch.zeros(1, 16))


def test_compand_is_odd_monotone_and_zero_preserving() -> None:
    from models.common.nets import Encoder

    enc = Encoder(4, width=4, compand=0.5).eval()
    x = torch.tensor([-100.0, -1.0, -1e-6, 0.0, 1e-6, 1.0, 100.0])
    p, eps = 0.5, Encoder.EPS
    y = torch.sign(x) * ((torch.abs(x) + eps) ** p - eps**p)
    assert y[3] == 0 and torch.all(y[1:] >= y[:-1]) and torch.allclose(y, -y.flip(0))
    assert float(y[-1]) < 10.1  # 100 -> ~10: the dynamic range in dB is halved
    with pytest.raises(ValueError, match="compand"):
        Encoder(4, compand=1.5)
    assert enc(torch.randn(2, 2, 32, 32)).shape == (2, 4)


def test_act_quant_identity_until_enabled_then_256_levels() -> None:
    from models.common.nets import ActQuant, set_qat

    q = ActQuant().train()
    x = torch.randn(1000) * 3
    assert torch.equal(q(x), x)
    q.enabled = True
    y = q(x)
    assert len(torch.unique(y)) <= 256 and float((y - x).abs().max()) <= float(q.hi - q.lo) / 255
    enc_plain = get_family("csinet").build_model({"latent": 4, "width": 4, "blocks": 1}).encoder
    enc_qat = get_family("csinet").build_model({"latent": 4, "width": 4, "blocks": 1, "qat": True}).encoder
    assert set_qat(enc_qat, True) == 7 and set_qat(enc_plain, True) == 0
    # plain weights load into the QAT model: only the quantizer buffers are new
    missing, unexpected = enc_qat.load_state_dict(enc_plain.state_dict(), strict=False)
    assert not unexpected and all(k.endswith((".lo", ".hi", ".seen")) for k in missing)


@pytest.mark.parametrize("family, cfg", [
    ("csinet", {"latent": 16, "bits": 4, "width": 8, "blocks": 2}),
    ("csinet-jscc", {"symbols": 8, "prefixes": [4, 8], "width": 8, "blocks": 2}),
])
def test_fold_batchnorm_keeps_the_decoder_function(family: str, cfg: dict) -> None:
    import copy

    from models.common.bs_torch import fold_batchnorm

    fam = get_family(family)
    dec = fam.build_model(cfg).decoder
    g = torch.Generator().manual_seed(0)
    for m in dec.modules():  # non-trivial statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    dec.eval()
    folded = copy.deepcopy(dec)
    n = fold_batchnorm(folded)
    assert n == sum(isinstance(m, torch.nn.BatchNorm2d) for m in dec.modules()) and n > 0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    z = torch.randn(4, dec.fc.in_features - (1 if dec.snr_adaptive else 0), generator=g)
    snr = torch.full((4,), 10.0) if dec.snr_adaptive else None
    with torch.no_grad():
        assert torch.allclose(dec(z, snr), folded(z, snr), atol=1e-4, rtol=1e-4)
    train_mode = copy.deepcopy(dec).train()
    assert fold_batchnorm(train_mode) == 0  # batch statistics: nothing to fold
