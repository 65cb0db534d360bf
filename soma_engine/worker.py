"""ModelWorker: the single owner of the surrogate model.

PEFT's active adapter is global state on the module, so everything that touches the model
(generation for any session, each step of an adaptation job) runs here, one task at a
time. Live turns have priority over adaptation steps, and adaptation is submitted step by
step, so a long job cannot starve a live turn for more than one step.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

log = logging.getLogger("soma.worker")

T = TypeVar("T")

LIVE = 0
ADAPT = 10


class WorkerClosed(RuntimeError):
    pass


class ModelWorker:
    def __init__(self, name: str = "soma-model-worker") -> None:
        self._name = name
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

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

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put((1 << 30, next(self._counter), None))
            self._thread.join(timeout=30)
