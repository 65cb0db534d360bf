"""What ``soma demo`` runs: the bundled conversation through :class:`SomaChatModel`.

The teacher is ``--teacher provider:model`` (anything LangChain's ``init_chat_model``
understands) when its credentials are present; otherwise :class:`LocalChatModel`, a chat
model over a local HF model given the full history every turn — a stand-in, and said so.
``--teacher scripted`` is :class:`ScriptedChatModel`: the scripted coach of
``soma_engine.demo.SCRIPT``, instant and deterministic (what ``benchmarks/savings.py`` uses).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from soma_engine.engine import SomaEngine
from soma_engine.surrogate import Generation, SurrogateRuntime
from soma_engine.types import Reply, Usage

from .langchain import SomaChatModel, to_soma_messages

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


class ScriptedChatModel(BaseChatModel):
    """:class:`soma_engine.demo.ScriptedTeacher` as a LangChain chat model (usage included)."""

    teacher: Any
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "soma-scripted-teacher"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msgs = to_soma_messages(messages)
        text, usage = self.teacher(msgs)
        msg = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
            },
            response_metadata={"model_name": "scripted-coach", "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


def make_teacher(spec: str | None, engine: SomaEngine, max_new_tokens: int) -> tuple[BaseChatModel, str]:
    """The teacher and a line saying what it is."""
    if spec == "scripted":
        from soma_engine.demo import SCRIPT, ScriptedTeacher
        from soma_engine.types import normalize_messages

        rt = engine.surrogate
        scripted = ScriptedTeacher(
            SCRIPT,
            count_prompt=lambda msgs: rt.count_tokens(rt.render(normalize_messages(msgs))),
            count_answer=rt.count_tokens,
        )
        note = "the teacher is a scripted stand-in: fixed coach answers, instant (not a real LLM API)"
        return ScriptedChatModel(teacher=scripted), note
    if spec and spec != "local":
        provider = spec.split(":", 1)[0]
        env = CREDENTIALS.get(provider)
        if env is None or os.environ.get(env):
            from langchain.chat_models import init_chat_model

            return init_chat_model(spec), f"teacher: {spec}"
        note = f"no {env} set, so the teacher is a local stand-in"
    else:
        note = "the teacher is a local stand-in"
    model = LocalChatModel(model_path=engine.surrogate.model_path, max_new_tokens=max_new_tokens)
    return model, f"{note}: the bundled SmolLM2 base model given the full history (not a real LLM API)"


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
