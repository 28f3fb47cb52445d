"""Dynamic batching: reports of concurrent requests (and UEs) share decoder batches.

One :class:`DynamicBatcher` per loaded model runs one thread. Requests ``submit`` jobs; the
thread waits for the first job, then keeps collecting until the batch holds ``max_batch``
jobs or ``max_wait_s`` has passed since that first job arrived, and hands the batch to
``run_batch``, which sets every job's result or error. Jobs already queued beyond
``max_batch`` start the next batch at once (no waiting when there is enough work).

One batch runs at a time. With ``max_wait_s = 0`` (the BS default) batching is greedy: a
batch holds what queued while the previous one ran, and a request that finds the decoder
idle and nothing queued runs its own batch on its own thread (``inline``), skipping two
thread hand-offs: that is most of a lone report's BS overhead (docs/performance.md).

>>> import threading
>>> seen = []
>>> def run(jobs):
...     seen.append(len(jobs))
...     for j in jobs:
...         j.set_result(j.payload * 2)
>>> b = DynamicBatcher("demo", run, max_batch=4, max_wait_s=0.05)
>>> jobs = [Job(i) for i in range(6)]
>>> b.submit(jobs)
>>> [j.result(1.0) for j in jobs], seen
([0, 2, 4, 6, 8, 10], [4, 2])
>>> b.stop()
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("csilink.bs.batcher")


class Job:
    """One report's decode work; ``payload`` is whatever ``run_batch`` needs (the BS puts the
    latent, side info and SNR there). Carries its timings back."""

    __slots__ = ("payload", "enqueued_ns", "started_ns", "timings", "_done", "_result", "_error")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.enqueued_ns = 0
        self.started_ns = 0
        self.timings: dict[str, int] = {}
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None

    def set_result(self, value: Any) -> None:
        self._result = value
        self._done.set()

    def set_error(self, exc: BaseException) -> None:
        self._error = exc
        self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError("decode job not finished in time")
        if self._error is not None:
            raise self._error
        return self._result


class BatcherStopped(RuntimeError):
    pass


class DynamicBatcher:
    """Collects jobs into batches for ``run_batch(list[Job])`` on its own thread."""

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[Job]], None],
        max_batch: int = 256,
        max_wait_s: float = 0.0,
        inline: bool = True,
    ) -> None:
        self.name = name
        self.run_batch = run_batch
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.inline = bool(inline)
        self._q: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False  # a batch is running (on the thread or inline)
        self.inline_batches = 0
        self.batches = 0
        self.jobs = 0
        self._sizes: collections.deque[int] = collections.deque(maxlen=1024)
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def configure(self, max_batch: int, max_wait_s: float) -> None:
        with self._cond:
            self.max_batch, self.max_wait_s = int(max_batch), float(max_wait_s)
            self._cond.notify_all()

    def submit(self, jobs: list[Job]) -> None:
        """Queue ``jobs``; or run them at once on this thread when the decoder is idle, nothing
        is queued, batching does not wait and they fit one batch (then they are done on return)."""
        now = time.perf_counter_ns()
        with self._cond:
            if self._stopping:
                raise BatcherStopped(f"model {self.name} is being unloaded")
            for j in jobs:
                j.enqueued_ns = now
            run_here = (self.inline and self.max_wait_s <= 0 and not self._busy and not self._q
                        and 0 < len(jobs) <= self.max_batch)
            if run_here:
                self._busy = True
            else:
                self._q.extend(jobs)
                self._cond.notify_all()
        if run_here:
            try:
                self._execute(jobs)
                self.inline_batches += 1
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _take(self) -> list[Job] | None:
        with self._cond:
            while (not self._q or self._busy) and not self._stopping:
                self._cond.wait()
            while self._busy:  # stopping: let an inline batch finish first
                self._cond.wait()
            if not self._q:
                return None  # stopping and drained
            first = self._q[0].enqueued_ns
            while len(self._q) < self.max_batch and not self._stopping:
                left = first / 1e9 + self.max_wait_s - time.perf_counter_ns() / 1e9
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch, len(self._q))
            self._busy = True
            return [self._q.popleft() for _ in range(n)]

    def _execute(self, batch: list[Job]) -> None:
        start = time.perf_counter_ns()
        for j in batch:
            j.started_ns = start
        try:
            self.run_batch(batch)
        except BaseException as exc:  # run_batch should set errors itself; never lose a job
            log.exception("batch of %d failed in %s", len(batch), self.name)
            for j in batch:
                if not j.done():
                    j.set_error(exc)
        self.batches += 1
        self.jobs += len(batch)
        self._sizes.append(len(batch))

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        sizes = list(self._sizes)
        return {
            "batches": self.batches,
            "jobs": self.jobs,
            "queued": len(self._q),
            "mean_batch": (sum(sizes) / len(sizes)) if sizes else 0.0,
            "inline_batches": self.inline_batches,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait_s * 1e3,
        }

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:  # anything left (thread stuck): fail it rather than hang callers
            while self._q:
                self._q.popleft().set_error(BatcherStopped(f"model {self.name} was unloaded"))
