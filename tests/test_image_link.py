"""The downlink semantic image link through the three services (separate processes).

Fast unit tests first (the emulator's MIMO channel, the CSI feedback wire, the image metrics,
the scenario section); then the services: BS, channel emulator and UE as processes on
loopback (``tests/conftest.py`` helpers) with the tiny untrained ``lcfsc`` bundle
(``models.lcfsc.export.make_tiny_bundle``), a tiny image file and a tiny channel pool written
here. The uplink that carries the CSI feedback is ideal unless a test configures it.
"""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import h5py
import numpy as np
import pytest
import yaml

from channel_emulator.mimo import MimoChannel, MimoPool
from csilink.client import LinkError
from shared import image_link as il
from shared import metrics, mimo
from shared.errors import DatasetError, InvalidInput
from shared.wire import Bits
from tests.conftest import Node, start_node, stop_node

SIZES = (2, 4, 8)
IMAGE = 32  # the tiny bundle's image size


# --------------------------------------------------------------------------- data files


def write_images(path: Path, n_test: int = 8, n_train: int = 4, size: int = IMAGE) -> Path:
    """A tiny csilink-images/1 file: smooth coloured patterns (deterministic)."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:size, 0:size] / size
    with h5py.File(path, "w") as f:
        f.attrs["dataset_id"] = "img-test"
        f.attrs["config"] = "{}"
        for split, n in (("train", n_train), ("test", n_test)):
            imgs = np.zeros((n, size, size, 3), np.uint8)
            for i in range(n):
                a, b, c = rng.uniform(1, 6, 3)
                for ch in range(3):
                    v = 0.5 + 0.5 * np.sin(a * (ch + 1) * xx + b * yy + c * ch + i)
                    imgs[i, :, :, ch] = np.round(255 * v)
            f.create_group(split).create_dataset("image", data=imgs)
    return path


def write_pool(path: Path, sizes: tuple[int, ...] = SIZES, n: int = 6) -> Path:
    """A tiny channel pool in the csilink-mimo-pool/1 layout."""
    rng = np.random.default_rng(9)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "csilink-mimo-pool/1"
        for s in sizes:
            g = f.create_group(f"{s}x{s}")
            for split in ("train", "test"):
                h = (rng.standard_normal((n, s, s)) + 1j * rng.standard_normal((n, s, s))) / np.sqrt(2)
                g.create_dataset(split, data=h.astype(np.complex64))
    return path


# --------------------------------------------------------------------------- unit: the channel


def test_sounding_and_data_see_the_same_realisation() -> None:
    """Noiseless (100 dB) link: the LS estimate from the pilots is H, and the data come out as
    H x with that same H, whatever the call order."""
    ch = MimoChannel(None)
    x = mimo.normalize_power(
        (np.random.default_rng(1).standard_normal((2, 4 * 6)) + 0j).astype(np.complex64)
    ).reshape(2, 4, 6)
    y, src = ch.transmit(seed=3, ue_id=1, block=5, nr=4, x=x, snr_db=100.0, seq=0)  # data first
    y_p, h, _ = ch.sound(seed=3, ue_id=1, block=5, nr=4, nt=4, snr_db=100.0, seq=9)
    assert src == "rayleigh"
    h_ls = mimo.ls_estimate(y_p)[0]
    assert np.max(np.abs(h_ls - h)) < 1e-4
    assert np.max(np.abs(y - h @ x)) < 1e-4
    # Another block is another realisation; the same one again is the same.
    h_other, _ = ch.h(3, 1, 6, 4, 4)
    assert not np.allclose(h_other, h)
    np.testing.assert_array_equal(ch.h(3, 1, 5, 4, 4)[0], h)
    # Another seed is another world.
    assert not np.allclose(ch.h(4, 1, 5, 4, 4)[0], h)


def test_noise_is_keyed_not_ordered() -> None:
    ch = MimoChannel(None)
    x = np.ones((3, 2, 5), np.complex64)
    y_all, _ = ch.transmit(0, 0, 1, 2, x, 5.0, seq=10)
    y_last, _ = ch.transmit(0, 0, 1, 2, x[2:], 5.0, seq=12)  # image 2 alone, seq 10 + 2
    np.testing.assert_array_equal(y_all[2], y_last[0])
    assert not np.allclose(y_all[0], y_all[1])  # images get their own noise
    y_p1 = ch.sound(0, 0, 1, 2, 2, 5.0, seq=1)[0]
    np.testing.assert_array_equal(y_p1, ch.sound(0, 0, 1, 2, 2, 5.0, seq=1)[0])
    assert not np.allclose(y_p1, ch.sound(0, 0, 1, 2, 2, 5.0, seq=2)[0])


def test_channel_pool(tmp_path: Path) -> None:
    pool_path = write_pool(tmp_path / "pool.h5", sizes=(2, 4))
    ch = MimoChannel(MimoPool(pool_path))
    h, src = ch.h(0, 0, 3, 4, 4)
    with h5py.File(pool_path) as f:
        test = f["4x4"]["test"][()]
    i = int(src.rsplit("[", 1)[1].rstrip("]"))
    assert src.startswith("pool pool.h5 4x4/test[") and np.array_equal(h, test[i])
    with pytest.raises(DatasetError, match="has no 8x8/test"):
        ch.h(0, 0, 3, 8, 8)
    missing = MimoChannel(MimoPool(tmp_path / "nope.h5"))  # a missing file fails only MIMO use
    with pytest.raises(DatasetError, match="does not exist"):
        missing.h(0, 0, 0, 2, 2)


def test_symbol_power_is_checked() -> None:
    with pytest.raises(InvalidInput, match="average power"):
        MimoChannel(None).transmit(0, 0, 0, 2, np.full((1, 2, 4), 10.0, np.complex64), 10.0, 0)


# --------------------------------------------------------------------------- unit: feedback wire


def test_csi_feedback_wire_roundtrip() -> None:
    h = (np.random.default_rng(2).standard_normal((4, 4)) + 1j).astype(np.complex64)
    bits, rate = il.encode_csi(h, 8)
    assert rate == "4x4b8" and bits.n_bits == mimo.csi_bits(4, 4, 8) == 16 + 2 * 16 * 8
    h_hat = il.decode_csi(bits, rate)
    assert h_hat.shape == (4, 4) and metrics.nmse_db(h[None], h_hat[None]) < -30
    with pytest.raises(InvalidInput, match="is not '<Nr>x<Nt>b<bits>'"):
        il.decode_csi(bits, "b8")
    with pytest.raises(InvalidInput, match="4x4 at 4 bits/real needs 144"):
        il.decode_csi(bits, "4x4b4")
    with pytest.raises(InvalidInput, match="bitstreams"):
        il.decode_csi(np.ones(4, np.complex64), rate)
    with pytest.raises(InvalidInput, match="1..12"):
        il.parse_rate("4x4b13")
    with pytest.raises(InvalidInput, match="nt must be 1..64"):
        il.parse_rate("2x99b4")


# --------------------------------------------------------------------------- unit: metrics


def test_psnr_and_ms_ssim() -> None:
    rng = np.random.default_rng(0)
    a = write_images_array(rng)
    noisy = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(a + rng.normal(0, 60, a.shape), 0, 255).astype(np.uint8)
    p1, p2 = metrics.psnr(a, noisy), metrics.psnr(a, noisier)
    assert p1.shape == (3,) and np.all(p1 > p2)
    mse = np.mean((a.astype(float) - noisy) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(p1, 10 * np.log10(255**2 / mse))
    s0, s1, s2 = metrics.ms_ssim(a, a), metrics.ms_ssim(a, noisy), metrics.ms_ssim(a, noisier)
    np.testing.assert_allclose(s0, 1.0)
    assert np.all(s1 < 1) and np.all(s2 < s1) and np.all(s2 >= 0)
    np.testing.assert_allclose(metrics.ms_ssim(noisy, a), s1)  # symmetric
    with pytest.raises(InvalidInput, match="at least 28x28"):
        metrics.ms_ssim(a[:, :16, :16], a[:, :16, :16])
    with pytest.raises(InvalidInput, match="shape mismatch"):
        metrics.psnr(a, a[:1])


def write_images_array(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64] / 64
    base = 127 + 100 * np.sin(6 * xx + 3 * yy)
    return np.clip(base[None, :, :, None] + rng.normal(0, 5, (3, 64, 64, 3)), 0, 255).astype(np.uint8)


def test_ssim_scale_matches_a_direct_computation() -> None:
    """The finest-scale SSIM equals a direct 2-D convolution implementation (scipy)."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (40, 40))
    y = np.clip(x + rng.normal(0, 30, x.shape), 0, 255)
    g1 = metrics._gaussian(7, 1.5)
    w = np.outer(g1, g1)

    def f(a: np.ndarray) -> np.ndarray:
        return signal.convolve2d(a, w[::-1, ::-1], mode="valid")

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = ((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs).mean()
    got_ssim, got_cs = metrics._ssim_cs(x[None], y[None], g1, 255.0)
    np.testing.assert_allclose([got_ssim[0], got_cs[0]], [ssim, cs.mean()], rtol=1e-10)


# --------------------------------------------------------------------------- unit: the scenario


def _scenario(tmp_path: Path, image_link: dict, **extra: object) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"name": "img", "image_link": image_link, **extra}))
    return p


