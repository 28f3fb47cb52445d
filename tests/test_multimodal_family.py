"""The ``multimodal`` family through the product: the thermometer wire kind, a bundle exported
from a (briefly trained) codec with a fusion branch, the BS decoder and its ``mm-sensor``
fusion hook, the scenario section, and a scenario through the three services on the committed
ray-traced sample (UE sends bits only, BS fetches its camera image)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from shared.errors import InvalidInput
from shared.wire import Bits, ThermometerCodec, from_spec

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "rt-street-sample.h5"

torch.set_num_threads(1)


def _boundaries(seed: int = 0) -> np.ndarray:
    from models.multimodal.quantizer import ThermometerQuantizer

    q = ThermometerQuantizer(48)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        q.b1.add_(0.2 * torch.randn(q.b1.shape, generator=g))
        q.beta.mul_(1 + 0.5 * torch.rand(q.beta.shape, generator=g))
    return q.boundaries().detach().numpy()


# --------------------------------------------------------------------------- wire
@pytest.mark.parametrize("bits", [48, 49, 76, 95, 96, 143, 144])
def test_thermometer_wire_equals_the_training_quantizer(bits: int) -> None:
    from models.multimodal.nets import as_bits
    from models.multimodal.quantizer import ThermometerQuantizer

    b = _boundaries(bits)
    q = ThermometerQuantizer(48)
    with torch.no_grad():
        q.b1.copy_(torch.from_numpy(b[:, :1]))
        q.beta.copy_(torch.from_numpy(np.diff(b, axis=1)))
    z = np.random.default_rng(bits).normal(0, 0.7, (20, 48)).astype(np.float32)
    codec = ThermometerCodec(b, bits)
    wire = np.stack([codec.decode(codec.encode(v), 48) for v in z])
    with torch.no_grad():
        zs = q(torch.from_numpy(z), as_bits(bits))[0].numpy()
    np.testing.assert_array_equal(wire, zs)
    assert all(codec.encode(v).n_bits == bits for v in z[:3])


def test_thermometer_wire_refuses_bad_input() -> None:
    b = _boundaries()
    codec = ThermometerCodec(b, 76)
    with pytest.raises(InvalidInput, match="bitstream has 75 bits"):
        codec.decode(Bits(bytes(10), 75), 48)
    with pytest.raises(InvalidInput, match="NaN or Inf"):
        codec.encode(np.full(48, np.nan, np.float32))
    with pytest.raises(InvalidInput, match="features"):
        codec.encode(np.zeros(47, np.float32))
    with pytest.raises(InvalidInput, match="outside"):
        ThermometerCodec(b, 145)
    with pytest.raises(InvalidInput, match="ordered"):
        ThermometerCodec(b[:, ::-1], 48)
    with pytest.raises(InvalidInput, match="symbols"):
        codec.decode(np.zeros(24, np.complex64), 48)
    with pytest.raises(InvalidInput, match="boundaries"):
        from_spec({"kind": "thermometer", "boundaries": "b.npy", "bits": 48})


# --------------------------------------------------------------------------- bundle
@pytest.fixture(scope="module")
def mm_bundle(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A bundle exported from a codec trained for a few steps on the sample, with an image
    branch (Ne = 32) and an uplink branch (Ne = 4) whose refiners are perturbed from their
    zero init, so fusing changes the output."""
    from models.multimodal.export import export_bundle
    from models.multimodal.nets import MultiModalCodec

    tmp = tmp_path_factory.mktemp("mm")
    torch.manual_seed(0)
    codec = MultiModalCodec()
    torch.save({"model": codec.state_dict(), "config": {"stage": "stage1"}, "state": {}}, tmp / "s1.pt")
    runs = []
    for sensor, ne in (("image", 32), ("uplink", 4)):
        m = MultiModalCodec(fusion=sensor, ne=ne)
        with torch.no_grad():
            for p in m.refiner.parameters():
                p.add_(0.05 * torch.randn_like(p))
        path = tmp / f"{sensor}{ne}.pt"
        torch.save({"model": m.state_dict(), "config": {"fusion": sensor, "ne": ne}, "state": {}}, path)
        runs.append((sensor, ne, str(path)))
    return export_bundle(tmp / "s1.pt", tmp / "mm-test", runs, [str(SAMPLE)], calib_n=16, check_n=8)


def _sample(n: int = 8, kind: str = "image") -> dict[str, np.ndarray]:
    with h5py.File(SAMPLE, "r") as f:
        g = f["test"]
        rows = np.flatnonzero(g["has_image"][:] == (kind == "image"))[:n]
        return {k: g[k][rows] for k in ("x_sf", "y_sf", "image", "has_image", "sample_id")}


def test_bundle_manifest(mm_bundle: object) -> None:
    m = mm_bundle.manifest  # type: ignore[attr-defined]
    assert m.family == "multimodal" and m.latent_size == 48 and m.input_shape == [32, 576]
    assert (m.target.field, m.target.domain) == ("x", "sf")
    assert [r.bits for r in m.rates] == list(range(48, 145, 4))
    files = {"boundaries.npy", "fusion-image-ne32.safetensors", "fusion-uplink-ne4.safetensors"}
    assert files <= set(m.files)
    assert m.ue.config["int8_check"]["worst_delta_db"] < 0.3


