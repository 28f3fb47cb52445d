"""Offline evaluation of bundles of any registered family, in one process.

Per bundle and rate: the UE half runs exactly as on the UE node (``shared.ue_encoder``: int8
ONNX Runtime + the numpy wire step), the reports go over an ideal link (digital) or AWGN at
each requested SNR (analog, in-process, seeded), the payload is unpacked as on the BS node
(``shared.wire`` codec of the rate, or the family decoder's ``unpack``) and decoded by
``models.registry.load_bs_decoder``. Metrics (``shared.metrics``) on unnormalized CSI:

* ``nmse_db_ad``: NMSE over the cropped angular-delay matrix, every evaluated sample;
* ``nmse_db_sf``, ``rho``, ``sgcs``: spatial-frequency domain against the stored full SF truth
  (``x_sf``, usually the first <= 1000 test samples: ``n_sf``); when the split has no SF truth
  they are computed against the cropped truth (``ad_to_sf(x_ad)``), ``sf_truth = "cropped"``,
  and ``nmse_db_sf`` is left empty.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared import metrics
from shared.bundle import Bundle, resolve
from shared.errors import BundleError, InvalidInput
from shared.transforms import ad_to_sf
from shared.wire import Bits, from_spec

log = logging.getLogger(__name__)

DEFAULT_SNRS = (0.0, 10.0, 20.0)
BATCH = 1000


@dataclass
class Row:
    """One (bundle, rate, SNR) result."""

    model: str
    family: str
    rate: str
    bits: int | None
    symbols: int | None
    snr_db: float | None
    n: int
    nmse_db_ad: float
    nmse_db_sf: float | None
    rho: float
    sgcs: float
    n_sf: int
    sf_truth: str
    target: str
    ue_ms_per_report: float
    bs_ms_per_report: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Truth:
    """What the evaluator reads from the dataset split (the runner's truth + the BS's side fields)."""

    x_ad: np.ndarray  # [N, Nt, T] complex64: the UE's measurement and the x target
    z_ad: np.ndarray | None  # [N, Nt, T]: future DL CSI (target "z")
    x_sf: np.ndarray | None  # [M, Nt, Nc] complex64, M <= N
    z_sf: np.ndarray | None
    side: dict[str, np.ndarray]  # BS-visible fields by name, [N, ...]
    n_subcarriers: int
    dataset_id: str


def load_truth(dataset: str | Path, split: str, n: int | None, needs: set[str]) -> Truth:
    """Read ``n`` samples of ``split`` (all when None) plus SF truth and the BS fields in ``needs``."""
    from shared.dataset import open_dataset

    with open_dataset(dataset) as ds:
        sp = ds.split(split)
        total = len(sp)
        m = total if n is None else min(int(n), total)
        if m < 1:
            raise InvalidInput(f"{dataset}: split {split!r} has no samples to evaluate")

        def opt(name: str, rows: int) -> np.ndarray | None:
            if name not in sp.fields:
                return None
            k = min(rows, sp.shape(name)[0])
            return sp.read(name, slice(0, k)) if k else None

        x_ad = sp.read("x_ad", slice(0, m))
        z_ad = opt("z_ad", m)
        x_sf, z_sf = opt("x_sf", m), opt("z_sf", m)
        bs = ds.bs_view().split(split)
        side = {k: bs.read(k, slice(0, m)) for k in sorted(needs)}
        return Truth(x_ad, z_ad, x_sf, z_sf, side, ds.n_subcarriers, ds.dataset_id)


def _unpacker(bundle: Bundle, rate: str, decoder: Any) -> Any:
    """``payload -> latent`` as on the BS node: the shared.wire codec, or the decoder's ``unpack``."""
    m = bundle.manifest
    spec = m.rate(rate).wire or m.ue.wire
    try:
        codec = from_spec(spec, bundle.path)
    except InvalidInput:
        unpack = getattr(decoder, "unpack", None)
        if unpack is None:
            raise BundleError(f"bundle {m.model_id}: wire kind {spec.get('kind')!r} has no decoder") from None
        return unpack
    return lambda p: codec.decode(p, m.latent_size)