def test_scenario_section_is_validated(tmp_path: Path) -> None:
    from csilink.scenario import load_scenario

    images = str(write_images(tmp_path / "img.h5"))
    good = {"bundles": "x", "images": {"path": images, "n": 4}, "sizes": [2, 4], "snr_db": [0, 10],
            "csi": ["perfect", "feedback", "none"], "feedback_bits": [4, 8]}
    sc = load_scenario(_scenario(tmp_path, good), check=False)
    pts = sc.image_link.points()
    assert len(pts) == 2 * 4 * 2 and sc.points() == [] and sc.dataset is None
    assert [p.label() for p in pts[:3]] == ["x, 2x2, perfect, 0 dB", "x, 2x2, perfect, 10 dB",
                                            "x, 2x2, feedback 4 b, 0 dB"]
    long = load_scenario(_scenario(tmp_path, {**good, "csi": ["perfect", {"mode": "feedback", "bits": [2, 4]},
                                                              "feedback"]}), check=False)
    assert [(p.csi, p.bits) for p in long.image_link.points()][::2] == [
        ("perfect", None), ("feedback", 2), ("feedback", 4), ("feedback", 8)] * 2  # 2 sizes
    for bad, msg in [
        ({"csi": ["magic"]}, r"image_link\.csi\[0\]"),
        ({"csi": [{"mode": "perfect", "bits": [4]}]}, "bits are for mode feedback only"),
        ({"csi": [{"mode": "feedback", "bits": [13]}]}, "feedback bits per real must be 1..12"),
        ({"feedback_bits": [0]}, "feedback bits per real must be 1..12"),
        ({"sizes": [99]}, "a MIMO size is 1..64"),
        ({"snr_db": [200]}, r"snr_db values must be in \[-50, 100\]"),
        ({"uplink": {"snr_db": "loud"}}, "snr_db"),
        ({"uplink": {"seed": 3}}, "uplink.seed"),
        ({"typo": 1}, r"image_link\.typo: unknown field \(allowed: bundles, images"),
    ]:
        with pytest.raises(InvalidInput, match=msg):
            load_scenario(_scenario(tmp_path, {**good, **bad}), check=False)
    with pytest.raises(InvalidInput, match="dataset: required field is missing"):
        load_scenario(_scenario(tmp_path, good, models="csinet-b128"), check=False)
    # On disk: the file, the split, the count, the bundle's family.
    with pytest.raises(InvalidInput, match="image_link.images.path: no such file"):
        load_scenario(_scenario(tmp_path, {**good, "images": {"path": "nope.h5"}}))
    with pytest.raises(InvalidInput, match="image_link.images.split: .* no split 'val'"):
        load_scenario(_scenario(tmp_path, {**good, "images": {"path": images, "split": "val"}}))
    with pytest.raises(InvalidInput, match="has 8 images, start 0 \\+ n 9 is more"):
        load_scenario(_scenario(tmp_path, {**good, "images": {"path": images, "n": 9}}))
    if (Path("bundles") / "csinet-b128").is_dir():
        with pytest.raises(InvalidInput, match="family 'csinet', not an image-link family"):
            load_scenario(_scenario(tmp_path, {**good, "bundles": ["csinet-b128"]}))


