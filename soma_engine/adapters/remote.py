"""Shared adapter storage: one base URL that every replica and worker reads and writes.

A plain path (the default, ``$SOMA_HOME/adapters``; an NFS mount shares it between machines)
is an :class:`AdapterStore` as is. Any URL with a scheme that fsspec knows (``s3://bucket/p``,
``gs://…``, ``az://…``, ``file:///mnt/shared``, ``memory://…``) is a :class:`RemoteAdapterStore`:
adapters are written to a local cache atomically, then uploaded; a replica that lacks an
adapter locally fetches it, checks its content hash (the adapter id is that hash) and only
then moves it into its cache. The layout under the base URL is the local one:
``<namespace digest>/<adapter id>/{adapter_model.safetensors, adapter_config.json, soma.json}``;
``soma.json`` is uploaded last, so its presence marks a complete upload (and the hash check
catches anything else).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..types import hash_id
from .store import (
    CONFIG,
    META,
    WEIGHTS,
    AdapterRef,
    AdapterStore,
    CorruptAdapter,
    content_hash,
    read_with_retry,
)

__all__ = ["RemoteAdapterStore", "open_adapter_store"]

# Seconds a replica trusts that an adapter it saw in shared storage is still there: a delete
# on another replica reaches its surrogate turns within this.
RECHECK_SECONDS = 5.0


def open_adapter_store(base: str | os.PathLike[str] | None, home: Path) -> AdapterStore:
    """``None`` -> ``home/adapters``; a path -> that folder; a URL -> remote with a local cache
    under ``home/adapter-cache``."""
    if base is None or base == "":
        return AdapterStore(home / "adapters")
    text = os.fspath(base)
    if "://" not in text:
        return AdapterStore(Path(text).expanduser())
    return RemoteAdapterStore(text, home / "adapter-cache" / hash_id(text)[:16])


class RemoteAdapterStore(AdapterStore):
    """Adapters under an fsspec base URL, with a verified local cache (``root``)."""

    def __init__(self, url: str, cache: str | os.PathLike[str], **storage_options: Any) -> None:
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - fsspec is a dependency
            raise RuntimeError("shared adapter storage needs fsspec: pip install fsspec") from exc
        super().__init__(cache)
        self.url = url.rstrip("/")
        self.fs, base = fsspec.core.url_to_fs(self.url, **storage_options)
        self.base = base.rstrip("/")
        self._seen: dict[tuple[str, str], float] = {}  # (namespace, adapter id) -> last seen remotely

    def __repr__(self) -> str:
        return f"RemoteAdapterStore({self.url!r}, cache={str(self.root)!r})"

    def _remote(self, namespace: str, adapter_id: str) -> str:
        self._dir(namespace, adapter_id)  # validates both parts (digests only)
        return f"{self.base}/{namespace}/{adapter_id}"

    # -- writes ----------------------------------------------------------------------------
    def save(self, tensors: dict[str, Any], lora_config: dict[str, Any], **kwargs: Any) -> AdapterRef:
        ref = super().save(tensors, lora_config, **kwargs)
        self.upload(ref)
        return ref

    def upload(self, ref: AdapterRef) -> None:
        """Copy a cached adapter to the base URL (no-op when it is there already)."""
        remote = self._remote(ref.namespace, ref.adapter_id)
        if self.fs.exists(f"{remote}/{META}"):
            return
        local = self._dir(ref.namespace, ref.adapter_id)
        self.fs.makedirs(remote, exist_ok=True)
        for name in (WEIGHTS, CONFIG, META):  # META last: marks the upload complete
            self.fs.pipe_file(f"{remote}/{name}", (local / name).read_bytes())

    # -- reads -----------------------------------------------------------------------------
    def fetch(self, ref: AdapterRef) -> Path:
        """Download the adapter into the cache, verified; :class:`CorruptAdapter` if it is
        missing remotely or fails its content hash; a transient storage error is retried with
        backoff, then raises :class:`~soma_engine.adapters.AdapterUnavailable` (the adapter is
        kept: it is not known to be bad)."""
        remote = self._remote(ref.namespace, ref.adapter_id)
        weights, config, meta_bytes = read_with_retry(
            f"adapter {ref.adapter_id} at {self.url}",
            lambda: tuple(self.fs.cat_file(f"{remote}/{name}") for name in (WEIGHTS, CONFIG, META)),
        )
        try:
            meta = json.loads(meta_bytes)
        except ValueError as exc:
            raise CorruptAdapter(f"adapter {ref.adapter_id} at {self.url} is unreadable: {exc}") from exc
        digest = content_hash(weights, config)
        if digest != meta.get("sha256") or not digest.startswith(ref.adapter_id):
            raise CorruptAdapter(f"adapter {ref.adapter_id} at {self.url} failed verification (content hash mismatch)")
        final = self._dir(ref.namespace, ref.adapter_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=final.parent))
        try:
            (tmp / WEIGHTS).write_bytes(weights)
            (tmp / CONFIG).write_bytes(config)
            (tmp / META).write_bytes(meta_bytes)
            if final.exists():  # a corrupt cached copy: replace it
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:
                if not (final / META).exists():  # not a concurrent fetch of the same content
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def load_verified(self, ref: AdapterRef) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if super().exists(ref):
            try:
                return super().load_verified(ref)
            except CorruptAdapter:
                pass  # a damaged cached copy: fetch a good one
        self.fetch(ref)
        return super().load_verified(ref)

    def exists(self, ref: AdapterRef) -> bool:
        """Whether the adapter is in shared storage (the authority: another replica may have
        deleted it, its session's data gone). A positive answer is trusted for
        ``RECHECK_SECONDS``; a negative one drops the local cached copy."""
        key = (ref.namespace, ref.adapter_id)
        if time.monotonic() - self._seen.get(key, -RECHECK_SECONDS) < RECHECK_SECONDS and super().exists(ref):
            return True
        if self.fs.exists(f"{self._remote(ref.namespace, ref.adapter_id)}/{META}"):
            self._seen[key] = time.monotonic()
            if len(self._seen) > 10_000:  # bounded: forgetting only costs one more remote check
                self._seen.clear()
            return True
        self._seen.pop(key, None)
        super().remove_files(ref)
        return False

    def list(self, namespace: str | None = None) -> list[AdapterRef]:
        found = {r.adapter_id: r for r in super().list(namespace)}
        if namespace is not None:
            namespaces = [namespace]
        else:
            try:
                namespaces = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.base, detail=False)]
            except FileNotFoundError:
                namespaces = []
        for ns in namespaces:
            if not ns.isalnum():
                continue
            try:
                metas = self.fs.glob(f"{self.base}/{ns}/*/{META}")
            except FileNotFoundError:
                continue
            for path in metas:
                try:
                    ref = AdapterRef.from_dict(json.loads(self.fs.cat_file(path)))
                except (OSError, ValueError, TypeError):
                    continue
                found.setdefault(ref.adapter_id, ref)
        return sorted(found.values(), key=lambda r: r.created)

    def delete(self, ref: AdapterRef) -> None:
        super().delete(ref)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._remote(ref.namespace, ref.adapter_id), recursive=True)

    def remove_files(self, ref: AdapterRef) -> None:
        super().remove_files(ref)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._remote(ref.namespace, ref.adapter_id), recursive=True)
