"""The shape of the code (docs/architecture.md): short functions, no import cycles, and the
data layer importing nothing of the build."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmdebootstrap import bootloaders
from vmdebootstrap.bootloaders import loader
from vmdebootstrap.options import OUTPUTS
from vmdebootstrap.outputs import OutputKind

PACKAGE = Path(__file__).resolve().parents[2] / "vmdebootstrap"
MAX_FUNCTION_LINES = 60
# Plain data and parsers: read by everything, so they import nothing that reads them.
DATA_LAYER = ("architectures", "boards", "releases", "values", "options", "errors", "bootloaders", "secret")


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


# -- the plug-in seams: every registered module provides its whole interface --------------------------


def interface(protocol: type) -> dict[str, list[str] | None]:
    """Member name -> its parameter names (None: an attribute, such as STEP) of a Protocol."""
    members: dict[str, list[str] | None] = {name: None for name in getattr(protocol, "__annotations__", {})}
    for name, value in vars(protocol).items():
        if callable(value) and not name.startswith("_"):
            members[name] = [p for p in inspect.signature(value).parameters if p != "self"]
    return members


def conforms(module: object, protocol: type) -> list[str]:
    problems = []
    for name, parameters in interface(protocol).items():
        if not hasattr(module, name):
            problems.append(f"{name} missing")
        elif parameters is not None and [p.lstrip("_") for p in inspect.signature(getattr(module, name)).parameters] \
                != parameters:  # an unused one may say so with a leading _
            problems.append(f"{name}{inspect.signature(getattr(module, name))} takes other parameters than "
                            f"the interface's {name}({', '.join(parameters)})")
    return problems


@pytest.mark.parametrize("kind", [o.name for o in OUTPUTS])
def test_every_output_kind_provides_the_whole_interface(kind: str) -> None:
    """A kind that lacks a function fails here, not in a build (outputs.OutputKind)."""
    assert set(interface(OutputKind)) >= {"STEP", "wanted", "stem", "packages", "downloads", "host_tools", "run"}
    assert conforms(importlib.import_module(f"vmdebootstrap.outputs.{kind}"), OutputKind) == []


@pytest.mark.parametrize("name", bootloaders.NAMES)
def test_every_bootloader_provides_the_whole_interface(name: str) -> None:
    assert set(interface(loader.Bootloader)) >= {"packages", "host_tools", "install", "finish"}
    assert conforms(importlib.import_module(f"vmdebootstrap.bootloaders.{bootloaders.REGISTRY[name].module}"),
                    loader.Bootloader) == []


def test_the_conformance_check_finds_what_is_missing() -> None:
    class Half:
        STEP = "x"

        @staticmethod
        def wanted(other: object) -> bool:
            return bool(other)

    assert "stem missing" in conforms(Half, OutputKind)
    assert "wanted(other: 'object') -> 'bool' takes other parameters than the interface's wanted(settings)" in \
        conforms(Half, OutputKind)


# -- what the docs and the docstrings name exists ---------------------------------------------------------

REPO = PACKAGE.parent
# "outputs/image.py", "stagecache.py", "boot/console.boot_test", "bootstrap.save_stage": a module
# of the package, named by its path below vmdebootstrap/ (or its last part), and maybe a name in it.
NAMED = re.compile(r"(?<![\w/.-])((?:[a-z_]+/)*[a-z_]+)\.(py\b|[A-Za-z_]\w*)")
# ... unless the dot begins a file's suffix: grub.cfg, extlinux.conf, boot.img.
SUFFIXES = frozenset({"cfg", "conf", "xml", "img", "log", "json", "txt", "list", "sources", "deb", "iso", "efi", "lib",
                      "packages", "csv", "bin", "md", "yaml", "sh", "squashfs", "fd", "raw", "qcow2", "tar", "gz",
                      "service", "spdx", "cdx", "c32", "d"})


def module_files() -> dict[str, Path]:
    """Every way a module is named: its path below the package and its bare name, to its file."""
    named: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        if parts:
            named["/".join(parts)] = path
            named.setdefault(parts[-1], path)
    return named


def defined_names(path: Path) -> set[str]:
    """The names a module defines: top level, and inside its classes (fields, methods)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def texts() -> Iterator[tuple[str, str]]:
    """(where, text): docs/architecture.md, and every docstring of the package."""
    yield "docs/architecture.md", (REPO / "docs/architecture.md").read_text()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node)
                if docstring:
                    yield f"{path.relative_to(REPO)}:{getattr(node, 'name', '')}", docstring


def missing_names() -> list[str]:
    modules, found = module_files(), []
    for where, text in texts():
        for module, name in NAMED.findall(text):
            if module not in modules:
                if name == "py" and not list(REPO.glob(f"**/{module}.py")):
                    found.append(f"{where}: {module}.py does not exist")
                continue
            if name not in ("py", *SUFFIXES) and name not in defined_names(modules[module]):
                found.append(f"{where}: {module}.{name}: {modules[module].relative_to(REPO)} has no {name}")
    return found


def test_the_docs_and_docstrings_name_only_what_exists() -> None:
    """docs/architecture.md and every docstring: each module (path.py) and each module.name they
    name is there (issue 23: grub_efi.py named outputs/image.copy_fat_partitions, long gone)."""
    assert missing_names() == []


def test_the_installer_lists_the_host_packages_with_the_standard_library_alone() -> None:
    """make host-packages runs ``python3 -m vmdebootstrap.hostdeps`` before anything is
    installed (a fresh trixie host has no python3-debian, PyYAML or pexpect): -S leaves out
    every site directory, as on such a host."""
    import subprocess
    import sys
    found = subprocess.run([sys.executable, "-S", "-m", "vmdebootstrap.hostdeps"], cwd=PACKAGE.parent,
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0, found.stderr[-2000:]
    assert {"mmdebstrap", "squashfs-tools", "xorriso"} <= set(found.stdout.split())
