"""The Debian package's relations come from hostdeps.py, the list the preflight reads; debian/
names every group it generates and the version the code carries."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap import __version__, hostdeps

DEBIAN = Path(__file__).resolve().parents[2] / "debian"


def test_depends_are_what_every_build_needs() -> None:
    relations = hostdeps.package_relations()
    assert relations["Depends"] == sorted(set(hostdeps.BASE.values()) - hostdeps.ESSENTIAL)
    assert "debootstrap" in relations["Depends"] and "squashfs-tools" in relations["Depends"]


def test_every_host_package_is_a_dependency_once() -> None:
    relations = hostdeps.package_relations()
    listed = [package for packages in relations.values() for package in packages]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(hostdeps.host_packages()) - hostdeps.ESSENTIAL
    assert {"xorriso", "qemu-system-x86", "ovmf", "qemu-user-static", "binfmt-support", "mmdebstrap"} <= set(listed)


def test_substvars_lines() -> None:
    lines = hostdeps.substvars().splitlines()
    assert lines[0].startswith("vmdebootstrap:Depends=apt, ")
    assert all(re.match(r"^vmdebootstrap:[A-Za-z-]+=[a-z0-9.+-]+(, [a-z0-9.+-]+)*$", line) for line in lines)


def test_control_names_every_generated_group_and_package() -> None:
    control = (DEBIAN / "control").read_text()
    assert re.findall(r"\$\{vmdebootstrap:([A-Za-z-]+)\}", control) == list(hostdeps.package_relations())
    description = control.partition("\nDescription:")[2]
    for name, packages in hostdeps.package_relations().items():
        if name.startswith("Recommends"):  # each named in the long description with what needs it
            for package in packages:
                assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", description), package


def test_changelog_carries_the_code_s_version() -> None:
    top = (DEBIAN / "changelog").read_text().splitlines()[0]
    version = re.match(r"^vmdebootstrap \(([^)]+)\)", top)
    assert version and version.group(1) == __version__.replace(".dev", "~dev")


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not on Debian")
def test_left_out_packages_are_essential() -> None:
    for package in sorted(hostdeps.ESSENTIAL):
        shown = subprocess.run(["dpkg-query", "-W", "-f=${Essential}", package], capture_output=True, text=True,
                               check=False)
        if shown.returncode == 0:
            assert shown.stdout == "yes", package


def test_the_long_description_fits_an_80_column_terminal() -> None:
    """lintian's extended-description-line-too-long (Policy 3.4.1), which make check's package
    session refuses: caught here, without building the package."""
    control = (DEBIAN / "control").read_text()
    description = control.split("\nDescription:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert description and all(line.startswith(" ") for line in description)
    assert [line for line in description if len(line) > 80] == []
