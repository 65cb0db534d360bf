"""SomaEngine: the turn controller.

One turn:  route()  ── teacher ──>  (caller calls F)  ──>  record_teacher()  ──> maybe adapt
                                                                            (or adopt a shared adapter)
                    └─ surrogate ─>  generate()/stream() on S~_t  ──> record, maybe audit
                                     └─ any failure ──> teacher serves the same turn

Models load lazily on first need. Adaptation, audits and anything else that can wait run
off the request path (``JobRunner``); the teacher path only reads and writes the store.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from .adaptation import sharing
from .adaptation.jobs import shadow_step
from .adaptation.runner import JobRunner
from .adapters import AdapterRegistry
from .config import ConfigError, SomaConfig
from .drift.audits import Auditor
from .drift.detector import LocalityDetector
from .drift.locality import LocalityScore
from .runtime.encoder import Encoder
from .runtime.models import resolve_encoder, resolve_surrogate, soma_home
from .runtime.surrogate import SurrogateError, SurrogateRuntime
from .services import ProgressHook, Services
from .serving import SurrogatePath
from .session import SessionGone, SessionState, SessionStore, open_store, transitions
from .session.identity import SlotTaken, continues, fingerprint_slot
from .session.transitions import JobRecord, Parked
from .teacher import resolve_sync, split_teacher_result, teacher_usage
from .types import (
    Message,
    NonTextContent,
    Phase,
    Reply,
    Route,
    SessionKey,
    SessionView,
    TurnRecord,
    Usage,
    fingerprint,
    last_query,
    messages_digest,
    normalize_messages,
    transcript_digest,
)
from .views import gate_info, reply_meta, session_view

log = logging.getLogger("soma.engine")

Teacher = Callable[[list[Message]], Any]


class SomaEngine(SurrogatePath):
    def __init__(
        self,
        config: SomaConfig | None = None,
        surrogate: str | SurrogateRuntime | None = None,
        encoder: str | Encoder | None = None,
        store: str | SessionStore | None = None,
        namespace: str = "default",
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError("namespace must be a non-empty string")
        if config is not None and not isinstance(config, SomaConfig):
            raise TypeError("config must be a SomaConfig (or None for defaults, env vars and file)")
        config = config if config is not None else SomaConfig.load()
        self.namespace = namespace
        self.home = soma_home()
        self.store, self.adapters = open_store(store, self.home)
        if config.adaptation == "queue" and not getattr(self.store, "supports_queue", False):
            raise ConfigError("adaptation='queue' needs a Redis store (store='redis://host:port/db') and `soma worker`")
        if isinstance(surrogate, SurrogateRuntime):
            self.surrogate = surrogate
            if self.surrogate.adapters is None:
                self.surrogate.adapters = self.adapters
        else:
            self.surrogate = SurrogateRuntime(
                None if surrogate is None else str(surrogate),
                resolve=lambda: resolve_surrogate(surrogate),
                adapters=self.adapters,
                device=config.device,
                max_adapters=config.max_adapters_in_memory,
                max_batch=config.serving_batch,
                generation_options=config.generation_options(),
            )
        self.encoder = encoder if isinstance(encoder, Encoder) else Encoder(resolve=lambda: resolve_encoder(encoder))
        # What jobs and adoption looks get instead of the engine; holds the config.
        self.services = Services(config, self.store, self.adapters, self.surrogate, self.encoder)
        self.services.start_shadow = self.start_shadow
        if config.adaptation == "queue":
            self.services.owner = "queue"  # `soma worker` processes run the jobs
        self.jobs = JobRunner(self.services)
        self._audits = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soma-audit")
        self.detector = LocalityDetector(
            encoder=lambda: self.encoder,
            query_nll=lambda messages, stable=0: self.surrogate.query_nll(messages, stable=stable),
            gate=lambda: self.config.gate,
        )
        self.auditor = Auditor(
            store=self.store,
            config=lambda: self.config,
            encoder=lambda: self.encoder,
            detector=self.detector,
            executor=self._audits,
            ask=_ask_teacher,
            rollback=lambda key, reason: self._rollback(key, reason),
        )
        # Surrogate generations run here so that a turn can stop waiting at its deadline.
        self._generations = ThreadPoolExecutor(max_workers=64, thread_name_prefix="soma-generate")
        self._fingerprint_warned = False
        self._closed = False

    @property
    def config(self) -> SomaConfig:
        return self.services.config

    @config.setter
    def config(self, value: SomaConfig) -> None:
        self.services.config = value

    @property
    def on_progress(self) -> ProgressHook | None:
        """Optional hook for progress bars: on_progress(stage, step, total), stage "mining" | "lora"."""
        return self.services.on_progress

    @on_progress.setter
    def on_progress(self, hook: ProgressHook | None) -> None:
        self.services.on_progress = hook

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def audits_dropped(self) -> int:
        """Audits dropped because the audit backlog was full (a slow or failing teacher)."""
        return self.auditor.dropped

    @property
    def registry(self) -> AdapterRegistry:
        """Every adapter of the adapter store, by namespace, with lineage and centroids."""
        return self.adapters.registry

    # -- identity --------------------------------------------------------------------------
    def key(
        self, session_id: str | SessionKey | None, messages: list[Message] | None = None, agent: str = ""
    ) -> SessionKey:
        """The session key.

        How a session is found: an explicit ``session_id`` (best: stable, cheap, and never
        shared by two users) or, without one, the fingerprint of the conversation's opening
        (system prompt + first user message, ``types.fingerprint``). Two users who open the
        same way share that fingerprint, so :meth:`route` continues a fingerprinted session
        only when its stored transcript is a prefix of the incoming messages, and otherwise
        opens the next free slot (``<fingerprint>~1``, ``~2``...). A fingerprint also breaks
        when the app edits earlier messages (each edit starts a new session), which is why an
        explicit id is best; the first fingerprinted turn of an engine logs a warning.
        Here, without an id, the opening's fingerprint itself (slot 0)."""
        if isinstance(session_id, SessionKey):
            if session_id.namespace != self.namespace:
                raise ValueError("session key belongs to another namespace")
            return session_id
        if session_id is None or session_id == "":
            if not messages:
                raise ValueError("a session id or the conversation's messages are needed")
            session_id = fingerprint(messages)
        if not isinstance(session_id, str):
            raise ValueError(f"session_id must be a string, not {type(session_id).__name__}")
        return SessionKey(self.namespace, session_id, agent or "")

    # -- the public conveniences -------------------------------------------------------------
    def chat(
        self,
        session_id: str | None,
        messages: Any,
        teacher: Teacher,
        *,
        agent: str = "",
        request_id: str | None = None,
    ) -> Reply:
        """Serve one turn: the teacher or the adapted surrogate, never losing the turn.

        ``request_id`` (optional, any string unique per client request) makes a client retry
        idempotent: a second call with the same id returns the turn already recorded
        (``soma["replayed"]``) without calling the teacher again. Messages are validated
        before the teacher is called. Once the teacher has answered, ``chat`` returns the
        answer even if recording it fails (retried once, logged, ``soma["recorded"]`` False)."""
        route = self.route(session_id, messages, agent=agent, request_id=request_id)
        if route.replay is not None:
            return self.replayed(route)
        if route.target == "surrogate":
            try:
                return self.generate(route, audit=teacher)
            except SurrogateError as exc:
                route = self.fallback(route, str(exc))
        started = time.perf_counter()
        text, usage = split_teacher_result(teacher(route.teacher_messages))
        latency = (time.perf_counter() - started) * 1000
        return self.record_teacher(route, text, usage, latency_ms=latency, teacher=teacher)

    async def achat(
        self,
        session_id: str | None,
        messages: Any,
        teacher: Teacher,
        *,
        agent: str = "",
        request_id: str | None = None,
    ) -> Reply:
        """:meth:`chat` for async teachers."""
        route = self.route(session_id, messages, agent=agent, request_id=request_id)
        if route.replay is not None:
            return self.replayed(route)
        if route.target == "surrogate":
            try:
                return await self.agenerate(route, audit=teacher)
            except SurrogateError as exc:
                route = self.fallback(route, str(exc))
        started = time.perf_counter()
        result = teacher(route.teacher_messages)
        if inspect.isawaitable(result):
            result = await result
        text, usage = split_teacher_result(result)
        latency = (time.perf_counter() - started) * 1000
        return self.record_teacher(route, text, usage, latency_ms=latency, teacher=teacher)

    # -- routing ---------------------------------------------------------------------------
    def route(
        self,
        session_id: str | SessionKey | None,
        messages: Any,
        request: dict[str, Any] | None = None,
        *,
        agent: str = "",
        request_id: str | None = None,
    ) -> Route:
        """Decide who serves this turn. Never loads a model on the teacher path. Validates
        the messages (``ValueError`` naming the problem) before anyone is paid. ``route.key``
        is the session the turn is recorded in (see :meth:`key` for how it is found);
        ``request_id``: see :meth:`chat`. An encoder or locality failure on a serving session
        sends the turn to the teacher (``route.fallback`` says why)."""
        request = request or {}
        if request_id is not None and (not isinstance(request_id, str) or not request_id):
            raise ValueError("request_id must be a non-empty string (or None)")
        try:
            msgs = normalize_messages(messages)
            non_text = None
        except NonTextContent as exc:
            msgs, non_text = _text_only(messages), str(exc)
        fingerprinted = not isinstance(session_id, SessionKey) and not session_id
        if fingerprinted:
            key, state = self._fingerprint_slot(msgs, agent)
        else:
            key = self.key(session_id, msgs, agent)
            state = self.store.get(key)
        phase = Phase(state.phase) if state else Phase.WARM
        turn = (state.turn_count if state else 0) + 1
        route = Route(key=key, target="teacher", messages=msgs, phase=phase, turn=turn, tools=request.get("tools"))
        route.existed, route.fingerprinted, route.request_id = state is not None, fingerprinted, request_id
        if request_id and state is not None and request_id in state.requests:
            done = self.store.turns(key, since=state.requests[request_id] - 1, limit=1)
            if done:
                route.replay = done[0]
                return route
        if non_text:
            route.reason, route.raw = non_text, messages  # the teacher gets the non-text parts
            return route
        try:
            return self._route_serving(route, state, request)
        except Exception as exc:  # encoder, locality: the teacher serves this turn, and it is recorded
            return self.fallback(route, f"routing failed: {type(exc).__name__}: {exc}")

    def _route_serving(self, route: Route, state: SessionState | None, request: dict[str, Any]) -> Route:
        """The part of :meth:`route` that needs models: resume a parked adapter, locality."""
        key, msgs, phase = route.key, route.messages, route.phase
        resumed = None
        if state is not None and self.detector.resumable(phase, state.parked) and not request.get("teacher_only"):
            resumed = self._resume(key, state, msgs)
            if resumed is not None:
                state, phase = self.store.get(key) or state, Phase.SERVING
                route.phase, route.reason = phase, "resumed the parked adapter: the query is back on its topic"
        if state is None or phase is not Phase.SERVING or not state.adapter:
            route.reason = f"phase {phase.value}"
            return route
        if request.get("teacher_only"):
            route.reason = request.get("reason", "teacher requested")
            return route
        route.adapter_id = state.adapter.get("adapter_id")  # None: the base surrogate serves (BASE_SURROGATE)
        seen = self.detector.observe(
            msgs, self.detector.model(state.locality), self.detector.monitor(state.drift), resumed
        )
        route.locality = None if seen.score is None else seen.score.statistic
        if seen.rollback:
            self._rollback(key, seen.reason, park=self.config.gate.resume_threshold > 0)
            route.phase, route.reason = Phase.ROLLED_BACK, "rolled back: query left the session's topic"
            return route
        if seen.score is not None:
            route.audit, route.drift = seen.score.borderline, seen.monitor.state()
        route.target = "surrogate"
        return route

    def _fingerprint_slot(self, msgs: list[Message], agent: str) -> tuple[SessionKey, SessionState | None]:
        """The fingerprinted session this conversation continues, else a free slot
        (``session.identity.fingerprint_slot``); the engine's first one logs a warning."""
        if not self._fingerprint_warned:
            self._fingerprint_warned = True
            log.warning(
                "no session id given: sessions are found by the fingerprint of the conversation's opening; "
                "pass an explicit session id (stable, and never shared by two users)"
            )
        return fingerprint_slot(self.store, self.namespace, msgs, agent)

    def _resume(self, key: SessionKey, state: SessionState, msgs: list[Message]) -> LocalityScore | None:
        """Bring the parked adapter back when the detector says the query returned to its topic
        (``LocalityDetector.resume``); returns this turn's locality score (x_t against the
        parked bank) when the session resumed."""
        parked = state.parked or {}
        back = self.detector.resume(msgs, parked["locality"])
        if back is None:
            return None
        score, y = back
        with self.store.session(key, self.config.session_ttl, create=False) as st:
            if not self.detector.resumable(Phase(st.phase), st.parked) or st.parked != parked:
                return None  # another turn or a job got there first
            transitions.resume(st, Parked.from_dict(parked), round(y, 4))
        log.info("session %s resumed its parked adapter (y=%.3f)", key.digest[:12], y)
        return score

    def fallback(self, route: Route, reason: str) -> Route:
        """The surrogate failed: the same turn goes to the teacher, and the reply says why."""
        log.warning("surrogate failed for session %s: %s; serving by the teacher", route.key.digest[:12], reason)
        route.target, route.reason, route.fallback = "teacher", f"fallback: {reason}", reason
        return route

    # -- teacher path ------------------------------------------------------------------------
    def record_teacher(
        self,
        route: Route,
        text: str,
        usage: Usage | dict[str, Any] | None = None,
        *,
        latency_ms: float | None = None,
        teacher: Teacher | None = None,
    ) -> Reply:
        """Record the teacher's answer for this turn; start adaptation when the window is full
        (before that, with ``share`` on, look for a shared adapter to adopt: sharing.py)."""
        if not isinstance(text, str):
            raise TypeError("the teacher's reply must be a string")
        usage = teacher_usage(usage, route.messages, text)
        latency = latency_ms if latency_ms is not None else (time.perf_counter() - route.started) * 1000
        fallback = route.fallback

        context = [m.to_dict() for m in route.messages] if route.raw is None else []

        def write(st: SessionState) -> tuple[TurnRecord, str, dict[str, Any], bool, bool, bool]:
            # Stored as a delta after the previous teacher context when it starts with it
            # (TurnRecord.base_turn): a long conversation is not written again every turn.
            stored, base, last = context, None, st.last_context
            n = int(last["n"]) if last else 0
            if context and last and len(context) > n and messages_digest(context[:n]) == last["digest"]:
                stored, base = context[n:], last["turn"]
            record = st.add_turn(
                TurnRecord(
                    turn=0,
                    served_by="teacher",
                    query=last_query(route.messages),
                    answer=text,
                    messages=stored,
                    base_turn=base,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    latency_ms=latency,
                    phase=st.phase,
                    fallback=fallback,
                    request_id=route.request_id,
                )
            )
            if context:
                st.last_context = {"turn": record.turn, "n": len(context), "digest": messages_digest(context)}
            st.add("teacher_calls")
            st.add("teacher_input_tokens", usage.input_tokens)
            st.add("teacher_output_tokens", usage.output_tokens)
            st.add("teacher_latency_ms", latency)
            if fallback:
                st.add("fallbacks")
            start_job = self._due_for_adaptation(st)
            if start_job:
                transitions.start_job(st, JobRecord.from_dict(self.jobs.new_job(route.key)))
            shadow = (st.job or {}).get("status") == "shadow"
            look = not start_job and sharing.due(self.services, st)  # a shared adapter to adopt early?
            return record, st.phase, gate_info(st), start_job, shadow, look

        done = self._commit_turn(route, text, write)
        if done is None:  # not recorded: the answer is returned all the same
            record = TurnRecord(turn=route.turn, served_by="teacher", query=last_query(route.messages), answer=text)
            return Reply(text, "teacher", usage, reply_meta(route, record, route.phase.value, recorded=False), "stop")
        if isinstance(done, TurnRecord):  # the same request id was recorded meanwhile
            return self.replayed(route, done)
        record, phase, info, start_job, shadow, look = done
        if start_job:
            self._start_adaptation(route.key, teacher)
        elif shadow or look:
            if shadow:
                self.start_shadow(route.key)
            else:
                self._start_look(route.key)
            if self.config.adaptation == "inline":  # the step ran here: report its outcome
                state = self.store.get(route.key)
                if state is not None:
                    phase, info = state.phase, gate_info(state)
        return Reply(text, "teacher", usage, reply_meta(route, record, phase, info), "stop")

    def _commit_turn(self, route: Route, answer: str, write: Callable[[SessionState], Any]) -> Any:
        """Record a turn whose answer is in hand: ``write(state)`` inside the session's locked
        write. Returns what ``write`` returned; the earlier turn when ``route.request_id`` was
        recorded already; None when the turn could not be recorded (the session was deleted
        during the turn, or the store failed twice: logged). Never raises, so a paid answer
        is never lost. A session that existed at ``route()`` is never created again here (a
        delete is final); a fingerprinted route whose slot another conversation took
        meanwhile moves to the next free slot."""
        for attempt in (1, 2):
            try:
                with self.store.session(route.key, self.config.session_ttl, create=not route.existed) as st:
                    if route.fingerprinted and st.turn_count and not continues(st, route.messages):
                        raise SlotTaken
                    if route.request_id and route.request_id in st.requests:
                        done = self.store.turns(route.key, since=st.requests[route.request_id] - 1, limit=1)
                        if done:
                            return done[0]
                    out = write(st)
                    if route.fingerprinted:
                        convo = [*route.messages, Message("assistant", answer)]
                        st.transcript = {"n": len(convo), "digest": transcript_digest(convo)}
                    return out
            except SlotTaken:
                route.key, state = self._fingerprint_slot(route.messages, route.key.agent)
                route.existed = state is not None
            except SessionGone:
                log.warning(
                    "session %s was deleted during this turn: the answer is returned, not recorded",
                    route.key.digest[:12],
                )
                return None
            except Exception:
                log.exception("could not record turn of session %s (attempt %d of 2)", route.key.digest[:12], attempt)
        log.error("turn of session %s was answered but not recorded", route.key.digest[:12])
        return None

    def replayed(self, route: Route, record: TurnRecord | None = None) -> Reply:
        """The reply of a turn already recorded under the route's request id: what callers of
        :meth:`route` return when ``route.replay`` is set (no teacher, no surrogate call)."""
        record = record or route.replay
        assert record is not None
        route.adapter_id = record.adapter_id
        state = self.store.get(route.key)
        meta = reply_meta(route, record, state.phase if state else route.phase.value)
        meta["replayed"] = True
        usage = Usage(record.input_tokens, record.output_tokens)
        return Reply(record.answer, record.served_by, usage, meta, "stop")

    def _due_for_adaptation(self, st: SessionState) -> bool:
        phase = Phase(st.phase)
        if phase is Phase.ADAPTING:
            # A job that died with its process (restart) is started again.
            return not self.jobs.job_alive(self.key(st.session_id, agent=st.agent), st.job or {})
        if phase is Phase.SERVING:
            return False
        due = st.next_adapt_at or (st.adapt_from + self.config.warm_window)
        return st.turn_count >= due

    def _start_adaptation(self, key: SessionKey, teacher: Teacher | None) -> None:
        if self.config.adaptation == "inline":
            self.jobs.run_now(key, teacher)
        else:
            self.jobs.submit(key, teacher)

    def _start_look(self, key: SessionKey) -> None:
        """Look for a shared adapter to adopt (sharing.adopt), off the teacher path."""
        if self.config.adaptation == "inline":
            self.jobs.look_now(key)
        else:
            self.jobs.submit_look(key)

    # -- surrogate path ---------------------------------------------------------------------
    def compressed(self, messages: list[Message]) -> list[Message]:
        """S~_t: summary of older turns within ``summary_tokens`` + the last K turns."""
        return self.services.compressed(messages)

    def rollback(self, session_id: str, reason: str, *, agent: str = "") -> bool:
        """Send a serving session back to the teacher (it re-adapts after ``readapt_window``,
        default ``warm_window``, fresh teacher turns). False when the session is not serving or
        does not exist (a rollback never creates a session)."""
        return self._rollback(self.key(session_id, agent=agent), reason)

    def _rollback(self, key: SessionKey, reason: str, *, park: bool = False) -> bool:
        """Back to the teacher: it serves from the next turn; ``readapt_window`` (default
        ``warm_window``) fresh teacher turns later the session re-adapts (from the current
        adapter, whose reference stays as the parent), the summary and the locality bank are
        rebuilt from those turns, and the gate must pass again before the surrogate serves.
        ``park`` (a locality rollback: the topic left, the answers were not shown wrong) keeps
        the adapter and its bank aside so that a return to the topic resumes it (:meth:`_resume`)."""
        try:
            with self.store.session(key, self.config.session_ttl, create=False) as st:
                if not self._rollback_write(st, reason, park):
                    return False
        except SessionGone:
            return False
        log.info("session %s rolled back to the teacher: %s", key.digest[:12], reason)
        return True

    def _rollback_write(self, st: SessionState, reason: str, park: bool) -> bool:
        if st.phase != Phase.SERVING.value:
            return False
        # Re-adaptation starts from the current adapter, so it may need fewer fresh turns.
        transitions.roll_back(
            st, reason, park=park, readapt_after=self.config.readapt_window or self.config.warm_window
        )
        return True

    def start_shadow(self, key: SessionKey) -> None:
        """Grow a candidate's acceptance batch with the latest teacher turn(s) (bound mode)."""
        if self.config.adaptation == "inline":
            self._shadow(key)
        else:
            self._audits.submit(self._shadow, key)

    def _shadow(self, key: SessionKey) -> None:
        try:
            shadow_step(self.services, key)
        except Exception:
            log.exception("shadow evaluation failed for session %s", key.digest[:12])

    def _reset_adapter(self, key: SessionKey, reason: str, adapter_id: str | None) -> None:
        """A corrupt adapter: back to the teacher, and re-adapt on the next teacher turn; only
        while ``adapter_id`` is still the session's adapter (a job may have replaced it)."""
        with suppress(SessionGone), self.store.session(key, self.config.session_ttl, create=False) as st:
            if (st.adapter or {}).get("adapter_id") != adapter_id:
                return
            transitions.discard_adapter(st, reason)

    # -- metadata and views ------------------------------------------------------------------
    def session(self, session_id: str, agent: str = "") -> SessionView:
        key = self.key(session_id, agent=agent)
        state = self.store.get(key)
        if state is None:
            raise KeyError(f"no session {session_id!r} in namespace {self.namespace!r}")
        return session_view(state, self.store.turns(key), self.registry, self.config.warm_window)

    def delete(self, session_id: str, agent: str = "") -> bool:
        """Remove a session's records and adapters (conversations are user data)."""
        return self.store.delete(self.key(session_id, agent=agent))

    def purge_expired(self) -> int:
        return len(self.store.purge_expired())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until background adaptation jobs and audits are done (tests, demos)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.jobs.wait_idle(left):
                return False
            try:
                self._audits.submit(lambda: None).result(timeout=left)
            except TimeoutError:
                return False
            if not self.jobs.wait_idle(0):
                continue
            return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.jobs.close()
        self._audits.shutdown(wait=True)
        self._generations.shutdown(wait=True, cancel_futures=True)
        self.surrogate.close()
        self.store.close()

    def __enter__(self) -> SomaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ask_teacher(teacher: Teacher, messages: list[Message]) -> tuple[str, Usage]:
    """A teacher's answer to an audited turn and its usage; an async teacher runs to completion
    here (audits run on the engine's background thread)."""
    text, usage = split_teacher_result(resolve_sync(teacher(messages)))
    return text, teacher_usage(usage, messages, text)


def _text_only(messages: Any) -> list[Message]:
    out = []
    for m in messages:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", "user")
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", "")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        out.append({"role": role, "content": content or ""})
    return normalize_messages(out)
