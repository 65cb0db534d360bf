"""Encoder φ (Sec. 4.1): a sentence-transformers model, loaded lazily, L2-normalised output."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger("soma.encoder")

WORD_CACHE = 50_000  # word embeddings kept (1.5 KiB each at d = 384)


class Encoder:
    def __init__(self, model_path: str | None = None, *, resolve: Callable[[], str] | None = None, model: Any = None):
        self._path = model_path
        self._resolve = resolve
        self._model = model
        self._lock = threading.Lock()
        self._words: dict[str, np.ndarray] = {}
        self._words_lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    path = self._path or (self._resolve() if self._resolve else None)
                    if path is None:
                        raise ValueError("no encoder model given")
                    log.info("loading encoder %s", path)
                    self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """[n, d] float32, unit-norm rows."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        with self._lock:
            emb = model.encode(
                [t if t.strip() else " " for t in texts],
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(emb, dtype=np.float32)

    def encode_words(self, words: list[str]) -> np.ndarray:
        """φ of single words (gate.far_words), cached: a session's vocabulary is scored on
        every surrogate turn."""
        if not words:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._words_lock:
            found = {w: self._words[w] for w in words if w in self._words}
        need = [w for w in dict.fromkeys(words) if w not in found]
        if need:
            fresh = dict(zip(need, self.encode(need), strict=True))
            found.update(fresh)
            with self._words_lock:
                for w, e in fresh.items():
                    if len(self._words) >= WORD_CACHE:
                        self._words.pop(next(iter(self._words)))
                    self._words[w] = e
        return np.stack([found[w] for w in words])

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    @property
    def dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())
