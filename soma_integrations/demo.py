"""What ``soma demo`` runs: a conversation through :class:`SomaChatModel`.

By default a ShareGPT conversation replayed with its recorded ChatGPT answers
(``soma_engine.testing.ReplayTeacher``), an offline stand-in for the app's teacher.
``--teacher scripted`` is the scripted coach of ``soma_engine.demo.SCRIPT``, instant and
deterministic (what ``benchmarks/savings.py`` uses). ``--teacher provider:model`` is anything
LangChain's ``init_chat_model`` understands, when its credentials are present; otherwise, and
with ``--teacher local``, :class:`LocalChatModel`: the bundled SmolLM2 base model given the
full history every turn, a stand-in, and said so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from soma_engine.datasets.sharegpt import get_conversation
from soma_engine.demo import CONVERSATION, DEMO_CONVERSATION, SCRIPT, SYSTEM
from soma_engine.engine import SomaEngine
from soma_engine.runtime.surrogate import Generation, SurrogateRuntime
from soma_engine.testing import ReplayTeacher, ScriptedTeacher
from soma_engine.types import Reply, Usage

from .langchain import SomaChatModel, to_soma_messages
from .testing import StandInChatModel

CREDENTIALS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google_genai": "GOOGLE_API_KEY",
    "mistralai": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
}


class LocalChatModel(BaseChatModel):
    """A chat model over a local HF causal LM (its own copy, base weights, no adapter),
    given the full history every turn: the demo's stand-in teacher."""

    model_path: str
    max_new_tokens: int = 48
    # Sampled, and no 6-gram of the history repeated: given the full history, SmolLM2 otherwise
    # copies its previous answer turn after turn (and the surrogate learns the copy).
    temperature: float = 0.7
    no_repeat_ngram_size: int = 6
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _runtime: SurrogateRuntime | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "soma-local-stand-in"

    @property
    def runtime(self) -> SurrogateRuntime:
        if self._runtime is None:
            self._runtime = SurrogateRuntime(
                self.model_path, generation_options={"no_repeat_ngram_size": self.no_repeat_ngram_size}
            )
        return self._runtime

    def _run(self, messages: list[BaseMessage]) -> Generation:
        from soma_engine.types import normalize_messages

        msgs = normalize_messages(to_soma_messages(messages))
        return self.runtime.generate(msgs, None, max_new_tokens=self.max_new_tokens, temperature=self.temperature)

    def _message(self, gen: Generation) -> AIMessage:
        return AIMessage(
            content=gen.text,
            usage_metadata={
                "input_tokens": gen.input_tokens,
                "output_tokens": gen.output_tokens,
                "total_tokens": gen.input_tokens + gen.output_tokens,
            },
            response_metadata={"model_name": self.model_path, "finish_reason": gen.finish_reason},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._message(self._run(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        msg = self._message(self._run(messages))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=msg.content,
                usage_metadata=msg.usage_metadata,
                response_metadata=msg.response_metadata,
                chunk_position="last",
            )
        )

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


@dataclass
class DemoTeacher:
    """What ``soma demo`` plays: the teacher model, a line saying what it is, and the
    conversation (``references``: the recorded answers, when there are any)."""

    model: BaseChatModel
    note: str
    queries: list[str]
    system: str = ""
    references: list[str] = field(default_factory=list)


def make_teacher(
    spec: str | None, engine: SomaEngine, max_new_tokens: int, conversation: str = DEMO_CONVERSATION
) -> DemoTeacher:
    """The demo's teacher and conversation. ``spec``: None or ``sharegpt`` (a ShareGPT
    conversation replayed with its recorded ChatGPT answers), ``scripted``, ``local``, or
    ``provider:model`` for ``init_chat_model`` (on the bundled coaching script)."""
    from soma_engine.types import normalize_messages

    rt = engine.surrogate

    def count_prompt(msgs: list[dict[str, str]]) -> int:
        return rt.count_tokens(rt.render(normalize_messages(msgs)))

    if spec in (None, "sharegpt"):
        conv = get_conversation(conversation)
        replay = ReplayTeacher.from_conversation(conv, count_prompt=count_prompt, count_answer=rt.count_tokens)
        note = (
            f"teacher: recorded ChatGPT answers (ShareGPT conversation {conv.id}, {len(conv)} turns), "
            "an offline stand-in"
        )
        return DemoTeacher(StandInChatModel(teacher=replay), note, conv.queries, "", [a for _, a in conv.turns])
    if spec == "scripted":
        scripted = ScriptedTeacher(SCRIPT, count_prompt=count_prompt, count_answer=rt.count_tokens)
        note = "the teacher is a scripted stand-in: fixed coach answers, instant (not a real LLM API)"
        model = StandInChatModel(teacher=scripted, model_name="scripted-coach")
        return DemoTeacher(model, note, CONVERSATION, SYSTEM, [a for _, a in SCRIPT])
    if spec != "local":
        provider = spec.split(":", 1)[0]
        env = CREDENTIALS.get(provider)
        if env is None or os.environ.get(env):
            from langchain.chat_models import init_chat_model

            return DemoTeacher(init_chat_model(spec), f"teacher: {spec}", CONVERSATION, SYSTEM)
        note = f"no {env} set, so the teacher is a local stand-in"
    else:
        note = "the teacher is a local stand-in"
    model = LocalChatModel(model_path=engine.surrogate.model_path, max_new_tokens=max_new_tokens)
    note += ": the bundled SmolLM2 base model given the full history (not a real LLM API)"
    return DemoTeacher(model, note, CONVERSATION, SYSTEM)


def chat_function(model: SomaChatModel, session_id: str) -> Callable[[list[dict[str, str]]], Reply]:
    """One demo turn through the LangChain model, read back as the engine's Reply."""

    def chat(history: list[dict[str, str]]) -> Reply:
        msg = model.invoke([(m["role"], m["content"]) for m in history], session_id=session_id)
        soma = msg.response_metadata["soma"]
        usage = msg.usage_metadata or {}
        return Reply(
            text=str(msg.content),
            served_by=soma["served_by"],
            usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
            soma=soma,
        )

    return chat
