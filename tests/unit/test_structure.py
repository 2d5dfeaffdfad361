"""The shape of the code (docs/architecture.md): short functions, no import cycles, and the
data layer importing nothing of the build."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vmdebootstrap"
MAX_FUNCTION_LINES = 60
# Plain data and parsers: read by everything, so they import nothing that reads them.
DATA_LAYER = ("architectures", "releases", "values", "options", "errors", "bootloaders", "secret")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module of the package that ``name`` imports, anywhere in it (functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                child = f"{target}.{alias.name}"
                yield child if child in known else target
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(name, path, known) if m in known and m != name}
            for name, path in known.items()}


def test_no_function_is_longer_than_60_lines() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for following in sorted(edges[node]):
            if following == path[0]:
                cycles.append(" -> ".join([*path, following]))
            elif following not in path and following > path[0]:
                visit(following, [*path, following])

    for start in sorted(edges):
        visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("layer", DATA_LAYER)
def test_the_data_layer_does_not_import_the_build(layer: str) -> None:
    allowed = {f"vmdebootstrap.{name}" for name in DATA_LAYER} | {"vmdebootstrap"}
    edges = graph()
    assert edges[f"vmdebootstrap.{layer}"] - allowed == set()
