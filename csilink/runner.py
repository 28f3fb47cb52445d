"""The scenario runner: drive the split link (UE -> channel emulator -> BS) with a scenario and
score what comes back. Library behind ``csilink run``; numpy + gRPC only (no torch).

>>> from csilink.runner import run_scenario                                  # doctest: +SKIP
>>> res = run_scenario("scenarios/default.yaml", ue="127.0.0.1:50051",
...                    channel="127.0.0.1:50052", bs="127.0.0.1:50053")      # doctest: +SKIP
>>> res.rows[0]["nmse_db_ad"], res.rows[0]["ok"]                           # doctest: +SKIP

For every sweep point (``Scenario.points()``) the runner

1. sets the link up: UE seed and datasets, the UE and BS bundles, the channel's ``LinkConfig``
   (default link, per-UE links reset) and the settings extensions ask for;
2. sends every report in batches of ``batch`` (one thread per UE). Report ``i`` of UE ``u`` at
   point ``p`` is sample ``ids[(u * reports + i) % N]`` with ``seq = p * reports + i``, so every
   random draw (keyed by ``(seed, ue_id, seq)`` in the nodes) is the same whatever the thread
   interleaving, and ``(ue_id, seq)`` is unique over the whole run;
3. retries a call that fails with UNAVAILABLE or DEADLINE_EXCEEDED, and reports that come back
   with those codes, with the SAME seqs (the nodes treat them idempotently), after setting the
   link up again (a restarted node has lost its models and settings; no thread sends until
   that is done), for up to ``retry_s`` seconds; a report whose model the BS no longer has
   loaded is retried the same way. Every report ends with exactly one
   outcome: ``ok``, ``dropped`` (lost on the air, with the reason) or ``error`` (with the
   node, code and message);
4. scores the reconstructions against the dataset truth (``x_ad`` or ``z_ad``, the target the
   BS names) with :mod:`shared.metrics`: NMSE in the angular-delay domain, in the
   spatial-frequency domain against the file's SF truth for the samples that have it (``n_sf``),
   rho and SGCS per subcarrier in the SF domain (against the stored SF truth, else against the
   cropped truth: the ``sf_truth`` column says which), exactly as ``csilink eval`` does; BER
   from the emulator's per-report counts; latency percentiles and throughput.

Results go to the output folder: ``results.csv`` (one row per point), ``reports.csv`` (one row
per report), ``results.json`` (rows, per-point reason counts, node stats, scenario and
provenance) and PNG plots (:mod:`csilink.plots`).

A scenario's ``image_link`` section (the downlink semantic image link) runs after the CSI-report
points with :class:`csilink.image_runner.ImageLinkRunner`: ``image_results.csv`` (one row per
point), ``images.csv`` (one row per image) and its part of ``results.json``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csilink.image_runner import ImageLinkRunner, ImagePointResult
from csilink.scenario import ResolvedScenario, SweepPoint, load_scenario
from shared import metrics
from shared.errors import CsilinkError, InvalidInput

log = logging.getLogger(__name__)

#: Codes after which a call or a report is sent again with the same seqs.
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
#: The BS's message for a report whose model it has not loaded (bs_service/node.py).
_NOT_LOADED = "has not loaded"
#: Deadline of control calls (Configure, LoadModel, stats), seconds.
CONTROL_TIMEOUT_S = 300.0
#: Environment fallbacks of the address flags.
ADDR_ENV = {"ue": "CSILINK_UE_ADDR", "channel": "CSILINK_CHANNEL_ADDR", "bs": "CSILINK_BS_ADDR"}

#: Columns of results.csv, in order.
ROW_FIELDS = (
    "point", "label", "models", "ue_model", "bs_model", "rate", "payload", "payload_unit", "mode",
    "ideal", "snr_db", "ues", "sent", "ok", "dropped", "errors", "loss_rate", "nmse_db_ad",
    "nmse_db_sf", "rho", "sgcs", "sf_truth", "n_sf", "ber", "bit_errors", "bits_on_air",
    "effective_snr_db", "latency_p50_ms", "latency_p99_ms", "latency_mean_ms", "reports_per_s",
    "wall_s", "retries",
)
#: Columns of reports.csv.
REPORT_FIELDS = (
    "point", "ue_id", "seq", "sample_id", "status", "code", "reason", "attempts", "latency_ms",
    "payload_bits", "payload_symbols", "bit_errors", "n_bits_on_air", "effective_snr_db", "nmse_db_ad",
    "nmse_db_sf",
)


@dataclass
class ReportRecord:
    """The one final outcome of one report (a row of reports.csv)."""

    point: int
    ue_id: int
    seq: int
    sample_id: int
    status: str = "pending"  # ok | dropped | error
    code: str = ""
    reason: str = ""
    attempts: int = 0
    latency_ms: float = math.nan  # round trip of the call that delivered the final outcome
    payload_bits: int = 0
    payload_symbols: int = 0
    bit_errors: int = 0
    n_bits_on_air: int = 0
    effective_snr_db: float = math.nan
    nmse_db_ad: float = math.nan
    nmse_db_sf: float = math.nan  # per report only for codecs scored in the SF domain
    target: str = ""


@dataclass
class PointResult:
    """One sweep point: its row, its reports and (on request) its reconstructions."""

    point: SweepPoint
    row: dict[str, Any]
    records: list[ReportRecord]
    drop_reasons: dict[str, int]
    error_reasons: dict[str, int]
    stats: dict[str, Any] = field(default_factory=dict)
    #: sample ids ``[n_ok]`` and reconstructions complex64 ``[n_ok, Nt, T]`` in (ue, seq) order.
    sample_ids: np.ndarray | None = None
    h_ad: np.ndarray | None = None


@dataclass
class RunResult:
    """Everything a run produced."""

    scenario: ResolvedScenario
    points: list[PointResult]
    provenance: dict[str, Any]
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    #: The ``image_link`` sweep's points (empty without that section).
    image_points: list[ImagePointResult] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [p.row for p in self.points]

    @property
    def records(self) -> list[ReportRecord]:
        return [r for p in self.points for r in p.records]


# --------------------------------------------------------------------------- scoring


def _percentile(v: np.ndarray, q: float) -> float:
    return float(np.percentile(v, q)) if v.size else math.nan


class Truth:
    """The runner's view of the world: truth fields of one split, read by sample id."""

    def __init__(self, path: Path, split: str) -> None:
        from shared.dataset import open_dataset

        self._ds = open_dataset(path)
        self.dataset_id = self._ds.dataset_id
        self.n_subcarriers = self._ds.n_subcarriers
        self.split = self._ds.truth_view().split(split)
        self.sample_ids = self.split.sample_ids

    def close(self) -> None:
        self._ds.close()

    def rows_of(self, sample_ids: np.ndarray) -> np.ndarray:
        return np.array([self.split.index_of(int(s)) for s in sample_ids], dtype=np.int64)

    def read(self, field: str, rows: np.ndarray) -> np.ndarray:
        return self.split.read(field, rows)

    def sf_rows(self, field: str) -> int:
        """How many leading rows hold SF truth of ``field`` (0 when the file has none)."""
        return self.split.shape(field)[0] if field in self.split.fields else 0


