"""AdapterStore: session LoRA adapters on disk, content-addressed, written atomically.

Layout: ``<root>/<namespace digest>/<adapter id>/`` with PEFT's own files
(``adapter_model.safetensors``, ``adapter_config.json``, loadable by
``PeftModel.from_pretrained``) plus ``soma.json`` (session, version, parent, content hash,
metrics). The adapter id is the content hash of the weights and config, so a replica that
has the id can verify what it loads. A folder appears only by ``os.replace`` of a complete
temporary folder; a file that fails verification raises :class:`CorruptAdapter`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
META = "soma.json"


class CorruptAdapter(RuntimeError):
    """An adapter's files are missing or do not match their recorded content hash."""


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


def _content_hash(weights: bytes, config: bytes) -> str:
    h = hashlib.sha256()
    h.update(weights)
    h.update(b"\0")
    h.update(config)
    return h.hexdigest()


class AdapterStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

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
        digest = _content_hash(weights, config)
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
            (tmp / META).write_text(json.dumps({**ref.to_dict(), "sha256": digest}, indent=1))
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
        from safetensors.torch import load as load_bytes

        d = self._dir(ref.namespace, ref.adapter_id)
        try:
            weights = (d / WEIGHTS).read_bytes()
            config = (d / CONFIG).read_bytes()
            meta = json.loads((d / META).read_text())
        except (OSError, ValueError) as exc:
            raise CorruptAdapter(f"adapter {ref.adapter_id} is missing or unreadable: {exc}") from exc
        digest = _content_hash(weights, config)
        if digest != meta.get("sha256") or not digest.startswith(ref.adapter_id):
            raise CorruptAdapter(f"adapter {ref.adapter_id} failed verification (content hash mismatch)")
        try:
            return load_bytes(weights), json.loads(config)
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

    def delete_session(self, namespace: str, session: str) -> int:
        refs = [r for r in self.list(namespace) if r.session == session]
        for r in refs:
            self.delete(r)
        return len(refs)