# --------------------------------------------------------------------------- the services


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    from models.lcfsc.export import make_tiny_bundle

    root = tmp_path_factory.mktemp("image-link")
    return {
        "bundle": make_tiny_bundle(root / "lcfsc-tiny", model_id="lcfsc-tiny", image_size=IMAGE),
        "svd": make_tiny_bundle(
            root / "svd-tiny", model_id="svd-tiny", image_size=IMAGE, csi_masking=False, precoding="svd"
        ),
        "images": write_images(root / "images.h5"),
        "pool": write_pool(root / "pool.h5"),
        "root": root,
    }


@pytest.fixture(scope="module")
def stack(files: dict[str, Path]):
    """BS, channel emulator and UE as processes; each addresses the others by fixed free ports
    (the image link's hops go both ways)."""
    from csilink.client import LinkClient

    tmp = files["root"]
    p_bs, p_ch, p_ue = _free_ports(3)
    bundle, svd = str(files["bundle"]), str(files["svd"])
    bs_args = ["--device", "cpu", "--bundle", bundle, "--bundle", svd,
               "--image-dataset", str(files["images"]),
               "--channel", f"127.0.0.1:{p_ch}"]
    ch_args = ["--bs", f"127.0.0.1:{p_bs}", "--ue", f"127.0.0.1:{p_ue}", "--mimo-pool", str(files["pool"])]
    bs = Node("bs", "bs_service", bs_args, tmp / "bs.log", tmp / "bs.port")
    ch = Node("channel", "channel_emulator", ch_args, tmp / "ch.log", tmp / "ch.port")
    ue = Node("ue", "ue_service", ["--channel", f"127.0.0.1:{p_ch}", "--bundle", bundle, "--bundle", svd],
              tmp / "ue.log", tmp / "ue.port")
    started: list[Node] = []
    try:
        for node, port in ((bs, p_bs), (ch, p_ch), (ue, p_ue)):
            started.append(start_node(node, port=port))
        client = LinkClient(ue.addr, ch.addr, bs.addr, timeout_s=120)
        client.wait_ready(60)
        client.configure_channel({"ideal": True, "seed": 7}, reset_links=True)
        yield client
        client.close()
    finally:
        codes = {n.name: stop_node(n) for n in reversed(started)}
        bad = {k: v for k, v in codes.items() if v not in (0, None)}
        if bad:
            logs = "\n".join(f"--- {n.name}\n{n.log.read_text()[-2000:]}" for n in started)
            raise RuntimeError(f"services did not stop cleanly: {bad}\n{logs}")