# --------------------------------------------------------------------------- the runner


class Runner:
    """Runs a resolved scenario against a connected :class:`csilink.client.LinkClient`.

    :param on_progress: called with the number of reports that got their final outcome
    :param keep_reconstructions: keep ``PointResult.h_ad`` (tests, notebooks)
    :param retry_base_s: first back-off after a failed attempt (doubles, capped at 1 s)
    """

    def __init__(self, resolved: ResolvedScenario, client: Any, *,
                 on_progress: Callable[[int], None] | None = None,
                 on_point: Callable[[SweepPoint], None] | None = None,
                 keep_reconstructions: bool = False, retry_base_s: float = 0.1) -> None:
        self.rs = resolved
        self.sc = resolved.scenario
        self.client = client
        self.on_progress = on_progress or (lambda n: None)
        self.on_point = on_point or (lambda p: None)
        self.keep = keep_reconstructions
        self.retry_base_s = retry_base_s
        self._setup_lock = threading.Lock()
        self._generation = 0  # bumped on every successful set-up after an outage
        self._link_up = threading.Event()
        self._link_up.set()
        self._setup_at = time.monotonic()  # when the current set-up was completed
        #: Check node uptimes after every call (detects a node restarted behind the UE's or the
        #: emulator's own retries, which would otherwise process reports unconfigured).
        self.check_restarts = True
        self._manifests: dict[str, Any] = {}
        self._loaded: dict[str, str] = {}  # node -> bundle path currently loaded by us
        self.truth = Truth(resolved.dataset_path, self.sc.dataset.split)
        ids = self.truth.sample_ids
        if self.sc.dataset.shuffle:
            ids = np.random.default_rng(self.sc.seed).permutation(ids)
        self.ids = np.asarray(ids, dtype=np.int64)
        if self.ids.size == 0:
            raise InvalidInput(f"{resolved.source}: dataset.split: split {self.sc.dataset.split!r} is empty")

    # ------------------------------------------------------------------ setup

    def manifest(self, ref: str) -> Any:
        if ref not in self._manifests:
            from shared.bundle import Bundle

            self._manifests[ref] = Bundle.load(self.rs.bundles[ref], verify=False).manifest
        return self._manifests[ref]

    def _node_path(self, ref: str) -> str:
        # Absolute: the nodes run with their own working directory (natively the repo root,
        # in the images /app, where the bundles sit at the same absolute path as here).
        return str(self.rs.bundles[ref].resolve())

    def _with_dataset(self, node: str) -> None:
        """Make sure the node can read the scenario's dataset (by its dataset_id)."""
        want = str(self.rs.dataset_path.resolve())
        cur = self.client.configure(node, {})
        have = [str(p) for p in cur.get("datasets", [])]
        if want not in have and not any(_same_file(p, want) for p in have):
            self.client.configure(node, {"datasets": [*have, want]})

    def setup(self, pt: SweepPoint, force: bool = False) -> None:
        """Apply the point's settings to every node (idempotent; ``force`` reloads the models)."""
        ue_ref, bs_ref = pt.models.ue, pt.models.bs
        assert bs_ref is not None
        ext = self._extension_settings(pt)
        self.client.configure("ue", {"seed": self.sc.seed, **ext.get("ue", {})})
        self._with_dataset("ue")
        self._with_dataset("bs")
        if ext.get("bs"):
            self.client.configure("bs", ext["bs"])
        for node, ref in (("ue", ue_ref), ("bs", bs_ref)):
            path = self._node_path(ref)
            if force or self._loaded.get(node) != path:
                self.client.load_model(path, nodes=(node,), make_default=True)
                self._loaded[node] = path
        ue_id, bs_id = self.manifest(ue_ref).model_id, self.manifest(bs_ref).model_id
        # A mismatched pair: the BS must not decode the UE's model with a copy it happens to
        # hold from before, or the point would not show what a mismatch does.
        if ue_id != bs_id and any(m.model_id == ue_id for m in self.client.list_models("bs")):
            self.client.unload_model(ue_id, "bs")
        # The whole LinkConfig, not the scenario's fields alone: Configure is a partial update,
        # and a field the scenario leaves out must take its default, not a previous value.
        from channel_emulator.config import LinkConfig

        link = LinkConfig.from_mapping({**pt.channel, **ext.get("channel", {})})
        self.client.configure_channel(link.model_dump(mode="json"), reset_links=True)
        self._setup_at = time.monotonic()

    def _extension_settings(self, pt: SweepPoint) -> dict[str, dict[str, Any]]:
        """Node settings asked for by scenario extensions (``node_settings(context)`` hooks)."""
        out: dict[str, dict[str, Any]] = {}
        ctx = {"point": pt, "ue_model_id": self.manifest(pt.models.ue).model_id,
               "bs_model_id": self.manifest(pt.models.bs or pt.models.ue).model_id}
        for name, ext in self.sc.extensions.items():
            hook = getattr(ext, "node_settings", None)
            if hook is None:
                continue
            for node, settings in (hook(ctx) or {}).items():
                if node not in ("ue", "channel", "bs"):
                    raise InvalidInput(f"extension {name}: node_settings returned unknown node {node!r}")
                out.setdefault(node, {}).update(settings)
        return out

    def _recover(self, pt: SweepPoint, seen_generation: int, deadline: float) -> bool:
        """After a failure seen at setup generation ``seen_generation``: wait until the link is
        set up again (by this thread or another), retrying with back-off until ``deadline``.

        While it is down, no thread starts a new call (``_link_up`` is clear): a restarted node
        must get its models and settings before it sees another report, or that report would
        be processed with the node's start-up configuration."""
        with self._setup_lock:
            if self._generation == seen_generation:
                self._link_up.clear()
        delay = self.retry_base_s
        while True:
            time.sleep(delay)
            delay = min(1.0, delay * 2)
            with self._setup_lock:
                if self._generation != seen_generation:
                    return True  # set up again after our failure (by another thread)
                try:
                    self.setup(pt, force=True)
                except CsilinkError as exc:  # a node still down
                    log.info("link set-up after an outage failed (%s); retrying", exc)
                    if time.monotonic() > deadline:
                        self._link_up.set()  # let the others find out for themselves
                        return False
                    continue
                self._generation += 1
                self._link_up.set()
                return True

    def _restarted_since(self, setup_at: float) -> list[str]:
        """Nodes that (re)started after the set-up completed at ``setup_at`` (monotonic s)."""
        if not self.check_restarts:
            return []
        try:
            stats = self.client.stats()
        except CsilinkError:
            return []  # a node is down: the next call fails and the retry path takes over
        elapsed = time.monotonic() - setup_at
        return [node for node, st in stats.items() if st.get("uptime_s", math.inf) < elapsed]

    # ------------------------------------------------------------------ sending

    def _plan(self, pt: SweepPoint) -> dict[int, list[ReportRecord]]:
        """Report records per UE: deterministic samples and seqs (module docstring)."""
        n, r = self.ids.size, self.sc.reports
        return {
            u: [ReportRecord(point=pt.index, ue_id=u, seq=pt.index * r + i,
                             sample_id=int(self.ids[(u * r + i) % n])) for i in range(r)]
            for u in range(pt.ues)
        }

    def _send_batch(self, pt: SweepPoint, ue_id: int, batch: list[ReportRecord], rate: str,
                    model_id: str, recon: dict[tuple[int, int], np.ndarray]) -> int:
        """Send one batch until every report has its final outcome; returns retries made."""
        from csilink.client import LinkError

        pending = list(batch)
        attempt = 0
        retries = 0
        deadline = time.monotonic() + self.sc.retry_s
        while pending:
            attempt += 1
            self._link_up.wait()
            with self._setup_lock:
                gen, setup_at = self._generation, self._setup_at
            keys = [(self.truth.dataset_id, self.sc.dataset.split, r.sample_id) for r in pending]
            t0 = time.perf_counter()
            try:
                outs = self.client.send(keys, rate=rate, model_id=model_id, ue_id=ue_id,
                                        seqs=[r.seq for r in pending],
                                        csi_rs_snr_db=self.sc.csi_rs_snr_db, timeout_s=self.sc.deadline_s)
            except LinkError as exc:
                outs = None
                fail = (exc.code.name, f"{exc.node}: {exc.code.name}: {exc.details}")
            dt_ms = (time.perf_counter() - t0) * 1e3
            again: list[ReportRecord] = []
            restarted = [] if outs is None and fail[0] in RETRYABLE else self._restarted_since(setup_at)
            if restarted:
                # A node restarted after our set-up and may have handled this batch with its
                # start-up settings: none of these outcomes count. Set up again, resend.
                log.info("%s restarted during the run: resending %d reports", ", ".join(restarted),
                         len(pending))
                for r in pending:
                    r.attempts, r.code, r.reason = attempt, "RESTARTED", f"{', '.join(restarted)} restarted"
                again = list(pending)
            elif outs is None:
                for r in pending:
                    r.attempts = attempt
                    r.code, r.reason = fail
                    if fail[0] in RETRYABLE:
                        again.append(r)
                    else:
                        r.status = "error"
            else:
                if len(outs) != len(pending):
                    raise InvalidInput(f"UE answered {len(outs)} results for {len(pending)} reports")
                for r, o in zip(pending, outs, strict=True):
                    r.attempts, r.latency_ms = attempt, dt_ms
                    if (o.ue_id, o.seq) != (r.ue_id, r.seq):
                        raise InvalidInput(f"result for ue {o.ue_id} seq {o.seq} where ue {r.ue_id} "
                                           f"seq {r.seq} was expected (results out of order)")
                    self._fill(r, o)
                    if o.code in RETRYABLE:
                        again.append(r)
                    elif (o.code == "FAILED_PRECONDITION" and o.stage == "bs" and _NOT_LOADED in o.message
                          and self._same_model(pt)):
                        # The BS restarted without our model: set it up again and retry.
                        again.append(r)
                    else:
                        r.status = "ok" if o.ok else ("dropped" if o.dropped else "error")
                        if o.ok:
                            recon[(r.ue_id, r.seq)] = o.h_ad
                            r.reason = ""
            if len(pending) > len(again):
                self.on_progress(len(pending) - len(again))
            if again and not (time.monotonic() < deadline and self._recover(pt, gen, deadline)):
                for r in again:
                    r.status = "error"
                    r.reason = f"gave up after {attempt} attempts in {self.sc.retry_s:g} s: {r.reason}"
                self.on_progress(len(again))
                again = []
            retries += len(again)
            pending = again
        return retries

    def _same_model(self, pt: SweepPoint) -> bool:
        return self.manifest(pt.models.ue).model_id == self.manifest(pt.models.bs or pt.models.ue).model_id

    @staticmethod
    def _fill(r: ReportRecord, o: Any) -> None:
        r.code = o.code
        r.payload_bits, r.payload_symbols = int(o.payload_bits), int(o.payload_symbols)
        r.bit_errors, r.n_bits_on_air = int(o.channel.bit_errors), int(o.channel.n_bits_on_air)
        r.effective_snr_db = float(o.channel.effective_snr_db) if o.channel.applied else math.nan
        r.target = o.target
        if o.dropped:
            r.reason = o.channel.drop_reason or o.message or "dropped"
        elif not o.ok:
            r.reason = f"{o.stage or '?'}: {o.code}: {o.message}"

    def run_point(self, pt: SweepPoint) -> PointResult:
        self.on_point(pt)
        self.setup(pt)
        ue_m = self.manifest(pt.models.ue)
        rate = self.rs.rates[(pt.models.ue, pt.rate)]
        plan = self._plan(pt)
        recon: dict[tuple[int, int], np.ndarray] = {}
        retries = Counter()
        lock = threading.Lock()

        def worker(u: int) -> None:
            recs = plan[u]
            for i in range(0, len(recs), self.sc.batch):
                n = self._send_batch(pt, u, recs[i : i + self.sc.batch], rate, ue_m.model_id, recon)
                with lock:
                    retries[u] += n

        t0 = time.perf_counter()
        if pt.ues == 1:
            worker(0)
        else:
            with ThreadPoolExecutor(max_workers=min(pt.ues, 32), thread_name_prefix="ue") as pool:
                list(pool.map(worker, range(pt.ues)))  # list(): re-raise a worker's exception
        wall = time.perf_counter() - t0
        records = [r for u in range(pt.ues) for r in plan[u]]
        stats = {}
        with contextlib.suppress(CsilinkError):
            stats = self.client.stats()
        return self._summarize(pt, records, recon, wall, sum(retries.values()), stats)

    # ------------------------------------------------------------------ summary

    def _summarize(self, pt: SweepPoint, records: list[ReportRecord],
                   recon: dict[tuple[int, int], np.ndarray], wall: float, retries: int,
                   stats: dict[str, Any]) -> PointResult:
        sent = len(records)
        ok = [r for r in records if r.status == "ok"]
        dropped = [r for r in records if r.status == "dropped"]
        errors = [r for r in records if r.status == "error"]
        if len(ok) + len(dropped) + len(errors) != sent:  # every report has exactly one outcome
            raise AssertionError(f"point {pt.index}: {sent} reports but {len(ok)} ok + "
                                 f"{len(dropped)} dropped + {len(errors)} errors")
        row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
        ue_m = self.manifest(pt.models.ue)
        rate_name = self.rs.rates[(pt.models.ue, pt.rate)]
        rate = ue_m.rate(rate_name)
        row.update(
            point=pt.index, label=pt.label(), models=pt.models.name,
            ue_model=f"{ue_m.model_id} v{ue_m.version}",
            bs_model=f"{self.manifest(pt.models.bs or pt.models.ue).model_id} "
                     f"v{self.manifest(pt.models.bs or pt.models.ue).version}",
            rate=rate_name, payload=rate.bits if rate.bits is not None else rate.symbols,
            payload_unit="bits" if rate.bits is not None else "symbols",
            mode=pt.channel.get("mode", "awgn"), ideal=bool(pt.channel.get("ideal", False)),
            snr_db=pt.snr_db if pt.snr_db is not None else pt.channel.get("snr_db"),
            ues=pt.ues, sent=sent, ok=len(ok), dropped=len(dropped), errors=len(errors),
            loss_rate=(len(dropped) + len(errors)) / sent if sent else math.nan,
            wall_s=wall, reports_per_s=sent / wall if wall > 0 else math.nan, retries=retries,
        )
        # Scoring (ok reports, in (ue, seq) order).
        sample_ids = np.array([r.sample_id for r in ok], dtype=np.int64)
        h_hat = (np.stack([recon[(r.ue_id, r.seq)] for r in ok]).astype(np.complex64)
                 if ok else np.zeros((0, 1, 1), np.complex64))
        targets = {r.target for r in ok}
        if len(targets) > 1:
            raise InvalidInput(f"point {pt.index}: the BS returned several targets {sorted(targets)}")
        target = targets.pop() if targets else f"{ue_m.target.field}/{ue_m.target.domain}"
        field_, _, domain = target.partition("/")
        if ok and domain == "sf":
            row.update(self._sf_domain_scores(ok, field_, sample_ids, h_hat))
        elif ok:
            rows = self.truth.rows_of(sample_ids)
            h = self.truth.read(f"{field_}_ad", rows)
            if h.shape != h_hat.shape:
                raise InvalidInput(f"point {pt.index}: reconstructions {h_hat.shape[1:]} do not match "
                                   f"the truth {h.shape[1:]} of {field_}_ad")
            per = metrics.nmse(h, h_hat)
            for r, v in zip(ok, per, strict=True):
                r.nmse_db_ad = float(10 * np.log10(max(float(v), 1e-30)))
            row["nmse_db_ad"] = metrics.nmse_db(h, h_hat)
            row.update(self._sf_scores(field_, rows, h, h_hat))
        # Link statistics from the emulator's per-report metadata.
        digital = [r for r in records if r.n_bits_on_air > 0]
        bits = sum(r.n_bits_on_air for r in digital)
        row["bits_on_air"] = bits
        row["bit_errors"] = sum(r.bit_errors for r in digital)
        row["ber"] = row["bit_errors"] / bits if bits else math.nan
        snrs = np.array([r.effective_snr_db for r in records if math.isfinite(r.effective_snr_db)])
        row["effective_snr_db"] = float(np.mean(snrs)) if snrs.size else math.nan
        lat = np.array([r.latency_ms for r in ok], dtype=float)
        row["latency_p50_ms"] = _percentile(lat, 50)
        row["latency_p99_ms"] = _percentile(lat, 99)
        row["latency_mean_ms"] = float(lat.mean()) if lat.size else math.nan
        res = PointResult(
            point=pt, row=row, records=records,
            drop_reasons=dict(Counter(r.reason for r in dropped)),
            error_reasons=dict(Counter(r.reason for r in errors)),
            stats=stats,
        )
        if self.keep:
            res.sample_ids, res.h_ad = sample_ids, h_hat
        return res

    def _sf_domain_scores(self, ok: list[ReportRecord], field_: str, sample_ids: np.ndarray,
                          h_hat: np.ndarray) -> dict[str, Any]:
        """Scores of a codec that reconstructs in the spatial-frequency domain (``x_sf``, e.g.
        the ray-traced world): scale-free codecs return a direction, so the NMSE is the
        normalized one (both unit norm, ``shared.metrics.nmse_normalized``); rho / SGCS are
        per subcarrier, which is also the beamforming gain of precoding with ``h_hat``."""
        rows = self.truth.rows_of(sample_ids)
        h = self.truth.read(f"{field_}_sf", rows)
        if h.shape != h_hat.shape:
            raise InvalidInput(f"reconstructions {h_hat.shape[1:]} do not match the truth {h.shape[1:]} "
                               f"of {field_}_sf")
        per = metrics.nmse_normalized(h, h_hat)
        for r, v in zip(ok, per, strict=True):
            r.nmse_db_ad = math.nan
            r.nmse_db_sf = float(10 * np.log10(max(float(v), 1e-30)))
        s = metrics.summary(h, h_hat)
        return {"nmse_db_ad": math.nan, "nmse_db_sf": float(10 * np.log10(max(float(per.mean()), 1e-30))),
                "rho": s["rho"], "sgcs": s["sgcs"], "sf_truth": "full", "n_sf": int(len(rows))}

    def _sf_scores(self, field_: str, rows: np.ndarray, h: np.ndarray, h_hat: np.ndarray) -> dict[str, Any]:
        """SF NMSE, rho and SGCS the way ``csilink eval`` computes them (evaluation/harness.py):
        against the stored full SF truth for the samples that have it; when none has, rho and
        SGCS against the cropped truth (``ad_to_sf`` of both) and no SF NMSE."""
        from shared.transforms import ad_to_sf

        nc = self.truth.n_subcarriers
        have = rows < self.truth.sf_rows(f"{field_}_sf")
        if have.any():
            sf = self.truth.read(f"{field_}_sf", rows[have])
            s = metrics.summary(sf, ad_to_sf(h_hat[have], nc))
            return {"nmse_db_sf": s["nmse_db"], "rho": s["rho"], "sgcs": s["sgcs"],
                    "sf_truth": "full", "n_sf": int(have.sum())}
        s = metrics.summary(ad_to_sf(h, nc), ad_to_sf(h_hat, nc))
        return {"nmse_db_sf": None, "rho": s["rho"], "sgcs": s["sgcs"], "sf_truth": "cropped",
                "n_sf": int(len(rows))}

    def run(self) -> list[PointResult]:
        try:
            return [self.run_point(pt) for pt in self.sc.points()]
        finally:
            self.truth.close()


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --------------------------------------------------------------------------- outputs


