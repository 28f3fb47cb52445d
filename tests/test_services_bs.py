"""BS node: side information by world key through the hooks (bs_view only), idempotent retries."""

from __future__ import annotations

import numpy as np
import pytest

from bs_service.config import BsSettings
from bs_service.hooks import Fusion, Refiner, register_fusion, register_refiner
from bs_service.node import BsNode, Item
from shared.errors import DatasetError


@register_fusion("test-y-probe")
class YProbe(Fusion):
    needs = ["y_ad"]
    seen: list[np.ndarray] = []

    def fuse(self, latents, side, snr_db):
        YProbe.seen.append(side["y_ad"].copy())
        return latents


@register_fusion("test-x-peek")
class XPeek(Fusion):
    needs = ["x_ad"]  # the BS must never see the UE's measurement


@register_refiner("test-negate")
class Negate(Refiner):
    def refine(self, h_ad, latents, side, snr_db):
        return -h_ad * self.steps


@pytest.fixture(scope="module")
def world(link_dataset, tiny_bundles):
    """Dataset id, test keys, their x and y, and the digital payloads the UE would send."""
    from shared.bundle import Bundle
    from shared.dataset import open_dataset
    from shared.ue_encoder import UeEncoder

    with open_dataset(link_dataset) as ds:
        sp = ds.split("test")
        ids = sp.sample_ids[[5, 0, 3]]  # out of order on purpose
        idx = np.array([sp.index_of(i) for i in ids])
        x, y = sp.read("x_ad", idx), sp.read("y_ad", idx)
        did = ds.dataset_id
    payloads = UeEncoder.from_bundle(Bundle.load(tiny_bundles.digital)).encode(x, "b128")
    return did, ids, x, y, payloads


def _items(did, ids, payloads) -> list[Item]:
    return [
        Item("csinet-tiny", "1", "b128", p, (did, "test", int(i), 0))
        for p, i in zip(payloads, ids, strict=True)
    ]


def test_side_information_is_read_by_world_key(link_dataset, tiny_bundles, world) -> None:
    did, ids, _, y, payloads = world
    hooks = {
        "csinet-tiny": {"fusion": {"name": "test-y-probe"}, "refiner": {"name": "test-negate", "steps": 1}}
    }
    node = BsNode(BsSettings(datasets=[str(link_dataset)], device="cpu", hooks=hooks))
    try:
        ld = node.load_model(str(tiny_bundles.digital))
        assert ld.needs == ["y_ad"] and ld.fusion.name == "test-y-probe" and ld.refiner.steps == 1
        YProbe.seen.clear()
        out = node.decode(_items(did, ids, payloads), 30)
        assert all(o.error is None for o in out)
        assert np.array_equal(np.concatenate(YProbe.seen), y)  # each report got its own sample's UL CSI
        # The refiner ran after the decoder: the same decode without it is the negation.
        node.reconfigure(BsSettings(datasets=[str(link_dataset)], device="cpu"))
        plain = node.decode(_items(did, ids, payloads), 30)
        assert np.allclose(np.stack([o.h_ad for o in out]), -np.stack([o.h_ad for o in plain]))
        # An unknown sample fails alone.
        bad = _items(did, [ids[0], 10**9], payloads[:2])
        node.reconfigure(BsSettings(datasets=[str(link_dataset)], device="cpu", hooks=hooks))
        res = node.decode(bad, 30)
        assert res[0].error is None and "10" in str(res[1].error)
    finally:
        node.close()


def test_srs_estimation_noise_on_the_uplink_csi(link_dataset, tiny_bundles, world) -> None:
    """srs_snr_db: the side information is a noisy estimate at that SNR, the same for a sample
    on every read (keyed by the world sample), different between samples."""
    did, ids, _, y, payloads = world
    hooks = {"csinet-tiny": {"fusion": {"name": "test-y-probe"}}}
    node = BsNode(BsSettings(datasets=[str(link_dataset)], device="cpu", hooks=hooks, srs_snr_db=10.0))
    try:
        node.load_model(str(tiny_bundles.digital))
        YProbe.seen.clear()
        assert all(o.error is None for o in node.decode(_items(did, ids, payloads), 30))
        assert all(o.error is None for o in node.decode(_items(did, ids[::-1], payloads[::-1]), 30))
        first, again = YProbe.seen[0], YProbe.seen[1][::-1]
        assert np.array_equal(first, again)  # keyed: the same estimate on every read
        err = np.mean(np.abs(first - y) ** 2, axis=(1, 2)) / np.mean(np.abs(y) ** 2, axis=(1, 2))
        assert np.allclose(10 * np.log10(err), -10.0, atol=0.5)  # 1,024 entries: +-0.5 dB
        n = first - y
        assert not np.allclose(n[0], n[1])
    finally:
        node.close()


