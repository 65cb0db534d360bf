"""Session adapters: the files (``store``: content-addressed, atomic, verified on load), their
remote copies (``remote``: fsspec URLs with a local cache) and the registry of who trained
what (``registry``: lineage and warm-start centroids, for sharing)."""

from .registry import (
    INDEXES_KEPT,
    REGISTRY,
    SHARE_POLICIES,
    AdapterRegistry,
    Match,
    RegistryEntry,
    agent_digest,
    best_matches,
    new_entry,
    unit_vector,
)
from .store import (
    BASE_FIELDS,
    BASE_SURROGATE,
    CONFIG,
    META,
    WEIGHTS,
    AdapterMismatch,
    AdapterRef,
    AdapterStore,
    AdapterUnavailable,
    CorruptAdapter,
    base_identity,
    is_base,
    read_with_retry,
    serving_ref,
)

__all__ = [
    "BASE_FIELDS",
    "BASE_SURROGATE",
    "CONFIG",
    "META",
    "WEIGHTS",
    "INDEXES_KEPT",
    "REGISTRY",
    "SHARE_POLICIES",
    "AdapterMismatch",
    "AdapterRef",
    "AdapterRegistry",
    "AdapterStore",
    "AdapterUnavailable",
    "CorruptAdapter",
    "Match",
    "RegistryEntry",
    "agent_digest",
    "base_identity",
    "is_base",
    "best_matches",
    "new_entry",
    "read_with_retry",
    "serving_ref",
    "unit_vector",
]
