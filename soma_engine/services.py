"""The narrow view of an engine that adaptation jobs, shadow steps and adoption looks get.

Jobs and sharing read and write sessions, train and gate adapters, and nothing else: they get
this object, not the :class:`~soma_engine.engine.SomaEngine`. The engine builds it once and
reads its ``config`` and ``on_progress`` through it, so a queue worker that runs one job
under the app's config (``adaptation.queue.adapt_job``) swaps it in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .adapters import AdapterRegistry, AdapterStore
from .compress import compress_context
from .config import SomaConfig
from .runtime.encoder import Encoder
from .runtime.surrogate import SurrogateRuntime
from .session import SessionStore
from .types import Message, SessionKey

ProgressHook = Callable[[str, int, int], None]


@dataclass
class Services:
    config: SomaConfig
    store: SessionStore
    adapters: AdapterStore
    surrogate: SurrogateRuntime
    encoder: Encoder
    # Runs a shadow step (``adaptation.shadow``) for a session: inline, or on the engine's
    # background pool; set by the engine, which owns the threads.
    start_shadow: Callable[[SessionKey], None] = lambda key: None
    # Progress bars: on_progress(stage, step, total), stage "mining" | "lora".
    on_progress: ProgressHook | None = None
    # Who runs this engine's jobs, written into each job record (``JobRunner.job_alive``):
    # "queue" when `soma worker` processes run them.
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def registry(self) -> AdapterRegistry:
        return self.adapters.registry

    def compressed(self, messages: list[Message]) -> list[Message]:
        """S~_t: summary of older turns within ``summary_tokens`` + the last K turns."""
        return compress_context(
            messages,
            recent_turns=self.config.recent_turns,
            summary_tokens=self.config.summary_tokens,
            count_tokens=self.surrogate.count_tokens,
        )
