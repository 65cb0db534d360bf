"""The layout's rules, checked on the source: every module imports, soma_engine's modules import
each other without a cycle, and no module reaches into another's underscore names."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("soma_engine", "soma_integrations")


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` under the packages."""
    out: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module an ``ImportFrom`` names, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: not inside functions, nor under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _module_level(node.orelse)
            continue
        yield node
        blocks = [getattr(node, f) for f in ("body", "orelse", "finalbody") if isinstance(getattr(node, f, None), list)]
        blocks += [h.body for h in getattr(node, "handlers", [])]
        for block in blocks:
            yield from _module_level(block)


def _targets(node: ast.stmt, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """Known modules an import statement loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(node, module, is_package)
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in known:
                yield sub
            elif source in known:
                yield source


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the known modules it imports at module level."""
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges = {t for node in _module_level(tree.body) for t in _targets(node, module, is_package, known)}
        graph[module] = edges - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def private_uses(files: dict[str, Path]) -> list[str]:
    """``from x import _y`` and ``mod._y`` where x / mod is another known module, anywhere in
    a module (function-level imports included); dunder names are fine."""
    known = set(files)
    found: list[str] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        aliases: dict[str, str] = {}  # local name -> known module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known:
                        aliases[alias.asname or alias.name.split(".")[0]] = (
                            alias.name if alias.asname else alias.name.split(".")[0]
                        )
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, module, is_package)
                for alias in node.names:
                    if f"{source}.{alias.name}" in known:
                        aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                    elif source in known and source != module and _private(alias.name):
                        found.append(f"{module}:{node.lineno}: from {source} import {alias.name}")
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            dotted = _dotted(node.value)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            target = aliases.get(head)
            target = f"{target}.{rest}" if target and rest else target
            if target in known and target != module:
                found.append(f"{module}:{node.lineno}: {target}.{node.attr}")
    return found


FILES = module_files(ROOT, PACKAGES)


@pytest.mark.parametrize("module", sorted(FILES))
def test_every_module_imports(module: str) -> None:
    assert importlib.import_module(module).__name__ == module


def test_no_import_cycle_among_soma_engine_modules() -> None:
    engine_files = {m: p for m, p in FILES.items() if m.split(".")[0] == "soma_engine"}
    assert import_cycles(import_graph(engine_files)) == []


def test_no_module_uses_another_modules_underscore_names() -> None:
    assert private_uses(FILES) == []


def _package(tmp_path: Path, sources: dict[str, str]) -> dict[str, Path]:
    for name, text in sources.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(tmp_path, ("pkg",))


def test_the_checker_finds_a_cycle_and_ignores_deferred_imports(tmp_path: Path) -> None:
    files = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import run\n",
            "b.py": "from . import c\n\ndef run():\n    from .a import run\n",
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import run\n",
            "sub/__init__.py": "",
            "sub/d.py": "from ..e import x\n",
            "e.py": "try:\n    from .sub import d\nexcept ImportError:\n    pass\nx = 1\n",
        },
    )
    graph = import_graph(files)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == set()
    assert import_cycles(graph) == [["pkg.e", "pkg.sub.d"]]
    # The deferred import in b.run becomes a module-level one: a cycle a -> b -> a.
    (tmp_path / "pkg" / "b.py").write_text("from . import c\nfrom .a import run\n")
    assert ["pkg.a", "pkg.b"] in import_cycles(import_graph(files))


def test_the_checker_finds_underscore_names_across_modules(tmp_path: Path) -> None:
    files = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "_hidden = 1\n__version__ = '1'\nvisible = _hidden\n",
            "b.py": "from .a import _hidden, __version__, visible\n",
            "c.py": "from . import a\n\ndef f():\n    return a._hidden + a.visible\n",
            "d.py": "import pkg.a\n\ndef g(x):\n    return pkg.a._hidden + x._private\n",
        },
    )
    assert private_uses(files) == [
        "pkg.b:1: from pkg.a import _hidden",
        "pkg.c:4: pkg.a._hidden",
        "pkg.d:4: pkg.a._hidden",
    ]