def test_ue_int8_encoder_is_scale_free(mm_bundle: object) -> None:
    from shared.ue_encoder import UeEncoder

    ue = UeEncoder.from_bundle(mm_bundle)  # type: ignore[arg-type]
    x = _sample(4)["x_sf"]
    a, b = ue.latents(x), ue.latents(x * np.float32(1e3))
    assert a.shape == (4, 48)
    np.testing.assert_allclose(a, b, atol=0.05)
    assert [r.n_bits for r in ue.encode(x, "b76")] == [76] * 4


def test_bs_decoder_fusion_and_errors(mm_bundle: object) -> None:
    from models.multimodal.bs_hooks import SensorFusion
    from models.registry import load_bs_decoder
    from shared.ue_encoder import UeEncoder

    dec = load_bs_decoder(mm_bundle, "cpu")  # type: ignore[arg-type]
    s = _sample(6)
    ue = UeEncoder.from_bundle(mm_bundle)  # type: ignore[arg-type]
    codec = from_spec(mm_bundle.manifest.rate("b48").wire, mm_bundle.path)  # type: ignore[attr-defined]
    lat = np.stack([codec.decode(r, 48) for r in ue.encode(s["x_sf"], "b48")])
    alone = dec.decode_batch(lat, {}, None)
    assert alone.shape == (6, 32, 576) and alone.dtype == np.complex64
    np.testing.assert_allclose(np.mean(np.abs(alone) ** 2, axis=(1, 2)), 1.0, rtol=1e-4)

    hook = SensorFusion(mm_bundle, dec, sensor="image", ne=32)
    assert hook.needs == ["image", "has_image"]
    fused = dec.decode_batch(lat, {"image": s["image"], "has_image": s["has_image"]}, None)
    assert np.abs(fused - alone).max() > 1e-4  # the branch runs
    # rows the camera did not see decode from the report alone
    seen = np.array([True, False, True, False, True, False])
    mixed = dec.decode_batch(lat, {"image": s["image"], "has_image": seen}, None)
    np.testing.assert_allclose(mixed[~seen], alone[~seen], atol=1e-5)
    np.testing.assert_allclose(mixed[seen], fused[seen], atol=1e-5)

    with pytest.raises(InvalidInput, match="uint8"):
        dec.decode_batch(lat, {"image": s["image"].astype(np.float32), "has_image": s["has_image"]}, None)
    with pytest.raises(InvalidInput, match="no fusion branch uplink/Ne=32"):
        SensorFusion(mm_bundle, dec, sensor="uplink", ne=32)
    with pytest.raises(InvalidInput, match="sensor must be"):
        SensorFusion(mm_bundle, dec, sensor="lidar")
    with pytest.raises(InvalidInput, match="unknown option"):
        SensorFusion(mm_bundle, dec, sensor="image", steps=3)

    SensorFusion(mm_bundle, dec, sensor="uplink", ne=4)
    up = dec.decode_batch(lat, {"y_sf": s["y_sf"]}, None)
    assert np.abs(up - alone).max() > 1e-4
    bad = s["y_sf"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        dec.decode_batch(lat, {"y_sf": bad}, None)


def test_car_box_features() -> None:
    from shared.camera import car_box_batch, car_box_features

    img = np.full((192, 256, 3), 120, np.uint8)  # grey street
    assert not car_box_features(img).any()  # no car: all zero
    img[100:110, 40:60] = (200, 10, 10)  # the red car
    f = car_box_features(img)
    assert f[0] == 1.0
    np.testing.assert_allclose(f[1:7], [49.5 / 256, 104.5 / 192, 40 / 256, 59 / 256, 100 / 192, 109 / 192])
    assert car_box_batch(np.stack([img, img])).shape == (2, 8)
    with pytest.raises(ValueError, match="uint8"):
        car_box_features(img.astype(np.float32))


def test_box_branch_trained_on_the_shipped_codec_and_added_in_place(tmp_path: Path) -> None:
    """Stage 2 from the shipped bundle (its ONNX encoder, boundaries and decoder), the branch
    added to a copy of it, decoded at the BS from the camera image through the detector."""
    import shutil

    from models.multimodal.bs_hooks import SensorFusion
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle
    from training.multimodal import main as train_main

    bundle = tmp_path / "mm-swin"
    shutil.copytree(ROOT / "bundles" / "mm-swin", bundle)
    run = tmp_path / "s2-box"
    assert train_main(["stage2", "--data", str(SAMPLE), "--fusion", "box", "--ne", "4", "--init", str(bundle),
                       "--minutes", "0.02", "--rates-per-step", "1", "--out", str(run)]) == 0
    ck = torch.load(run / "best.pt", weights_only=False)
    assert ck["model"]["extractor.std"].min() > 0  # standardized with the training rows
    before = (bundle / "encoder.int8.onnx").read_bytes()
    assert train_main(["add-branch", "--data", str(SAMPLE), "--out", str(bundle),
                       "--branch", f"box:4:{run}"]) == 0
    b = Bundle.load(bundle)  # hashes verified
    assert (bundle / "encoder.int8.onnx").read_bytes() == before  # the UE half is untouched
    branches = {(c["sensor"], c["ne"]) for c in b.manifest.bs.config["branches"]}
    assert ("box", 4) in branches and ("image", 32) in branches
    dec = load_bs_decoder(b, "cpu")
    hook = SensorFusion(b, dec, sensor="box", ne=4)
    assert hook.needs == ["image", "has_image"]
    s = _sample(4)
    lat = np.zeros((4, 48), np.float32)
    alone = dec.decode_batch(lat, {}, None)
    with torch.no_grad():  # W_r starts at zero: perturb so the branch visibly acts
        for p in dec.branches[("box", 4)].refiner.parameters():
            p.add_(0.05)
    fused = dec.decode_batch(lat, {"image": s["image"], "has_image": s["has_image"]}, None)
    assert fused.shape == (4, 32, 576) and np.abs(fused - alone).max() > 1e-4


def test_scenario_fusion_section_is_validated(tmp_path: Path) -> None:
    from csilink.scenario import load_scenario

    sc = {"name": "mm", "dataset": {"path": str(SAMPLE), "split": "test"}, "models": "x", "reports": 4,
          "channel": {"ideal": True}, "extensions": {"fusion": {"sensor": "lidar"}}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(sc))
    with pytest.raises(InvalidInput, match="fusion"):
        load_scenario(p, check=False)


def test_scenario_through_the_link_matches_in_process(mm_bundle: object, tmp_path: Path) -> None:
    """UE int8 encoder -> bits over the emulator -> BS decoder with its own camera image: the
    link's normalized NMSE equals the same chain run in-process, and fusion is what the BS did."""
    from csilink.runner import run_scenario, started_services
    from models.multimodal.bs_hooks import SensorFusion
    from models.registry import load_bs_decoder
    from shared import metrics
    from shared.ue_encoder import UeEncoder

    s = _sample(8)
    dec = load_bs_decoder(mm_bundle, "cpu")  # type: ignore[arg-type]
    ue = UeEncoder.from_bundle(mm_bundle)  # type: ignore[arg-type]
    SensorFusion(mm_bundle, dec, sensor="image", ne=32)
    want = {}
    for rate in ("b48", "b100"):
        codec = from_spec(mm_bundle.manifest.rate(rate).wire, mm_bundle.path)  # type: ignore[attr-defined]
        lat = np.stack([codec.decode(r, 48) for r in ue.encode(s["x_sf"], rate)])
        for fused in (False, True):
            side = {"image": s["image"], "has_image": s["has_image"]} if fused else {}
            h = dec.decode_batch(lat, side, None)
            want[(rate, fused)] = 10 * np.log10(metrics.nmse_normalized(s["x_sf"], h).mean())

    with started_services(SAMPLE) as svc:
        for fused in (False, True):
            sc = {"name": "mm", "dataset": {"path": str(SAMPLE), "split": "test"},
                  "models": str(mm_bundle.path), "rate": ["b48", "b100"], "reports": 8,  # type: ignore[attr-defined]
                  "channel": {"ideal": True}, "seed": 0, "batch": 8, "output": str(tmp_path / str(fused)),
                  "extensions": {"fusion": {"sensor": "image" if fused else "none", "ne": 32}}}
            p = tmp_path / f"{fused}.yaml"
            p.write_text(yaml.safe_dump(sc))
            res = run_scenario(p, svc.addrs["ue"], svc.addrs["channel"], svc.addrs["bs"], plots=False)
            for row in res.rows:
                assert row["ok"] == row["sent"] == 8 and row["payload"] == int(row["rate"][1:])
                assert row["nmse_db_sf"] == pytest.approx(want[(row["rate"], fused)], abs=0.01)
    assert abs(want[("b48", True)] - want[("b48", False)]) > 1e-4


def test_results_section_for_sf_bundles(mm_bundle: object) -> None:
    """docs/RESULTS.md's section of SF-domain bundles: every rate x BS input the bundle declares,
    plus the Type II codebook on the same samples; AD-domain bundles are left out."""
    from evaluation import sf_report

    rows = sf_report.evaluate_sf(mm_bundle, SAMPLE, n=8)  # type: ignore[arg-type]
    inputs = {r["bs_input"] for r in rows}
    assert inputs == {"report only", "+ image, Ne=32", "+ uplink, Ne=4"}
    assert sorted({r["bits"] for r in rows}) == [48, 96, 144]
    assert all(np.isfinite(r["nmse_db_sf"]) and 0 <= r["sgcs"] <= 1 for r in rows)
    t2 = sf_report.type2_rows(SAMPLE, n=8)
    assert [r["bits"] <= b for r, b in zip(t2, sf_report.RATES, strict=True)] == [True] * 3
    text = "\n".join(sf_report.render_sf(rows + t2, SAMPLE, 8))
    assert "| `mm-test` | b48 | 48 | + image, Ne=32 |" in text and "Type II" in text