MODEL = "lcfsc-tiny"


def _keys(*idx: int) -> list[tuple[str, str, int]]:
    return [("img-test", "test", i) for i in idx]


def _acquire(stack, block: int, n: int = 2, seq: int = 1, bits: int = 6, **kw: object):
    return stack.acquire_mimo_csi(ue_id=0, block=block, nt=n, nr=n, snr_db=kw.pop("snr_db", 10.0), seq=seq,
                                  model_id=MODEL, feedback_bits=bits, **kw)


def test_models_load_as_image_link_ends(stack) -> None:
    bs = {m.model_id: m for m in stack.list_models("bs")}
    ue = {m.model_id: m for m in stack.list_models("ue")}
    assert bs[MODEL].family == ue[MODEL].family == "lcfsc" and bs[MODEL].target == "image"
    assert not ue[MODEL].is_default  # an image receiver never becomes the CSI default
    with pytest.raises(LinkError) as e:
        stack.send([("", "test", 0)], model_id=MODEL)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "image-link receiver" in e.value.details


@pytest.mark.parametrize("n", [2, 4])
def test_feedback_link_end_to_end(stack, n: int) -> None:
    acq = _acquire(stack, block=10 + n, n=n, seq=100 + n, bits=6)
    assert acq.feedback_ok and acq.feedback.code == "OK", acq.feedback
    assert acq.feedback_bits == acq.feedback.payload_bits == 16 + 2 * n * n * 6
    assert acq.feedback.model_id == il.MIMO_CSI_MODEL and acq.feedback.rate == f"{n}x{n}b6"
    assert acq.feedback.target == "h/mimo" and acq.feedback.h_ad.shape == (n, n)
    assert acq.h_est.shape == acq.h_true.shape == (n, n) and np.isfinite(acq.nmse_db)
    assert acq.h_source.startswith("pool pool.h5") and acq.estimator == "model"
    # What the BS stored is the UE's estimate, quantized at 6 bits per real.
    assert metrics.nmse_db(acq.h_est[None], acq.feedback.h_ad[None]) < -20
    out = stack.send_image(_keys(0, 1, 2), ue_id=0, block=10 + n, nt=n, nr=n, model_id=MODEL, snr_db=10.0,
                           csi_mode="feedback", seq=100 + n, csi_seq=100 + n)
    assert out.images.shape == (3, IMAGE, IMAGE, 3) and out.images.dtype == np.uint8
    assert (out.csi_mode, out.csi_seq, out.model_id, out.model_version) == ("feedback", 100 + n, MODEL, "1")
    assert out.n_symbols > 0 and out.h_source == acq.h_source
    t = out.timings
    assert t["bs_encode_ns"] > 0 and t["ue_decode_ns"] > 0 and t["channel_process_ns"] > 0
    assert t["bs_total_ns"] >= t["bs_channel_rpc_ns"] >= t["channel_total_ns"] >= t["channel_ue_rpc_ns"]


