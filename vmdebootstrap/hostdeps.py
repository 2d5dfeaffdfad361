"""The host tools vmdebootstrap runs, and the Debian packages that provide them.

The build's own needs are listed here; each output kind and bootloader lists its own
(``host_tools`` in its module) and each architecture its boot-test emulator and
firmware (architectures.py).  The installer (``make install`` runs ``python3 -m
vmdebootstrap.hostdeps``), the Debian package's dependencies (debian/rules runs it
with ``--substvars``) and the tool's own preflight check read the same lists.

The installer runs this module with the host's bare python3 on a fresh machine: what it
imports (every output kind and bootloader) must need the standard library alone at import
time (a unit test runs it with ``python3 -S``).
"""

from __future__ import annotations

import os
import shutil
import sys

from . import architectures, outputs
from .architectures import Architecture
from .settings import Settings

# Needed by every build ("/..." entries are files, the rest commands).
BASE = {
    "debootstrap": "debootstrap",
    # The live root filesystem is what most builds make; every installation has it.
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "tar": "tar",
    "chroot": "coreutils",
    "mount": "mount",
    "unshare": "util-linux",
    "gpgv": "gpgv",
    "/usr/lib/apt/apt-helper": "apt",
    "/usr/share/keyrings/debian-archive-keyring.gpg": "debian-archive-keyring",
}
# What --distribution stable (testing, ...) means when the mirror cannot say: Debian's release
# dates.  Without it the built-in release table answers (releases.codename), so no build
# needs it: installed by the installer, recommended by the Debian package.
SUITE_NAMES_PACKAGES = ("distro-info-data",)
# Foreign --arch builds: the registered qemu-user binfmt handlers (probed by binfmt.py);
# arch-test for mmdebstrap's emulation check.
FOREIGN_PACKAGES = ("qemu-user-static", "binfmt-support", "arch-test")
# Not required, but the fast path: --bootstrapper auto takes mmdebstrap where it is
# installed (steps/bootstrap.py), so the installer always installs it.
FAST_PATH_PACKAGES = ("mmdebstrap",)
# Essential: yes in Debian: on every system, and Debian policy (3.5) wants no unversioned
# dependency on them (lintian: depends-on-essential-package-without-using-version).
ESSENTIAL = frozenset({"coreutils", "tar", "util-linux", "gzip"})


# A Raspberry Pi's boot test reads the firmware partition and makes the SD card's overlay (boot/raspi.py).
RASPI_BOOT_TOOLS = {"sfdisk": "fdisk", "mcopy": "mtools", "qemu-img": "qemu-utils"}


def boot_test_tools(arch: Architecture) -> dict[str, str]:
    """The emulator a boot test of ``arch`` runs (its firmware files come with it, see below)."""
    if arch.emulator is None:
        return {}
    tools = {arch.emulator.binary: arch.emulator.package}
    if any(f.family == "raspi" for f in arch.emulator.firmwares):
        tools.update(RASPI_BOOT_TOOLS)
    return tools


def boot_test_packages(arch: Architecture) -> list[str]:
    """What booting an ``arch`` image in QEMU needs (nothing known: an empty list)."""
    if arch.emulator is None:
        return []
    # SeaBIOS comes with QEMU; raspi3b needs no firmware of its own.
    firmware = [p for f in arch.emulator.firmwares for p in f.packages if p not in ("seabios", "")]
    return list(dict.fromkeys([*boot_test_tools(arch).values(), *firmware]))


def required(settings: Settings) -> dict[str, str]:
    """Every tool and file this build uses -> its package."""
    tools = dict(BASE)
    for kind in outputs.wanted(settings):
        tools.update(kind.host_tools(settings))
    if settings.boot_test is not None:
        tools.update(boot_test_tools(settings.arch))
    return tools


def missing(settings: Settings) -> dict[str, str]:
    """What this build needs and the host lacks: tool (or file) -> its Debian package."""
    return {name: package for name, package in required(settings).items()
            if not (os.path.exists(name) if name.startswith("/") else shutil.which(name))}


def missing_message(lacking: dict[str, str]) -> str:
    """One line: what is missing, and the apt-get command that installs it (as root)."""
    tools = ", ".join(f"{name} (package {package})" for name, package in lacking.items())
    return f"missing host tools: {tools}; install them with: apt-get install {' '.join(sorted(set(lacking.values())))}"


def host_packages(settings: Settings | None = None) -> list[str]:
    """The packages a build needs; without settings, what any build may need (the installer's list)."""
    if settings is not None:
        return sorted({*required(settings).values(), *FAST_PATH_PACKAGES})
    packages: set[str] = {*BASE.values(), *FAST_PATH_PACKAGES, *FOREIGN_PACKAGES, *SUITE_NAMES_PACKAGES}
    for kind in outputs.kinds():
        packages |= set(kind.host_tools(None).values())
    for arch in architectures.ARCHITECTURES.values():
        packages |= set(boot_test_packages(arch))
    return sorted(packages)


def package_relations() -> dict[str, list[str]]:
    """The Debian package's relations, by what needs them: ``Depends`` (what every build needs:
    the preflight's BASE) and one ``Recommends-<what>`` group per feature that only some builds
    use.  Essential packages are left out; each package appears once, in the first group that
    needs it (the ISO's tools serve disk images too)."""
    image_tools = {package for kind in outputs.kinds() if kind.STEP == "image"
                   for package in kind.host_tools(None).values()}
    groups = {
        "Depends": set(BASE.values()),
        "Recommends-fast": set(FAST_PATH_PACKAGES),
        **{f"Recommends-{kind.STEP}": set(kind.host_tools(None).values()) for kind in outputs.kinds()
           if kind.STEP != "image"},
        "Recommends-image": image_tools,
        "Recommends-boot-test": {p for arch in architectures.ARCHITECTURES.values() for p in boot_test_packages(arch)},
        "Recommends-foreign": set(FOREIGN_PACKAGES),
        "Recommends-suites": set(SUITE_NAMES_PACKAGES),
    }
    seen = set(ESSENTIAL)
    relations = {}
    for name, packages in groups.items():
        relations[name] = sorted(packages - seen)
        seen |= packages
    return {name: packages for name, packages in relations.items() if packages}


def substvars() -> str:
    """debian/vmdebootstrap.substvars lines: ${vmdebootstrap:Depends}, ${vmdebootstrap:Recommends-iso}, ..."""
    return "".join(f"vmdebootstrap:{name}={', '.join(packages)}\n" for name, packages in package_relations().items())


def main() -> None:
    """Print every host package (for the installer: the test suite's own are in
    tests/host-packages); --substvars prints the Debian package's relations instead."""
    if "--substvars" in sys.argv[1:]:
        print(substvars(), end="")
        return
    print(" ".join(host_packages()))


if __name__ == "__main__":
    main()
