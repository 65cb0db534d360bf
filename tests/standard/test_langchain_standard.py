"""LangChain's standard unit tests for SomaChatModel (tool calling and structured output on).

Construction must load nothing (``test_init_time`` builds it ten times), so the model is built
from engine arguments only; no engine is created unless the model is called.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_tests.unit_tests import ChatModelUnitTests

from soma_integrations.langchain import SomaChatModel


class ToolFakeChat(GenericFakeChatModel):
    """A fake teacher that accepts tools (the standard suite binds some)."""

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=tools, tool_choice=tool_choice, **kwargs)


class TestSomaChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return SomaChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "teacher": ToolFakeChat(messages=iter([AIMessage("hello")])),
            "store": "sqlite:////nonexistent-dir-never-opened/soma.db",
            "namespace": "standard-tests",
        }

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        """Without ``timeout``, ``max_retries`` and ``api_key``: they configure a provider's
        client, so they belong on the teacher, and SomaChatModel refuses them with a message
        saying so rather than dropping them (tests/unit/test_langchain.py)."""
        params = super().standard_chat_model_params
        for key in ("timeout", "max_retries", "api_key"):
            params.pop(key, None)
        return params

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str | None:
        return "teacher-model-override"
