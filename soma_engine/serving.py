"""The surrogate half of a turn: :meth:`SurrogatePath.generate` / ``stream`` (and their async
twins) serve a routed turn by the base surrogate plus the session's adapter from the
compressed context S~_t, record it, and maybe audit it. Any failure raises
:class:`~soma_engine.runtime.surrogate.SurrogateError`; the caller then serves the same turn by
the teacher (``SomaEngine.fallback``): the surrogate path never loses a turn.

A part of :class:`~soma_engine.engine.SomaEngine` (which inherits it), kept apart so that
``engine.py`` shows the flow of a turn on one screen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from .adapters import AdapterRef, AdapterStore, CorruptAdapter, serving_ref
from .config import SomaConfig
from .drift.audits import Auditor
from .runtime.surrogate import Generation, SurrogateError, SurrogateRuntime
from .session import SessionState, SessionStore
from .types import Message, Phase, Reply, Route, TurnRecord, Usage, last_query
from .views import gate_info, reply_meta

if TYPE_CHECKING:
    from .adapters import AdapterRegistry

log = logging.getLogger("soma.engine")

Teacher = Callable[[list[Message]], Any]


class SurrogatePath:
    """Serving a turn by the surrogate (mixed into ``SomaEngine``, whose attributes it uses)."""

    config: SomaConfig
    store: SessionStore
    surrogate: SurrogateRuntime
    adapters: AdapterStore
    registry: AdapterRegistry
    auditor: Auditor
    _generations: ThreadPoolExecutor
    _audits: ThreadPoolExecutor

    compressed: Callable[[list[Message]], list[Message]]
    _reset_adapter: Callable[[Any, str, str | None], None]
    _commit_turn: Callable[..., Any]
    replayed: Callable[..., Reply]

    def _adapter(self, route: Route) -> AdapterRef | None:
        """The adapter the session serves with; None: the base surrogate (``BASE_SURROGATE``)."""
        state = self.store.get(route.key)
        if state is None or not state.adapter:
            raise SurrogateError("the session has no adapter any more")
        ref = serving_ref(state.adapter)
        if ref is None:
            return None
        # A copy may still sit in the runtime's memory after its files were deleted (its
        # donor's session deleted or expired, here or in another process): never serve it.
        if not self.adapters.exists(ref):
            raise CorruptAdapter(f"adapter {ref.adapter_id} was deleted")
        return ref

    def generate(self, route: Route, audit: Teacher | None = None, options: dict[str, Any] | None = None) -> Reply:
        """Serve by the adapted surrogate. Raises :class:`SurrogateError` on any failure
        (the caller then serves the turn by the teacher, see :meth:`fallback`)."""
        self._check_surrogate_route(route)
        try:
            ref = self._adapter(route)
            context = self.compressed(route.messages)
            pending = self._generations.submit(
                self.surrogate.generate,
                context,
                ref,
                tools=route.tools,
                **self._generation(options),
            )
            try:
                gen = pending.result(timeout=self.config.surrogate_deadline)
            except FutureTimeout:
                pending.cancel()
                raise SurrogateError(self._deadline_note()) from None
        except Exception as exc:
            raise self._surrogate_failure(route, exc) from exc
        return self._record_surrogate(route, ref, gen, audit)

    async def agenerate(
        self, route: Route, audit: Teacher | None = None, options: dict[str, Any] | None = None
    ) -> Reply:
        self._check_surrogate_route(route)
        try:
            ref = self._adapter(route)
            context = self.compressed(route.messages)
            try:
                gen = await asyncio.wait_for(
                    self.surrogate.agenerate(context, ref, tools=route.tools, **self._generation(options)),
                    self.config.surrogate_deadline,
                )
            except asyncio.TimeoutError:
                raise SurrogateError(self._deadline_note()) from None
        except Exception as exc:
            raise self._surrogate_failure(route, exc) from exc
        return self._record_surrogate(route, ref, gen, audit)

    def stream(
        self, route: Route, audit: Teacher | None = None, options: dict[str, Any] | None = None
    ) -> Iterator[str | Reply]:
        """Text pieces token by token, then the final :class:`Reply`. A failure before the
        first piece, or no first piece within ``surrogate_deadline``, raises
        :class:`SurrogateError` (serve by the teacher)."""
        self._check_surrogate_route(route)
        try:
            ref = self._adapter(route)
            pieces = self.surrogate.stream(
                self.compressed(route.messages),
                ref,
                tools=route.tools,
                **self._generation(options),
            )
            pending = self._generations.submit(next, pieces)
            try:
                first = pending.result(timeout=self.config.surrogate_deadline)
            except FutureTimeout:
                pending.cancel()
                raise SurrogateError(self._deadline_note()) from None
        except Exception as exc:
            raise self._surrogate_failure(route, exc) from exc
        for item in _chain(first, pieces):
            if isinstance(item, Generation):
                yield self._record_surrogate(route, ref, item, audit)
            else:
                yield item

    async def astream(
        self, route: Route, audit: Teacher | None = None, options: dict[str, Any] | None = None
    ) -> AsyncIterator[str | Reply]:
        self._check_surrogate_route(route)
        try:
            ref = self._adapter(route)
            pieces = self.surrogate.astream(
                self.compressed(route.messages),
                ref,
                tools=route.tools,
                **self._generation(options),
            )
            try:
                first = await asyncio.wait_for(pieces.__anext__(), self.config.surrogate_deadline)
            except asyncio.TimeoutError:
                raise SurrogateError(self._deadline_note()) from None
        except Exception as exc:
            raise self._surrogate_failure(route, exc) from exc
        yield first if not isinstance(first, Generation) else self._record_surrogate(route, ref, first, audit)
        if isinstance(first, Generation):
            return
        async for item in pieces:
            yield self._record_surrogate(route, ref, item, audit) if isinstance(item, Generation) else item

    def _deadline_note(self) -> str:
        return f"the surrogate did not answer within surrogate_deadline ({self.config.surrogate_deadline:g} s)"

    def _generation(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """The surrogate's generation settings: the config's, narrowed by the caller's
        ``max_new_tokens`` (never above the config's), ``temperature`` and ``stop``."""
        options = {k: v for k, v in (options or {}).items() if v is not None}
        limit = min(int(options.pop("max_new_tokens", self.config.max_new_tokens)), self.config.max_new_tokens)
        return {"max_new_tokens": limit, "temperature": self.config.temperature, **options}

    def _check_surrogate_route(self, route: Route) -> None:
        if route.target != "surrogate":
            raise ValueError("this route is for the teacher: call the teacher, then record_teacher(route, text)")

    def _surrogate_failure(self, route: Route, exc: BaseException) -> SurrogateError:
        # Only a missing or corrupt adapter resets the session; a storage error
        # (AdapterUnavailable) or any other failure keeps the adapter for the next turn.
        if isinstance(exc, CorruptAdapter):
            self._reset_adapter(route.key, str(exc), route.adapter_id)
        return exc if isinstance(exc, SurrogateError) else SurrogateError(f"{type(exc).__name__}: {exc}")

    def _record_surrogate(self, route: Route, ref: AdapterRef | None, gen: Generation, audit: Teacher | None) -> Reply:
        if not gen.text.strip():
            raise SurrogateError("the surrogate produced an empty answer")
        if route.validate is not None:
            try:
                route.validate(gen.text)
            except Exception as exc:
                raise SurrogateError(f"invalid surrogate output: {exc}") from exc
        latency = (time.perf_counter() - route.started) * 1000
        usage = Usage(gen.input_tokens, gen.output_tokens)

        def write(st: SessionState) -> tuple[TurnRecord, str, dict[str, Any]]:
            record = st.add_turn(
                TurnRecord(
                    turn=0,
                    served_by="surrogate",
                    query=last_query(route.messages),
                    answer=gen.text,
                    input_tokens=gen.input_tokens,
                    output_tokens=gen.output_tokens,
                    latency_ms=latency,
                    phase=st.phase,
                    locality=route.locality,
                    adapter_id=ref.adapter_id if ref else None,
                    served_by_detail=None if ref else "base",
                    request_id=route.request_id,
                )
            )
            st.add("surrogate_calls")
            st.add("surrogate_input_tokens", gen.input_tokens)
            st.add("surrogate_output_tokens", gen.output_tokens)
            st.add("surrogate_latency_ms", latency)
            if route.drift is not None and st.phase == Phase.SERVING.value:
                # locality from this turn's route; audit Gaps from the store (an audit may have
                # landed since route() read the state)
                current = st.drift or {}
                st.drift = {**route.drift, **{k: current[k] for k in ("gaps", "gap_streak") if k in current}}
            return record, st.phase, gate_info(st)

        done = self._commit_turn(route, gen.text, write)
        if done is None:
            record = TurnRecord(
                turn=route.turn,
                served_by="surrogate",
                query=last_query(route.messages),
                answer=gen.text,
                served_by_detail=None if ref else "base",
            )
            meta = reply_meta(route, record, route.phase.value, recorded=False)
            return Reply(gen.text, "surrogate", usage, meta, gen.finish_reason)
        if isinstance(done, TurnRecord):
            return self.replayed(route, done)
        record, phase, info = done
        if audit is not None and self.auditor.due(route, record.turn):
            self.auditor.submit(route, record.turn, gen.text, audit)
        if ref is not None:
            self._audits.submit(self._touch, ref)
        return Reply(gen.text, "surrogate", usage, reply_meta(route, record, phase, info), gen.finish_reason)

    def _touch(self, ref: AdapterRef) -> None:
        """The adapter's registry row: last used now (throttled; off the surrogate path)."""
        try:
            self.registry.touch(ref.namespace, ref.adapter_id, ref.session)
        except Exception:
            log.exception("could not update last_used of adapter %s", ref.adapter_id[:8])


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
