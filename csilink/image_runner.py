"""The downlink semantic image link in a scenario: the ``image_link:`` section and its runner.

numpy + gRPC only (no torch). The section (docs/scenarios.md, docs/image_link.md)::

    image_link:
      bundles: [lcfsc-mse]            # image-link bundles to compare (same bundle on BS and UE)
      images: {path: data/sample/rt-images-sample.h5, split: test, n: 48}
      sizes: [2, 4, 8]                # square MIMO Nt = Nr
      snr_db: [0, 10, 20]             # downlink SNR per stream (shared/mimo.py)
      csi: [perfect, feedback, none]  # what the BS's encoder gets; also {mode: feedback, bits: [2, 8]}
      feedback_bits: [4, 8]           # bits per real of the fed-back H (a bare "feedback")
      estimator: model                # UE channel estimator: model (learned) | ls
      uplink: {mode: awgn, snr_db: 10, crc: crc11}   # the digital uplink carrying the feedback
      images_per_block: 1             # images sent over one channel realisation
      seed: null                      # default: the scenario's seed

The sweep is the product bundles x sizes x (csi, bits) x snr_db, in that order. At every point,
for each block ``b`` (``images_per_block`` images): the UE sounds, estimates and (``feedback``)
feeds the quantized H back (:meth:`LinkClient.acquire_mimo_csi`), then the BS sends the images
(:meth:`LinkClient.send_image`). Block ``b`` is the same channel realisation H at every point of a
size (H is keyed by seed, UE and block only), so CSI modes, bit widths and SNRs are compared on
the same channels; the noise is keyed by the per-point seq. An image whose feedback was lost on
the uplink is not sent (outcome ``dropped``: the BS has no CSI for it); it is counted, not scored.

Scores per image against the truth image of the same file: PSNR (peak 255) and MS-SSIM
(``shared.metrics``); per block: NMSE of the UE's estimate and of the BS's CSI against the
true H (simulation metadata from the emulator's sounding).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from shared import image_link as il
from shared import metrics
from shared.errors import CsilinkError, InvalidInput, NotFound

log = logging.getLogger(__name__)

#: Image-link sequence numbers start here, clear of the CSI-report sweep's seqs of the same UE.
SEQ_BASE = 1 << 40

#: Columns of image_results.csv, in order.
IMAGE_ROW_FIELDS = (
    "point", "label", "bundle", "model", "size", "nt", "nr", "csi", "feedback_bits", "feedback_payload_bits",
    "estimator", "snr_db", "images", "ok", "dropped", "errors", "psnr_db", "ms_ssim", "h_nmse_db",
    "csi_nmse_db", "n_symbols", "uplink_ber", "latency_p50_ms", "latency_p99_ms", "acquire_p50_ms",
    "wall_s", "h_source",
)
#: Columns of images.csv (one row per image).
IMAGE_FIELDS = (
    "point", "block", "index", "status", "reason", "psnr_db", "ms_ssim", "h_nmse_db", "csi_nmse_db",
    "latency_ms", "acquire_ms", "feedback_bit_errors",
)


# --------------------------------------------------------------------------- the section


class ImageSource(BaseModel):
    """Which images: the first ``n`` from ``start`` of a split of an image file."""

    model_config = ConfigDict(extra="forbid")
    path: str
    split: str = "test"
    n: int = Field(16, ge=1, le=1_000_000)
    start: int = Field(0, ge=0)


class CsiSpec(BaseModel):
    """One CSI entry in the long form: ``{mode: feedback, bits: [2, 8]}`` (``bits`` only for
    ``feedback``; unset = the section's ``feedback_bits``)."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["perfect", "feedback", "none"]
    bits: list[StrictInt] | None = None

    @field_validator("bits", mode="before")
    @classmethod
    def _bits_list(cls, v: Any) -> Any:
        return v if v is None or isinstance(v, list) else [v]

    @field_validator("bits")
    @classmethod
    def _bits_ok(cls, v: list[int] | None, info: Any) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty list sweeps over nothing; give at least one value")
            for b in v:
                if not 1 <= b <= 12:
                    raise ValueError(f"feedback bits per real must be 1..12, got {b}")
            if info.data.get("mode") != "feedback":
                raise ValueError("bits are for mode feedback only")
        return v


class ImageLinkSection(BaseModel):
    """The validated ``image_link:`` section (module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    bundles: list[str]
    images: ImageSource
    sizes: list[StrictInt] = Field(default_factory=lambda: [2, 4, 8])
    snr_db: list[StrictInt | StrictFloat] = Field(default_factory=lambda: [10.0])
    csi: list[Literal["perfect", "feedback", "none"] | CsiSpec] = Field(default_factory=lambda: ["feedback"])
    feedback_bits: list[StrictInt] = Field(default_factory=lambda: [6])
    estimator: Literal["model", "ls"] = "model"
    #: LinkConfig fields of the UE's uplink at the emulator (carries the CSI feedback).
    uplink: dict[str, Any] = Field(default_factory=dict)
    images_per_block: int = Field(1, ge=1, le=4096)
    ue_id: int = Field(0, ge=0, le=2**32 - 1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    #: Deadline of one AcquireMimoCsi / SendImage call, seconds.
    deadline_s: float = Field(60.0, gt=0, le=3600)

    @field_validator("bundles", "sizes", "snr_db", "csi", "feedback_bits", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        if not isinstance(v, list):
            v = [v]
        elif not v:
            raise ValueError("an empty list sweeps over nothing; give at least one value")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes_ok(cls, v: list[int]) -> list[int]:
        for n in v:
            if not 1 <= n <= il.MAX_ANTENNAS:
                raise ValueError(f"a MIMO size is 1..{il.MAX_ANTENNAS} antennas, got {n}")
        return v

    @field_validator("snr_db")
    @classmethod
    def _snr_ok(cls, v: list[float]) -> list[float]:
        lo, hi = il.SNR_RANGE_DB
        for s in v:
            if not (math.isfinite(s) and lo <= s <= hi):
                raise ValueError(f"snr_db values must be in [{lo:g}, {hi:g}] dB, got {s}")
        return [float(s) for s in v]

    @field_validator("feedback_bits")
    @classmethod
    def _bits_ok(cls, v: list[int]) -> list[int]:
        for b in v:
            if not 1 <= b <= 12:
                raise ValueError(f"feedback bits per real must be 1..12, got {b}")
        return v

    @field_validator("uplink")
    @classmethod
    def _uplink_ok(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "seed" in v:
            raise ValueError("uplink.seed: set the section's (or the scenario's) seed instead")
        from channel_emulator.config import LinkConfig

        LinkConfig.from_mapping(v)  # InvalidInput naming the field
        return v

    def points(self) -> list[ImagePoint]:
        """The sweep: bundles x sizes x (csi, bits) x snr_db, SNR innermost."""
        modes: list[tuple[str, int | None]] = []
        for c in self.csi:
            mode, bits = (c, None) if isinstance(c, str) else (c.mode, c.bits)
            new = [(mode, b) for b in (bits or self.feedback_bits)] if mode == "feedback" else [(mode, None)]
            modes += [m for m in new if m not in modes]
        out = []
        for bundle in self.bundles:
            for n in self.sizes:
                for c, b in modes:
                    for snr in self.snr_db:
                        out.append(ImagePoint(len(out), bundle, n, c, b, snr))
        return out


@dataclass
class ImagePoint:
    index: int
    bundle: str
    size: int
    csi: str
    bits: int | None
    snr_db: float

    def label(self) -> str:
        csi = f"feedback {self.bits} b" if self.csi == "feedback" else self.csi
        return f"{Path(self.bundle).name}, {self.size}x{self.size}, {csi}, {self.snr_db:g} dB"


@dataclass
class ResolvedImageLink:
    """The section with its image file and bundles checked on disk."""

    section: ImageLinkSection
    image_path: Path
    bundles: dict[str, Path]  # reference -> bundle folder
    model_ids: dict[str, str]  # reference -> model id


def check_image_link(sec: ImageLinkSection, source: str, scenario_file: Path | None,
                     bundle_roots: tuple[str | Path, ...]) -> ResolvedImageLink:
    """The image file, its split and size, and the bundles (image-link families)."""
    from csilink.scenario import resolve_path
    from shared.bundle import Bundle, resolve
    from shared.image_data import ImageFile

    p = resolve_path(sec.images.path, scenario_file)
    if not p.is_file():
        raise InvalidInput(f"{source}: image_link.images.path: no such file: {sec.images.path}")
    try:
        f = ImageFile(p)
    except CsilinkError as exc:
        raise InvalidInput(f"{source}: image_link.images.path: {exc}") from None
    try:
        count = f.count(sec.images.split)
    except NotFound as exc:
        raise InvalidInput(f"{source}: image_link.images.split: {exc}") from None
    finally:
        f.close()
    if sec.images.start + sec.images.n > count:
        raise InvalidInput(f"{source}: image_link.images: split {sec.images.split!r} of {p} has {count} "
                           f"images, start {sec.images.start} + n {sec.images.n} is more")
    bundles: dict[str, Path] = {}
    ids: dict[str, str] = {}
    roots = (*bundle_roots, *(() if scenario_file is None else (scenario_file.parent,)))
    for i, ref in enumerate(sec.bundles):
        where = f"image_link.bundles[{i}]"
        try:
            path = resolve(resolve_path(ref, scenario_file) if "/" in ref else ref, roots)
            m = Bundle.load(path).manifest
        except NotFound:
            raise NotFound(f"{source}: {where}: unknown bundle {ref!r} (not a bundle folder, and no model "
                           f"id under {', '.join(map(str, roots))})") from None
        except CsilinkError as exc:
            raise InvalidInput(f"{source}: {where}: {exc}") from None
        if not il.is_image_family(m.family):
            raise InvalidInput(f"{source}: {where}: bundle {m.model_id} is family {m.family!r}, not an "
                               f"image-link family ({', '.join(il.IMAGE_FAMILIES)})")
        bundles[ref], ids[ref] = path, m.model_id
    return ResolvedImageLink(sec, p, bundles, ids)


# --------------------------------------------------------------------------- results


@dataclass
class ImageRecord:
    """The one outcome of one image (a row of images.csv)."""

    point: int
    block: int
    index: int
    status: str = "pending"  # ok | dropped | error
    reason: str = ""
    psnr_db: float = math.nan
    ms_ssim: float = math.nan
    h_nmse_db: float = math.nan
    csi_nmse_db: float = math.nan
    latency_ms: float = math.nan
    acquire_ms: float = math.nan
    feedback_bit_errors: int = 0


@dataclass
class ImagePointResult:
    point: ImagePoint
    row: dict[str, Any]
    records: list[ImageRecord]
    reasons: dict[str, int] = field(default_factory=dict)
    #: Reconstructions uint8 [n_ok, S, S, 3] in image order (``keep_reconstructions`` only).
    images: np.ndarray | None = None


def _nmse_db(h: np.ndarray, h_hat: np.ndarray) -> float:
    return float(10 * np.log10(max(float(metrics.nmse(h[None], h_hat[None])[0]), 1e-30)))


def _mean_db(values: list[float]) -> float:
    """dB of the mean of the linear values (as the NMSE definition wants)."""
    v = [10 ** (x / 10) for x in values if math.isfinite(x)]
    return float(10 * np.log10(np.mean(v))) if v else math.nan


class ImageLinkRunner:
    """Runs the ``image_link`` sweep against a connected :class:`csilink.client.LinkClient`."""

    def __init__(self, resolved: ResolvedImageLink, client: Any, seed: int, *,
                 keep_reconstructions: bool = False, on_point: Any = None, on_progress: Any = None) -> None:
        from shared.image_data import ImageFile

        self.rs = resolved
        self.sec = resolved.section
        self.client = client
        self.seed = self.sec.seed if self.sec.seed is not None else seed
        self.keep = keep_reconstructions
        self.on_point = on_point or (lambda p: None)
        self.on_progress = on_progress or (lambda n: None)
        self._truth = ImageFile(resolved.image_path)
        self.dataset_id = self._truth.dataset_id
        self._loaded: set[str] = set()

    def close(self) -> None:
        self._truth.close()

    def setup(self, pt: ImagePoint) -> None:
        """The bundle on both nodes, the image file at the BS, the uplink with the seed."""
        from channel_emulator.config import LinkConfig

        path = str(self.rs.bundles[pt.bundle].resolve())
        if path not in self._loaded:
            self.client.load_model(path, nodes=("ue", "bs"), make_default=False)
            self._loaded.add(path)
        # Exactly the scenario's file: the BS then reads what the runner scores against (and a
        # start-up path that does not exist cannot fail the strict Configure).
        want = str(self.rs.image_path.resolve())
        if self.client.configure("bs", {}).get("image_datasets") != [want]:
            self.client.configure("bs", {"image_datasets": [want]})
        link = LinkConfig.from_mapping({**self.sec.uplink, "seed": self.seed})
        self.client.configure_channel(link.model_dump(mode="json"), reset_links=True)

    def run_point(self, pt: ImagePoint) -> ImagePointResult:
        self.on_point(pt)
        self.setup(pt)
        sec, k = self.sec, self.sec.images_per_block
        model_id = self.rs.model_ids[pt.bundle]
        idx = np.arange(sec.images.start, sec.images.start + sec.images.n)
        n_blocks = -(-idx.size // k)
        truth = self._truth.read(sec.images.split, idx)
        records = [ImageRecord(pt.index, i // k, int(j)) for i, j in enumerate(idx)]
        recon: dict[int, np.ndarray] = {}
        meta: dict[str, Any] = {"n_symbols": 0, "h_source": "", "bits_on_air": 0, "bit_errors": 0}
        t_start = time.perf_counter()
        for b in range(n_blocks):
            recs = records[b * k : (b + 1) * k]
            seq = SEQ_BASE + pt.index * n_blocks + b
            self._block(pt, b, seq, recs, truth[b * k : b * k + len(recs)], model_id, recon, meta)
            self.on_progress(len(recs))
        wall = time.perf_counter() - t_start
        return self._summarize(pt, records, recon, meta, wall)

    def _block(self, pt: ImagePoint, b: int, seq: int, recs: list[ImageRecord], want: np.ndarray,
               model_id: str, recon: dict[int, np.ndarray], meta: dict[str, Any]) -> None:
        """One block: acquire the CSI, send its images, score them (outcomes into ``recs``)."""
        from csilink.client import LinkError

        sec = self.sec
        t0 = time.perf_counter()
        try:
            acq = self.client.acquire_mimo_csi(
                ue_id=sec.ue_id, block=b, nt=pt.size, nr=pt.size, snr_db=pt.snr_db, seq=seq,
                model_id=model_id if sec.estimator == "model" else "", estimator=sec.estimator,
                feedback_bits=pt.bits if pt.csi == "feedback" else 0, want_true_h=True,
                timeout_s=sec.deadline_s)
        except LinkError as exc:
            for r in recs:
                r.status, r.reason = "error", f"acquire: {exc.node}: {exc.code.name}: {exc.details}"
            return
        acq_ms = (time.perf_counter() - t0) * 1e3
        h_nmse = acq.nmse_db
        csi_nmse = math.nan
        fb = acq.feedback
        for r in recs:
            r.acquire_ms, r.h_nmse_db = acq_ms, h_nmse
            r.feedback_bit_errors = fb.channel.bit_errors if fb is not None else 0
        meta["h_source"] = meta["h_source"] or acq.h_source
        if fb is not None:
            meta["bits_on_air"] += fb.channel.n_bits_on_air
            meta["bit_errors"] += fb.channel.bit_errors
        if pt.csi == "feedback":
            if fb is None or not fb.ok:
                lost = fb is not None and fb.dropped
                if fb is None:
                    why = "no feedback"
                elif lost:
                    why = f"feedback lost on the uplink: {fb.channel.drop_reason or fb.message}"
                else:
                    why = f"feedback: {fb.stage}: {fb.code}: {fb.message}"
                for r in recs:
                    r.status, r.reason = ("dropped" if lost else "error"), why
                return
            if acq.h_true is not None and fb.h_ad is not None:
                csi_nmse = _nmse_db(acq.h_true, fb.h_ad)
        for r in recs:
            r.csi_nmse_db = csi_nmse
        keys = [(self.dataset_id, sec.images.split, r.index) for r in recs]
        t0 = time.perf_counter()
        try:
            out = self.client.send_image(
                keys, ue_id=sec.ue_id, block=b, nt=pt.size, nr=pt.size, model_id=model_id,
                snr_db=pt.snr_db, csi_mode=pt.csi, h_true=acq.h_true if pt.csi == "perfect" else None,
                seq=seq, csi_seq=seq if pt.csi == "feedback" else None, timeout_s=sec.deadline_s)
        except LinkError as exc:
            for r in recs:
                r.status, r.reason = "error", f"send: {exc.node}: {exc.code.name}: {exc.details}"
            return
        ms = (time.perf_counter() - t0) * 1e3
        meta["n_symbols"] = out.n_symbols
        if out.images.shape[0] != len(recs):
            raise InvalidInput(f"point {pt.index} block {b}: {out.images.shape[0]} images back "
                               f"for {len(recs)}")
        if out.images.shape != want.shape:
            for r in recs:
                r.status = "error"
                r.reason = f"reconstruction {list(out.images.shape[1:])} vs truth {list(want.shape[1:])}"
            return
        ps, ms_ssim = metrics.psnr(want, out.images), metrics.ms_ssim(want, out.images)
        for i, r in enumerate(recs):
            r.status, r.latency_ms = "ok", ms
            r.psnr_db, r.ms_ssim = float(ps[i]), float(ms_ssim[i])
            recon[r.index] = out.images[i]

    def _summarize(self, pt: ImagePoint, records: list[ImageRecord], recon: dict[int, np.ndarray],
                   meta: dict[str, Any], wall: float) -> ImagePointResult:
        ok = [r for r in records if r.status == "ok"]
        dropped = [r for r in records if r.status == "dropped"]
        errors = [r for r in records if r.status == "error"]
        if len(ok) + len(dropped) + len(errors) != len(records):
            raise AssertionError(f"image point {pt.index}: not every image has one outcome")
        lat = np.array([r.latency_ms for r in ok])
        acq = np.array([r.acquire_ms for r in records if math.isfinite(r.acquire_ms)])
        blocks = {r.block: r for r in records}.values()
        row: dict[str, Any] = dict.fromkeys(IMAGE_ROW_FIELDS)
        row.update(
            point=pt.index, label=pt.label(), bundle=pt.bundle, model=self.rs.model_ids[pt.bundle],
            size=f"{pt.size}x{pt.size}", nt=pt.size, nr=pt.size, csi=pt.csi, feedback_bits=pt.bits,
            feedback_payload_bits=(16 + 2 * pt.size * pt.size * pt.bits) if pt.bits else None,
            estimator=self.sec.estimator, snr_db=pt.snr_db, images=len(records), ok=len(ok),
            dropped=len(dropped), errors=len(errors),
            psnr_db=float(np.mean([r.psnr_db for r in ok])) if ok else math.nan,
            ms_ssim=float(np.mean([r.ms_ssim for r in ok])) if ok else math.nan,
            h_nmse_db=_mean_db([r.h_nmse_db for r in blocks]),
            csi_nmse_db=_mean_db([r.csi_nmse_db for r in blocks]),
            n_symbols=meta["n_symbols"] or None,
            uplink_ber=meta["bit_errors"] / meta["bits_on_air"] if meta["bits_on_air"] else math.nan,
            latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else math.nan,
            latency_p99_ms=float(np.percentile(lat, 99)) if lat.size else math.nan,
            acquire_p50_ms=float(np.percentile(acq, 50)) if acq.size else math.nan,
            wall_s=wall, h_source=meta["h_source"],
        )
        from collections import Counter

        res = ImagePointResult(pt, row, records, dict(Counter(r.reason for r in records if r.status != "ok")))
        if self.keep and recon:
            res.images = np.stack([recon[i] for i in sorted(recon)])
        return res

    def run(self) -> list[ImagePointResult]:
        try:
            return [self.run_point(pt) for pt in self.sec.points()]
        finally:
            self.close()


# --------------------------------------------------------------------------- outputs


def _cell(v: Any) -> Any:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def write_image_outputs(points: list[ImagePointResult], out_dir: Path) -> list[Path]:
    """image_results.csv (one row per point) and images.csv (one row per image)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    p1 = out_dir / "image_results.csv"
    with open(p1, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=IMAGE_ROW_FIELDS)
        w.writeheader()
        for pr in points:
            w.writerow({k: _cell(pr.row.get(k)) for k in IMAGE_ROW_FIELDS})
    p2 = out_dir / "images.csv"
    with open(p2, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=IMAGE_FIELDS)
        w.writeheader()
        for pr in points:
            for r in pr.records:
                w.writerow({k: _cell(v) for k, v in asdict(r).items()})
    return [p1, p2]


def image_json(points: list[ImagePointResult], resolved: ResolvedImageLink) -> dict[str, Any]:
    """The ``image_link`` part of results.json."""
    return {
        "images": {"path": str(resolved.image_path), **resolved.section.images.model_dump(mode="json")},
        "points": [{"row": pr.row, "reasons": pr.reasons} for pr in points],
    }


def image_bundle_provenance(resolved: ResolvedImageLink) -> dict[str, Any]:
    import hashlib

    from shared.bundle import Bundle

    out = {}
    for ref, path in resolved.bundles.items():
        m = Bundle.load(path, verify=False).manifest
        out[ref] = {"model_id": m.model_id, "version": m.version, "family": m.family, "path": str(path),
                    "manifest_sha256": hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()}
    return out