def test_precoded_bundle_through_the_services(stack) -> None:
    """An SVD-precoding bundle: the BS precodes with the fed-back H and sends DMRS, the UE fits
    H W and decodes; with noiseless data the fed-back and the perfect CSI give the same images
    (the UE equalises with the H W it fits, whatever precoder was used), and a channel
    other than the one fed back still decodes (the DMRS carry the mismatch)."""
    acq = stack.acquire_mimo_csi(ue_id=0, block=61, nt=2, nr=2, snr_db=100.0, seq=61, model_id="svd-tiny",
                                 feedback_bits=8, estimator="ls")  # noiseless LS: the UE knows H exactly
    assert acq.feedback_ok
    fb = stack.send_image(_keys(0, 1), ue_id=0, block=61, nt=2, model_id="svd-tiny", snr_db=100.0,
                          csi_mode="feedback", seq=61, csi_seq=61)
    pf = stack.send_image(_keys(0, 1), ue_id=0, block=61, nt=2, model_id="svd-tiny", snr_db=100.0,
                          csi_mode="perfect", h_true=acq.h_true, seq=61)
    assert fb.images.shape == pf.images.shape == (2, IMAGE, IMAGE, 3)
    assert np.max(np.abs(fb.images.astype(int) - pf.images.astype(int))) <= 2
    other = stack.send_image(_keys(0, 1), ue_id=0, block=61, nt=2, model_id="svd-tiny", snr_db=100.0,
                             csi_mode="perfect", h_true=np.eye(2, dtype=np.complex64), seq=61)
    assert other.images.shape == (2, IMAGE, IMAGE, 3)
    with pytest.raises(LinkError) as e:  # a precoder needs CSI
        stack.send_image(_keys(0), ue_id=0, block=61, nt=2, model_id="svd-tiny", snr_db=10.0, csi_mode="none")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_same_seed_same_images(stack) -> None:
    def once(seq: int) -> np.ndarray:
        _acquire(stack, block=3, n=4, seq=seq)
        return stack.send_image(_keys(4, 5), ue_id=0, block=3, nt=4, model_id=MODEL, snr_db=5.0,
                                seq=seq, csi_seq=seq).images

    a, b = once(50), once(50)
    np.testing.assert_array_equal(a, b)
    a1 = stack.acquire_mimo_csi(ue_id=0, block=3, nt=4, snr_db=5.0, seq=50)
    a2 = stack.acquire_mimo_csi(ue_id=0, block=3, nt=4, snr_db=5.0, seq=51)
    np.testing.assert_array_equal(a1.h_true, a2.h_true)  # one block, one H
    assert not np.allclose(a1.h_est, a2.h_est)  # other pilot noise


