"""SurrogateRuntime: one copy of the surrogate G, many session LoRA adapters.

The model loads lazily (first generation or adaptation), once per runtime, on CUDA in
bf16 when available, else CPU fp32. Every model call runs on the :class:`ModelWorker`,
which owns the model and PEFT's global active-adapter state. Adapters are loaded from the
:class:`AdapterStore` (verified) and kept in an LRU of ``max_adapters`` per runtime.
Prompts use the model's own chat template (with ``tools=`` when the template takes them).

Batched serving: greedy ``generate``/``agenerate`` requests that wait on the worker together
(up to ``max_batch``) run as one left-padded ``model.generate``, each row with its own session
adapter (the equivalent of PEFT's ``adapter_names=[...]``, see
:func:`~soma_engine.runtime.lora_rows.row_lora`). Each row is cut at its own ``max_new_tokens``/EOS, so it
gets the tokens it would get alone. Sampled requests and streams run one at a time; so do the
rows of a batch whose adapters the batched path cannot mix (DoRA and other LoRA variants).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ..adapters import AdapterRef, AdapterStore, CorruptAdapter, base_identity
from ..types import Message
from .adapter_fit import check_adapter_fits
from .generation import (
    Generation,
    GenerationRequest,
    PieceStreamer,
    finish_generation,
    generate_kwargs,
    left_padded,
    template_dict,
)
from .lora_rows import BASE_ADAPTER, PEFT_BASE_ROW, mixable, row_lora
from .worker import ADAPT, LIVE, ModelWorker

log = logging.getLogger("soma.surrogate")
T = TypeVar("T")
GREEDY_BATCH_KEY = "greedy-generate"  # the worker's batch key: every greedy generate can share a call


NLL_PREFIXES = 4  # key/value caches of locality contexts kept by query_nll (SmolLM2: ~25 MB each)


class SurrogateError(RuntimeError):
    """The surrogate could not serve this turn; the engine serves it by the teacher."""


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is available; use device='auto' or 'cpu'")
    return device


class SurrogateRuntime:
    def __init__(
        self,
        model_path: str | None,
        *,
        adapters: AdapterStore | None = None,
        device: str = "auto",
        max_adapters: int = 16,
        max_context: int | None = None,
        model: Any = None,
        tokenizer: Any = None,
        resolve: Callable[[], str] | None = None,
        max_batch: int = 8,
        generation_options: dict[str, Any] | None = None,
    ) -> None:
        self._model_path = model_path
        # Extra keyword arguments of every ``generate`` call (e.g. no_repeat_ngram_size).
        self.generation_options = dict(generation_options or {})
        self._resolve = resolve
        self.adapters = adapters
        self.device_request = device
        self.max_adapters = max_adapters
        self._max_context = max_context
        self._model = model
        self._tokenizer = tokenizer
        self._peft: Any = None
        self._loaded: OrderedDict[str, AdapterRef] = OrderedDict()
        self._nll_prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._load_lock = threading.Lock()
        self.worker = ModelWorker(max_batch=max_batch)
        self.device = "cpu"

    # -- loading -------------------------------------------------------------------------
    @property
    def configured_path(self) -> str | None:
        """The model path as given or resolved so far (None before a lazy resolve); loads nothing."""
        return self._model_path

    @property
    def model_path(self) -> str:
        if self._model_path is None:
            self._model_path = self._resolve() if self._resolve else None
            if self._model_path is None:
                raise ValueError("no surrogate model given")
        return self._model_path

    @property
    def max_batch(self) -> int:
        """Most greedy requests served by one batched forward pass; 1 turns batching off."""
        return self.worker.max_batch

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_batch must be >= 1, got {value}")
        self.worker.max_batch = value

    def model_path_resolver(self) -> str:
        return self.model_path

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            with self._load_lock:
                if self._tokenizer is None:
                    from transformers import AutoTokenizer

                    tok = AutoTokenizer.from_pretrained(self.model_path)
                    if tok.pad_token is None:
                        tok.pad_token = tok.eos_token
                    self._tokenizer = tok
        return self._tokenizer

    @property
    def model(self) -> Any:
        """The base (or PEFT-wrapped) model. Only touch it from the worker."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load_model()
        if self._peft is None and self._model is not None:
            self.device = str(next(self._model.parameters()).device.type)
        return self._peft if self._peft is not None else self._model

    def _load_model(self) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        self.device = pick_device(self.device_request)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        log.info("loading surrogate %s on %s (%s)", self.model_path, self.device, dtype)
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
        model.to(self.device)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    @property
    def base_model(self) -> Any:
        m = self.model
        return m.get_base_model() if self._peft is not None else m

    @property
    def context_length(self) -> int:
        if self._max_context:
            return self._max_context
        cfg_len = getattr(self.base_model.config, "max_position_embeddings", None) or 2048
        tok_len = getattr(self.tokenizer, "model_max_length", None) or cfg_len
        return int(min(cfg_len, tok_len))

    # -- prompts -------------------------------------------------------------------------
    def render(
        self, messages: list[Message], tools: list[dict[str, Any]] | None = None, generation_prompt: bool = True
    ) -> str:
        dicts = [template_dict(m) for m in messages]
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation_prompt}
        if tools:
            kwargs["tools"] = tools
        return self.tokenizer.apply_chat_template(dicts, **kwargs)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    # -- adapters (worker only) ------------------------------------------------------------
    def _peft_name(self, ref: AdapterRef) -> str:
        return f"a{ref.adapter_id}"

    @property
    def adapters(self) -> AdapterStore | None:
        """The adapter store; adapters saved there record this runtime's base model."""
        return self._adapters

    @adapters.setter
    def adapters(self, store: AdapterStore | None) -> None:
        self._adapters = store
        if store is not None:
            store.base_identity = self.base_identity

    def base_identity(self) -> dict[str, Any] | None:
        """The base model's identity (:func:`~soma_engine.adapters.base_identity`), None while
        the model is not loaded (never loads it)."""
        if self._model is None:
            return None
        return base_identity(self._model, self._model_path)

    def activate(self, ref: AdapterRef | None) -> str | None:
        """Make ``ref`` the active adapter (loading it if needed); None means the base model.
        An adapter that does not fit the base raises :class:`AdapterMismatch` before anything
        is installed; one whose install fails half-way is removed and raises
        :class:`CorruptAdapter` (the engine resets the session once)."""
        if ref is None:
            return None
        name = self._peft_name(ref)
        if name in self._loaded:
            self._loaded.move_to_end(name)
        else:
            if self.adapters is None:
                raise SurrogateError("no adapter store configured")
            tensors, cfg, meta = self.adapters.load_verified(ref)
            self.check_adapter(ref, tensors, meta)
            self.install_adapter(name, cfg, tensors)
            self._loaded[name] = ref
            self._evict()
        self._peft.set_adapter(name)
        return name

    def check_adapter(self, ref: AdapterRef, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        """:class:`AdapterMismatch` unless the adapter fits the running model: the base it
        recorded (adapters saved before bases were recorded: unknown, not checked), the shapes
        it recorded, and every tensor against the module it adapts."""
        check_adapter_fits(ref.adapter_id, tensors, meta, self.base_identity(), self.base_model)

    def install_adapter(self, name: str, lora_config: dict[str, Any], tensors: dict[str, Any] | None) -> None:
        """Add an adapter (fresh, or with ``tensors``) to the shared PEFT model. If the adapter
        cannot be added or its tensors cannot be set, its half-installed name is removed (a
        later install must not meet it) and :class:`CorruptAdapter` is raised."""
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

        cfg = LoraConfig(**{k: v for k, v in lora_config.items() if k in LoraConfig.__dataclass_fields__})
        if self._peft is None:
            # A never-deleted placeholder keeps PEFT's active-adapter state valid when the
            # last session adapter is evicted; with it disabled the model is the exact base.
            placeholder = LoraConfig(r=1, target_modules=cfg.target_modules, fan_in_fan_out=cfg.fan_in_fan_out)
            self._peft = get_peft_model(self.model, placeholder, adapter_name=BASE_ADAPTER)
        try:
            self._peft.add_adapter(name, cfg)
            if tensors is not None:
                set_peft_model_state_dict(self._peft, tensors, adapter_name=name)
        except Exception as exc:
            self.remove_adapter(name)
            raise CorruptAdapter(f"adapter {name!r} could not be installed: {type(exc).__name__}: {exc}") from exc
        self._peft.to(self.device)
        for p in self._peft.parameters():
            p.requires_grad_(False)

    def remove_adapter(self, name: str) -> None:
        if self._peft is not None and name in self._peft.peft_config:
            self._peft.set_adapter(BASE_ADAPTER)
            self._peft.delete_adapter(name)
        self._loaded.pop(name, None)

    def _evict(self) -> None:
        while len(self._loaded) > self.max_adapters:
            name, _ = self._loaded.popitem(last=False)
            self.remove_adapter(name)

    def loaded_adapters(self) -> list[str]:
        return list(self._loaded)

    # -- generation ----------------------------------------------------------------------
    def _prepare(self, messages: list[Message], tools: list[dict[str, Any]] | None, max_new_tokens: int) -> Any:
        import torch

        prompt = self.render(messages, tools)
        ids = self.encode(prompt)
        if len(ids) + max_new_tokens > self.context_length:
            raise SurrogateError(
                f"context of {len(ids)} tokens + {max_new_tokens} new exceeds the surrogate's "
                f"{self.context_length}-token window"
            )
        return torch.tensor([ids], device=self.device)

    def _generate_kwargs(
        self, input_ids: Any, max_new_tokens: int, temperature: float, stop: list[str] | None = None
    ) -> dict[str, Any]:
        return generate_kwargs(self.tokenizer, input_ids, max_new_tokens, temperature, stop, self.generation_options)

    def use(self, ref: AdapterRef | None) -> AbstractContextManager[Any]:
        """Activate ``ref`` for the calls inside the ``with`` block; None means the base model."""
        self.activate(ref)
        if ref is not None or self._peft is None:
            return contextlib.nullcontext()
        self._peft.set_adapter(BASE_ADAPTER)
        return self._peft.disable_adapter()

    def _run_generate(self, ref: AdapterRef | None, kwargs: dict[str, Any]) -> Any:
        import torch

        model = self.model
        with self.use(ref), torch.inference_mode():  # load adapters outside inference mode
            model.eval()
            return model.generate(**kwargs)

    def generate(
        self,
        messages: list[Message],
        adapter: AdapterRef | None = None,
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
    ) -> Generation:
        return self._submit(GenerationRequest(messages, adapter, max_new_tokens, temperature, tools, stop)).result()

    def generate_many(
        self, requests: Sequence[tuple[list[Message], AdapterRef | None]], *, max_new_tokens: int = 128
    ) -> list[Generation]:
        """Greedy generations for several (messages, adapter) pairs, queued together so they
        share forward passes (the gate's old and new surrogate on its held-out turns)."""
        reqs = [GenerationRequest(messages, adapter, max_new_tokens, 0.0, None) for messages, adapter in requests]
        futures = self.worker.submit_batch(GREEDY_BATCH_KEY, reqs, self._generate_batch)
        return [f.result() for f in futures]

    async def agenerate(self, messages: list[Message], adapter: AdapterRef | None = None, **kw: Any) -> Generation:
        req = GenerationRequest(
            messages,
            adapter,
            kw.get("max_new_tokens", 128),
            kw.get("temperature", 0.0),
            kw.get("tools"),
            kw.get("stop"),
        )
        return await asyncio.wrap_future(self._submit(req))

    def _submit(self, req: GenerationRequest) -> Future[Generation]:
        if req.temperature > 0 or req.stop:
            # Sampling draws from one global RNG stream: a row's draws would depend on its batch;
            # stop sequences end a single row's generation.
            return self.worker.submit(lambda: self._generate_now(req))
        return self.worker.submit_batchable(GREEDY_BATCH_KEY, req, self._generate_batch)

    def _generate_now(self, req: GenerationRequest) -> Generation:
        _ = self.model
        input_ids = self._prepare(req.messages, req.tools, req.max_new_tokens)
        kwargs = self._generate_kwargs(input_ids, req.max_new_tokens, req.temperature, req.stop)
        out = self._run_generate(req.adapter, kwargs)
        return self._finish(out[0, input_ids.shape[1] :].tolist(), int(input_ids.shape[1]), req.max_new_tokens)

    def _finish(self, new: list[int], input_tokens: int, max_new_tokens: int) -> Generation:
        """A row's Generation from its generated ids, cut at its own limit and first EOS (a
        batch runs to the longest row's limit and pads finished rows)."""
        return finish_generation(self.tokenizer, new, input_tokens, max_new_tokens)

    def _generate_batch(self, reqs: list[GenerationRequest]) -> list[Generation | BaseException]:
        """Worker-side: serve greedy requests together; a row's failure is that row's outcome."""
        _ = self.model
        if len(reqs) == 1:
            return [self._generate_now(reqs[0])]
        outcomes: list[Generation | BaseException | None] = [None] * len(reqs)
        rows: list[tuple[int, list[int]]] = []
        for i, req in enumerate(reqs):
            try:
                rows.append((i, self._prepare(req.messages, req.tools, req.max_new_tokens)[0].tolist()))
            except Exception as exc:
                outcomes[i] = exc
        for chunk in self._adapter_chunks(rows, reqs):
            self._generate_rows(chunk, reqs, outcomes)
        return [o if o is not None else SurrogateError("row was not served") for o in outcomes]

    def _adapter_chunks(
        self, rows: list[tuple[int, list[int]]], reqs: list[GenerationRequest]
    ) -> Iterator[list[tuple[int, list[int]]]]:
        """Split rows so no chunk needs more adapters than the LRU holds (loading one must not
        evict another of the same forward pass)."""
        chunk: list[tuple[int, list[int]]] = []
        names: set[str] = set()
        for row in rows:
            ref = reqs[row[0]].adapter
            name = self._peft_name(ref) if ref is not None else None
            if name is not None and name not in names and len(names) >= self.max_adapters:
                yield chunk
                chunk, names = [], set()
            chunk.append(row)
            if name is not None:
                names.add(name)
        if chunk:
            yield chunk

    def _generate_rows(
        self,
        rows: list[tuple[int, list[int]]],
        reqs: list[GenerationRequest],
        outcomes: list[Generation | BaseException | None],
    ) -> None:
        import torch

        ready: list[tuple[int, list[int], str]] = []
        for i, ids in rows:
            try:
                # Loaded outside inference mode: a parent adapter's tensors may be trained from later.
                ready.append((i, ids, self.activate(reqs[i].adapter) or PEFT_BASE_ROW))
            except Exception as exc:
                outcomes[i] = exc
        if len(ready) > 1 and mixable(self._peft, [name for _, _, name in ready]):
            try:
                for (i, _ids, _), gen in zip(ready, self._run_mixed(ready, reqs), strict=True):
                    outcomes[i] = gen
                return
            except Exception as exc:
                log.warning("batched generation of %d rows failed (%r); serving them one by one", len(ready), exc)
        for i, ids, _ in ready:
            try:
                req = reqs[i]
                kwargs = self._generate_kwargs(torch.tensor([ids], device=self.device), req.max_new_tokens, 0.0)
                out = self._run_generate(req.adapter, kwargs)
                outcomes[i] = self._finish(out[0, len(ids) :].tolist(), len(ids), req.max_new_tokens)
            except Exception as exc:
                outcomes[i] = exc

    def _run_mixed(self, rows: list[tuple[int, list[int], str]], reqs: list[GenerationRequest]) -> list[Generation]:
        import torch

        input_ids, mask = left_padded([ids for _, ids, _ in rows], self.tokenizer.pad_token_id, self.device)
        width = input_ids.shape[1]
        limit = max(reqs[i].max_new_tokens for i, _, _ in rows)
        kwargs = {**self._generate_kwargs(input_ids, limit, 0.0), "attention_mask": mask}
        model = self.model
        rows_lora = (
            row_lora(self._peft, [name for _, _, name in rows]) if self._peft is not None else contextlib.nullcontext()
        )
        with rows_lora, torch.inference_mode():
            model.eval()
            out = model.generate(**kwargs)
        return [
            self._finish(out[j, width:].tolist(), len(ids), reqs[i].max_new_tokens)
            for j, (i, ids, _) in enumerate(rows)
        ]

    def stream(
        self,
        messages: list[Message],
        adapter: AdapterRef | None = None,
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str | Generation]:
        """Yields text pieces as the worker produces them, then the final :class:`Generation`."""
        q: queue.Queue[Any] = queue.Queue()
        self._start_stream(GenerationRequest(messages, adapter, max_new_tokens, temperature, tools, stop), q.put)
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, Generation):
                return

    async def astream(
        self,
        messages: list[Message],
        adapter: AdapterRef | None = None,
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
    ) -> AsyncIterator[str | Generation]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        req = GenerationRequest(messages, adapter, max_new_tokens, temperature, tools, stop)
        self._start_stream(req, lambda x: loop.call_soon_threadsafe(q.put_nowait, x))
        while True:
            item = await q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, Generation):
                return

    def _start_stream(self, req: GenerationRequest, put: Callable[[Any], None]) -> None:
        def task() -> None:
            try:
                _ = self.model
                input_ids = self._prepare(req.messages, req.tools, req.max_new_tokens)
                streamer = PieceStreamer(self.tokenizer, put)
                kwargs = self._generate_kwargs(input_ids, req.max_new_tokens, req.temperature, req.stop)
                out = self._run_generate(req.adapter, {**kwargs, "streamer": streamer})
                streamer.flush()
                new = out[0, input_ids.shape[1] :].tolist()
                put(self._finish(new, int(input_ids.shape[1]), req.max_new_tokens))
            except BaseException as exc:
                put(exc)

        self.worker.submit(task, LIVE)

    # -- scoring -----------------------------------------------------------------------------
    def query_nll(self, messages: list[Message], stable: int = 0) -> float:
        """Mean negative log-likelihood (nats a token) of the last message's text under the
        base model (adapters off), after everything before it, rendered by the chat template.
        For the locality statistic's :func:`~soma_engine.gate.context_pmi`; on the worker at
        live-turn priority. The first ``stable`` messages recur across calls (a session's
        locality context): their key/value cache is kept (the last ``NLL_PREFIXES``), so a
        turn computes only what follows them."""
        if not messages or not messages[-1].content:
            raise ValueError("query_nll needs messages ending with a non-empty message")
        if not 0 <= stable < len(messages):
            raise ValueError(f"stable must be in [0, {len(messages) - 1}], got {stable}")
        return self.worker.call(lambda: self._query_nll_now(messages, stable), LIVE)

    def _query_nll_now(self, messages: list[Message], stable: int) -> float:
        import torch

        prompt = self.render(messages)
        text = messages[-1].content
        at = prompt.rfind(text)
        if at < 0:
            raise SurrogateError("the chat template changed the query's text; it cannot be scored")
        head = self._stable_text(messages[:stable], prompt[:at]) if stable else ""
        prefix, before, target = self.encode(head), self.encode(prompt[len(head) : at]), self.encode(text)
        if not before or len(prefix) + len(before) + len(target) > self.context_length:
            raise SurrogateError(f"{len(prefix) + len(before) + len(target)} tokens cannot be scored in the window")
        rest = torch.tensor([before + target], device=self.device)
        key = tuple(prefix)
        with self.use(None), torch.inference_mode():
            self.model.eval()
            cache = self._prefix_cache(key) if prefix else None
            try:
                out = self.model(input_ids=rest, use_cache=cache is not None, **{self._cache_kwarg(): cache})
            except BaseException:
                self._nll_prefixes.pop(key, None)
                raise
            if cache is not None:
                cache.crop(-rest.shape[1])  # back to the stable prefix for the next call
        # position i predicts token i + 1: the first query token is predicted by the last of `before`
        logits = out.logits[0, len(before) - 1 : -1].float()
        return float(torch.nn.functional.cross_entropy(logits, rest[0, len(before) :], reduction="mean"))

    def _cache_kwarg(self) -> str:
        """transformers 5 names the key/value cache ``cache``, earlier versions ``past_key_values``."""
        import inspect

        params = inspect.signature(self.base_model.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def _stable_text(self, stable: list[Message], before_query: str) -> str:
        """The rendered text of the stable messages, if the full prompt starts with it."""
        dicts = [template_dict(m) for m in stable]
        head = self.tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=False)
        return head if before_query.startswith(head) else ""

    def _prefix_cache(self, prefix: tuple[int, ...]) -> Any:
        import torch

        cache = self._nll_prefixes.pop(prefix, None)
        if cache is None:
            ids = torch.tensor([list(prefix)], device=self.device)
            out = self.model(input_ids=ids, use_cache=True)
            cache = getattr(out, self._cache_kwarg())
        self._nll_prefixes[prefix] = cache
        while len(self._nll_prefixes) > NLL_PREFIXES:
            self._nll_prefixes.popitem(last=False)
        return cache

    # -- adaptation access -----------------------------------------------------------------
    def run(self, fn: Callable[[SurrogateRuntime], T], priority: int = ADAPT) -> T:
        """Run ``fn(self)`` on the worker (adaptation steps use the low priority)."""
        return self.worker.call(lambda: fn(self), priority)

    def close(self) -> None:
        self.worker.close()
