"""BS node settings (YAML ``--config`` file, its ``bs:`` section when present, plus flags)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class HookChoice(BaseModel):
    """A hook by registered name plus its options (e.g. ``{"name": "ddim", "steps": 2}``)."""

    model_config = ConfigDict(extra="allow")
    name: str = "none"

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k != "name"}


class ModelHooks(BaseModel):
    """Hooks of one model; unset = what the bundle's manifest asks (``bs.refinement`` /
    ``bs.fusion``), or none."""

    model_config = ConfigDict(extra="forbid")
    refiner: HookChoice | None = None
    fusion: HookChoice | None = None


class BsSettings(BaseModel):
    """Everything the BS node needs. Fields marked (start) cannot change over ``Configure``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = "127.0.0.1"  # (start)
    port: int = Field(50053, ge=0, le=65535)  # (start)
    #: Dataset files for side information (bs_view only: y_*, sensors); keys with an empty
    #: dataset_id read the first one.
    datasets: list[str] = Field(default_factory=list)
    #: Bundles loaded at start (folders or model ids under bundle_roots).
    bundles: list[str] = Field(default_factory=list)
    bundle_roots: list[str] = Field(default_factory=lambda: ["bundles"])
    #: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1"...  (start)
    device: str = "auto"
    #: torch intra-op threads on the CPU (start). One thread per batcher costs the least CPU per
    #: report on a small shared machine (two threads: +8% CPU for the CsiNet-class decoder);
    #: 0 = torch's default (all cores).
    torch_threads: int = Field(1, ge=0, le=256)
    #: "dynamic": int8 weights for the torch decoders' Linear layers, activations quantized on the
    #: fly (torch dynamic quantization, CPU only; 4x smaller FC layers, docs/cllwcsinet.md);
    #: decoders without Linear layers are unchanged. "none": fp32 (start)
    decoder_quant: Literal["none", "dynamic"] = "none"
    #: "frozen": the CPU decoders of the learned families run as a frozen TorchScript graph,
    #: checked against the eager module at load (same function, ~1.3-1.5x less CPU at batch 1;
    #: docs/performance.md); "eager": plain PyTorch modules (start)
    decoder_graph: Literal["frozen", "eager"] = "frozen"
    #: Dynamic batching: a decoder batch closes at max_batch reports or max_wait_ms after its
    #: first report arrived, whichever comes first.
    max_batch: int = Field(256, ge=1, le=65536)
    max_wait_ms: float = Field(0.0, ge=0.0, le=10_000.0)
    #: Hooks per model id (overrides the manifest).
    hooks: dict[str, ModelHooks] = Field(default_factory=dict)
    #: Largest Decode request (reports); beyond: RESOURCE_EXHAUSTED.
    max_batch_reports: int = Field(4096, ge=1, le=1 << 20)
    #: Payload limits per report (beyond: RESOURCE_EXHAUSTED).
    max_bits: int = Field(1 << 20, ge=1)
    max_symbols: int = Field(1 << 16, ge=1)
    #: The BS's own uplink CSI (side information y_*) as an SRS estimate at this SNR (dB):
    #: white noise at this level relative to each sample's power, keyed by (srs_seed, world
    #: sample) so a sample always gets the same estimate. None: the true uplink CSI.
    srs_snr_db: float | None = Field(None, ge=-50.0, le=100.0)
    srs_seed: int = Field(0, ge=0)
    #: SNR given to SNR-adaptive decoders when the report's is not finite (ideal link).
    #: None = the decoder's own default (its training range's top).
    ideal_snr_db: float | None = None
    #: Longest a Decode waits for its batches (s); the caller's own deadline caps it.
    decode_timeout_s: float = Field(60.0, gt=0.0, le=3600.0)
    #: Recent results kept for idempotent retries (by ue_id, seq).
    cache_size: int = Field(4096, ge=0, le=1 << 22)
    #: Image link: the channel emulator (SendImage -> TransmitMimo).  (start)
    channel_addr: str = "127.0.0.1:50052"
    #: Image link: image files (csilink-images/1) the BS sends from; keys with an empty
    #: dataset_id read the first one. Files missing at start are skipped with a warning.
    image_datasets: list[str] = Field(default_factory=list)
    #: Image link: fed-back CSI kept by (ue_id, block) (oldest dropped).  (start)
    csi_store_size: int = Field(4096, ge=1, le=1 << 20)
    #: Image link: most images in one SendImage.
    max_images: int = Field(256, ge=1, le=65536)
    #: Image link: deadline of the forwarding to the emulator (s); the caller's own caps it.
    forward_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    max_message_mb: int = Field(64, ge=1, le=2047)  # (start)
    max_workers: int = Field(16, ge=1, le=256)  # (start)
    grace_s: float = Field(5.0, ge=0.0, le=600.0)  # (start)


FROZEN = (
    "host", "port", "device", "torch_threads", "decoder_quant", "decoder_graph", "max_message_mb",
    "max_workers", "grace_s", "channel_addr", "csi_store_size",
)