def _clean(v: Any) -> Any:
    """JSON-safe value: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def write_outputs(result: RunResult, out_dir: Path, plots: bool = True) -> list[Path]:
    """results.csv, reports.csv, results.json and the plots (CSI reports, when the scenario has
    any), image_results.csv and images.csv (image link); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if result.points:
        files += _write_report_csvs(result, out_dir)
    sc = result.scenario
    if result.image_points:
        from csilink.image_runner import write_image_outputs

        files += write_image_outputs(result.image_points, out_dir)
    doc = {
        "schema": "csilink-run/1",
        "scenario": {"file": sc.source, "content": sc.scenario.model_dump(mode="json"),
                     "dataset": str(sc.dataset_path) if sc.dataset_path else None,
                     "dataset_id": _dataset_id(sc.dataset_path) if sc.dataset_path else None},
        "provenance": result.provenance,
        "points": [
            {"row": pr.row, "drop_reasons": pr.drop_reasons, "error_reasons": pr.error_reasons,
             "node_stats": {k: v.get("counters", {}) for k, v in pr.stats.items()}}
            for pr in result.points
        ],
    }
    if sc.image_link is not None:
        from csilink.image_runner import image_json

        doc["image_link"] = image_json(result.image_points, sc.image_link)
    p = out_dir / "results.json"
    p.write_text(json.dumps(_clean(doc), indent=2) + "\n")
    files.append(p)
    if plots and result.points:
        from csilink.plots import plot_run

        lat = {pr.row["label"]: np.array([r.latency_ms for r in pr.records if r.status == "ok"])
               for pr in result.points}
        files += plot_run(result.rows, lat, out_dir, title=sc.scenario.name)
    result.files = files
    result.out_dir = out_dir
    return files


