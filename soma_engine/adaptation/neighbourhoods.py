"""Semantic neighbourhoods N_k(u) of Def. 3.1 and the weights s_τ(v|y) of Eq. 1.

A faiss inner-product index over the L2-normalised input embeddings gives each token's k most
cosine-similar others; :func:`get_neighbor_index` keeps one index per surrogate, and
:func:`neighbourhood` turns the neighbours of a batch's teacher tokens into Eq. 1's weights.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["NeighborIndex", "clear_neighbor_cache", "get_neighbor_index", "neighbourhood"]


class NeighborIndex:
    """N_k(u) of Def. 3.1: the k tokens of V \\ {u} whose input embeddings have the largest
    cosine similarity to e_u, from a faiss inner-product index over L2-normalised rows.

    The index is exact (``IndexFlatIP``) unless the vocabulary exceeds ``hnsw_above``, then it is
    ``IndexHNSWFlat`` with the inner-product metric. Rows of the ``[|V|, k]`` neighbour table are
    filled lazily, on first request, and kept (49k × 20 ids is under 8 MB); :meth:`table`
    fills the whole vocabulary. Thread-safe.
    """

    def __init__(
        self,
        embeddings: Tensor,
        k: int,
        *,
        hnsw_above: int = 200_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
    ) -> None:
        import faiss

        vocab, dim = embeddings.shape
        if vocab < 2:
            raise ValueError("a neighbourhood needs a vocabulary of at least 2 tokens")
        self.vocab_size = int(vocab)
        self.k = int(min(k, vocab - 1))
        self.uses_hnsw = vocab > hnsw_above
        unit = F.normalize(embeddings.detach().float().cpu(), dim=-1)
        self._unit = np.ascontiguousarray(unit.numpy(), dtype=np.float32)
        if self.uses_hnsw:
            index = faiss.IndexHNSWFlat(int(dim), hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = max(ef_search, 2 * (self.k + 1))
        else:
            index = faiss.IndexFlatIP(int(dim))
        index.add(self._unit)
        self._index = index
        self._table = torch.full((self.vocab_size, self.k), -1, dtype=torch.long)
        self._known = torch.zeros(self.vocab_size, dtype=torch.bool)
        self._lock = threading.Lock()

    def neighbors(self, token_ids: Tensor) -> Tensor:
        """``LongTensor[N]`` of token ids -> ``LongTensor[N, k]`` neighbour ids (most similar first)."""
        ids = torch.as_tensor(token_ids, dtype=torch.long)
        flat = ids.reshape(-1).cpu()
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.vocab_size):
            raise IndexError("token id outside the vocabulary of this NeighborIndex")
        with self._lock:
            missing = flat[~self._known[flat]].unique()
            if missing.numel():
                self._fill(missing)
            out = self._table[flat]
        return out.reshape(*ids.shape, self.k).to(ids.device)

    def table(self) -> Tensor:
        """The full ``[|V|, k]`` neighbour table (computed for every token on first call)."""
        return self.neighbors(torch.arange(self.vocab_size))

    def _fill(self, rows: Tensor) -> None:
        k = self.k
        query = self._unit[rows.numpy()]
        _, found = self._index.search(query, k + 1)
        found_t = torch.from_numpy(found).long()
        is_self = found_t == rows[:, None]
        # Drop u itself; rows where u was not returned (duplicates, ANN miss) drop their last hit.
        keep = ~is_self
        keep[~is_self.any(dim=1), -1] = False
        nbrs = found_t[keep].view(len(rows), k)
        bad = (nbrs < 0).any(dim=1)
        if bad.any():  # HNSW can return -1 when too few points are reached: exact fallback.
            nbrs[bad] = _dense_neighbors(torch.from_numpy(self._unit), rows[bad], k)
        self._table[rows] = nbrs
        self._known[rows] = True


def _dense_neighbors(unit: Tensor, token_ids: Tensor, k: int) -> Tensor:
    """Exact cosine top-k over the whole vocabulary, excluding the token itself (|V|-wide)."""
    sims = unit[token_ids] @ unit.T
    sims[torch.arange(len(token_ids)), token_ids] = -math.inf
    return sims.topk(k, dim=-1).indices


@dataclass
class _CacheEntry:
    ref: weakref.ref | None
    version: int
    index: NeighborIndex


_NEIGHBOR_CACHE: OrderedDict[Hashable, _CacheEntry] = OrderedDict()
_NEIGHBOR_CACHE_SIZE = 8
_NEIGHBOR_CACHE_LOCK = threading.Lock()


def get_neighbor_index(
    embeddings: Tensor,
    k: int,
    *,
    key: Hashable | None = None,
    hnsw_above: int = 200_000,
) -> NeighborIndex:
    """The cached :class:`NeighborIndex` of an embedding matrix, built once per surrogate.

    Keyed by ``(key, |V|, k, hnsw)``; ``key`` defaults to the identity of ``embeddings``. Without a
    caller key, the entry is also checked against a weak reference and the tensor's in-place
    version counter, so a recycled ``id`` or an edited matrix rebuilds instead of going stale.
    """
    vocab = int(embeddings.shape[0])
    k = int(min(k, vocab - 1))
    hnsw = vocab > hnsw_above
    full_key = ("caller", key, vocab, k, hnsw) if key is not None else ("tensor", id(embeddings), vocab, k, hnsw)
    with _NEIGHBOR_CACHE_LOCK:
        entry = _NEIGHBOR_CACHE.get(full_key)
        fresh = entry is not None and (
            key is not None
            or (entry.ref is not None and entry.ref() is embeddings and entry.version == embeddings._version)
        )
        if entry is not None and fresh:
            _NEIGHBOR_CACHE.move_to_end(full_key)
            return entry.index
        index = NeighborIndex(embeddings, k, hnsw_above=hnsw_above)
        _NEIGHBOR_CACHE[full_key] = _CacheEntry(
            ref=None if key is not None else weakref.ref(embeddings),
            version=int(embeddings._version),
            index=index,
        )
        while len(_NEIGHBOR_CACHE) > _NEIGHBOR_CACHE_SIZE:
            _NEIGHBOR_CACHE.popitem(last=False)
        return index


def clear_neighbor_cache() -> None:
    """Forget every cached :class:`NeighborIndex`."""
    with _NEIGHBOR_CACHE_LOCK:
        _NEIGHBOR_CACHE.clear()


def neighbourhood(
    teacher_ids: Tensor, embeddings: Tensor, neighbors: Tensor | None, neighbors_k: int, tau: float
) -> tuple[Tensor, Tensor]:
    """Ids of {y} ∪ N_k(y) ``[N, k+1]`` (y first) and s_τ(v|y) over them (Eq. 1), float32.

    With ``neighbors`` given, only the ``N × (k+1)`` rows involved are read and normalised, so
    the cost does not grow with |V| (nor copy the matrix to float32)."""
    emb = embeddings.detach()
    if neighbors is None:
        unit = F.normalize(emb.float(), dim=-1)
        neighbors = _dense_neighbors(unit, teacher_ids, int(min(neighbors_k, unit.shape[0] - 1)))
    ids = torch.cat([teacher_ids[:, None], neighbors.to(teacher_ids.device)], dim=1)
    rows = F.normalize(emb[ids].float(), dim=-1)  # [N, k+1, d], y first
    cos = (rows * rows[:, :1]).sum(-1)
    return ids, torch.softmax(cos / tau, dim=-1)
