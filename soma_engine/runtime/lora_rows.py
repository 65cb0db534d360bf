"""One batched forward pass whose rows each use their own LoRA adapter (batched serving).

:func:`row_lora` is the equivalent of PEFT's ``adapter_names=[...]`` with one pair of batched
matmuls per layer; :func:`mixable` says whether a set of adapters can be served that way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["BASE_ADAPTER", "PEFT_BASE_ROW", "RowLoraHook", "mixable", "row_lora"]

BASE_ADAPTER = "soma_base"  # the never-deleted placeholder adapter of the shared PEFT model
PEFT_BASE_ROW = "__base__"  # PEFT's adapter name for a batch row served by the bare base model


class RowLoraHook:
    """Forward hook adding each row's own LoRA update to a layer's base output."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> None:
        self.a, self.b, self.scale = a, b, scale

    def __call__(self, module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        x = args[0].to(self.a.dtype)
        return output + (torch.bmm(torch.bmm(x, self.a), self.b) * self.scale).to(output.dtype)


def _stacked_factors(module: Any, names: list[str]) -> RowLoraHook:
    """Per-row ``A^T [rows, in, r]``, ``B^T [rows, r, out]`` and scale of one LoRA layer, zero
    for rows whose adapter does not adapt it (ranks padded to the largest)."""
    ranks = [module.lora_A[n].weight.shape[0] if n in module.lora_A else 0 for n in names]
    ref = next(module.lora_A[n].weight for n in names if n in module.lora_A)
    rank, n_in = max(ranks), ref.shape[1]
    n_out = next(module.lora_B[n].weight.shape[0] for n in names if n in module.lora_A)
    a = torch.zeros(len(names), n_in, rank, dtype=ref.dtype, device=ref.device)
    b = torch.zeros(len(names), rank, n_out, dtype=ref.dtype, device=ref.device)
    scale = torch.zeros(len(names), 1, 1, dtype=ref.dtype, device=ref.device)
    with torch.no_grad():  # plain copies, even of an adapter's trainable factors
        for i, (name, r) in enumerate(zip(names, ranks, strict=True)):
            if r:
                a[i, :, :r] = module.lora_A[name].weight.T
                b[i, :r, :] = module.lora_B[name].weight.T
                scale[i] = module.scaling[name]
    return RowLoraHook(a, b, scale)


@contextlib.contextmanager
def row_lora(peft: Any, names: list[str]) -> Iterator[None]:
    """Serve row ``i`` of the next forward passes with adapter ``names[i]`` (the base model
    for ``PEFT_BASE_ROW``), as PEFT's ``adapter_names`` does, but with one pair of batched
    matmuls per layer over per-row stacked factors. PEFT's version gathers each adapter's
    sub-batch and runs its two matmuls separately, per layer and per decoding step: with
    16 distinct adapters that loop cost more than the batch saved on CPU. The adapters are
    disabled so each layer returns its base output; a hook adds ``(x A_i^T) B_i^T · s_i``
    per row, the single-adapter formula (zero factors for rows without this layer's adapter).
    """
    from peft.tuners.lora import Linear as LoraLinear

    handles = [
        module.register_forward_hook(_stacked_factors(module, names))
        for module in peft.modules()
        if isinstance(module, LoraLinear) and set(names) & set(module.lora_A)
    ]
    try:
        peft.set_adapter(BASE_ADAPTER)
        with peft.disable_adapter():
            yield
    finally:
        for h in handles:
            h.remove()


def mixable(peft: Any, names: list[str]) -> bool:
    """Whether :func:`row_lora` can serve these adapters side by side: plain LoRA on linear
    layers only (not DoRA or other variants, not LoRA on embeddings). ``peft`` is None while no
    adapter was ever installed (then only base rows are)."""
    from peft.tuners.lora import Linear as LoraLinear
    from peft.tuners.lora import LoraLayer

    if peft is None:
        return all(n == PEFT_BASE_ROW for n in names)
    wanted = set(names) - {PEFT_BASE_ROW}
    for module in peft.modules():
        if not isinstance(module, LoraLayer):
            continue
        used = wanted & (set(module.lora_A) | set(module.lora_embedding_A))
        if used and (not isinstance(module, LoraLinear) or used & set(module.lora_variant)):
            return False
    return True
