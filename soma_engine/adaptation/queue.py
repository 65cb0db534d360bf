"""Adaptation on a job queue: ``adaptation="queue"`` with a Redis store.

App replicas enqueue one job per adaptation round on an RQ queue in the store's Redis
(``<prefix>-adapt``); ``soma worker`` processes — on GPU machines or anywhere that reaches
Redis and the shared adapter storage — run them. Why RQ: it needs nothing but the Redis the
sessions already live in (no second broker), jobs are plain function calls, and a worker can
run jobs in its own process (``SimpleWorker``), so the surrogate stays loaded (and on the
GPU) across jobs instead of being forked or reloaded per job. Its started-job registry with
heartbeats and ``Retry`` give the crash recovery: a job whose worker died is re-queued once
its heartbeat lapses and taken by another worker.

The session shows the job (``SessionState.job``, ``engine.session(id).metrics["job"]``):

    queued   {"status": "queued", "id", "queue", "since", "attempt": 0}     the replica, in the turn's write
    running  {..., "status": "running", "worker", "attempt": n, "started"}  the worker, before it trains
    done     {"status": "done", "seconds", ...}                             run_adaptation (serving/rejected)
    failed   {"status": "failed", "error", ...}                             the job raised: phase rejected,
                                                                            re-adapts after more turns

While a job is queued or running the session is ``adapting`` and every turn goes to the
teacher. A worker killed mid-job leaves it so; RQ re-queues the job when the worker's
heartbeat lapses (``lease`` seconds) and the next worker runs it (``attempt`` counts). When
RQ gives up (``retries`` exhausted), the next teacher turn of the session sees no live job
and enqueues a fresh one. Jobs carry the session digest, never the caller's ids, and the
app's config (the worker trains with the app's LoRA/gate settings). Teacher probes
(``mining.probe_teacher``) need the app's teacher callable and do not run on the queue.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import SomaConfig
from ..session import SessionGone
from ..types import Phase, SessionKey

if TYPE_CHECKING:
    from ..session.redis import RedisStore
    from .runner import JobRunner

log = logging.getLogger("soma.queue")

ACTIVE = ("queued", "started", "deferred", "scheduled")
DEFAULT_LEASE = 30  # s without a heartbeat before a running job counts as abandoned

_RUNNER: JobRunner | None = None  # the worker process's engine's job runner (one model, many jobs)


def queue_name(store: RedisStore) -> str:
    return f"{store.prefix}-adapt"


class JobQueue:
    """The app side: enqueue adaptation jobs, and tell whether a session's job is alive."""

    def __init__(
        self,
        store: RedisStore,
        *,
        name: str | None = None,
        retries: int = 2,
        job_timeout: int = 3600,
        result_ttl: int = 24 * 3600,
    ) -> None:
        try:
            from rq import Queue
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f'{exc}: the adaptation queue needs the [redis] extra: pip install "soma-middleware[redis]"',
                name=exc.name,
            ) from exc

        if not getattr(store, "supports_queue", False):
            raise TypeError("the adaptation queue needs a RedisStore")
        self.store = store
        self.name = name or queue_name(store)
        self.retries = retries
        self.job_timeout = job_timeout
        self.result_ttl = result_ttl
        self.queue = Queue(self.name, connection=store.redis)

    def enqueue(self, key: SessionKey, config: SomaConfig, surrogate: str | None = None) -> dict[str, Any]:
        """Put one adaptation job on the queue; returns the session's job record."""
        from rq import Retry

        job_id = f"soma-{key.digest[:24]}-{uuid.uuid4().hex[:12]}"
        self.queue.enqueue(
            "soma_engine.adaptation.queue.adapt_job",
            args=(key.digest, job_id),
            kwargs={"config": config.model_dump(mode="json"), "surrogate": surrogate},
            job_id=job_id,
            retry=Retry(max=self.retries) if self.retries > 0 else None,
            job_timeout=self.job_timeout,
            result_ttl=self.result_ttl,
            failure_ttl=7 * 24 * 3600,
            description=f"adapt session {key.digest[:12]}",
        )
        return {
            "status": "queued",
            "id": job_id,
            "queue": self.name,
            "owner": "queue",
            "since": time.time(),
            "attempt": 0,
        }

    def status(self, job_id: str) -> str | None:
        """RQ's status of the job (queued, started, finished, failed, …), None if unknown."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            status = Job.fetch(job_id, connection=self.store.redis).get_status(refresh=False)
        except NoSuchJobError:
            return None
        return getattr(status, "value", status)

    def is_active(self, job: dict[str, Any] | None) -> bool:
        """Is this session job record's RQ job still queued or running (or due for retry)?"""
        if not job or job.get("status") not in ("queued", "running") or not job.get("id"):
            return False
        return self.status(job["id"]) in ACTIVE


# -- the worker side --------------------------------------------------------------------------


def current_runner() -> JobRunner:
    if _RUNNER is None:
        raise RuntimeError("adaptation jobs run in `soma worker` processes (soma_engine.adaptation.queue.run_worker)")
    return _RUNNER


