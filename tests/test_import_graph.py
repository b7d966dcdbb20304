"""Imports flow one way between the top-level packages.

generator <- protocol <- stimuli <- study <- analysis <- fovea_cli: a package imports only the
packages before it (module-level and function-level imports alike, read with ``ast``), so there is
no cycle between packages and the command-line shell is imported by nobody. ``study`` may use
``stimuli`` (checking a stimulus set, the weights' fingerprint), never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Lower layers first; a package may import the packages listed before it.
LAYERS = ("generator", "protocol", "stimuli", "study", "analysis", "fovea_cli")
#: Known arrows against the order that another change removes, each with its reason:
#: (importing module, imported top-level package). Keep it empty when you can.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_packages(path: Path) -> set[str]:
    """Top-level names ``path`` imports (absolute imports; relative ones stay in the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> the importing modules, across packages only."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in LAYERS:
        for path in sorted((REPO / package).rglob("*.py")):
            module = _module_name(path)
            for target in _imported_packages(path) & set(LAYERS):
                if target != package:
                    edges.setdefault((package, target), []).append(module)
    return edges


def _violations() -> list[str]:
    out = []
    for (source, target), modules in sorted(package_edges().items()):
        if LAYERS.index(target) < LAYERS.index(source):
            continue
        unexplained = [m for m in modules if (m, target) not in ALLOWED]
        if unexplained:
            out.append(f"{source} -> {target} in {', '.join(unexplained)}")
    return out


def test_every_layer_is_a_package():
    for package in LAYERS:
        assert (REPO / package / "__init__.py").is_file(), package


def test_imports_follow_the_layers():
    """generator imports none of the others; protocol only generator; stimuli and study not
    analysis; nothing imports the command-line shell."""
    assert _violations() == []


def test_no_cycle_between_packages():
    edges = {edge for edge in package_edges()}
    edges -= {(m.split(".")[0], target) for m, target in ALLOWED}
    for source, target in edges:
        assert (target, source) not in edges, f"{source} <-> {target}"


def test_the_allow_list_has_no_stale_entries():
    """An allowed arrow that no longer exists is taken off the list."""
    edges = package_edges()
    for module, target in ALLOWED:
        assert module in edges.get((module.split(".")[0], target), []), (module, target)


def _module_imports(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (absolute imports, any depth)."""
    modules = {_module_name(p): p for p in sorted((REPO / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            targets.update(n for n in names if n in modules and n != module)
        graph[module] = targets - {package}
    return graph


def test_no_module_cycle_inside_the_generator():
    """pipeline <- models.weights_io <- loading, one way: the loaders build generators, the
    pipeline never loads a model (a cycle here once made the core hard to carry on)."""
    graph = _module_imports("generator")
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + (module,)
            raise AssertionError(" -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, path + (module,))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
