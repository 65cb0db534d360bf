"""AdapterStore: save/load round trip, content-hash ids, atomic writes, verification on load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from soma_engine.adapters import CONFIG, META, WEIGHTS, AdapterRef, AdapterStore, CorruptAdapter
from soma_engine.adapters import store as adapters_mod
from soma_engine.types import SessionKey

KEY = SessionKey("tenant", "session-1")
LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA"}


def tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "base_model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(4, 16, generator=g),
        "base_model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(16, 4, generator=g),
    }


@pytest.fixture
def store(tmp_path: Path) -> AdapterStore:
    return AdapterStore(tmp_path / "adapters")


def save(store: AdapterStore, seed: int = 0, key: SessionKey = KEY, **kw: object) -> AdapterRef:
    return store.save(tensors(seed), LORA, namespace=key.namespace_digest, session=key.digest, **kw)


def test_round_trip(store: AdapterStore) -> None:
    ref = save(store, version=3, parent="abc", metrics={"val_nll": 1.5})
    loaded, cfg = store.load(ref)
    original = tensors(0)
    assert set(loaded) == set(original)
    for name, value in original.items():
        assert torch.equal(loaded[name], value)
    assert cfg == LORA
    # PEFT's own file names, so PeftModel.from_pretrained can read the folder.
    folder = store.path(ref)
    assert {p.name for p in folder.iterdir()} == {WEIGHTS, CONFIG, META}
    meta = json.loads((folder / META).read_text())
    assert meta["session"] == KEY.digest and meta["version"] == 3 and meta["parent"] == "abc"
    assert meta["metrics"] == {"val_nll": 1.5}
    # The ref survives serialisation (it is stored in the session state).
    assert AdapterRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    assert store.load(AdapterRef.from_dict(ref.to_dict()))[1] == LORA


def test_id_is_the_content_hash(store: AdapterStore) -> None:
    a = save(store, seed=0)
    again = save(store, seed=0)
    other = save(store, seed=1)
    assert a.adapter_id == again.adapter_id
    assert a.adapter_id != other.adapter_id
    assert len(a.adapter_id) == 32 and all(c in "0123456789abcdef" for c in a.adapter_id)
    folder = store.path(a)
    weights, config = (folder / WEIGHTS).read_bytes(), (folder / CONFIG).read_bytes()
    digest = hashlib.sha256(weights + b"\0" + config).hexdigest()
    assert digest.startswith(a.adapter_id)
    assert json.loads((folder / META).read_text())["sha256"] == digest
    # A different LoRA config changes the id too.
    changed = store.save(tensors(0), {**LORA, "r": 8}, namespace=KEY.namespace_digest, session=KEY.digest)
    assert changed.adapter_id != a.adapter_id
    # Same content saved twice is one folder.
    assert len(store.list(KEY.namespace_digest)) == 3


def test_namespaces_are_separate_folders(store: AdapterStore) -> None:
    other_tenant = SessionKey("other", "session-1")
    a = save(store, key=KEY)
    b = save(store, key=other_tenant)
    assert a.adapter_id == b.adapter_id  # same bytes
    assert store.path(a) != store.path(b)
    assert [r.session for r in store.list(KEY.namespace_digest)] == [KEY.digest]
    assert [r.session for r in store.list(other_tenant.namespace_digest)] == [other_tenant.digest]
    store.delete_session(KEY.namespace_digest, KEY.digest)
    assert store.exists(b) and not store.exists(a)


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_atomic_write_leaves_no_partial_folder(
    store: AdapterStore, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(adapters_mod.os, fail_at, boom)
    with pytest.raises(OSError, match="No space"):
        save(store)
    monkeypatch.undo()
    ns_dir = store.root / KEY.namespace_digest
    leftovers = list(ns_dir.iterdir()) if ns_dir.exists() else []
    assert leftovers == []  # neither the final folder nor a temporary one
    assert store.list() == []
    # The write works once the disk is fine again.
    ref = save(store)
    assert store.exists(ref)
    assert torch.equal(store.load(ref)[0][next(iter(tensors()))], next(iter(tensors().values())))


def test_corrupted_weights_raise(store: AdapterStore) -> None:
    ref = save(store)
    path = store.path(ref) / WEIGHTS
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte in the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptAdapter, match=ref.adapter_id):
        store.load(ref)


def test_garbage_weights_raise(store: AdapterStore) -> None:
    ref = save(store)
    (store.path(ref) / WEIGHTS).write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptAdapter):
        store.load(ref)


def test_tampered_config_raises(store: AdapterStore) -> None:
    ref = save(store)
    (store.path(ref) / CONFIG).write_text(json.dumps({**LORA, "r": 64}))
    with pytest.raises(CorruptAdapter):
        store.load(ref)


@pytest.mark.parametrize("name", [WEIGHTS, CONFIG, META])
def test_missing_file_raises(store: AdapterStore, name: str) -> None:
    ref = save(store)
    (store.path(ref) / name).unlink()
    with pytest.raises(CorruptAdapter):
        store.load(ref)


def test_ref_must_match_content(store: AdapterStore) -> None:
    a = save(store, seed=0)
    b = save(store, seed=1)
    # A ref that claims a's id but points at b's folder content fails verification.
    (store.path(a) / WEIGHTS).write_bytes((store.path(b) / WEIGHTS).read_bytes())
    (store.path(a) / META).write_text((store.path(b) / META).read_text())
    with pytest.raises(CorruptAdapter):
        store.load(a)


@pytest.mark.parametrize("bad", ["../../etc", "a/b", "", "abc\x00"])
def test_hostile_refs_are_rejected(store: AdapterStore, bad: str) -> None:
    with pytest.raises(CorruptAdapter):
        store.load(AdapterRef(adapter_id=bad, namespace=KEY.namespace_digest, session=KEY.digest))
    with pytest.raises(CorruptAdapter):
        store.load(AdapterRef(adapter_id="abc", namespace=bad, session=KEY.digest))


def test_delete_session_removes_only_that_session(store: AdapterStore) -> None:
    other = SessionKey("tenant", "session-2")
    mine = [save(store, seed=s) for s in (0, 1)]
    theirs = save(store, seed=2, key=other)
    assert store.delete_session(KEY.namespace_digest, KEY.digest) == 2
    assert not any(store.exists(r) for r in mine)
    assert store.exists(theirs)
    assert [r.adapter_id for r in store.list()] == [theirs.adapter_id]
