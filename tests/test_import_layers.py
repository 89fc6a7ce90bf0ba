"""The layers import one way (exposure_env -> rewards -> policies -> tune_configs) and never in a circle.

Reads every module's imports with :mod:`ast` (nothing is imported), resolving relative imports and
``from package import submodule``; a lower layer importing a higher one, or any import circle
between modules of the four packages, fails with the offending edges named.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("exposure_env", "rewards", "policies", "tune_configs")


def _modules() -> dict[str, Path]:
    mods = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _imported(name: str, path: Path, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{a.name}" for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """``module -> modules of the four packages it imports`` (at any depth of its code)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(name, path, node):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_the_packages():
    graph = import_graph()
    assert "exposure_env.env" in graph and "tune_configs.run_loop" in graph
    assert "exposure_env.env_config" in graph["exposure_env.env"]  # a real edge is found


def test_no_lower_layer_imports_a_higher_one():
    upward = [f"{a} -> {b}" for a, deps in sorted(import_graph().items()) for b in sorted(deps) if _layer(b) > _layer(a)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_circles():
    circles = _circles(import_graph())
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_checks_can_fail():
    graph = {"exposure_env.a": {"rewards.b"}, "rewards.b": {"exposure_env.a"}}
    assert _circles(graph) == [["exposure_env.a", "rewards.b"]]
    assert _layer("rewards.b") > _layer("exposure_env.a")
