"""models.multimodal: variable-rate thermometer quantizer, its numpy UE twin and bit stream, the
Swin codec, the fusion refiner R (Table IV counts) and the stage-2 freeze. Small and CPU-fast."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.multimodal.nets import (
    FusionRefiner,
    MultiModalCodec,
    freeze_codec,
    multi_rate_loss,
)
from models.multimodal.quantizer import ThermometerQuantizer, surrogate_thermometer
from shared.thermometer import (
    allocate_bits,
    levels_from_features,
    pack_levels,
    thermometer_from_levels,
    unpack_levels,
)

torch.set_num_threads(1)


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _channels(b: int, seed: int = 0) -> torch.Tensor:
    """``[b, 2, 32, 576]`` three-path channels, norm-normalized per sample."""
    g = torch.Generator().manual_seed(seed)
    n, f = torch.arange(32.0)[:, None], torch.arange(576.0)[None]
    h = torch.zeros(b, 32, 576, dtype=torch.complex64)
    for i in range(b):
        for _ in range(3):
            th, tau = 2 * torch.rand(1, generator=g) - 1, 0.05 * torch.rand(1, generator=g)
            a = torch.randn(2, generator=g)
            h[i] += torch.complex(a[0], a[1]) * torch.exp(1j * math.pi * (n * th - 2 * f * tau))
    x = torch.stack([h.real, h.imag], 1)
    return x / x.flatten(1).norm(dim=1)[:, None, None, None]


def _random_quantizer(seed: int = 0) -> ThermometerQuantizer:
    q = ThermometerQuantizer(48, 3)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        q.b1.copy_(torch.randn(q.b1.shape, generator=g))
        q.beta.copy_(0.5 * torch.randn(q.beta.shape, generator=g))  # some negative: merged boundaries
    return q


# --- bit allocation --------------------------------------------------------------------------


def test_allocate_bits_sums_and_is_monotone() -> None:
    prev = allocate_bits(48)
    assert (prev == 1).all()
    for b in range(49, 145):
        bits = allocate_bits(b)
        assert bits.sum() == b and bits.min() >= 1 and bits.max() <= 3
        assert (bits >= prev).all()
        prev = bits
    assert (allocate_bits(96) == 2).all() and (allocate_bits(144) == 3).all()
    # a partial round goes channel-major: 12 extra bits = channel 0 of each of the 12 tokens
    assert np.flatnonzero(allocate_bits(60) == 2).tolist() == list(range(0, 48, 4))


@pytest.mark.parametrize("b", [47, 145, 0])
def test_allocate_bits_rejects_out_of_range(b: int) -> None:
    with pytest.raises(ValueError, match=r"\[48, 144\]"):
        allocate_bits(b)


# --- quantizer -------------------------------------------------------------------------------


def test_quantizer_has_336_params_and_ordered_boundaries() -> None:
    q = _random_quantizer(1)
    assert _n_params(q) == 336
    b = q.boundaries()
    assert b.shape == (48, 7)
    assert (b[:, 1:] - b[:, :-1] >= 0).all()


def test_paper_example_thermometer_and_bits() -> None:
    """Eqs. (18)-(19): b2 < z < b3 gives levels 2 / 1 / 0 and streams 010 / 01 / 0."""
    bnd = np.arange(-3, 4, dtype=np.float32)[None].repeat(3, 0)  # b^(k) = k - 4
    z = np.full((1, 3), -1.5, dtype=np.float32)  # between b^(2) = -2 and b^(3) = -1
    bits = np.array([3, 2, 1])
    lv = levels_from_features(z, bnd, bits)
    assert lv.tolist() == [[2, 1, 0]]
    th = thermometer_from_levels(lv, bits)[0]
    assert th.tolist() == [[1, 1, -1, -1, -1, -1, -1], [1, 1, 0, -1, -1, -1, -1], [0, 0, 0, -1, -1, -1, -1]]
    data, nbits = pack_levels(lv, bits)
    assert nbits == 6 and np.unpackbits(np.frombuffer(data, np.uint8))[:6].tolist() == [0, 1, 0, 0, 1, 0]
    # eq. (21): disjoint z(s) value sets at 1 / 2 / 3 bits
    assert th.sum(1).tolist() == [-3, -2, -4]


@pytest.mark.parametrize(
    ("bits", "z", "critical"),
    [
        (3, 0.5, [3, 4]),  # b^(4) = 0 < z < b^(5) = 1
        (3, -3.5, [0]),  # below every boundary: only b^(1)
        (3, 3.5, [6]),  # above every boundary: only b^(7)
        (2, 0.5, [3, 5]),  # used: b^(2), b^(4), b^(6); brackets b^(4) < z < b^(6)
        (1, 0.5, [3]),  # the one used boundary b^(4)
    ],
)
def test_surrogate_gradient_only_at_bracketing_boundaries(bits: int, z: float, critical: list[int]) -> None:
    bnd = torch.arange(-3.0, 4.0)[None].requires_grad_(True)
    zt = torch.tensor([[z]], requires_grad=True)
    thermo, _ = surrogate_thermometer(zt, bnd, torch.tensor([bits]))
    lv = levels_from_features(zt.detach().numpy(), bnd.detach().numpy(), [bits])
    ref = thermometer_from_levels(lv, [bits])
    assert torch.equal(thermo.detach(), torch.from_numpy(ref))  # forward: the exact BS vector
    thermo.sum().backward()
    g = bnd.grad[0]
    assert torch.nonzero(g).flatten().tolist() == critical
    expect = -(1 - torch.tanh(z - bnd.detach()[0, critical]) ** 2)  # eq. (12) with a = 1
    assert torch.allclose(g[critical], expect)
    assert torch.allclose(zt.grad, -expect.sum())


@pytest.mark.parametrize("b", [48, 61, 96, 127, 144])
def test_numpy_twin_equals_torch(b: int) -> None:
    q = _random_quantizer(2)
    g = torch.Generator().manual_seed(b)
    z = torch.randn(16, 48, generator=g)
    bnd = q.boundaries().detach()
    z[0] = bnd[:, 3]  # ties on the 1-bit boundary: not exceeded on both paths
    z[1] = bnd[:, 1]
    bits = allocate_bits(b)
    lv_np = levels_from_features(z.numpy(), bnd.numpy(), bits)
    lv_t = q.levels(z, torch.from_numpy(bits))
    assert np.array_equal(lv_np, lv_t.numpy())
    assert (lv_np < (1 << bits)).all()
    zs, thermo = q(z, torch.from_numpy(bits))
    th_np = thermometer_from_levels(lv_np, bits)
    assert np.array_equal(th_np, thermo.detach().numpy())
    assert np.array_equal(th_np.sum(-1) / 7, zs.detach().numpy())


@pytest.mark.parametrize("b", [49, 73, 101, 143])
def test_pack_unpack_roundtrip(b: int) -> None:
    bits = allocate_bits(b)
    rng = np.random.default_rng(b)
    levels = rng.integers(0, 1 << bits, size=(3, 48))
    data, nbits = pack_levels(levels, bits)
    assert nbits == 3 * b and len(data) == math.ceil(3 * b / 8)
    assert np.array_equal(unpack_levels(data, nbits, bits), levels)
    one, n1 = pack_levels(levels[0], bits)  # one report
    assert n1 == b and np.array_equal(unpack_levels(one, n1, bits), levels[:1])
    with pytest.raises(ValueError):
        pack_levels(np.full((1, 48), 8), bits)
    with pytest.raises(ValueError):
        unpack_levels(data, nbits - 1, bits)


def test_levels_module_is_torch_free() -> None:
    code = "import sys, models.multimodal, shared.thermometer; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- networks --------------------------------------------------------------------------------


def test_codec_shapes_at_every_rate() -> None:
    torch.manual_seed(0)
    m = MultiModalCodec()
    x = _channels(2)
    with torch.no_grad():
        z = m.encode(x)
        assert z.shape == (2, 48)
        for b in range(48, 145, 8):
            bits = allocate_bits(b)
            zs, thermo = m.quantizer(z, torch.from_numpy(bits))
            # eq. (21): the decoder input reveals each feature's resolution
            lv = np.rint(zs.numpy() * 7).astype(int)
            assert np.isin(lv[:, bits == 1], [-4, 4]).all()
            assert np.isin(lv[:, bits == 2], [-6, -2, 2, 6]).all()
            assert (lv[:, bits == 3] % 2 == 1).all()
            x_hat = m.decode(zs)
            assert x_hat.shape == (2, 2, 32, 576)
        assert torch.equal(m.decode(thermo), x_hat)  # thermometer or z(s): same decoder input


def test_refiner_params_match_table_iv() -> None:
    assert _n_params(FusionRefiner(4, 72)) == 1844
    assert _n_params(FusionRefiner(32, 72)) == 29116


@pytest.mark.parametrize(("fusion", "ne"), [("uplink", 4), ("uplink", 32), ("image", 4), ("image", 32)])
def test_fusion_shapes_and_zero_init(fusion: str, ne: int) -> None:
    torch.manual_seed(0)
    m = MultiModalCodec(fusion, ne)
    x = _channels(2)
    if fusion == "image":
        sensor = torch.randint(0, 256, (2, 3, 192, 256), dtype=torch.uint8)
    else:
        sensor = _channels(2, seed=1)
    with torch.no_grad():
        feats = m.extract(sensor)
        assert feats.shape == (2, 64 if fusion == "image" else 72, ne)
        zs = m.quantize(m.encode(x), 72)
        fused, plain = m.decode(zs, sensor), m.decode(zs)
        # W_r starts at zero: stage 2 starts exactly at the stage-1 codec
        assert torch.allclose(fused, plain, atol=1e-6)
        torch.nn.init.normal_(m.refiner.w_r.weight, std=0.1)
        assert not torch.allclose(m.decode(zs, sensor), plain)


def test_freeze_leaves_only_extractor_and_refiner_trainable() -> None:
    torch.manual_seed(0)
    m = MultiModalCodec("uplink", 4)
    names = freeze_codec(m)
    assert names and all(n.startswith(("extractor.", "refiner.")) for n in names)
    assert set(names) == {n for n, _ in m.named_parameters() if n.startswith(("extractor.", "refiner."))}
    torch.nn.init.normal_(m.refiner.w_r.weight, std=0.1)  # else no gradient reaches g_E at step 1
    loss, _ = multi_rate_loss(m, _channels(2), _channels(2, seed=1), rates=(48, 144))
    loss.backward()
    assert all(p.grad is None for n, p in m.named_parameters() if n not in names)
    assert m.extractor.embed.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        freeze_codec(MultiModalCodec())


def test_overfit_8_channels_30_steps() -> None:
    torch.manual_seed(0)
    m = MultiModalCodec()
    x = _channels(8)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    losses = []
    for step in range(30):
        loss, per_rate = multi_rate_loss(m, x)
        opt.zero_grad()
        loss.backward()
        if step == 0:  # the surrogate gradient reaches the encoder and the boundaries
            assert m.encoder.embed.weight.grad.abs().sum() > 0
            assert m.quantizer.b1.grad.abs().sum() > 0
        opt.step()
        losses.append(float(loss.detach()))
    assert set(per_rate) == {48, 72, 96, 120, 144}
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses


def test_rate_subsets_average_to_the_full_multi_rate_loss() -> None:
    """Training may decode a random subset of the rates per step: averaged over every subset of
    a size, the reweighted loss is exactly eq. (20) over all five rates."""
    from itertools import combinations

    torch.manual_seed(0)
    m = MultiModalCodec().eval()
    x = _channels(4)
    rates = (48, 72, 96, 120, 144)
    with torch.no_grad():
        full = float(multi_rate_loss(m, x, rates=rates)[0])
        for k in (1, 2, 3):
            subs = [float(multi_rate_loss(m, x, rates=c, norm_rates=rates)[0])
                    for c in combinations(rates, k)]
            assert np.mean(subs) == pytest.approx(full, rel=1e-5)
