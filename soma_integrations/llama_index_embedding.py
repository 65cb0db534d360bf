"""A LlamaIndex embedding over SOMA's sentence encoder."""

from __future__ import annotations

from ._core import framework_missing

try:
    import llama_index.core  # noqa: F401  (checked first: every import below needs it)
except ModuleNotFoundError as exc:
    raise framework_missing("llama-index", exc) from exc

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from soma_engine.runtime.encoder import Encoder
from soma_engine.runtime.models import resolve_encoder

__all__ = ["EncoderEmbedding"]


class EncoderEmbedding(BaseEmbedding):
    """A LlamaIndex embedding over SOMA's sentence encoder, offline: the bundled
    all-MiniLM-L6-v2 by default, or any sentence-transformers id or path, or an
    :class:`~soma_engine.runtime.encoder.Encoder` (e.g. ``engine.encoder``, to load the model once).

    ```python
    index = VectorStoreIndex.from_documents(docs, embed_model=EncoderEmbedding())
    ```
    """

    model_name: str = "all-MiniLM-L6-v2"
    _encoder: Encoder = PrivateAttr()

    def __init__(self, encoder: str | Encoder | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(encoder, Encoder):
            self._encoder = encoder
        else:
            self._encoder = Encoder(resolve=lambda: resolve_encoder(encoder))
            if isinstance(encoder, str):
                self.model_name = encoder

    @classmethod
    def class_name(cls) -> str:
        return "SomaEncoderEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_one(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.encode_one(text).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode(list(texts)).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)
