"""UE node settings (YAML ``--config`` file, its ``ue:`` section when present, plus flags)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UeSettings(BaseModel):
    """Everything the UE node needs. Fields marked (start) cannot change over ``Configure``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = "127.0.0.1"  # (start) bind address
    port: int = Field(50051, ge=0, le=65535)  # (start) 0 = any free port
    channel_addr: str = "127.0.0.1:50052"  # (start) the channel emulator
    #: Dataset files; keys with an empty dataset_id read the first one. Only x_* is read.
    datasets: list[str] = Field(default_factory=list)
    #: Bundles loaded at start (folders or model ids under bundle_roots); the first is the default.
    bundles: list[str] = Field(default_factory=list)
    bundle_roots: list[str] = Field(default_factory=lambda: ["bundles"])
    #: Seed of the channel-estimation noise (draws keyed by (seed, ue_id, seq)).
    seed: int = Field(0, ge=0, lt=2**63)
    #: Default CSI-RS SNR (dB) of the UE's channel estimate; None = perfect CSI.
    csi_rs_snr_db: float | None = Field(None, ge=-50.0, le=100.0)
    #: Reports per encoder call.
    encode_batch: int = Field(256, ge=1, le=65536)
    #: onnxruntime intra-op threads per encoder.
    threads: int = Field(1, ge=1, le=64)
    #: Forwarding deadline to the emulator (s); the caller's own deadline caps it.
    forward_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    #: Largest request (reports); beyond: RESOURCE_EXHAUSTED.
    max_batch_reports: int = Field(4096, ge=1, le=1 << 20)
    #: SendReportStream: requests processed concurrently (pipelining encode and forwarding).
    stream_pipeline: int = Field(2, ge=1, le=16)
    #: Image link: channel estimates kept by (ue_id, block) for ReceiveImage (oldest dropped).
    estimate_cache_size: int = Field(4096, ge=1, le=1 << 20)  # (start)
    #: Image link: most images in one ReceiveImage.
    max_images: int = Field(256, ge=1, le=65536)
    max_message_mb: int = Field(64, ge=1, le=2047)  # (start)
    max_workers: int = Field(16, ge=1, le=256)  # (start)
    grace_s: float = Field(5.0, ge=0.0, le=600.0)  # (start)


FROZEN = (
    "host", "port", "channel_addr", "estimate_cache_size", "max_message_mb", "max_workers", "grace_s"
)
