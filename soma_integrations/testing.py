"""The stand-in teachers of ``soma_engine.testing`` as framework models, for tests and demos.

``StandInChatModel(teacher=ReplayTeacher(...))`` is the replay teacher as a LangChain chat
model, ``StandInLLM(teacher=ReplayTeacher(...))`` as a LlamaIndex LLM; any engine stand-in
(:class:`~soma_engine.testing.ScriptedTeacher` too) works the same. Both report the
stand-in's usage as the framework expects it.
"""

from __future__ import annotations

from ._core import framework_missing

try:
    import langchain_core  # noqa: F401  (checked first: every import below needs both frameworks)
    import llama_index.core  # noqa: F401
except ModuleNotFoundError as exc:
    raise framework_missing("langchain,llama-index", exc) from exc

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import ConfigDict

from .langchain import to_soma_messages


class StandInChatModel(BaseChatModel):
    """A LangChain chat model over an engine stand-in teacher, with ``usage_metadata``."""

    teacher: Any
    model_name: str = "recorded-chatgpt"
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "soma-stand-in-teacher"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text, usage = self.teacher(to_soma_messages(messages))
        msg = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
            },
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


class StandInLLM(CustomLLM):
    """A LlamaIndex LLM over an engine stand-in teacher. Chat replies carry the usage as
    OpenAI's do: ``raw["usage"]`` and ``additional_kwargs`` (``prompt_tokens`` /
    ``completion_tokens``)."""

    teacher: Any
    model_name: str = "recorded-chatgpt"
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model_name, is_chat_model=True)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text, usage = self.teacher([{"role": m.role.value, "content": m.content or ""} for m in messages])
        counts = {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens}
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
            raw={"usage": {**counts, "total_tokens": usage.total_tokens}},
            additional_kwargs=counts,
        )

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text, _ = self.teacher([{"role": "user", "content": prompt}])
        return CompletionResponse(text=text)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted)
        return iter([CompletionResponse(text=response.text, delta=response.text)])