def test_bs_never_reads_the_ue_measurement(link_dataset, tiny_bundles, world) -> None:
    did, ids, _, _, payloads = world
    hooks = {"csinet-tiny": {"fusion": {"name": "test-x-peek"}}}
    node = BsNode(BsSettings(datasets=[str(link_dataset)], device="cpu", hooks=hooks))
    try:
        node.load_model(str(tiny_bundles.digital))
        out = node.decode(_items(did, ids, payloads), 30)
        assert all(
            isinstance(o.error, DatasetError) and "not visible in the bs view" in str(o.error) for o in out
        )
    finally:
        node.close()


def test_retried_decode_is_answered_once(link) -> None:
    c = link.client
    reports = [m.report for m in c.measure(link.keys(5), model_id="csinet-tiny", ue_id=13, seqs=range(5))]
    before = c.stats()["bs"]["counters"]
    first = c.decode(reports)
    second = c.decode(reports)
    after = c.stats()["bs"]["counters"]
    assert all(o.ok for o in first) and all(
        np.array_equal(a.h_ad, b.h_ad) for a, b in zip(first, second, strict=True)
    )
    assert after["reports_ok"] - before.get("reports_ok", 0) == 5  # counted once
    assert after["retries"] - before.get("retries", 0) == 5
    # Same (ue_id, seq), different payload: a new report, decoded again.
    other = c.measure(link.keys(1, start=7), model_id="csinet-tiny", ue_id=13, seqs=[0])[0].report
    again = c.decode([other])[0]
    assert again.ok and not np.array_equal(again.h_ad, first[0].h_ad)


def test_dynamic_decoder_quantization(link_dataset, tiny_bundles, world) -> None:
    """decoder_quant: dynamic swaps the FC layer for an int8 one: close to fp32, not identical."""
    did, ids, _, _, payloads = world
    outs = {}
    for quant in ("none", "dynamic"):
        node = BsNode(BsSettings(datasets=[str(link_dataset)], device="cpu", decoder_quant=quant))
        try:
            ld = node.load_model(str(tiny_bundles.digital))
            layers = {type(m).__module__ for m in ld.decoder.decoder.modules()}
            assert any("quantized" in mod for mod in layers) == (quant == "dynamic")
            out = node.decode(_items(did, ids, payloads), 30)
            assert all(o.error is None for o in out)
            outs[quant] = np.stack([o.h_ad for o in out])
        finally:
            node.close()
    rel = np.linalg.norm(outs["dynamic"] - outs["none"]) / np.linalg.norm(outs["none"])
    assert 0 < rel < 0.1, rel
    with pytest.raises(ValueError, match="decoder_quant"):
        BsSettings(decoder_quant="int4")


def test_frozen_decoder_graph_is_the_same_function(link_dataset, tiny_bundles, world) -> None:
    """decoder_graph: frozen (the default) runs a TorchScript twin checked at load; its output
    equals the eager module's at every batch size, digital and SNR-adaptive analog alike."""
    from models.common.bs_torch import freeze_decoder
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle

    did, ids, _, _, payloads = world
    outs = {}
    for graph in ("eager", "frozen"):
        node = BsNode(BsSettings(datasets=[str(link_dataset)], device="cpu", decoder_graph=graph))
        try:
            ld = node.load_model(str(tiny_bundles.digital))
            assert (ld.decoder.graph is not None) == (graph == "frozen")
            out = node.decode(_items(did, ids, payloads), 30)
            assert all(o.error is None for o in out)
            outs[graph] = np.stack([o.h_ad for o in out])
        finally:
            node.close()
    np.testing.assert_allclose(outs["frozen"], outs["eager"], rtol=0, atol=1e-5 * np.abs(outs["eager"]).max())

    dec = load_bs_decoder(Bundle.load(tiny_bundles.analog), "cpu")
    z = np.random.default_rng(0).standard_normal((7, dec.latent_size)).astype(np.float32)
    snr = np.linspace(-5, 20, 7).astype(np.float32)
    want = dec.decode_batch(z, {}, snr)
    assert freeze_decoder(dec) and dec.graph is not None
    for b in (1, 7):
        got = dec.decode_batch(z[:b], {}, snr[:b])
        np.testing.assert_allclose(got, want[:b], rtol=0, atol=1e-5 * np.abs(want).max())
    # the SNR input is live in the graph, not a constant captured at trace time
    assert not np.allclose(dec.decode_batch(z[:1], {}, snr[:1]), dec.decode_batch(z[:1], {}, snr[-1:]))


def test_freeze_keeps_eager_when_the_graph_differs(tiny_bundles) -> None:
    """A decoder whose control flow depends on the batch cannot be traced faithfully: the load
    check catches it and the eager module stays."""
    import torch

    from models.common.bs_torch import freeze_decoder
    from models.registry import load_bs_decoder
    from shared.bundle import Bundle

    class Branchy(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, z, snr=None):
            out = self.inner(z, snr)
            return out * 2 if z.shape[0] > 2 else out  # traced at batch 2: the branch is frozen

    dec = load_bs_decoder(Bundle.load(tiny_bundles.digital), "cpu")
    dec.decoder = Branchy(dec.decoder)
    assert not freeze_decoder(dec) and dec.graph is None
