"""Shared fixtures: an isolated SOMA_HOME, one tiny random surrogate folder and one encoder
for the whole run, and a permissive engine config that switches a session to the surrogate
right after its 4th teacher turn."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soma_engine.config import SomaConfig

# SOMA_* variables that would change SomaConfig.load() under the tests' feet.
_CONFIG_ENV = [k for k in os.environ if k.startswith("SOMA_") and k != "SOMA_HOME"]


@pytest.fixture(scope="session", autouse=True)
def soma_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point SOMA_HOME at a temporary folder for the whole run (nothing touches the user's
    cache) and hide stray SOMA_* config variables; both restored afterwards."""
    home = tmp_path_factory.mktemp("soma-home")
    saved = {k: os.environ.get(k) for k in ["SOMA_HOME", *_CONFIG_ENV]}
    for k in _CONFIG_ENV:
        os.environ.pop(k, None)
    os.environ["SOMA_HOME"] = str(home)
    try:
        yield home
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama + BPE tokenizer folder, loadable like any HF path."""
    from soma_engine.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def visible_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny surrogate whose greedy answers are always visible text, so local turns stay local."""
    from soma_engine.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-visible") / "model", visible_only=True)


@pytest.fixture(scope="session")
def shared_encoder() -> Any:
    """The bundled all-MiniLM encoder, loaded once for every engine of the run."""
    from soma_engine.runtime.encoder import Encoder
    from soma_engine.runtime.models import resolve_encoder

    enc = Encoder(resolve=lambda: resolve_encoder(None))
    enc.encode(["warm up"])
    return enc


def _permissive_config(**overrides: Any) -> SomaConfig:
    """Inline adaptation, a gate that accepts anything: serving after the 4th teacher turn.
    No random audits and a drift threshold no Gap can pass, so sessions do not roll back
    behind a test's back."""
    base: dict[str, Any] = {
        "warm_window": 4,
        "adaptation": "inline",
        "strategy": "history-ft",  # no mining: fast; tests/unit/test_strategies.py and the e2e test run "soma"
        "max_new_tokens": 16,
        "lora": {"steps": 10, "lr": 5e-3},
        "gate": {
            "min_fidelity": 0.0,
            "min_improvement": None,
            "locality_threshold": 2.0,
            "audit_rate": 0.0,
            "drift_threshold": 1.0,
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return SomaConfig(**base)


@pytest.fixture(scope="session")
def permissive_config() -> Any:
    """``permissive_config(**overrides)`` -> SomaConfig (sections merge key by key)."""
    return _permissive_config


@pytest.fixture(scope="session")
def new_engine(tiny_model_path: Path, shared_encoder: Any, permissive_config: Any) -> Iterator[Any]:
    """``new_engine(store, config=None, namespace="default", max_context=None)``: a SomaEngine
    on the tiny surrogate (its own runtime, so its own model copy) and the shared encoder.
    Callers close it (``with``); any left open are closed at the end of the run."""
    from soma_engine import SomaEngine
    from soma_engine.runtime.surrogate import SurrogateRuntime

    made: list[Any] = []

    def make(
        store: Any = None,
        *,
        config: SomaConfig | None = None,
        namespace: str = "default",
        max_context: int | None = None,
    ) -> Any:
        runtime = SurrogateRuntime(str(tiny_model_path), max_context=max_context)
        engine = SomaEngine(
            config=config or permissive_config(),
            surrogate=runtime,
            encoder=shared_encoder,
            store=store,
            namespace=namespace,
        )
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


# A real redis-server for the Redis store and queue tests (started on a free port when none
# is given): ``redis_url``, ``redis_prefix``. See tests/redis_fixtures.py.
from redis_fixtures import redis_prefix, redis_url  # noqa: E402,F401