def _write_report_csvs(result: RunResult, out_dir: Path) -> list[Path]:
    files = []
    p = out_dir / "results.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ROW_FIELDS)
        w.writeheader()
        for row in result.rows:
            w.writerow({k: ("" if row.get(k) is None or (isinstance(row.get(k), float) and
                                                          not math.isfinite(row[k])) else row[k])
                        for k in ROW_FIELDS})
    files.append(p)
    p = out_dir / "reports.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in result.records:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                        for k, v in asdict(r).items()})
    files.append(p)
    return files


def _dataset_id(path: Path) -> str | None:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            v = f.attrs.get("dataset_id")
            return v.decode() if isinstance(v, bytes) else (str(v) if v is not None else None)
    except OSError:
        return None


def run_provenance(rs: ResolvedScenario, addresses: dict[str, str]) -> dict[str, Any]:
    """Git commit, package versions, bundle ids and digests, seed, addresses."""
    from shared.bundle import Bundle
    from shared.provenance import provenance

    bundles = {}
    for ref, path in rs.bundles.items():
        m = Bundle.load(path, verify=False).manifest
        bundles[ref] = {"model_id": m.model_id, "version": m.version, "family": m.family,
                        "path": str(path), "manifest_sha256": _sha256(path / "manifest.json")}
    extra: dict[str, Any] = {}
    if rs.image_link is not None:
        from csilink.image_runner import image_bundle_provenance

        extra["image_bundles"] = image_bundle_provenance(rs.image_link)
        extra["image_dataset"] = {"path": str(rs.image_link.image_path),
                                  "sha256": _sha256(rs.image_link.image_path)}
    return provenance(bundles=bundles, seed=rs.scenario.seed, addresses=addresses, **extra)


