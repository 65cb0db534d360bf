"""Audits of surrogate turns (paper Sec. 3.3): the teacher answers a sampled turn in the
background, Gap(surrogate answer, teacher answer) feeds the session's :class:`DriftMonitor`, and
``gate.consecutive`` breaches of ``gate.drift_threshold`` roll the session back. Borderline
turns are always audited, the others with probability ``gate.audit_rate``."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from ..acceptance.bounds import gap
from ..session import SessionGone, SessionState, SessionStore
from ..session.transitions import push_decision
from ..types import Message, Phase, Route, SessionKey, Usage
from .detector import LocalityDetector, TextEncoder
from .monitor import audit_rng, should_audit

if TYPE_CHECKING:
    from ..config import SomaConfig

log = logging.getLogger("soma.drift")

AUDIT_BACKLOG = 64  # background audits waiting at most; more are dropped (Auditor.dropped)

# The teacher's answer to an audited turn and its usage: (teacher, messages) -> (text, usage).
AskTeacher = Callable[[Any, list[Message]], tuple[str, Usage]]


class Auditor:
    """Samples surrogate turns for audit and runs the audits on ``executor`` (the engine's
    background thread). ``config``, ``encoder``: getters (a replaced configuration or encoder
    applies at once); ``ask``: calls a teacher; ``rollback(key, reason)``: the engine's rollback,
    called when audits breach."""

    def __init__(
        self,
        *,
        store: SessionStore,
        config: Callable[[], SomaConfig],
        encoder: Callable[[], TextEncoder],
        detector: LocalityDetector,
        executor: Executor,
        ask: AskTeacher,
        rollback: Callable[[SessionKey, str], object],
    ) -> None:
        self._store = store
        self._config = config
        self._encoder = encoder
        self._detector = detector
        self._executor = executor
        self._ask = ask
        self._rollback = rollback
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.backlog = 0  # audits submitted and not finished (bounded: AUDIT_BACKLOG)
        self.dropped = 0

    def due(self, route: Route, turn: int) -> bool:
        """Audit this surrogate turn? Always when its locality is borderline, otherwise with
        probability ``gate.audit_rate`` (``gate.audit_seed`` set: one draw per session and
        turn, ``audit_rng``)."""
        seed, rate = self._config().gate.audit_seed, self._config().gate.audit_rate
        if seed is not None:
            return should_audit(audit_rng(seed, route.key.digest, turn), rate, route.audit)
        with self._lock:
            return should_audit(self._rng, rate, route.audit)

    def submit(self, route: Route, turn: int, answer: str, teacher: Any) -> None:
        """Queue a background audit; when ``AUDIT_BACKLOG`` are already waiting (a slow or
        failing teacher) this one is dropped and counted, so the backlog stays bounded."""
        with self._lock:
            if self.backlog >= AUDIT_BACKLOG:
                self.dropped += 1
                log.warning(
                    "audit backlog full (%d): audit of session %s dropped", AUDIT_BACKLOG, route.key.digest[:12]
                )
                return
            self.backlog += 1

        def run() -> None:
            try:
                self._audit(route, turn, answer, teacher)
            finally:
                with self._lock:
                    self.backlog -= 1

        self._executor.submit(run)

    def _audit(self, route: Route, turn: int, answer: str, teacher: Any) -> None:
        """Background audit: the teacher answers the same turn (the user already has the
        surrogate's answer). Its tokens count as teacher tokens (``audit_*`` counters; the
        session's ``teacher_tokens`` metric includes them); Gap(answer, teacher's) feeds the
        drift monitor's window, and ``gate.consecutive`` breaches of ``drift_threshold`` roll
        the session back."""
        try:
            text, usage = self._ask(teacher, route.messages)
        except Exception:
            log.exception("audit failed for session %s", route.key.digest[:12])
            return
        try:
            emb = self._encoder().encode([answer, text])
            g = float(gap(emb[0], emb[1]))
        except Exception:
            g = None
            log.exception("audit Gap failed for session %s", route.key.digest[:12])
        config = self._config()
        rollback = False
        try:
            with self._store.session(route.key, config.session_ttl, create=False) as st:
                rollback = self._write(st, route, turn, g, usage)
        except SessionGone:
            return  # deleted meanwhile: nothing to record
        if rollback and g is not None:
            self._rollback(route.key, f"audit Gap {g:.3f} > drift_threshold {config.gate.drift_threshold}")

    def _write(self, st: SessionState, route: Route, turn: int, g: float | None, usage: Usage) -> bool:
        """Record an audit in the session's locked write; True when it rolls the session back."""
        rollback = False
        st.add("audit_calls")
        st.add("audit_input_tokens", usage.input_tokens)
        st.add("audit_output_tokens", usage.output_tokens)
        if g is None:
            return False
        serving = st.phase == Phase.SERVING.value and (st.adapter or {}).get("adapter_id") == route.adapter_id
        if serving:  # an audit that lands after a rollback or a new adapter is only recorded
            monitor = self._detector.monitor(st.drift)
            rollback = monitor.observe_gap(g)
            st.drift = monitor.state()
        push_decision(
            st,
            {
                "kind": "audit",
                "audit_turn": turn,
                "gap": g,
                "borderline": route.audit,
                "breach": g > self._config().gate.drift_threshold,
                "rollback": rollback,
                "turn": st.turn_count,
                "time": time.time(),
            },
        )
        return rollback
