"""``JobRunner``: one adaptation job per session at a time, off the request path.

Jobs run on a background thread (never on the request path); each model step of a job is a
low-priority task on the model worker, so live turns are served in between.
``adaptation="inline"`` runs the job in the caller; ``adaptation="queue"`` enqueues it for
``soma worker`` processes (queue.py). Adoption looks (sharing.adopt) share the job thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from ..session import SessionGone
from ..session.transitions import JobRecord, JobStatus, reject
from ..types import Phase, SessionKey
from .jobs import run_adaptation
from .sharing import adopt

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger("soma.jobs")

# Owners of the JobRunners open in this process, to tell a live job of another engine (two
# engines on one SQLite file) from one that died with a closed engine.
_LIVE_OWNERS: set[str] = set()
_HOST = socket.gethostname()
# A job of an engine on another host counts as alive this long after it started.
REMOTE_JOB_LEASE = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.owner = services.owner
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soma-adapt")
        self._active: dict[str, Future[None]] = {}
        self._looks: dict[str, Future[None]] = {}  # adoption looks (sharing.adopt), one per session
        self._lock = threading.Lock()
        self.queue: Any = None  # adaptation="queue": a soma_engine.adaptation.queue.JobQueue (soma worker runs jobs)
        if services.config.adaptation == "queue":
            from .queue import JobQueue

            self.queue = JobQueue(services.store)  # type: ignore[arg-type]
        _LIVE_OWNERS.add(self.owner)

    def new_job(self, key: SessionKey) -> dict[str, Any]:
        """The session's job record for a job about to start (called inside the session's
        locked write). On the queue the job is enqueued here, so the record holds its id."""
        if self.queue is not None:
            try:
                return self.queue.enqueue(key, self.services.config, self.services.surrogate.configured_path)
            except Exception as exc:  # the turn is recorded anyway; the next turn enqueues again
                log.exception("could not enqueue adaptation for session %s", key.digest[:12])
                return {"status": "failed", "owner": self.owner, "error": f"enqueue: {type(exc).__name__}: {exc}"}
        return {
            "status": "queued",
            "id": uuid.uuid4().hex,
            "owner": self.owner,
            "pid": os.getpid(),
            "host": _HOST,
            "since": time.time(),
            "attempt": 0,
        }

    def is_active(self, key: SessionKey) -> bool:
        if self.queue is not None:
            state = self.services.store.get(key)
            return state is not None and self.queue.is_active(state.job)
        with self._lock:
            fut = self._active.get(key.digest)
            return fut is not None and not fut.done()

    def job_alive(self, key: SessionKey, job: dict[str, Any]) -> bool:
        """Is the job of this session record still running somewhere: here, in another
        engine of this process or another process on this host (both sharing the SQLite
        file), or on another host within ``REMOTE_JOB_LEASE``? One job per session."""
        owner = job.get("owner")
        if owner == self.owner:
            return self.is_active(key)
        if job.get("host") != _HOST:
            return job.get("host") is not None and time.time() - float(job.get("since", 0)) < REMOTE_JOB_LEASE
        if job.get("pid") == os.getpid():
            return owner in _LIVE_OWNERS
        return isinstance(job.get("pid"), int) and _pid_alive(job["pid"])

    def _prune(self) -> None:
        """Drop finished futures (under ``_lock``): the maps stay as small as the jobs running."""
        for table in (self._active, self._looks):
            for digest in [d for d, f in table.items() if f.done()]:
                del table[digest]

    def submit(self, key: SessionKey, teacher: Callable[..., Any] | None = None) -> Future[None] | None:
        if self.queue is not None:
            return None  # enqueued by new_job, with the turn's write
        with self._lock:
            self._prune()
            fut = self._active.get(key.digest)
            if fut is not None and not fut.done():
                return None
            fut = self._pool.submit(self.run_now, key, teacher)
            self._active[key.digest] = fut
            return fut

    def submit_look(self, key: SessionKey) -> Future[None] | None:
        """An adoption look on the job thread (after any job queued before it); also with
        ``adaptation="queue"``: a look is a few generations, not a training run."""
        with self._lock:
            self._prune()
            fut = self._looks.get(key.digest)
            if fut is not None and not fut.done():
                return None
            fut = self._pool.submit(self.look_now, key)
            self._looks[key.digest] = fut
            return fut

    def look_now(self, key: SessionKey) -> None:
        """Run an adoption look here; a failure only costs the look (the session stays warm)."""
        try:
            adopt(self.services, key)
        except Exception:
            log.exception("adoption look failed for session %s", key.digest[:12])

    def run_now(self, key: SessionKey, teacher: Callable[..., Any] | None = None) -> None:
        """Run the job here; a failure leaves the session on the teacher (``rejected``)."""
        try:
            run_adaptation(self.services, key, teacher)
        except Exception as exc:
            log.exception("adaptation failed for session %s", key.digest[:12])
            with (
                suppress(SessionGone),
                self.services.store.session(key, self.services.config.session_ttl, create=False) as st,
            ):
                if st.phase != Phase.ADAPTING.value:
                    return  # moved on (rolled back, another job finished) while this one failed
                failed = JobRecord(JobStatus.FAILED, self.owner, error=f"{type(exc).__name__}: {exc}")
                reject(st, retry_at=st.turn_count + max(1, self.services.config.warm_window // 2), job=failed)

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._prune()
                pending = [f for f in [*self._active.values(), *self._looks.values()] if not f.done()]
            if not pending:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            wait(pending, timeout=left)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        _LIVE_OWNERS.discard(self.owner)
