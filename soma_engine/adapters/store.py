"""AdapterStore: session LoRA adapters on disk, content-addressed, written atomically (their
metadata, lineage and warm-start centroids: ``registry.py``).

Layout: ``<root>/<namespace digest>/<adapter id>/`` with PEFT's own files
(``adapter_model.safetensors``, ``adapter_config.json``, loadable by
``PeftModel.from_pretrained``) plus ``soma.json`` (session, version, parent, content hash,
metrics, the base model's identity and the tensors' shapes: see :func:`base_identity`). The
adapter id is the content hash of the weights and config, so a replica that has the id can
verify what it loads. A folder appears only by ``os.replace`` of a complete
temporary folder; a file that fails verification raises :class:`CorruptAdapter`.

The registry (:class:`~soma_engine.adapters.registry.AdapterRegistry`) is
``<root>/registry.db`` (SQLite, WAL). Deleting a session's adapters
(``delete_session``, called by every store's ``delete`` and ``purge_expired``) removes their
registry rows too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .registry import REGISTRY, AdapterRegistry

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
META = "soma.json"


class CorruptAdapter(RuntimeError):
    """An adapter's files are missing or do not match their recorded content hash."""


class AdapterMismatch(CorruptAdapter):
    """An intact adapter that does not fit the running base model (trained on another base, or
    tensors whose shapes its modules do not have): refused before it is installed."""


class AdapterUnavailable(RuntimeError):
    """The adapter storage failed for a reason other than a missing or corrupt adapter (an
    I/O or network error, after retries): the teacher serves meanwhile; the adapter stays."""


T = TypeVar("T")

# Backoff (seconds) between the attempts of a storage read that fails with a transient OSError.
READ_BACKOFF = (0.05, 0.2, 0.8)


def read_with_retry(what: str, read: Callable[[], T]) -> T:
    """``read()``, retried with backoff on an OSError other than a missing file; a missing
    file raises :class:`CorruptAdapter`, errors that persist :class:`AdapterUnavailable`."""
    for attempt in range(len(READ_BACKOFF) + 1):
        try:
            return read()
        except FileNotFoundError as exc:
            raise CorruptAdapter(f"{what} is missing: {exc}") from exc
        except OSError as exc:
            if attempt == len(READ_BACKOFF):
                raise AdapterUnavailable(f"{what} could not be read: {exc}") from exc
            time.sleep(READ_BACKOFF[attempt])
    raise AssertionError("unreachable")


@dataclass
class AdapterRef:
    adapter_id: str
    namespace: str  # namespace digest
    session: str  # session digest
    version: int = 1
    parent: str | None = None
    created: float = field(default_factory=time.time)
    size_bytes: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdapterRef:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# What a session's ``adapter`` holds while the base surrogate serves it, without an adapter:
# only under the permissive gate (``gate.min_improvement=None``), when training never beat the
# untrained adapter and the base alone clears the floor. Reported as the base, never as an adapter.
BASE_SURROGATE: dict[str, Any] = {"adapter_id": None, "base": True}


def serving_ref(adapter: dict[str, Any] | None) -> AdapterRef | None:
    """The adapter a session's ``adapter`` record names; None for none or the base surrogate."""
    return None if not adapter or adapter.get("base") else AdapterRef.from_dict(adapter)


def is_base(adapter: dict[str, Any] | None) -> bool:
    """Whether a session's ``adapter`` record is the base surrogate (:data:`BASE_SURROGATE`)."""
    return bool(adapter and adapter.get("base"))


# The base model's config fields an adapter's fit depends on (architecture and every size).
BASE_FIELDS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)


def base_identity(model: Any, path: str | None = None) -> dict[str, Any]:
    """What an adapter records of the base model it was trained on: the model's path or id (for
    people: replicas may hold one model at different paths), its config's architecture and
    sizes, and ``fingerprint``, a digest of those, which is what :meth:`SurrogateRuntime.activate`
    compares."""
    cfg = model.config
    arch = {f: getattr(cfg, f, None) for f in BASE_FIELDS}
    fingerprint = hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:16]
    return {"model": path or getattr(cfg, "_name_or_path", "") or "", "config": arch, "fingerprint": fingerprint}


def content_hash(weights: bytes, config: bytes) -> str:
    h = hashlib.sha256()
    h.update(weights)
    h.update(b"\0")
    h.update(config)
    return h.hexdigest()


class AdapterStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._registry: AdapterRegistry | None = None
        self._registry_lock = threading.Lock()
        # Set by the SurrogateRuntime that serves these adapters: the identity of its base model
        # (None until the model is loaded), recorded in every adapter saved here.
        self.base_identity: Callable[[], dict[str, Any] | None] | None = None

    @property
    def registry(self) -> AdapterRegistry:
        """The registry beside these adapters (``<root>/registry.db``), opened on first use."""
        with self._registry_lock:
            if self._registry is None:
                self._registry = AdapterRegistry(self.root / REGISTRY)
            return self._registry

    def _open_registry(self) -> AdapterRegistry | None:
        """The registry if one exists (deletes never create one)."""
        if self._registry is None and not (self.root / REGISTRY).exists():
            return None
        return self.registry

    def _dir(self, namespace: str, adapter_id: str) -> Path:
        if not (adapter_id.isalnum() and namespace.isalnum()):
            raise CorruptAdapter(f"invalid adapter reference {namespace}/{adapter_id}")
        return self.root / namespace / adapter_id

    def save(
        self,
        tensors: dict[str, Any],
        lora_config: dict[str, Any],
        *,
        namespace: str,
        session: str,
        version: int = 1,
        parent: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> AdapterRef:
        from safetensors.torch import save as save_bytes

        weights = save_bytes({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
        config = json.dumps(lora_config, sort_keys=True, indent=1, default=list).encode()
        digest = content_hash(weights, config)
        ref = AdapterRef(
            adapter_id=digest[:32],
            namespace=namespace,
            session=session,
            version=version,
            parent=parent,
            size_bytes=len(weights),
            metrics=dict(metrics or {}),
        )
        final = self._dir(namespace, ref.adapter_id)
        if final.exists():
            return ref
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            (tmp / WEIGHTS).write_bytes(weights)
            (tmp / CONFIG).write_bytes(config)
            meta = {
                **ref.to_dict(),
                "sha256": digest,
                "base": self.base_identity() if self.base_identity is not None else None,
                "shapes": {k: list(v.shape) for k, v in tensors.items()},
            }
            (tmp / META).write_text(json.dumps(meta, indent=1))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError:
            if final.exists():  # a concurrent writer of the same content won the race
                return ref
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return ref

    def load(self, ref: AdapterRef) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verified tensors and LoRA config; :class:`CorruptAdapter` if anything is off."""
        tensors, config, _ = self.load_verified(ref)
        return tensors, config

    def load_verified(self, ref: AdapterRef) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Verified tensors, LoRA config and ``soma.json`` (whose ``base`` and ``shapes`` are
        absent in adapters saved before they were recorded)."""
        from safetensors.torch import load as load_bytes

        d = self._dir(ref.namespace, ref.adapter_id)
        weights, config, meta_text = read_with_retry(
            f"adapter {ref.adapter_id}",
            lambda: ((d / WEIGHTS).read_bytes(), (d / CONFIG).read_bytes(), (d / META).read_text()),
        )
        try:
            meta = json.loads(meta_text)
        except ValueError as exc:
            raise CorruptAdapter(f"adapter {ref.adapter_id} is unreadable: {exc}") from exc
        digest = content_hash(weights, config)
        if digest != meta.get("sha256") or not digest.startswith(ref.adapter_id):
            raise CorruptAdapter(f"adapter {ref.adapter_id} failed verification (content hash mismatch)")
        try:
            return load_bytes(weights), json.loads(config), meta
        except Exception as exc:
            raise CorruptAdapter(f"adapter {ref.adapter_id} cannot be decoded: {exc}") from exc

    def path(self, ref: AdapterRef) -> Path:
        return self._dir(ref.namespace, ref.adapter_id)

    def exists(self, ref: AdapterRef) -> bool:
        return (self._dir(ref.namespace, ref.adapter_id) / META).exists()

    def list(self, namespace: str | None = None) -> list[AdapterRef]:
        roots = [self.root / namespace] if namespace else [p for p in self.root.glob("*") if p.is_dir()]
        out = []
        for ns in roots:
            for meta in ns.glob("*/" + META):
                try:
                    out.append(AdapterRef.from_dict(json.loads(meta.read_text())))
                except (OSError, ValueError, TypeError):
                    continue
        return sorted(out, key=lambda r: r.created)

    def delete(self, ref: AdapterRef) -> None:
        shutil.rmtree(self._dir(ref.namespace, ref.adapter_id), ignore_errors=True)
        registry = self._open_registry()
        if registry is not None:
            registry.delete_adapter(ref.namespace, ref.adapter_id)

    def prune_superseded(self, namespace: str, session: str, keep: set[str]) -> int:
        """Remove the session's adapter folders not in ``keep`` (the ones its state still
        points to) and that no other session adopted; returns how many went."""
        registry = self._open_registry()
        refs = [r for r in self.list(namespace) if r.session == session and r.adapter_id not in keep]
        gone = 0
        for r in refs:
            if registry is not None and any(
                e.session != session for e in registry.entries(namespace) if e.adapter_id == r.adapter_id
            ):
                continue  # another session serves these weights
            self.remove_files(r)
            if registry is not None:  # the row stays for lineage, never offered for sharing again
                registry.retire(namespace, r.adapter_id, session)
            gone += 1
        return gone

    def remove_files(self, ref: AdapterRef) -> None:
        """The adapter's folder only (its registry rows stay)."""
        shutil.rmtree(self._dir(ref.namespace, ref.adapter_id), ignore_errors=True)

    def delete_session(self, namespace: str, session: str) -> int:
        """The session's adapter folders and registry rows; an adapter it trained goes with
        every row that adopted it (those sessions fall back to the teacher and re-adapt)."""
        refs = [r for r in self.list(namespace) if r.session == session]
        for r in refs:
            self.delete(r)
        registry = self._open_registry()
        if registry is not None:
            registry.delete_session(namespace, session, [r.adapter_id for r in refs])
        return len(refs)