def test_noiseless_sounding_gives_the_true_channel(stack) -> None:
    acq = stack.acquire_mimo_csi(ue_id=0, block=99, nt=8, snr_db=100.0, seq=1, estimator="ls")
    assert acq.estimator == "ls" and acq.feedback is None and acq.feedback_bits == 0
    assert np.max(np.abs(acq.h_est - acq.h_true)) < 1e-4 and acq.nmse_db < -80


def test_perfect_and_none_csi(stack) -> None:
    acq = _acquire(stack, block=20, n=2, seq=7, bits=0)
    out = stack.send_image(_keys(3), ue_id=0, block=20, nt=2, model_id=MODEL, snr_db=10.0,
                           csi_mode="perfect", h_true=acq.h_true, seq=7)
    assert out.csi_mode == "perfect" and out.images.shape == (1, IMAGE, IMAGE, 3)
    with pytest.raises(LinkError) as e:  # the tiny bundle masks with CSI
        stack.send_image(_keys(3), ue_id=0, block=20, nt=2, model_id=MODEL, snr_db=10.0, csi_mode="none")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "csi_mode 'none'" in e.value.details
    with pytest.raises(LinkError, match="needs h_true"):
        stack.send_image(_keys(3), ue_id=0, block=20, nt=2, model_id=MODEL, snr_db=10.0, csi_mode="perfect")


def test_lost_feedback_leaves_the_bs_without_csi(stack) -> None:
    stack.configure_channel({"ideal": False, "snr_db": -30, "n_rx": 1}, ue_ids=[5])  # hopeless uplink
    try:
        acq = stack.acquire_mimo_csi(ue_id=5, block=1, nt=2, snr_db=10.0, seq=3, model_id=MODEL,
                                     feedback_bits=8)
    finally:
        stack.configure_channel({"ideal": True, "seed": 7}, reset_links=True)
    assert not acq.feedback_ok and acq.feedback.code == "DATA_LOSS" and acq.feedback.dropped
    with pytest.raises(LinkError) as e:
        stack.send_image(_keys(0), ue_id=5, block=1, nt=2, model_id=MODEL, snr_db=10.0)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "no CSI of ue 5 block 1" in e.value.details


@pytest.fixture
def still_healthy(stack):
    yield
    assert set(stack.health().values()) == {"SERVING"}


