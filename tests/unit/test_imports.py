"""The repository's import graph: no cycles, and the lower layer never imports model or compressor code.

The graph is read from the source (``ast``), so it sees every import, also the ones inside functions
(a function-level import is a dependency as much as a module-level one). Only imports under
``if TYPE_CHECKING:`` are left out: they never run. An import of ``a.b`` is an edge to module
``a.b`` (to package ``a``'s ``__init__`` only when ``a.b`` is a name it defines).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("suite", "baselines", "compressors", "reports")
LOWER = ("ddspbench.suite.registry", "ddspbench.suite.records", "ddspbench.suite.data", "ddspbench.suite.metrics", "ddspbench.suite.train", "ddspbench.suite.evaluate",
         "ddspbench.suite.candidate", "ddspbench.suite.errors", "ddspbench.suite.features", "ddspbench.suite.audio_io", "ddspbench.suite.checkpoint", "ddspbench.suite.locks",
         "ddspbench.suite.provenance", "ddspbench.suite.seeds", "ddspbench.suite.catalog", "ddspbench.suite.recipe",
         "ddspbench.suite.upgrade", "ddspbench.suite.traits")
"""Registry, records, data, metrics, training and what they stand on: they reach model and compressor
code only through the registries (filled by :func:`suite.catalog.load_catalog`), never by import."""
UPPER_PACKAGES = ("ddspbench.baselines", "ddspbench.compressors")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(["ddspbench", *(parts[:-1] if parts[-1] == "__init__" else parts)])
            out[name] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules ``name`` imports at run time (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out = set()
    for mod in found:
        while mod and mod not in modules:
            mod = mod.rpartition(".")[0]
        if mod and mod != name:
            out.add(mod)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_import_walker_sees_function_level_imports_and_relative_ones(tmp_path):
    modules = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.a": tmp_path / "pkg" / "a.py", "pkg.b": tmp_path / "pkg" / "b.py"}
    for p in modules.values():
        p.parent.mkdir(exist_ok=True)
    modules["pkg"].write_text("")
    modules["pkg.a"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n"
                                "def f():\n    from . import b\n")
    modules["pkg.b"].write_text("import pkg.a\n")
    graph = {n: _imports(p, n, modules) for n, p in modules.items()}
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_lower_layer_never_imports_model_or_compressor_code():
    graph = _graph()
    bad = sorted(f"{n} -> {m}" for n, deps in graph.items() if n.startswith(LOWER)
                 for m in deps if m.startswith(UPPER_PACKAGES))
    assert not bad, "lower-layer modules import baselines/compressors: " + ", ".join(bad)


def test_no_private_name_is_imported_from_another_module():
    """``from x import _name`` across modules (a package's private module, ``from pkg import _mod``,
    is private to the package: its own modules may import it)."""
    modules = _modules()
    bad = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ddspbench."):
                bad += [f"{name}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                        and not (f"{node.module}.{a.name}" in modules and name.startswith(node.module + "."))]
    assert not bad, "private names used across modules: " + "; ".join(bad)


def test_every_project_import_goes_through_the_ddspbench_namespace():
    """The packages are installed as ``ddspbench.suite`` etc.: a top-level ``import suite`` would load a
    second copy of a module (two registries) in the source tree and fail outside it."""
    bad = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{name}: {m}" for m in mods if m.split(".")[0] in PACKAGES]
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in PACKAGES:
                bad.append(f"{path.relative_to(REPO)}: {node.module}")
    assert not bad, "top-level project imports: " + "; ".join(bad)


def test_the_public_api_is_exactly_all() -> None:
    """``import ddspbench`` exports its ``__all__`` (and its subpackages), nothing it merely uses (``os``, ``Path``)."""
    import types

    import ddspbench

    public = {n for n, v in vars(ddspbench).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"}
    assert public == set(ddspbench.__all__) - {"__version__"}
    for pkg in ("suite", "reports", "compressors", "baselines", "suite.sweep", "suite.metrics", "suite.data"):
        mod = __import__(f"ddspbench.{pkg}", fromlist=["__all__"])
        assert all(hasattr(mod, name) for name in mod.__all__), pkg
