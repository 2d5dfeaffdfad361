"""Facts about Debian releases and architectures, kept as data."""

from __future__ import annotations

import csv
import datetime
import platform
from pathlib import Path

# Releases in order; symbolic suites are resolved through distro-info-data when it is
# installed (it knows today's stable), else by this table's last released entry.
RELEASES = ("wheezy", "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke")
_FALLBACK_STABLE = "bookworm"
_DISTRO_INFO_CSV = Path("/usr/share/distro-info/debian.csv")

# Default kernel flavour per Debian architecture (vmdebootstrap-features.md §1.2).
# i386: 486 up to wheezy, 586 for jessie (#786767), 686-pae from stretch on.
# armhf gets the multiplatform kernel (#776975), ppc64el powerpc64le (#809457).
KERNEL_FLAVOURS = {
    "amd64": "amd64",
    "arm64": "arm64",
    "armhf": "armmp",
    "armel": "marvell",
    "i386": "686-pae",
    "ppc64el": "powerpc64le",
    "s390x": "s390x",
    "mips64el": "5kc-malta",
    "mipsel": "4kc-malta",
    "riscv64": "riscv64",
}
_OLD_I386_FLAVOURS = {"wheezy": "486", "jessie": "586"}

# Python's platform.machine() -> Debian architecture.
_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "armhf",
    "i686": "i386",
    "i386": "i386",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64el",
}
# Architectures a host of the key architecture runs without emulation.
NATIVE_COMPANIONS = {"amd64": {"i386"}, "arm64": {"armhf", "armel"}}

# The binfmt handler name (as in /proc/sys/fs/binfmt_misc) and qemu-user binary per arch.
QEMU_NAMES = {
    "arm64": "aarch64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "i386",
    "amd64": "x86_64",
    "ppc64el": "ppc64le",
    "s390x": "s390x",
    "mips64el": "mips64el",
    "mipsel": "mipsel",
    "riscv64": "riscv64",
}


def host_arch() -> str:
    machine = platform.machine()
    return _MACHINE_TO_ARCH.get(machine, machine)


def runs_natively(arch: str, host: str | None = None) -> bool:
    host = host or host_arch()
    return arch == host or arch in NATIVE_COMPANIONS.get(host, set())


def _released_from_distro_info(today: datetime.date) -> list[str]:
    try:
        with _DISTRO_INFO_CSV.open() as stream:
            rows = list(csv.DictReader(stream))
    except OSError:
        return []
    released = []
    for row in rows:
        date = row.get("release") or ""
        if date and datetime.date.fromisoformat(date) <= today:
            released.append(row["series"])
    return released


def codename(suite: str, today: datetime.date | None = None) -> str:
    """The codename for a suite name: stable/oldstable/oldoldstable/testing/unstable."""
    suite = suite.lower()
    released = [r for r in _released_from_distro_info(today or datetime.date.today()) if r in RELEASES]
    if not released:
        released = list(RELEASES[: RELEASES.index(_FALLBACK_STABLE) + 1])
    offsets = {"stable": 1, "oldstable": 2, "oldoldstable": 3}
    if suite in offsets and len(released) >= offsets[suite]:
        return released[-offsets[suite]]
    if suite == "testing":
        following = RELEASES.index(released[-1]) + 1
        return RELEASES[following] if following < len(RELEASES) else "sid"
    if suite == "unstable":
        return "sid"
    return suite


def release_index(suite: str) -> int:
    """Position in RELEASES; unknown names (sid, Ubuntu, ...) sort after every release."""
    name = codename(suite)
    return RELEASES.index(name) if name in RELEASES else len(RELEASES)


def at_least(suite: str, release: str) -> bool:
    return release_index(suite) >= RELEASES.index(release)


# The first serial port as the kernel names it: QEMU's virt machine and most ARM
# boards have a PL011 (ttyAMA0); PCs have a 16550 (ttyS0).
_SERIAL_CONSOLES = {"arm64": "ttyAMA0", "armhf": "ttyAMA0"}


def serial_console(arch: str) -> str:
    return _SERIAL_CONSOLES.get(arch, "ttyS0")


def default_kernel(arch: str, suite: str) -> str:
    flavour = KERNEL_FLAVOURS.get(arch, arch)
    if arch == "i386":
        flavour = _OLD_I386_FLAVOURS.get(codename(suite), flavour)
    return f"linux-image-{flavour}"