@pytest.mark.usefixtures("still_healthy")
def test_bad_requests_get_clear_statuses(stack) -> None:
    from csilink.rpc import ch_pb, complex_to_pb, il_pb, pb, set_payload, ue_pb

    _acquire(stack, block=40, n=2, seq=400)

    def fails(code: grpc.StatusCode, text: str, fn, *a, **kw) -> None:
        with pytest.raises(LinkError) as e:
            fn(*a, **kw)
        assert e.value.code == code and text in e.value.details, (e.value.code, e.value.details)

    send = stack.send_image
    kw = {"ue_id": 0, "block": 40, "nt": 2, "snr_db": 10.0}
    fails(grpc.StatusCode.NOT_FOUND, "no image-link model 'nope'", send, _keys(0), model_id="nope", **kw)
    fails(grpc.StatusCode.INVALID_ARGUMENT, "serves 2x2, 4x4, 8x8 MIMO, got 3x3", send, _keys(0),
          model_id=MODEL, **{**kw, "nt": 3})
    fails(grpc.StatusCode.NOT_FOUND, "no image 99", send, _keys(99), model_id=MODEL, **kw)
    fails(grpc.StatusCode.NOT_FOUND, "no split 'val'", send, [("img-test", "val", 0)], model_id=MODEL, **kw)
    fails(grpc.StatusCode.FAILED_PRECONDITION, "no CSI of ue 0 block 41", send, _keys(0), model_id=MODEL,
          **{**kw, "block": 41})
    fails(grpc.StatusCode.FAILED_PRECONDITION, "from report seq 400, the request wants seq 399", send,
          _keys(0), model_id=MODEL, csi_seq=399, **kw)
    fails(grpc.StatusCode.FAILED_PRECONDITION, "is 2x2 (Nr x Nt), the request is 4x4", send, _keys(0),
          model_id=MODEL, **{**kw, "nt": 4})
    fails(grpc.StatusCode.INVALID_ARGUMENT, "csi_mode must be one of", send, _keys(0), model_id=MODEL,
          csi_mode="psychic", **kw)
    fails(grpc.StatusCode.INVALID_ARGUMENT, "snr_db must be a number", send, _keys(0), model_id=MODEL,
          **{**kw, "snr_db": float("nan")})
    stack.configure("bs", {"max_images": 2})
    try:
        fails(grpc.StatusCode.RESOURCE_EXHAUSTED, "exceeds the BS limit of 2", send, _keys(0, 1, 2),
              model_id=MODEL, **kw)
    finally:
        stack.configure("bs", {"max_images": 256})
    acq = stack.acquire_mimo_csi
    fails(grpc.StatusCode.INVALID_ARGUMENT, "feedback_bits must be 0", acq, ue_id=0, block=1, nt=2,
          snr_db=10.0, model_id=MODEL, feedback_bits=13)
    fails(grpc.StatusCode.INVALID_ARGUMENT, "nt must be 1..64", acq, ue_id=0, block=1, nt=0, snr_db=10.0)
    fails(grpc.StatusCode.INVALID_ARGUMENT, "estimator must be", acq, ue_id=0, block=1, nt=2, snr_db=1.0,
          estimator="guess")
    fails(grpc.StatusCode.NOT_FOUND, "no model 'nope'", acq, ue_id=0, block=1, nt=2, snr_db=1.0,
          model_id="nope")

    # The emulator's TransmitMimo and the UE's ReceiveImage, called directly.
    link = il_pb.MimoLinkId(ue_id=0, block=40, nt=2, nr=2)
    n_sym = stack.send_image(_keys(0), model_id=MODEL, csi_seq=400, **kw).n_symbols

    def transmit(x: np.ndarray, model: str = MODEL) -> None:
        req = ch_pb.TransmitMimoRequest(link=link, model_id=model, model_version="1", snr_db=10.0,
                                        symbols=complex_to_pb(x))
        stack._call("channel", "TransmitMimo", req)

    good = np.ones((1, 2, n_sym // 2), np.complex64)
    fails(grpc.StatusCode.INVALID_ARGUMENT, "NaN or Inf", transmit, np.full_like(good, np.nan))
    fails(grpc.StatusCode.INVALID_ARGUMENT, "symbols must be [B, Nt, n] with Nt = link.nt = 2", transmit,
          np.ones((1, 4, n_sym // 4), np.complex64))
    fails(grpc.StatusCode.INVALID_ARGUMENT, f"({n_sym} symbols per image over 2 streams)", transmit,
          good[:, :, :-1])
    fails(grpc.StatusCode.NOT_FOUND, "no model 'other'", transmit, good, "other")
    fails(grpc.StatusCode.INVALID_ARGUMENT, "average power", transmit, good * 10)
    transmit(good)  # and the good one passes
    req = ue_pb.ReceiveImageRequest(link=il_pb.MimoLinkId(ue_id=0, block=12345, nt=2, nr=2), model_id=MODEL,
                                    model_version="1", snr_db=10.0, y=complex_to_pb(good))
    fails(grpc.StatusCode.FAILED_PRECONDITION, "no channel estimate of ue 0 block 12345", stack._call, "ue",
          "ReceiveImage", req)
    req.model_version = "2"
    fails(grpc.StatusCode.FAILED_PRECONDITION, "version mismatch", stack._call, "ue", "ReceiveImage", req)

    # mimo-csi reports straight to the BS: per-report statuses.
    def report(seq: int, rate: str, payload: object, block: int | None = 40, version: str = "1") -> object:
        r = pb.CsiReport(ue_id=0, seq=seq, model_id=il.MIMO_CSI_MODEL, model_version=version, rate=rate)
        if block is not None:
            r.block = block
        set_payload(r, payload)
        return r

    bits, rate = il.encode_csi(np.eye(2, dtype=np.complex64), 4)
    out = stack.decode([
        report(900, "2x2b5", bits),
        report(901, "two", bits),
        report(902, rate, bits, block=None),
        report(903, rate, np.ones(3, np.complex64)),
        report(904, rate, bits, version="9"),
        report(905, rate, Bits(bits.data, bits.n_bits)),
    ])
    assert [o.code for o in out] == ["INVALID_ARGUMENT"] * 4 + ["FAILED_PRECONDITION", "OK"]
    assert "needs 56" in out[0].message and "'<Nr>x<Nt>b<bits>'" in out[1].message
    assert "has no block" in out[2].message and "bitstreams" in out[3].message
    assert "version mismatch" in out[4].message and out[5].h_ad.shape == (2, 2)


def test_runner_scores_the_image_link(stack, files: dict[str, Path], tmp_path: Path) -> None:
    from csilink.runner import run_scenario

    sec = {"bundles": [str(files["bundle"])], "images": {"path": str(files["images"]), "n": 4},
           "sizes": [2], "snr_db": [0, 20], "csi": ["perfect", "feedback"], "feedback_bits": [4],
           "images_per_block": 2, "uplink": {"ideal": True}}
    p = _scenario(tmp_path, sec, seed=3, output=str(tmp_path / "out"))
    res = run_scenario(p, stack.addrs["ue"], stack.addrs["channel"], stack.addrs["bs"], plots=False)
    rows = [pr.row for pr in res.image_points]
    assert [(r["csi"], r["snr_db"]) for r in rows] == [("perfect", 0.0), ("perfect", 20.0),
                                                        ("feedback", 0.0), ("feedback", 20.0)]
    for r in rows:
        assert r["ok"] == r["images"] == 4 and r["errors"] == r["dropped"] == 0, res.image_points[0].reasons
        assert np.isfinite(r["psnr_db"]) and 0 <= r["ms_ssim"] <= 1 and np.isfinite(r["h_nmse_db"])
        assert r["model"] == MODEL and r["size"] == "2x2" and r["h_source"].startswith("pool")
    assert rows[2]["feedback_payload_bits"] == 16 + 2 * 4 * 4 and np.isfinite(rows[2]["csi_nmse_db"])
    assert rows[0]["csi_nmse_db"] is None or not np.isfinite(rows[0]["csi_nmse_db"])
    # The pilots are cleaner at 20 dB than at 0 dB.
    assert rows[1]["h_nmse_db"] < rows[0]["h_nmse_db"]
    names = {f.name for f in res.files}
    assert {"image_results.csv", "images.csv", "results.json"} <= names and "results.csv" not in names
    doc = yaml.safe_load((tmp_path / "out" / "results.json").read_text())
    assert len(doc["image_link"]["points"]) == 4 and MODEL in str(doc["provenance"]["image_bundles"])
    # Same scenario again: the same images, so the same scores.
    res2 = run_scenario(p, stack.addrs["ue"], stack.addrs["channel"], stack.addrs["bs"], write=False)
    assert [pr.row["psnr_db"] for pr in res2.image_points] == [r["psnr_db"] for r in rows]


# --------------------------------------------------------------------------- the shipped link


SHIPPED_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "image-link.yaml"


def test_shipped_bundle_through_the_compose_services(tmp_path: Path) -> None:
    """The shipped scenario, trimmed to a few images, with the shipped bundle, the committed
    image sample and channel pool, on the services docker-compose.yml describes (as `csilink run`
    starts them): a trained transmitter/receiver pair decodes real images far above the
    mid-grey floor, and better at 20 dB than at 0 dB."""
    from csilink.runner import run_scenario

    sc = yaml.safe_load(SHIPPED_SCENARIO.read_text())
    root = SHIPPED_SCENARIO.parents[1]
    for ref in sc["image_link"]["bundles"]:
        if not (root / "bundles" / ref).is_dir():
            pytest.skip(f"bundle {ref} not shipped yet")
    sec = sc["image_link"]
    sec["images"]["path"] = str(root / sec["images"]["path"])
    sec["images"]["n"] = 6
    sec.update(sizes=[2], snr_db=[0, 20], csi=["feedback"], feedback_bits=[6])
    sc["output"] = str(tmp_path / "out")
    p = tmp_path / "image-link.yaml"
    p.write_text(yaml.safe_dump(sc))
    res = run_scenario(p, plots=False)
    rows = [pr.row for pr in res.image_points]
    assert [r["ok"] for r in rows] == [6, 6], res.image_points[0].reasons
    lo, hi = (r["psnr_db"] for r in rows)
    assert 17.0 < lo < hi, (lo, hi)  # mid-grey scores ~13 dB; the shipped model ~21 / 25 dB
