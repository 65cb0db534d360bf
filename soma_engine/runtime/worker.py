"""ModelWorker: the single owner of the surrogate model.

PEFT's active adapter is global state on the module, so everything that touches the model
(generation for any session, each step of an adaptation job) runs here, one task at a
time. Live turns have priority over adaptation steps, and adaptation is submitted step by
step, so a long job cannot starve a live turn for more than one step.

Batching (:meth:`ModelWorker.submit_batchable`): items submitted under the same batch key
wait in a per-key list, and one *flush* task per key sits in the priority queue. When the
flush runs it drains up to ``max_batch`` waiting items into one ``run_batch(items)`` call;
what is left gets a fresh flush task behind whatever was queued meanwhile. No item waits for
a batch to fill: an item submitted to an idle worker runs at once, and the items that arrive
while a call is running make up the next batch (continuous batching at call granularity).
The worker knows nothing of models: the key says which items may share a call, and
``run_batch`` does the work. Only items with the same key *and* priority share a call, so an
adaptation step (ADAPT) is never batched with a live turn (LIVE).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger("soma.worker")

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the item type of a batch
R = TypeVar("R")

LIVE = 0
ADAPT = 10

RunBatch = Callable[[list[Any]], Sequence[Any]]


class WorkerClosed(RuntimeError):
    pass


class ModelWorker:
    def __init__(self, name: str = "soma-model-worker", *, max_batch: int = 8) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._name = name
        self.max_batch = max_batch
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._batch_lock = threading.Lock()
        # (priority, key) -> items waiting for the key's flush task: (item, future, run_batch).
        self._pending: dict[tuple[int, Hashable], list[tuple[Any, Future[Any], RunBatch]]] = {}
        self.batch_sizes: Counter[int] = Counter()  # rows per run_batch call (benchmarks, tests)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            _, _, task = self._queue.get()
            if task is None:
                return
            task()

    def in_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[[], T], priority: int = LIVE) -> Future[T]:
        if self._closed:
            raise WorkerClosed("the model worker is closed")
        fut: Future[T] = Future()

        def task() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:  # delivered to the waiting caller
                fut.set_exception(exc)

        if self.in_worker():
            # Re-entrant call from a task: run inline instead of dead-locking on ourselves.
            task()
            return fut
        self._ensure_thread()
        self._queue.put((priority, next(self._counter), task))
        return fut

    def call(self, fn: Callable[[], T], priority: int = LIVE) -> T:
        return self.submit(fn, priority).result()

    def submit_batchable(
        self,
        key: Hashable,
        item: I,
        run_batch: Callable[[list[I]], Sequence[R | BaseException]],
        priority: int = LIVE,
    ) -> Future[R]:
        """Queue ``item``; waiting items with the same ``key`` and ``priority`` run together.

        ``run_batch(items)`` returns one outcome per item, in order; an outcome that is an
        exception fails only that item's future. If ``run_batch`` itself raises on several
        items, each item is retried alone, so one bad item cannot fail its neighbours.
        Items under one key are expected to share one ``run_batch``: the first item's is used.
        """
        return self.submit_batch(key, [item], run_batch, priority)[0]

    def submit_batch(
        self,
        key: Hashable,
        items: Sequence[I],
        run_batch: Callable[[list[I]], Sequence[R | BaseException]],
        priority: int = LIVE,
    ) -> list[Future[R]]:
        """:meth:`submit_batchable` for several items queued at once, so they share a call
        (up to ``max_batch``) even when the worker is idle."""
        if self._closed:
            raise WorkerClosed("the model worker is closed")
        entries = [(item, Future(), run_batch) for item in items]
        futures: list[Future[R]] = [fut for _, fut, _ in entries]
        if self.in_worker():
            live = [e for e in entries if e[1].set_running_or_notify_cancel()]
            for start in range(0, len(live), self.max_batch):
                self._run_batch(live[start : start + self.max_batch])
            return futures
        self._ensure_thread()
        slot = (priority, key)
        with self._batch_lock:
            waiting = self._pending.setdefault(slot, [])
            first = not waiting  # no flush task queued for this key yet
            waiting.extend(entries)
            if first and entries:
                self._queue.put((priority, next(self._counter), lambda: self._flush(slot)))
        return futures

    def waiting(self, key: Hashable, priority: int = LIVE) -> int:
        """How many items wait under ``key`` (not yet taken by a flush)."""
        with self._batch_lock:
            return len(self._pending.get((priority, key), ()))

    def _flush(self, slot: tuple[int, Hashable]) -> None:
        with self._batch_lock:
            waiting = self._pending.pop(slot, [])
            taken, rest = waiting[: self.max_batch], waiting[self.max_batch :]
            if rest:
                self._pending[slot] = rest
                self._queue.put((slot[0], next(self._counter), lambda: self._flush(slot)))
        live = [entry for entry in taken if entry[1].set_running_or_notify_cancel()]
        if live:
            self._run_batch(live)

    def _run_batch(self, entries: list[tuple[Any, Future[Any], RunBatch]]) -> None:
        run_batch = entries[0][2]
        self.batch_sizes[len(entries)] += 1
        try:
            outcomes = list(run_batch([item for item, _, _ in entries]))
            if len(outcomes) != len(entries):
                raise RuntimeError(f"run_batch returned {len(outcomes)} outcomes for {len(entries)} items")
        except BaseException as exc:
            if len(entries) == 1:
                entries[0][1].set_exception(exc)
                return
            log.warning("batched call of %d items failed (%r); running them one by one", len(entries), exc)
            for entry in entries:
                self._run_batch([entry])
            return
        for (_, fut, _), outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put((1 << 30, next(self._counter), None))
            self._thread.join(timeout=30)
