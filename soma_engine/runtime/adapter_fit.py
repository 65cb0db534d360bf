"""Whether a stored adapter fits the running base model, checked before it is installed."""

from __future__ import annotations

from typing import Any

from ..adapters import AdapterMismatch

__all__ = ["check_adapter_fits", "module_features"]


def module_features(module: Any) -> tuple[int, int] | None:
    """(in, out) features of a module an adapter may target; None if it cannot be one."""
    if module is None:
        return None
    if hasattr(module, "in_features") and hasattr(module, "out_features"):  # nn.Linear, PEFT's LoRA layers
        return int(module.in_features), int(module.out_features)
    if hasattr(module, "num_embeddings") and hasattr(module, "embedding_dim"):
        return int(module.num_embeddings), int(module.embedding_dim)
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and weight is not None:  # GPT-2 stores (in, out)
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def check_adapter_fits(
    adapter_id: str, tensors: dict[str, Any], meta: dict[str, Any], running: dict[str, Any] | None, base_model: Any
) -> None:
    """:class:`AdapterMismatch` unless the adapter fits the running model: the base it recorded
    (``running`` is the running base's identity; adapters saved before bases were recorded:
    unknown, not checked), the shapes it recorded, and every tensor against the module it adapts."""
    base = meta.get("base")
    if base and running and base.get("fingerprint") != running["fingerprint"]:
        raise AdapterMismatch(
            f"adapter {adapter_id} was trained on base model {base.get('model')!r} {base.get('config')}, "
            f"not on the running {running['model']!r} {running['config']}"
        )
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    if meta.get("shapes") is not None and meta["shapes"] != shapes:
        raise AdapterMismatch(f"adapter {adapter_id}'s tensors do not have the shapes it recorded")
    modules = dict(base_model.named_modules())
    for key, shape in shapes.items():
        path, lora, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
        if not lora:
            continue  # not a LoRA factor (a saved module or bias): PEFT checks it on install
        features = module_features(modules.get(path))
        if features is None:
            raise AdapterMismatch(f"adapter {adapter_id} adapts {path!r}, a module the base model lacks")
        fits = {"A.weight": shape[-1] == features[0], "B.weight": shape[0] == features[1]}.get(kind, True)
        if not fits:
            raise AdapterMismatch(
                f"adapter {adapter_id}'s {key} has shape {shape}, which does not fit {path!r} "
                f"(in {features[0]}, out {features[1]})"
            )
