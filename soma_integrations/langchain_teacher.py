"""The teacher behind a LangChain runnable: any chat Runnable an app passes as teacher
(``with_retry``, ``bind``, ``configurable_fields`` / ``configurable_alternatives``,
``init_chat_model(configurable_fields=...)``) resolved to the chat model inside it, the
call shaped on that model with the wrappers kept and run apart from the app's callbacks
(``teacher_config``, ``Isolated``, ``run_async`` from sync code); and ``init_teacher``, the engine teacher
``soma demo --teacher provider:model`` gets (entry point ``soma.teachers``)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import BaseLanguageModel
from langchain_core.runnables import Runnable, RunnableParallel, RunnableSequence
from langchain_core.runnables.base import RunnableBindingBase
from langchain_core.runnables.config import RunnableConfig, var_child_runnable_config
from langchain_core.runnables.configurable import DynamicRunnable

from soma_engine.testing.teachers import as_dicts


def is_dynamic(teacher: Runnable) -> bool:
    while isinstance(teacher, RunnableBindingBase):
        teacher = teacher.bound
    return isinstance(teacher, DynamicRunnable) or is_configurable_model(teacher)


def is_configurable_model(teacher: Any) -> bool:
    """``init_chat_model(configurable_fields=...)`` (langchain's ``_ConfigurableModel``)."""
    return type(teacher).__name__ == "_ConfigurableModel" and callable(getattr(teacher, "_model", None))


def shape(teacher: Runnable, config: RunnableConfig, fn: Callable[[BaseChatModel], Runnable]) -> Runnable:
    """The teacher for this call with ``fn`` (bind tools, structured output) applied to the
    chat model inside it: wrappers (retry, bound kwargs, config) are kept, configurable
    teachers resolved with the call's ``configurable`` values."""
    if isinstance(teacher, BaseChatModel):
        return fn(teacher)
    if isinstance(teacher, RunnableBindingBase):  # bind, with_retry, with_config, with_listeners
        return teacher.model_copy(update={"bound": shape(teacher.bound, config, fn)})
    if isinstance(teacher, DynamicRunnable):
        return shape(teacher._prepare(config)[0], config, fn)
    if is_configurable_model(teacher):
        return shape(teacher._model(config), config, fn)  # type: ignore[attr-defined]
    raise TypeError(
        f"teacher must be a chat model or a runnable around one (with_retry, bind, configurable_fields), "
        f"not {type(teacher).__name__}"
    )


def chat_model(teacher: Runnable, configurable: dict[str, Any] | None = None) -> BaseChatModel:
    """The chat model inside the teacher (the default one of a configurable teacher)."""
    found: list[BaseChatModel] = []

    def keep(chat: BaseChatModel) -> Runnable:
        found.append(chat)
        return chat

    shape(teacher, RunnableConfig(configurable=configurable or {}), keep)
    return found[0]


def with_kwargs(runnable: Runnable, chat: BaseChatModel, kwargs: dict[str, Any]) -> Runnable:
    """``runnable`` (a teacher's structured-output chain) with ``kwargs`` added to the calls
    of ``chat`` in it."""
    if not kwargs:
        return runnable
    if isinstance(runnable, RunnableBindingBase) and runnable.bound is chat:
        return runnable.model_copy(update={"kwargs": {**kwargs, **runnable.kwargs}})
    if isinstance(runnable, RunnableSequence):
        return RunnableSequence(*[with_kwargs(step, chat, kwargs) for step in runnable.steps])
    if isinstance(runnable, RunnableParallel):
        return RunnableParallel({k: with_kwargs(v, chat, kwargs) for k, v in runnable.steps__.items()})
    if runnable is chat:
        return chat.bind(**kwargs)
    return runnable


def own_counter(chat: BaseChatModel) -> bool:
    """Whether the chat model counts tokens itself (not LangChain's hub-loaded GPT-2 default)."""
    cls = type(chat)
    return (
        chat.custom_get_token_ids is not None
        or cls.get_num_tokens_from_messages is not BaseChatModel.get_num_tokens_from_messages
        or cls.get_token_ids is not BaseLanguageModel.get_token_ids
        or cls.get_num_tokens is not BaseLanguageModel.get_num_tokens
    )


def init_teacher(spec: str) -> Callable[[Sequence[Any]], tuple[str, Any]]:
    """LangChain's ``init_chat_model(spec)`` as an engine teacher: text and usage metadata."""
    from langchain.chat_models import init_chat_model  # ImportError without the extra: the caller names it

    try:
        model = init_chat_model(spec)
    except ImportError as exc:  # the provider's own package (langchain-openai, ...) is missing
        raise ValueError(f"--teacher {spec}: {exc}") from exc

    def teacher(messages: Sequence[Any]) -> tuple[str, Any]:
        msg = model.invoke([(m["role"], m["content"]) for m in as_dicts(messages)])
        return str(msg.text), msg.usage_metadata

    return teacher


TEACHER_TAGS = ["soma:teacher", "nostream"]  # for the teacher's own callbacks; the app's see our run only


def run_async(make: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, in a thread of its own when this
    thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def teacher_config(*, is_async: bool = False) -> RunnableConfig:
    """Config for the inner teacher call: no handlers of the app's. The app sees one model
    run per turn (its tracers, usage counters and token handlers get this model's run, with
    the teacher's tokens, usage and model name), so a teacher turn is counted once. The
    teacher's own ``callbacks`` still apply."""
    manager = AsyncCallbackManager(handlers=[]) if is_async else CallbackManager(handlers=[])
    return {"callbacks": manager, "tags": list(TEACHER_TAGS), "metadata": {}}


class Isolated:
    """Runs a composed teacher runnable outside the enclosing runnable context, whose
    callbacks it would otherwise merge in (the app's handlers must see one model run)."""

    def __init__(self, runnable: Runnable) -> None:
        self.runnable = runnable

    @staticmethod
    def _context() -> contextvars.Context:
        ctx = contextvars.copy_context()
        ctx.run(var_child_runnable_config.set, None)
        return ctx

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        return self._context().run(self.runnable.invoke, *args, **kwargs)

    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        ctx = self._context()
        return await ctx.run(asyncio.ensure_future, self.runnable.ainvoke(*args, **kwargs))