def _awgn(symbols: list[np.ndarray], snr_db: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Complex AWGN, ``N0 = 10^(-snr/10)`` per symbol (symbols have unit average power)."""
    std = np.sqrt(10.0 ** (-snr_db / 10.0) / 2.0)
    out = []
    for s in symbols:
        n = rng.normal(0, std, (2, s.size))
        out.append((s + (n[0] + 1j * n[1])).astype(np.complex64))
    return out


def score(truth: Truth, target: str, h_hat: np.ndarray) -> dict[str, Any]:
    """AD NMSE on all samples; SF NMSE / rho / SGCS against full SF truth where it exists."""
    h_ad = truth.x_ad if target == "x" else truth.z_ad
    if h_ad is None:
        raise InvalidInput(f"dataset has no {target}_ad truth for this bundle's target")
    sf = truth.x_sf if target == "x" else truth.z_sf
    out: dict[str, Any] = {"nmse_db_ad": metrics.nmse_db(h_ad, h_hat)}
    if sf is not None and len(sf):
        k = len(sf)
        h_sf_hat = ad_to_sf(h_hat[:k], truth.n_subcarriers)
        out.update(nmse_db_sf=metrics.nmse_db(sf, h_sf_hat), n_sf=k, sf_truth="full")
        s = metrics.summary(sf, h_sf_hat)
    else:
        k = len(h_ad)
        h_sf, h_sf_hat = ad_to_sf(h_ad, truth.n_subcarriers), ad_to_sf(h_hat, truth.n_subcarriers)
        out.update(nmse_db_sf=None, n_sf=k, sf_truth="cropped")
        s = metrics.summary(h_sf, h_sf_hat)
    out.update(rho=s["rho"], sgcs=s["sgcs"])
    return out


def evaluate_bundle(
    bundle: Bundle,
    truth: Truth,
    snrs: tuple[float, ...] = DEFAULT_SNRS,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
    fp32: bool = False,
    refinement: dict[str, Any] | None | str = "bundle",
    rates: list[str] | None = None,
) -> list[Row]:
    """Every rate of ``bundle`` (and every SNR for analog rates) on ``truth``.

    ``fp32``: run the bundle's fp32 ONNX encoder instead of the int8 one (int8 benchmark).
    ``refinement``: the BS refiner spec (``bs_service.hooks``), ``"bundle"`` = the manifest's
    ``bs.refinement`` as the BS node would run it, None = decoder only. ``rates``: a subset.
    """
    from bs_service.hooks import make_refiner
    from models.registry import load_bs_decoder
    from shared.ue_encoder import UeEncoder

    m = bundle.manifest
    enc = UeEncoder.from_bundle(bundle, threads=threads, fp32=fp32)
    dec = load_bs_decoder(bundle, device)
    spec = m.bs.refinement if refinement == "bundle" else refinement
    refiner = make_refiner(spec if isinstance(spec, dict) else None, bundle, dec)
    side_all = {k: truth.side[k] for k in m.bs.needs}
    rows: list[Row] = []
    n = len(truth.x_ad)
    for rate in m.rates:
        if rates is not None and rate.name not in rates:
            continue
        unpack = _unpacker(bundle, rate.name, dec)
        t0 = time.perf_counter()
        reports: list[Bits | np.ndarray] = []
        for i in range(0, n, BATCH):
            reports.extend(enc.encode(truth.x_ad[i : i + BATCH], rate.name))
        ue_ms = (time.perf_counter() - t0) * 1e3 / n
        analog = rate.symbols is not None
        for snr in snrs if analog else (None,):
            if snr is not None:
                # one stream per (model, rate, snr): results do not depend on evaluation order
                key = zlib.crc32(f"{m.model_id}/{rate.name}/{snr}".encode())
                rx = _awgn(reports, float(snr), np.random.default_rng([seed, key]))  # type: ignore[arg-type]
            else:
                rx = reports
            t1 = time.perf_counter()
            lat = np.stack([unpack(p) for p in rx]).astype(np.float32)
            parts = []
            for i in range(0, n, BATCH):
                side = {k: v[i : i + BATCH] for k, v in side_all.items()}
                snr_arr = None if snr is None else np.full(len(lat[i : i + BATCH]), snr, np.float32)
                h_b = dec.decode_batch(lat[i : i + BATCH], side, snr_arr)
                parts.append(refiner.refine(h_b, lat[i : i + BATCH], side, snr_arr))
            h_hat = np.concatenate(parts)
            bs_ms = (time.perf_counter() - t1) * 1e3 / n
            sc = score(truth, m.target.field, h_hat)
            rows.append(
                Row(
                    model=m.model_id,
                    family=m.family,
                    rate=rate.name,
                    bits=rate.bits,
                    symbols=rate.symbols,
                    snr_db=snr,
                    n=n,
                    nmse_db_ad=sc["nmse_db_ad"],
                    nmse_db_sf=sc["nmse_db_sf"],
                    rho=sc["rho"],
                    sgcs=sc["sgcs"],
                    n_sf=sc["n_sf"],
                    sf_truth=sc["sf_truth"],
                    target=m.target.field,
                    ue_ms_per_report=ue_ms,
                    bs_ms_per_report=bs_ms,
                )
            )
            log.info("%s %s snr=%s: NMSE %.2f dB (AD)", m.model_id, rate.name, snr, sc["nmse_db_ad"])
    return rows


def evaluate(
    refs: list[str],
    dataset: str | Path,
    split: str = "test",
    n: int | None = None,
    snrs: tuple[float, ...] = DEFAULT_SNRS,
    seed: int = 0,
    roots: tuple[str, ...] = ("bundles",),
    device: str = "cpu",
    threads: int = 1,
) -> tuple[list[Row], dict[str, Any]]:
    """Load every bundle (verified), read the truth once, evaluate all. Returns (rows, context)."""
    bundles = [Bundle.load(resolve(r, roots)) for r in refs]
    if not bundles:
        raise InvalidInput("no bundles to evaluate")
    needs = {k for b in bundles for k in b.manifest.bs.needs}
    truth = load_truth(dataset, split, n, needs)
    rows: list[Row] = []
    for b in bundles:
        rows.extend(evaluate_bundle(b, truth, snrs, seed, device, threads))
    ctx = {
        "dataset": str(dataset),
        "dataset_id": truth.dataset_id,
        "split": split,
        "n": len(truth.x_ad),
        "n_sf": 0 if truth.x_sf is None else len(truth.x_sf),
        "snr_db": list(snrs),
        "seed": seed,
        "bundles": {
            b.model_id: {
                "version": b.version,
                "family": b.family,
                "path": str(b.path),
                "manifest_sha256": _manifest_digest(b),
                "training": b.manifest.training,
            }
            for b in bundles
        },
    }
    return rows, ctx


def _manifest_digest(b: Bundle) -> str:
    from shared.bundle import MANIFEST, sha256_file

    return sha256_file(b.path / MANIFEST)


def rows_as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        d = asdict(r)
        d.pop("extra")
        out.append(d)
    return out