def _sha256(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- entry point


def addresses_from(ue: str | None, channel: str | None, bs: str | None) -> dict[str, str] | None:
    """The three node addresses from flags, else ``CSILINK_*_ADDR``; None when none is given.

    Giving some but not all is an error (the runner talks to all three nodes)."""
    got = {"ue": ue, "channel": channel, "bs": bs}
    for k, var in ADDR_ENV.items():
        if not got[k]:
            got[k] = os.environ.get(var) or None
    given = {k: v for k, v in got.items() if v}
    if not given:
        return None
    if len(given) != 3:
        missing = [f"--{k} (or {ADDR_ENV[k]})" for k in got if not got[k]]
        raise InvalidInput(f"give all three node addresses; missing {', '.join(missing)}")
    return given  # type: ignore[return-value]


@dataclass
class Services:
    """Nodes started by :func:`started_services`: ``addrs`` and ``pids`` by node name."""

    addrs: dict[str, str]
    pids: dict[str, int]
    run_dir: Path


@contextlib.contextmanager
def started_services(dataset: Path | None, compose_file: Path | None = None,
                     log: Callable[[str], None] | None = None, *, images: Path | None = None,
                     mimo_pool: Path | None = None) -> Iterator[Services]:
    """Start the docker-compose.yml services natively (``csilink.launcher``: the same commands
    and settings as the containers) on free 127.0.0.1 ports, every node reading ``dataset``
    (None: the compose file's default); ``images`` / ``mimo_pool`` replace the image link's
    image file (BS) and channel pool (emulator). Stop them on exit."""
    import io

    from csilink import launcher as L
    from csilink.commands.up import find_compose_file

    compose = find_compose_file(compose_file).resolve()
    variables = {}
    for var, path in (("CSILINK_DATASET", dataset), ("CSILINK_IMAGES", images),
                      ("CSILINK_MIMO_POOL", mimo_pool)):
        if path is not None:
            variables[var] = str(Path(path).resolve())
    project = L.load_project(compose, variables)
    steps = L.make_plan(project, L.allocate_ports(project), run=False)
    run_dir = L.default_run_dir(project.project_dir)
    err = io.StringIO() if log is None else _LineSink(log)
    la = L.Launcher(project, steps, run_dir, follow=False, out=err, err=err)
    try:
        la.start_services()
        addrs = {}
        for st in steps:
            if st.name in ("ue", "channel", "bs") and st.addresses:
                addrs[st.name] = next(iter(st.addresses.values()))
        missing = {"ue", "channel", "bs"} - set(addrs)
        if missing:
            raise InvalidInput(f"{compose}: no service named {sorted(missing)} with a port")
        yield Services(addrs, {n: la.running[n].proc.pid for n in addrs}, run_dir)
    finally:
        la.stop_all()
        la.close()


class _LineSink:
    """A text stream that hands each written line to a callback."""

    def __init__(self, fn: Callable[[str], None]) -> None:
        self.fn = fn

    def write(self, s: str) -> int:
        for line in s.splitlines():
            if line.strip():
                self.fn(line)
        return len(s)

    def flush(self) -> None:
        pass


def run_scenario(scenario: str | Path | ResolvedScenario, ue: str | None = None,
                 channel: str | None = None, bs: str | None = None, out: str | Path | None = None, *,
                 write: bool = True, plots: bool = True, progress: Any = None,
                 keep_reconstructions: bool = False, connect_timeout_s: float = 60.0,
                 log_fn: Callable[[str], None] | None = None) -> RunResult:
    """Load (if needed), run and write a scenario. Without addresses (flags or ``CSILINK_*_ADDR``)
    the services are started natively from docker-compose.yml for the run and stopped after.

    :param progress: optional object with ``start_point(point, total)`` and ``advance(n)``
    """
    from csilink.client import LinkClient

    rs = scenario if isinstance(scenario, ResolvedScenario) else load_scenario(scenario)
    assert isinstance(rs, ResolvedScenario)
    addrs = addresses_from(ue, channel, bs)
    with contextlib.ExitStack() as stack:
        if addrs is None:
            addrs = stack.enter_context(started_services(rs.dataset_path, log=log_fn)).addrs
        # Control calls (LoadModel builds and warms a decoder up) get a generous deadline of
        # their own; report calls use the scenario's deadline_s.
        client = stack.enter_context(LinkClient(addrs["ue"], addrs["channel"], addrs["bs"],
                                                timeout_s=CONTROL_TIMEOUT_S))
        client.wait_ready(connect_timeout_s)
        total = rs.scenario.reports
        points: list[PointResult] = []
        advance = progress.advance if progress is not None else None
        if rs.scenario.points():
            start = (lambda p: progress.start_point(p, total * p.ues)) if progress is not None else None
            runner = Runner(rs, client, on_progress=advance, on_point=start,
                            keep_reconstructions=keep_reconstructions)
            points = runner.run()
        image_points: list[ImagePointResult] = []
        if rs.image_link is not None:
            n_img = rs.image_link.section.images.n
            image_points = ImageLinkRunner(
                rs.image_link, client, rs.scenario.seed, keep_reconstructions=keep_reconstructions,
                on_point=((lambda p: progress.start_point(p, n_img)) if progress is not None else None),
                on_progress=advance,
            ).run()
        result = RunResult(rs, points, run_provenance(rs, addrs), image_points=image_points)
    if write:
        write_outputs(result, Path(out) if out is not None else rs.scenario.output_dir, plots=plots)
    return result
