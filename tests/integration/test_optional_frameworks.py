"""The engine without its extras: in a fresh interpreter where LangChain, LlamaIndex, Redis and
RQ cannot be imported, the engine and the ``soma`` command work, and what needs an extra says
which one to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run in the child: a finder ahead of every other refuses the extras' packages, as if they were
# not installed; then each check records "ok" or the error it raised.
CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys, tempfile

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            top = name.split(".")[0]
            if top.startswith(("langchain", "llama_index")) or top in ("redis", "rq"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    home = tempfile.mkdtemp()

    def engine():
        from soma_engine import SomaConfig, SomaEngine

        SomaEngine(config=SomaConfig(), store=f"sqlite:///{home}/soma.db").close()

    def redis_store():
        from soma_engine import SomaEngine

        SomaEngine(store="redis://127.0.0.1:6379/0")

    def demo_chat_model():
        from soma_engine.demo import chat_model_teacher

        chat_model_teacher("openai:gpt-4o-mini")

    checks = {
        "blocked": lambda: __import__("langchain_core"),
        "soma_engine": lambda: __import__("soma_engine"),
        "soma_engine.cli": lambda: __import__("soma_engine.cli"),
        "soma_engine.demo": lambda: __import__("soma_engine.demo"),
        "engine": engine,
        "redis_store": redis_store,
        "demo_chat_model": demo_chat_model,
        "soma_integrations.langchain": lambda: __import__("soma_integrations.langchain"),
        "soma_integrations.llama_index": lambda: __import__("soma_integrations.llama_index"),
        "soma_integrations.llama_index_embedding": lambda: __import__("soma_integrations.llama_index_embedding"),
        "soma_integrations.testing": lambda: __import__("soma_integrations.testing"),
    }
    out = {}
    for name, check in checks.items():
        try:
            check()
            out[name] = "ok"
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    leaked = sorted(m for m in sys.modules if m.split(".")[0].startswith(("langchain", "llama_index")))
    print(json.dumps({"checks": out, "leaked": leaked}))
    """
)


@pytest.fixture(scope="module")
def without_extras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {**os.environ, "SOMA_HOME": str(tmp_path_factory.mktemp("home")), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_extras_are_really_blocked(without_extras: dict[str, Any]) -> None:
    assert without_extras["checks"]["blocked"].startswith("ModuleNotFoundError")
    assert without_extras["leaked"] == []


@pytest.mark.parametrize("check", ["soma_engine", "soma_engine.cli", "soma_engine.demo", "engine"])
def test_the_engine_and_the_command_need_no_framework(without_extras: dict[str, Any], check: str) -> None:
    assert without_extras["checks"][check] == "ok"


@pytest.mark.parametrize(
    ("check", "extra"),
    [
        ("soma_integrations.langchain", "langchain"),
        ("soma_integrations.llama_index", "llama-index"),
        ("soma_integrations.llama_index_embedding", "llama-index"),
        ("soma_integrations.testing", "langchain,llama-index"),
        ("redis_store", "redis"),
    ],
)
def test_what_needs_an_extra_names_it(without_extras: dict[str, Any], check: str, extra: str) -> None:
    result = without_extras["checks"][check]
    assert result.startswith(("ImportError", "ModuleNotFoundError")), result
    assert f'pip install "soma-middleware[{extra}]"' in result


def test_the_demo_names_the_langchain_extra_for_a_provider_teacher(without_extras: dict[str, Any]) -> None:
    result = without_extras["checks"]["demo_chat_model"]
    assert result.startswith("ValueError") and 'pip install "soma-middleware[langchain]"' in result


def test_the_demo_gets_a_provider_teacher_from_the_registered_langchain_integration() -> None:
    # With the extra installed, the `soma.teachers` entry point reaches LangChain's
    # init_chat_model: its own error for an unknown provider, not the missing-extra one.
    from soma_engine.demo import chat_model_teacher

    with pytest.raises(ValueError, match="model provider") as err:
        chat_model_teacher("no-such-provider:some-model")
    assert "soma-middleware[langchain]" not in str(err.value)
