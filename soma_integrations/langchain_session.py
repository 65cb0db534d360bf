"""The session of a LangChain call: an explicit id, else LangGraph's ``thread_id``, else
``configurable.session_id``, from the call's config, the run's metadata or the enclosing
runnable context; None lets the engine fingerprint the conversation."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.runnables.config import RunnableConfig, ensure_config


def resolve_session(
    explicit: str | None, run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None
) -> str | None:
    """explicit → LangGraph thread_id → configurable.session_id → None (fingerprint).

    Besides the call's config (read by the entry points), the run's metadata and the
    enclosing runnable context are consulted, for callers that use ``generate()`` directly."""
    if explicit:
        return str(explicit)
    run_meta = dict(getattr(run_manager, "metadata", None) or {})
    value = run_meta.get("thread_id")
    if value not in (None, ""):
        return str(value)
    return session_from_config(ensure_config(), run_meta)


def session_from_config(config: RunnableConfig, extra_meta: dict[str, Any] | None = None) -> str | None:
    metadata = config.get("metadata") or {}
    configurable = config.get("configurable") or {}
    extra_meta = extra_meta or {}
    for value in (metadata.get("thread_id"), configurable.get("thread_id")):
        if value not in (None, ""):
            return str(value)
    for value in (configurable.get("session_id"), extra_meta.get("session_id"), metadata.get("session_id")):
        if value not in (None, ""):
            return str(value)
    return None
