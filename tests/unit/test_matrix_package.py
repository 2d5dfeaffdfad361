"""vmdebootstrap-matrix as installed: its entry point, its package in the wheel and the .deb,
its man page, and the core that never imports it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from vmdebootstrap.matrix import manual

from .test_structure import PACKAGE, graph

REPO = PACKAGE.parent


def test_the_entry_point_and_every_package_are_in_the_wheel() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["vmdebootstrap-matrix"] == "vmdebootstrap.matrix.command:main"
    packages = {".".join(path.parent.relative_to(REPO).parts) for path in PACKAGE.rglob("__init__.py")}
    assert set(project["tool"]["setuptools"]["packages"]) == packages
    assert "vmdebootstrap.matrix" in packages


def test_the_debian_package_installs_it_with_its_man_page_and_docs() -> None:
    rules = (REPO / "debian/rules").read_text()
    assert "rmdir debian/vmdebootstrap/usr/bin" not in rules  # vmdebootstrap-matrix stays in /usr/bin
    assert "doc/vmdebootstrap-matrix.1" in (REPO / "debian/vmdebootstrap.manpages").read_text().split()
    assert "docs/scale-out.md" in (REPO / "debian/vmdebootstrap.docs").read_text().split()


def test_the_committed_man_page_is_current() -> None:
    assert (REPO / "doc/vmdebootstrap-matrix.1").read_text() == manual.render(), "run: make man"
    for command in ("check", "pipeline", "summary", "preflight", "proxy"):
        assert f".SS vmdebootstrap\\-matrix {command}\n" in manual.render()


def test_the_core_never_imports_the_matrix() -> None:
    edges = graph()
    importers = {name for name, imported in edges.items() if not name.startswith("vmdebootstrap.matrix")
                 and any(target.startswith("vmdebootstrap.matrix") for target in imported)}
    assert importers == set()
    assert "vmdebootstrap.options" in edges["vmdebootstrap.matrix.settingcheck"]  # the one option table


def test_it_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "vmdebootstrap.matrix", "--version"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.split()[0]) == (0, "vmdebootstrap-matrix")


def test_the_readme_links_the_scale_out_guide() -> None:
    assert "(docs/scale-out.md)" in (REPO / "README.md").read_text()
