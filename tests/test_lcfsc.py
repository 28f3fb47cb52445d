"""The lcfsc family's pieces: the numpy link math (UE, emulator) against its torch twin
(training), the CSI feedback quantizer, the ratio mask, and a tiny bundle's split pieces
(ImageTransmitter in torch, ImageReceiver in ONNX) against the one-graph system."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.lcfsc import mimo_torch as mt
from models.lcfsc.mask import ratio_mask
from shared import mimo
from shared.bundle import Bundle
from shared.errors import InvalidInput


def _h(b: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal((b, n, n)) + 1j * rng.standard_normal((b, n, n))) / np.sqrt(2)).astype(
        np.complex64
    )


def test_real_complex_roundtrip_and_stream_split() -> None:
    z = np.arange(12, dtype=np.float32)[None]
    s = mimo.to_symbols(z)
    assert s.shape == (1, 6) and s[0, 1] == 2 + 3j  # adjacent pairs
    np.testing.assert_array_equal(mimo.to_real(s), z)
    np.testing.assert_array_equal(mt.to_symbols(torch.from_numpy(z)).numpy(), s)
    st = mimo.to_streams(s, 2)
    assert st[0, 1, 0] == s[0, 3]  # stream-major: stream 1 starts at symbol L/Nt
    with pytest.raises(InvalidInput, match="odd"):
        mimo.to_symbols(np.zeros((1, 5), np.float32))


@pytest.mark.parametrize("n", mimo.SIZES)
def test_mmse_numpy_equals_torch(n: int) -> None:
    h = _h(6, n)
    rng = np.random.default_rng(1)
    y = (rng.standard_normal((6, n, 10)) + 1j * rng.standard_normal((6, n, 10))).astype(np.complex64)
    snr = np.linspace(0, 20, 6).astype(np.float32)
    x_np, s_np = mimo.mmse(h, y, snr)
    x_t, s_t = mt.mmse(torch.from_numpy(h), torch.from_numpy(y), torch.from_numpy(snr))
    np.testing.assert_allclose(x_t.numpy(), x_np, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(s_t.numpy(), s_np, atol=1e-3)
    np.testing.assert_allclose(
        mt.stream_sinr_db(torch.from_numpy(h), torch.from_numpy(snr)).numpy(), s_np, atol=1e-3
    )


def test_propagation_noise_and_high_snr_recovery() -> None:
    h = _h(400, 4, 3)
    x = mimo.to_streams(
        mimo.normalize_power(
            mimo.to_symbols(np.random.default_rng(4).standard_normal((400, 64)).astype(np.float32))
        ),
        4,
    )
    y = mimo.propagate(h, x, 10.0, np.random.default_rng(5))
    w = y - h @ x
    assert np.mean(np.abs(w) ** 2) == pytest.approx(0.1, rel=0.05)  # sigma^2 = 10^(-SNR/10)
    assert np.mean(np.abs(x) ** 2) == pytest.approx(1.0, rel=1e-4)  # unit power per symbol
    y_hi = mimo.propagate(h, x, 60.0, np.random.default_rng(5))
    x_hat, _ = mimo.mmse(h, y_hi, 60.0)
    assert np.mean(np.abs(x_hat - x) ** 2) < 1e-4  # ill-conditioned draws limit the max
    # LS from identity pilots: error variance sigma^2 per entry
    e = mimo.ls_estimate(mimo.sound(h, 0.0, np.random.default_rng(6))) - h
    assert np.mean(np.abs(e) ** 2) == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("bits", [1, 2, 6, 12])
def test_csi_quantizer_roundtrip_and_torch_twin(bits: int) -> None:
    h = _h(1, 4, bits)[0]
    payload, n_bits = mimo.quantize_h(h, bits)
    assert n_bits == mimo.csi_bits(4, 4, bits) == 16 + 32 * bits
    assert len(payload) == (n_bits + 7) // 8
    back = mimo.dequantize_h(payload, n_bits, 4, 4, bits)
    a = np.max(np.abs(mimo.to_real(h.reshape(1, -1))))
    step = 2 * a / (2**bits - 1)
    err = np.abs(mimo.to_real(back.reshape(1, -1)) - mimo.to_real(h.reshape(1, -1)))
    assert np.max(err) <= step / 2 + 2e-3 * a  # half a step (+ the float16 scale's rounding)
    twin = mt.quantize_h(torch.from_numpy(h[None]), bits)[0].numpy()
    np.testing.assert_allclose(twin, back, atol=1e-5)


def test_csi_dequantizer_rejects_wrong_sizes_and_bad_scale() -> None:
    payload, n_bits = mimo.quantize_h(_h(1, 2)[0], 4)
    with pytest.raises(InvalidInput, match="bits"):
        mimo.dequantize_h(payload, n_bits - 1, 2, 2, 4)
    with pytest.raises(InvalidInput, match="bytes"):
        mimo.dequantize_h(payload + b"\0", n_bits, 2, 2, 4)
    nan_scale = bytes([0x7E, 0x00]) + payload[2:]  # float16 NaN as the scale
    with pytest.raises(InvalidInput, match="scale"):
        mimo.dequantize_h(nan_scale, n_bits, 2, 2, 4)
    with pytest.raises(InvalidInput, match="1..12"):
        mimo.quantize_h(_h(1, 2)[0], 0)
    with pytest.raises(InvalidInput, match="NaN"):
        mimo.quantize_h(np.full((2, 2), np.nan, np.complex64), 4)


@pytest.mark.parametrize("m", [0.001, 0.009, 0.25, 0.5])
def test_ratio_mask_hides_the_lowest_scores_with_a_gradient(m: float) -> None:
    torch.manual_seed(0)
    scores = torch.softmax(torch.randn(3, 16, 16).flatten(1), -1).view(3, 16, 16).requires_grad_()
    ratio = torch.full((3,), m, requires_grad=True)
    mask = ratio_mask(scores, ratio)
    hidden = (mask.detach() == 0).flatten(1).sum(1)
    assert torch.all(hidden == round(m * 256))
    kept_min = torch.where(mask.detach() > 0, scores.detach(), torch.inf).flatten(1).min(1).values
    hid_max = torch.where(mask.detach() == 0, scores.detach(), -torch.inf).flatten(1).max(1).values
    assert torch.all((hid_max < kept_min) | (hidden == 0))  # the lowest ones are hidden
    mask.sum().backward()
    assert ratio.grad is not None
    if m * 256 >= 0.5:  # below, the threshold sits at its clamp and m has no gradient
        assert torch.all(ratio.grad < 0)  # more masking, fewer ones


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.lcfsc.export import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("lcfsc") / "tiny")


def test_split_pieces_equal_the_one_graph_system(tiny: Path) -> None:
    """BS transmitter (torch, from the bundle) + UE receiver (ONNX fp32) reproduce the training
    graph on the same channel and noise: the split is the model that was trained."""
    from models.lcfsc.bs import ImageTransmitter
    from models.lcfsc.nets import LcfscConfig
    from models.lcfsc.system import LcfscSystem
    from shared.image_rx import ImageReceiver

    b = Bundle.load(tiny)
    tx, rx = ImageTransmitter.from_bundle(b, "cpu"), ImageReceiver.from_bundle(b, fp32=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    h, snr = _h(3, 2, 7), np.array([0.0, 10.0, 20.0], np.float32)
    x = tx.encode(imgs, h, snr)
    assert x.shape == (3, 2, rx.n_symbols // 2)
    np.testing.assert_allclose(np.mean(np.abs(x) ** 2, axis=(1, 2)), 1.0, rtol=1e-4)
    y = mimo.propagate(h, x, snr, np.random.default_rng(1))
    out = rx.decode(y, h, snr)
    assert out.dtype == np.uint8 and out.shape == (3, 32, 32, 3)

    # make_tiny_bundle draws its weights after torch.manual_seed(0): the same system again
    torch.manual_seed(0)
    sysm = LcfscSystem(LcfscConfig.from_dict(b.manifest.bs.config["model"])).eval()
    with torch.no_grad():
        img_t = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
        x_t, _ = sysm.transmit(img_t, torch.from_numpy(snr), torch.from_numpy(h))
        ref = sysm.receive(torch.from_numpy(y), torch.from_numpy(h), torch.from_numpy(snr))
    np.testing.assert_allclose(x_t.numpy(), x, atol=1e-4)
    ref8 = np.clip(np.round(ref.permute(0, 2, 3, 1).numpy() * 255), 0, 255)
    assert np.max(np.abs(ref8 - out.astype(np.float64))) <= 1  # uint8 rounding only


@pytest.mark.parametrize(("masking", "tokens"), [(False, False), (False, True), (True, True)])
def test_transmitter_uses_h_exactly_when_configured(tmp_path: Path, masking: bool, tokens: bool) -> None:
    """The no-CSI transmitter's symbols do not depend on H; with stream-SINR tokens they do
    (swapping which stream is strong changes the symbols), through the shipped bundle path."""
    from models.lcfsc.bs import ImageTransmitter
    from models.lcfsc.export import make_tiny_bundle

    path = make_tiny_bundle(tmp_path / "b", csi_masking=masking, csi_tokens=tokens)
    tx = ImageTransmitter.from_bundle(Bundle.load(path), "cpu")
    assert tx.uses_csi == (masking or tokens)
    imgs = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    snr = np.array([10.0, 10.0], np.float32)
    h = np.array([np.diag([1.5, 0.2]), np.diag([1.5, 0.2])], np.complex64)
    x1 = tx.encode(imgs, h if tx.uses_csi else None, snr, nt=2)
    x2 = tx.encode(imgs, h[:, ::-1, ::-1].copy() if tx.uses_csi else None, snr, nt=2)
    if tx.uses_csi:
        assert np.max(np.abs(x1 - x2)) > 1e-3
    else:
        np.testing.assert_array_equal(x1, x2)


def test_receiver_rejects_mismatched_inputs(tiny: Path) -> None:
    from shared.image_rx import ImageReceiver

    rx = ImageReceiver.from_bundle(Bundle.load(tiny))
    h = _h(2, 2)
    y = np.zeros((2, 2, rx.n_symbols // 2), np.complex64)
    with pytest.raises(InvalidInput, match="MIMO sizes"):
        rx.decode(np.zeros((2, 3, rx.n_symbols // 3), np.complex64), _h(2, 3), 10.0)
    with pytest.raises(InvalidInput, match="received symbols must be"):
        rx.decode(y[:, :, :-1], h, 10.0)
    y[0, 0, 0] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        rx.decode(y, h, 10.0)
    with pytest.raises(InvalidInput, match="finite"):
        rx.estimate(h, np.array([np.inf, 1.0]))
    est = rx.estimate(h, 10.0)
    assert est.shape == h.shape and est.dtype == np.complex64


def test_results_section_scores_image_bundles(tiny: Path, tmp_path: Path) -> None:
    """docs/RESULTS.md's image-link section: every image bundle and the JPEG bound, finite
    scores, and nothing for the CSI bundles."""
    from evaluation.image_report import image_bundles, section
    from tests.test_image_link import write_images, write_pool

    b = Bundle.load(tiny)
    assert image_bundles([b]) == [b]
    imgs, pool = write_images(tmp_path / "img.h5", n_test=6), write_pool(tmp_path / "pool.h5")
    text = section([b], n=6, images=imgs, pool=pool)
    lines = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert len(lines) == 4  # the bundle and the JPEG bound, PSNR and MS-SSIM
    assert all("nan" not in ln and " - " not in ln for ln in lines)
    assert section([], images=imgs, pool=pool) == ""


def test_svd_precoder_numpy_equals_torch_and_orders_streams() -> None:
    """Both twins give the same unitary W (phases fixed), and stream 0 rides the strongest
    eigenmode: the columns of H W are orthogonal with descending norms."""
    h = _h(8, 4, 11)
    w = mimo.svd_precoder(h)
    np.testing.assert_allclose(mt.svd_precoder(torch.from_numpy(h)).numpy(), w, atol=1e-4)
    eye = np.broadcast_to(np.eye(4), w.shape)
    np.testing.assert_allclose(w @ w.conj().transpose(0, 2, 1), eye, atol=1e-5)
    g = h @ w
    gram = g.conj().transpose(0, 2, 1) @ g
    off = gram - np.einsum("bii->bi", gram)[:, :, None] * np.eye(4)
    assert np.max(np.abs(off)) < 1e-4
    norms = np.real(np.einsum("bii->bi", gram))
    assert np.all(np.diff(norms, axis=1) <= 1e-5)


def test_procrustes_fits_the_precoded_channel_better_than_the_dmrs_alone() -> None:
    """The UE's estimate of H W (its H estimate rotated onto the DMRS) beats the DMRS's LS
    estimate, and is exact without noise."""
    h = _h(300, 4, 12)
    rng = np.random.default_rng(13)
    w = mimo.svd_precoder(h + 0.3 * _h(300, 4, 14))  # the transmitter's (imperfect) CSI
    g = h @ w
    np.testing.assert_allclose(mimo.procrustes(h, g), g, atol=1e-4)
    snr = np.full(300, 0.0, np.float32)
    h_e = h + 0.5 * _h(300, 4, 15)  # a UE estimate better than one LS shot at 0 dB
    g_ls = mimo.sound(g, snr, rng)
    err = lambda e: float(np.mean(np.abs(e - g) ** 2))  # noqa: E731
    assert err(mimo.procrustes(h_e, g_ls)) < 0.8 * err(g_ls)
    np.testing.assert_allclose(
        mt.procrustes(torch.from_numpy(h_e), torch.from_numpy(g_ls)).numpy(), mimo.procrustes(h_e, g_ls),
        atol=1e-4,
    )


def test_precoded_bundle_split_equals_one_graph(tmp_path: Path) -> None:
    """A precoding bundle sends ``W [I | S]`` (DMRS first) and its UE decodes it: the split
    pieces give what the training graph gives on the same channel and noise; the no-masking
    precoder still needs H (its precoder does), and another H changes what it sends."""
    from models.lcfsc.bs import ImageTransmitter
    from models.lcfsc.export import make_tiny_bundle
    from models.lcfsc.nets import LcfscConfig
    from models.lcfsc.system import LcfscSystem
    from shared.image_rx import ImageReceiver

    path = make_tiny_bundle(tmp_path / "svd", csi_masking=False, precoding="svd")
    b = Bundle.load(path)
    assert b.manifest.ue.config["precoding"] == "svd"
    tx, rx = ImageTransmitter.from_bundle(b, "cpu"), ImageReceiver.from_bundle(b, fp32=True)
    assert tx.uses_csi and rx.channel_uses(2) == rx.n_symbols // 2 + 2
    imgs = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    h, snr = _h(3, 2, 7), np.array([0.0, 10.0, 20.0], np.float32)
    with pytest.raises(InvalidInput, match="uses CSI"):
        tx.encode(imgs, None, snr, nt=2)
    x = tx.encode(imgs, h, snr)
    assert x.shape == (3, 2, rx.channel_uses(2))
    w = mimo.svd_precoder(h)
    np.testing.assert_allclose(x[:, :, :2], w, atol=1e-5)  # the DMRS are the precoder's columns
    assert np.max(np.abs(tx.encode(imgs, _h(3, 2, 99), snr) - x)) > 1e-3  # another H, another W
    y = mimo.propagate(h, x, snr, np.random.default_rng(1))
    out = rx.decode(y, h, snr)
    with pytest.raises(InvalidInput, match="received symbols must be"):
        rx.decode(y[:, :, 2:], h, snr)  # the DMRS missing

    torch.manual_seed(0)
    sysm = LcfscSystem(LcfscConfig.from_dict(b.manifest.bs.config["model"])).eval()
    with torch.no_grad():
        img_t = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
        ctx: dict = {}
        s_t, _ = sysm.transmit(img_t, torch.from_numpy(snr), torch.from_numpy(h), ctx=ctx)
        np.testing.assert_allclose(mt.with_dmrs(ctx["precoder"], s_t).numpy(), x, atol=1e-4)
        g_e = mt.procrustes(torch.from_numpy(h), torch.from_numpy(y[:, :, :2]))
        ref = sysm.receive(torch.from_numpy(y[:, :, 2:]), g_e, torch.from_numpy(snr))
    ref8 = np.clip(np.round(ref.permute(0, 2, 3, 1).numpy() * 255), 0, 255)
    assert np.max(np.abs(ref8 - out.astype(np.float64))) <= 1