def adapt_job(digest: str, job_id: str, config: dict[str, Any], surrogate: str | None = None) -> dict[str, Any]:
    """The queued job: mark the session's job running, then train and gate (``run_adaptation``
    via ``JobRunner.run_now``, which marks a failure and leaves the session on the teacher)."""
    from rq import get_current_job

    runner = current_runner()
    services = runner.services
    store = services.store
    state = store.get_by_digest(digest)  # type: ignore[attr-defined]
    if state is None:
        return {"status": "skipped", "reason": "session gone"}
    key = SessionKey(state.namespace, state.session_id, state.agent)
    cfg = SomaConfig(**{**config, "adaptation": "inline"})
    mine = services.surrogate.configured_path
    if surrogate and mine and surrogate != mine:
        log.warning("job %s was enqueued by an app on surrogate %s; this worker runs %s", job_id, surrogate, mine)
    rq_job = get_current_job()
    try:
        with store.session(key, cfg.session_ttl, create=False) as st:
            job = st.job or {}
            if st.phase != Phase.ADAPTING.value or job.get("id") != job_id:
                return {"status": "skipped", "reason": "the session moved on"}
            st.job = {
                **job,
                "status": "running",
                "worker": getattr(rq_job, "worker_name", None) or _worker_name,
                "attempt": int(job.get("attempt", 0)) + 1,
                "started": time.time(),
            }
    except SessionGone:
        return {"status": "skipped", "reason": "session gone"}
    saved = services.config
    services.config = cfg  # the app's settings for this job (the engine reads them too); one job at a time
    try:
        runner.run_now(key)
    finally:
        services.config = saved
    after = store.get(key)
    return dict((after.job or {}) if after else {"status": "skipped", "reason": "session gone"})


_worker_name = ""


def _worker_class() -> type:
    try:
        from rq.worker import SimpleWorker, WorkerStatus
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f'{exc}: `soma worker` needs the [redis] extra: pip install "soma-middleware[redis]"', name=exc.name
        ) from exc

    class SomaWorker(SimpleWorker):
        """RQ's in-process worker (the model stays loaded between jobs), with a heartbeat
        thread during a job: the job's entry in the started registry lives ``lease`` seconds
        past the last beat, so a killed worker's job is re-queued within about a lease."""

        lease: int = DEFAULT_LEASE

        def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
            return int(self.lease)

        def execute_job(self, job: Any, queue: Any) -> None:
            execution = self.prepare_execution(job)
            stop = threading.Event()

            def beat() -> None:
                while not stop.wait(max(0.5, self.lease / 3)):
                    try:
                        self.maintain_heartbeats(job, execution)
                    except Exception:
                        log.warning("heartbeat for job %s failed", job.id, exc_info=True)

            beater = threading.Thread(target=beat, name="soma-job-heartbeat", daemon=True)
            beater.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                stop.set()
                beater.join()
            self.set_state(WorkerStatus.IDLE)

    return SomaWorker


def run_worker(
    store: str,
    *,
    surrogate: str | None = None,
    encoder: str | None = None,
    config: SomaConfig | None = None,
    burst: bool = False,
    lease: int = DEFAULT_LEASE,
    name: str | None = None,
    max_jobs: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    logging_level: str = "INFO",
) -> bool:
    """Run adaptation jobs from the store's queue until stopped (SIGINT/SIGTERM), or until
    the queue is empty with ``burst``. Returns whether any job ran."""
    global _RUNNER, _worker_name
    from ..engine import SomaEngine

    cfg = config or SomaConfig.load()
    cfg = cfg.model_copy(update={"adaptation": "inline"})  # this process runs the jobs itself
    engine = SomaEngine(config=cfg, surrogate=surrogate, encoder=encoder, store=store)
    if not getattr(engine.store, "supports_queue", False):
        engine.close()
        raise ValueError(f"`soma worker` needs a redis:// store, not {store!r}")
    engine.on_progress = on_progress
    _RUNNER = engine.jobs
    worker_cls = _worker_class()
    worker_cls.lease = max(2, int(lease))
    _worker_name = name or f"soma-{uuid.uuid4().hex[:8]}"
    from rq import Queue

    queue = Queue(queue_name(engine.store), connection=engine.store.redis)  # type: ignore[attr-defined]
    worker = worker_cls(
        [queue],
        connection=engine.store.redis,  # type: ignore[attr-defined]
        name=_worker_name,
        # Idle workers wake every few seconds to heartbeat and, every `lease`, to re-queue
        # jobs of workers that died (RQ's registry maintenance).
        worker_ttl=15 + max(2, min(int(lease), 30)),
        maintenance_interval=max(1, int(lease)),
        job_monitoring_interval=max(1, int(lease) // 3),
    )
    try:
        return worker.work(burst=burst, max_jobs=max_jobs, logging_level=logging_level, with_scheduler=False)
    finally:
        _RUNNER = None
        engine.close()
